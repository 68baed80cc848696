"""Trained weights stored under a key made of a name and the hash of its spec.

A model that several runs (or chapters) learn from, such as the MNIST teacher,
is trained once per full configuration and then loaded. Training writes an
every-epoch resume file beside the final weights, so an interrupted run
continues from its last completed epoch. Processes that want the same model
at once (parallel jobs, see :mod:`kdlib.tooling.jobs`) take turns through an
exclusive lock on ``<checkpoint>.lock`` (:func:`kdlib.paths.companion`): one
trains, the others wait and then load.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdlib import paths
from kdlib.results import spec_hash


def checkpoint_path(name: str, spec: Mapping[str, Any]) -> Path:
    return paths.checkpoint_file(name, spec_hash(spec))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on `path` (created if missing) while the block runs.

    Blocks until no other holder is left; the kernel drops the lock if its holder
    dies. The file stays behind: removing it would let two processes lock two files.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def trained_model(name: str, spec: Mapping[str, Any], build: Callable[[], nn.Module],
                  fit: Callable[[nn.Module, Path], dict[str, Any]],
                  device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Load the model for (`name`, `spec`), first building it and ``info = fit(model,
    resume_path)`` when no weights are saved.

    Returns the model on `device` in eval mode and the `info` its training
    returned (a JSON-able dict, such as the loss history), saved beside the
    weights. The model is always the one loaded from the saved weights, also right
    after training it: what training leaves behind (a channels-last memory layout
    under the bf16 engine, whose bf16 results can differ from the stored layout's)
    never reaches a caller, so a teacher teaches the same whether this process trained
    it or another did. Training holds the checkpoint's lock; a process that waited
    for it finds the weights saved and loads them.
    """
    final = checkpoint_path(name, spec)
    if not final.is_file():
        with exclusive_lock(paths.companion(final, "lock")):
            if not final.is_file():  # nobody trained it while we waited for the lock
                _fit_and_save(build().to(device), spec, fit, final)
    blob = torch.load(final, map_location=device, weights_only=True)
    model = build().to(device)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob["info"]


def _fit_and_save(model: nn.Module, spec: Mapping[str, Any],
                  fit: Callable[[nn.Module, Path], dict[str, Any]], final: Path) -> None:
    resume = paths.companion(final, "resume")
    info = fit(model, resume)
    blob = {"state_dict": model.state_dict(), "info": info, "spec": dict(spec)}
    paths.save_atomic(final, lambda tmp: torch.save(blob, tmp))
    resume.unlink(missing_ok=True)
