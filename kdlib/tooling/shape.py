"""The `paper` profile at full shape and tiny size: every paper-only code path, in minutes.

A reader with a GPU runs ``make book PROFILE=paper`` and waits a day; a shape that
breaks only at full width, a teacher checkpoint of ResNet50, AutoAttack over many
chunks or a figure that assumes MNIST would cost them that day. :func:`profile`
derives a profile from ``paper`` that keeps every setting (data set, architectures
at full width, methods, losses, attacks and their budgets, AutoAttack's version)
and shrinks only the amount of work: one seed, a few steps, a
handful of evaluation points, and every attack's iterations capped (chapter 6's
``attack_cap``): each chapter's :attr:`kdlib.chapters.Chapter.tiny`. Its cost is thereby
bounded in FLOPs (:data:`FLOP_BOUND`, held by a test against the cost model), not by how
fast a CPU's matrix units happen to be; and the ResNet chapters train and evaluate in
whichever precision is faster on the CPU at hand (:func:`faster_engine`): bf16 autocast
pays only where the CPU multiplies bf16 matrices fast at the batch the shape uses.
:func:`run` executes every chapter notebook with it
on a tiny CIFAR-10 folder written in the genuine pickle format, in scratch
folders; CI runs it (``make paper-shape``).
"""

from __future__ import annotations

import os
import shutil
import time
from functools import cache
from pathlib import Path

import torch
import yaml

from kdlib import chapters, config, data, models, paths

NAME = "paper-shape"

#: CIFAR-10 images of the stand-in folder: training (every chapter draws its subset from
#: them) and test.
CIFAR_SIZES = (64, 32)


#: The most FLOPs the paper-shape plan may cost by the cost model (:mod:`kdlib.flops`), and
#: the slowest sustained rate it is planned for: a CPU that runs the shape's small batches
#: at :data:`PLANNED_RATE` or faster makes every run in FLOP_BOUND / PLANNED_RATE seconds
#: (4 minutes), within the step's 5-minute budget with the notebooks' start-up.
FLOP_BOUND = 4.8e12
PLANNED_RATE = 20e9


@cache
def faster_engine(batch: int, repeats: int = 3) -> str:
    """``bf16`` or ``fast`` (float32): whichever runs a full-width ResNet18's forward and
    backward pass at `batch` CIFAR images faster on this machine's CPU (best of `repeats`,
    after one warm-up; bf16 stops early once a pass takes 3 times float32's best). bf16
    autocast is many times slower than float32 where the CPU has no bf16 matrix units, and
    can be slower at batch 1 even where it has them."""
    net = models.resnet18()
    x = torch.rand(batch, 3, 32, 32)

    def pass_seconds(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        out.float().sum().backward()
        return time.perf_counter() - t0

    seconds: dict[str, float] = {}
    for engine in ("fast", "bf16"):
        pass_seconds(engine == "bf16")  # warm-up
        times: list[float] = []
        for _ in range(repeats):
            times.append(pass_seconds(engine == "bf16"))
            if engine == "bf16" and times[-1] > 3 * seconds["fast"]:
                break  # clearly the slower one
        seconds[engine] = min(times)
    choice = min(seconds, key=seconds.__getitem__)
    print(f"[{NAME}] a ResNet18 pass at batch {batch}: float32 {1e3 * seconds['fast']:.0f} ms, "
          f"bf16 autocast {1e3 * seconds['bf16']:.0f} ms; chapters at that batch run {choice}",
          flush=True)
    return choice


def profile(folder: Path, source: str = "paper", *, engine: str | None = None) -> Path:
    """Write ``<folder>/paper-shape.yaml``: `source`'s settings with every chapter's
    :attr:`~kdlib.chapters.Chapter.tiny` applied (ResNet chapters: two epochs of two steps, so
    the warm-up and the step schedule both act; chapter 6 evaluates one image at a time, so
    AutoAttack runs over two chunks; a point an untrained network gets right and cannot lose
    costs AutoAttack's full budget: hence so few, and every attack capped). The ResNet
    chapters (CIFAR-10) train in `engine`; by default :func:`faster_engine` at the batch that
    dominates each chapter's time (its evaluation's, else its training's) on a CPU, the
    source's engine on a GPU."""
    out = {}
    for chapter, params in config.read(source).chapters.items():
        params = {k: v for k, v in params.items() if k != "profile"}
        tiny = dict(chapters.get(chapter).tiny)
        out[chapter] = {**params, "seeds": params["seeds"][:1], **tiny}
        if params.get("dataset") == "cifar10":
            batch = tiny.get("eval_batch", tiny.get("batch_size", params.get("batch_size")))
            out[chapter]["engine"] = engine or _shape_engine(params["engine"], batch)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump({"description": f"`{source}` at full shape, tiny size",
                                    "chapters": out}, sort_keys=False))
    chapters.load_profile(path)  # valid, or a ProfileError naming the key
    return path


def _shape_engine(source: str, batch: int) -> str:
    """The engine the shape trains in here: the source's on a GPU, the faster one on a CPU."""
    return source if torch.cuda.is_available() else faster_engine(batch)


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
