"""The `paper` profile at full shape and tiny size: every paper-only code path, in minutes.

A reader with a GPU runs ``make book PROFILE=paper`` and waits a day; a shape that
breaks only at full width, a teacher checkpoint of ResNet50, AutoAttack over many
chunks or a figure that assumes MNIST would cost them that day. :func:`profile`
derives a profile from ``paper`` that keeps every setting (data set, architectures
at full width, methods, losses, attacks and their budgets, AutoAttack's version)
and shrinks only the amount of work: one seed, a few steps, a
handful of evaluation points: each chapter's :attr:`kdlib.chapters.Chapter.tiny`.
:func:`run` executes every chapter notebook with it
on a tiny CIFAR-10 folder written in the genuine pickle format, in scratch
folders; CI runs it (``make paper-shape``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
import yaml

from kdlib import chapters, config, data, paths

NAME = "paper-shape"

#: CIFAR-10 images of the stand-in folder: training (every chapter draws its subset from
#: them) and test.
CIFAR_SIZES = (64, 32)


def profile(folder: Path, source: str = "paper") -> Path:
    """Write ``<folder>/paper-shape.yaml``: `source`'s settings with every chapter's
    :attr:`~kdlib.chapters.Chapter.tiny` applied (ResNet chapters: two epochs of two steps, so
    the warm-up and the step schedule both act; chapter 6 evaluates one image at a time, so
    AutoAttack runs over two chunks; a point an untrained network gets right and cannot lose
    costs AutoAttack's full budget, a minute or more at full width on a CPU: hence so few)."""
    out = {}
    for chapter, params in config.read(source).chapters.items():
        params = {k: v for k, v in params.items() if k != "profile"}
        tiny = dict(chapters.get(chapter).tiny)
        out[chapter] = {**params, "seeds": params["seeds"][:1], **tiny}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump({"description": f"`{source}` at full shape, tiny size",
                                    "chapters": out}, sort_keys=False))
    chapters.load_profile(path)  # valid, or a ProfileError naming the key
    return path


def write_random_cifar10(root: Path, train: int, test: int) -> None:
    """A CIFAR-10 folder of random images (seed 0) in the genuine pickle format under `root`."""
    g = torch.Generator().manual_seed(0)
    splits = [data.Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                         torch.randint(0, 10, (n,), generator=g)) for n in (train, test)]
    data.write_cifar10_folder(root / data.CIFAR10_FOLDER, *splits)


def write_data(root: Path) -> None:
    """A tiny CIFAR-10 folder in the genuine format, and MNIST from the usual data folder."""
    write_random_cifar10(root, *CIFAR_SIZES)
    mnist = paths.data_dir() / "mnist.pt"
    if not mnist.is_file():
        data.load_images("mnist")  # fetch it into the usual folder first
    shutil.copy2(mnist, root / "mnist.pt")


def run(folder: Path | None = None, *, chapters_only: list[str] | None = None,
        log_output: bool = False) -> dict[str, float]:
    """Execute every chapter (or `chapters_only`) under the paper-shape profile in scratch
    folders under `folder` (default ``_build/paper-shape``); returns each chapter's seconds."""
    from kdlib.tooling import book

    folder = folder or paths.REPO / "_build" / NAME
    if folder.exists():
        shutil.rmtree(folder)
    write_data(folder / "data")
    os.environ.update(KDLIB_DATA=str(folder / "data"), KDLIB_RESULTS=str(folder / "results"),
                      KDLIB_CHECKPOINTS=str(folder / "models"))
    cfgs = book.check_profile(profile(folder))
    if chapters_only:
        cfgs = {c: cfgs[c] for c in chapters_only}
    return book.execute(cfgs, folder / "runs", log_output=log_output)
