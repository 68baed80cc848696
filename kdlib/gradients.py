"""Average absolute gradient of each layer during training, grouped by ResNet stage.

Figure 2 of the paper compares "average gradients for each layer at each
stage" of ResNet18 trained with and without teacher-free KD. A
:class:`GradientRecorder` is handed to :func:`kdlib.training.train` as its
``on_backward`` hook. Every `every` optimiser steps it adds each layer's
``mean(|grad|)`` to a running sum kept on the device, so training never waits
for the host; the values are read once, by :meth:`GradientRecorder.frame`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from kdlib import paths


def stage_of(name: str) -> str:
    """The stage of a ResNet parameter: ``layer1``..``layer4``, ``fc``, else ``stem``.

    ``"layer2.0.conv1.weight"`` gives ``"layer2"``; ``"conv1.weight"`` gives ``"stem"``.
    """
    head = name.split(".", 1)[0]
    return head if head.startswith("layer") or head == "fc" else "stem"


class GradientRecorder:
    """Running mean over sampled steps of ``mean(|grad|)`` for each layer's weight.

    Layers are the convolutions and linear maps (weights of two or more
    dimensions: biases and BatchNorm scales are left out), in the model's
    order. Call it with the global step after ``backward()``; steps that are
    not multiples of `every` cost nothing. Training checkpoints do not hold
    it: save :meth:`state_dict` beside them (as :class:`GradientLog` does),
    or a resumed run covers the resumed steps only.
    """

    def __init__(self, model: nn.Module, every: int = 1,
                 stage: Callable[[str], str] = stage_of):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
        self.names = [n.removesuffix(".weight") for n, _ in named]
        self.stages = [stage(n) for n, _ in named]
        self.params = [p for _, p in named]
        self.every = every
        self.samples = 0
        self._sums: torch.Tensor | None = None  # on the model's device

    def __call__(self, step: int) -> None:
        if step % self.every:
            return
        missing = [n for n, p in zip(self.names, self.params, strict=True) if p.grad is None]
        if missing:
            raise RuntimeError(f"no gradient for {missing[:3]}: call after backward()")
        means = torch.stack([p.grad.detach().abs().mean(dtype=torch.float32)
                             for p in self.params])
        self._sums = means if self._sums is None else self._sums + means
        self.samples += 1

    def state_dict(self) -> dict[str, Any]:
        """The running sums (on the CPU) and sample count, to save beside a training checkpoint."""
        return {"names": list(self.names), "every": self.every, "samples": self.samples,
                "sums": None if self._sums is None else self._sums.detach().cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a recorder of the same model and sampling."""
        if state["names"] != self.names or state["every"] != self.every:
            raise ValueError("gradient state of another model or sampling interval")
        self.samples = state["samples"]
        sums = state["sums"]
        self._sums = None if sums is None else sums.to(self.params[0].device)

    def frame(self) -> pd.DataFrame:
        """One row per layer: ``stage``, ``layer``, ``mean_abs_grad``, ``samples``."""
        if self._sums is None:
            raise RuntimeError("no step was sampled yet")
        values = (self._sums / self.samples).tolist()  # the only read from the device
        return pd.DataFrame({"stage": self.stages, "layer": self.names,
                             "mean_abs_grad": values, "samples": self.samples})


def stage_means(frame: pd.DataFrame) -> pd.Series:
    """Mean over the layers of each stage, in network order."""
    return frame.groupby("stage", sort=False)["mean_abs_grad"].mean()


class GradientLog:
    """A :class:`GradientRecorder` whose sums are saved after every epoch, for training
    that may be interrupted and resumed (the ``on_backward`` hook of a resumable run).

    The state after epoch *e* is written to `path` at the last step of *e*,
    before the training checkpoint of *e*; the two latest are kept, so the
    state matching whichever checkpoint a resume starts from is always there.
    """

    def __init__(self, model: nn.Module, every: int, steps_per_epoch: int, path: Path,
                 resume: Path):
        self.recorder = GradientRecorder(model, every)
        self.steps_per_epoch, self.path = steps_per_epoch, path
        self.saved: dict[int, dict[str, Any]] = {}
        if resume.is_file() and path.is_file():
            done = torch.load(resume, map_location="cpu", weights_only=False)["epoch"]
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if done in saved:
                self.recorder.load_state_dict(saved[done])
                self.saved = {done: saved[done]}

    def __call__(self, step: int) -> None:
        self.recorder(step)
        if (step + 1) % self.steps_per_epoch == 0:
            epoch = (step + 1) // self.steps_per_epoch
            self.saved = {e: s for e, s in self.saved.items() if e == epoch - 1}
            self.saved[epoch] = self.recorder.state_dict()
            saved = self.saved
            paths.save_atomic(self.path, lambda tmp: torch.save(saved, tmp))

    def summary(self) -> dict[str, Any] | None:
        """JSON form: each layer's stage, name and mean |gradient|, and each stage's mean."""
        if self.recorder.samples == 0:
            return None
        frame = self.recorder.frame()
        return {"every": self.recorder.every, "samples": self.recorder.samples,
                "layer": frame["layer"].tolist(), "stage": frame["stage"].tolist(),
                "mean_abs_grad": [float(v) for v in frame["mean_abs_grad"]],
                "stage_means": [{"stage": k, "mean_abs_grad": float(v)}  # in network order
                                for k, v in stage_means(frame).items()]}
