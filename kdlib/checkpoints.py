"""Trained weights stored under a key made of a name and the hash of its spec.

A model that several runs (or chapters) learn from, such as the MNIST teacher,
is trained once per full configuration and then loaded. Training writes an
every-epoch resume file beside the final weights, so an interrupted run
continues from its last completed epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdlib import paths
from kdlib.results import spec_hash


def checkpoint_path(name: str, spec: Mapping[str, Any]) -> Path:
    return paths.checkpoints_dir() / f"{name}-{spec_hash(spec)}.pt"


def trained_model(name: str, spec: Mapping[str, Any], build: Callable[[], nn.Module],
                  fit: Callable[[nn.Module, Path], dict[str, Any]],
                  device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Load the model for (`name`, `spec`), or build it and ``info = fit(model, resume_path)``.

    Returns the model on `device` in eval mode and the `info` its training
    returned (a JSON-able dict, such as the loss history), saved beside the
    weights so a loaded model still has it.
    """
    final = checkpoint_path(name, spec)
    model = build().to(device)
    if final.is_file():
        blob = torch.load(final, map_location=device, weights_only=True)
        model.load_state_dict(blob["state_dict"])
        return model.eval(), blob["info"]
    resume = final.with_suffix(".resume.pt")
    info = fit(model, resume)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    torch.save({"state_dict": model.state_dict(), "info": info, "spec": dict(spec)}, tmp)
    tmp.replace(final)
    resume.unlink(missing_ok=True)
    return model.eval(), info
