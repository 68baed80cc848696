"""One training loop for every method, and the evaluation helpers.

A method is an *objective*: a function ``(model, x, y) -> {"loss": ..., ...}``.
Plain training, Hinton's KD, the teacher-free and the adversarial variants
differ only in the objective they hand to :func:`train` (:mod:`kdlib.objectives`).

The loop keeps the data set on the device and draws batches by indexing a
seeded permutation; it never synchronises with the host inside an epoch
(losses are summed on the device and read once per epoch). It is seeded and
deterministic on the CPU and can save a checkpoint after every epoch and
resume from it bit for bit. ``Recipe.engine`` says how the arithmetic runs
(:func:`engine_for`): by default (``fast``) on CUDA in bf16 autocast with fused
SGD steps and channels-last convolutions, and on a CPU in float32 with fused SGD
steps and dropout masks from cheap integer draws (:class:`kdlib.models.MaskDropout`).
``Recipe.compile`` adds ``torch.compile``. ``benchmarks/run.py`` measures the
engines against a textbook loop, and their accuracy against each other.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib import models, paths
from kdlib.data import random_crop_flip, random_shift

#: Per-example targets: the labels, or a dict of tensors indexed alongside the inputs
#: (such as ``{"labels": y, "teacher_logits": t}``).
Targets = torch.Tensor | dict[str, torch.Tensor]
Objective = Callable[[nn.Module, torch.Tensor, Targets], dict[str, torch.Tensor]]


@runtime_checkable
class EpochObjective(Protocol):
    """An objective that changes over epochs: :func:`train` calls ``start_epoch(epoch)``
    (from 1) before each epoch, a resumed one included (:class:`kdlib.attacks.Adversarial`'s
    ε ramp)."""

    def __call__(self, model: nn.Module, x: torch.Tensor,
                 y: Targets) -> dict[str, torch.Tensor]: ...

    def start_epoch(self, epoch: int) -> None: ...


EngineName = Literal["float32", "fast", "bf16"]


@dataclass(frozen=True)
class Recipe:
    """How to train: optimiser, schedule, batch and augmentation."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    milestones: tuple[float, ...] = (0.3, 0.6, 0.8)  # fractions of training, for "step"
    gamma: float = 0.2  # lr factor at each milestone, for "step"
    jitter: int = 0  # random translation in pixels
    crop_flip: bool = False  # 4-pixel padded random crop and horizontal flip (CIFAR)
    #: How the arithmetic runs (see :func:`engine_for`): ``float32``, ``fast`` or ``bf16``.
    engine: EngineName = "fast"
    compile: bool = False  # torch.compile the model (on the CPU this needs a C++ compiler)

    def as_dict(self) -> dict:
        """JSON-ready form (tuples become lists), as stored in specs and checkpoints.

        ``compile`` appears only when set: a compiled model draws its dropout from another
        random stream, so it is another run.
        """
        out = {**asdict(self), "milestones": list(self.milestones)}
        if not out["compile"]:
            del out["compile"]
        return out


@dataclass(frozen=True)
class Engine:
    """How the training loop runs on its device (:func:`engine_for` decides)."""

    autocast: bool  # bf16 autocast of the forward pass
    channels_last: bool  # channels-last memory for convolutional models
    fused_sgd: bool  # one fused kernel per optimiser step instead of a loop over tensors
    mask_dropout: bool  # dropout masks from cheap integer draws (models.MaskDropout)
    compile: bool  # torch.compile


def engine_for(device_type: str, recipe: Recipe) -> Engine:
    """What `recipe.engine` means on a device of `device_type`.

    ``float32``: plain float32, the textbook optimiser loop and dropout on a CPU.
    ``fast``, the default: what keeps float32 accuracy and runs fastest; on a CPU fused
    SGD and integer-drawn dropout masks in float32, on CUDA bf16 autocast, fused SGD and
    channels-last convolutions. ``bf16``: bf16 autocast and channels-last on either,
    which pays on a CPU with bf16 matrix units (:func:`cpu_has_bf16`).
    """
    if device_type == "cuda":
        return Engine(autocast=recipe.engine != "float32", channels_last=True, fused_sgd=True,
                      mask_dropout=False, compile=recipe.compile)
    fast, bf16 = recipe.engine != "float32", recipe.engine == "bf16"
    return Engine(autocast=bf16, channels_last=bf16, fused_sgd=fast, mask_dropout=fast,
                  compile=recipe.compile)


#: oneDNN's CPU ISA limits (``ONEDNN_MAX_CPU_ISA``) that still allow bf16 matrix products in
#: hardware; a lower limit (``AVX2``, ``AVX512_CORE``...) withholds them.
BF16_ISAS = {"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
             "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT"}


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX or AVX-512 BF16, and oneDNN
    is not limited below them by ``ONEDNN_MAX_CPU_ISA``), where the ``bf16`` engine pays
    off; elsewhere bf16 is emulated and slower."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return limit in BF16_ISAS and (" amx_bf16" in flags or " avx512_bf16" in flags)


def engine_here(engine: str) -> str:
    """The engine a profile's `engine` names on this machine: ``auto`` is ``bf16`` on a CPU
    with bf16 matrix units (:func:`cpu_has_bf16`) and ``fast`` elsewhere (on a GPU ``fast``
    is bf16 autocast already); any other name is itself. A spec names the engine that ran."""
    if engine != "auto":
        return engine
    return "bf16" if not torch.cuda.is_available() and cpu_has_bf16() else "fast"


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no GPU")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)


def seeded(seed: int, factory: Callable[[], nn.Module]) -> nn.Module:
    """Build a model whose initial weights are drawn from `seed` alone."""
    seed_everything(seed)
    return factory()


def _uses_channels_last(model: nn.Module, eng: Engine) -> bool:
    return eng.channels_last and any(isinstance(m, nn.Conv2d) for m in model.modules())


def as_trained(model: nn.Module, recipe: Recipe) -> nn.Module:
    """`model` (in place) in the memory layout :func:`train` gives it under `recipe` on its
    device: channels-last for a convolutional model under an engine that uses it.

    A run's own network is measured in this layout whether it was trained just now or
    loaded from its checkpoint (which stores the plain layout): under bf16 autocast the
    two layouts can round differently, and a record must not depend on a cache.
    """
    device = next(model.parameters()).device
    if _uses_channels_last(model, engine_for(device.type, recipe)):
        model.to(memory_format=torch.channels_last)
    return model


#: Where :func:`train` reports each finished epoch (its name, epoch, loss and seconds, at
#: level INFO) when it shows no progress bar: a worker of ``kdlib jobs`` gives it a handler
#: that prints one line per epoch; without one, nothing is shown.
EPOCHS = logging.getLogger("kdlib.training.epochs")


def _take(y: Targets, idx: torch.Tensor) -> Targets:
    return {k: v[idx] for k, v in y.items()} if isinstance(y, dict) else y[idx]


# --- schedule --------------------------------------------------------------------------------

def lr_factor(recipe: Recipe, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at optimiser `step` (0-based)."""
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if recipe.schedule == "step":
        return recipe.gamma ** sum(progress >= m for m in recipe.milestones)
    return 1.0


# --- the loop --------------------------------------------------------------------------------

def train(model: nn.Module, objective: Objective, x: torch.Tensor, y: Targets,
          recipe: Recipe, *, seed: int, checkpoint: Path | None = None,
          desc: str = "train", progress: bool = True,
          on_backward: Callable[[int], None] | None = None,
          on_epoch: Callable[[int], dict[str, float]] | None = None,
          engine: Engine | None = None) -> list[dict[str, float]]:
    """Train `model` in place on inputs `x` and targets `y` (on the model's device).

    Returns one dict of mean losses per epoch. With `checkpoint`, the full state
    (weights, optimiser, random generators) is saved after each epoch, and a
    later call with the same path resumes after the last completed epoch.
    `on_backward(step)` is called with the global step after each backward pass,
    before the optimiser step, while the gradients are in place (see
    :class:`kdlib.gradients.GradientRecorder`). `on_epoch(epoch)` is called after each
    epoch (counted from 1), before its checkpoint; what it returns joins the epoch's history
    row (such as a held-out accuracy for early stopping). An :class:`EpochObjective` is told
    each epoch before it starts. `engine` overrides what
    :func:`engine_for` picks for the device and the recipe.
    """
    device = x.device
    eng = engine or engine_for(device.type, recipe)
    n = len(x)
    steps_per_epoch = n // recipe.batch_size  # drop the ragged last batch
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {recipe.batch_size} is larger than the {n} examples")
    total = steps_per_epoch * recipe.epochs
    seed_everything(seed)
    channels_last = _uses_channels_last(model, eng)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if eng.compile else model  # shares `model`'s parameters
    params = [p for p in model.parameters() if p.requires_grad]
    # Fused SGD: one pass over each tensor instead of several (an MNIST-teacher step on one
    # thread: 1.1 instead of 4.2 ms in the optimiser); it rounds differently in the last bits.
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov and recipe.momentum > 0,
                          weight_decay=recipe.weight_decay, fused=eng.fused_sgd or None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(recipe, s, total, steps_per_epoch))
    gen = torch.Generator(device=device).manual_seed(seed)
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        # load on the CPU: RNG states must stay CPU tensors; weights move on load_state_dict
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state["recipe"] != recipe.as_dict():
            raise ValueError(f"{checkpoint} was written for another recipe; delete it to restart")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["cpu_rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"])
        history, start = state["history"], state["epoch"]

    bar = tqdm(total=total, initial=start * steps_per_epoch, desc=desc, disable=not progress,
               unit="step", mininterval=1.0, leave=False)
    model.train()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=eng.autocast)
    with models.mask_dropout(model) if eng.mask_dropout else nullcontext():
        for epoch in range(start, recipe.epochs):
            t0 = time.perf_counter()
            if isinstance(objective, EpochObjective):
                objective.start_epoch(epoch + 1)
            order = torch.randperm(n, device=device, generator=gen)
            sums: dict[str, torch.Tensor] = {}
            for step in range(steps_per_epoch):
                idx = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
                xb = random_shift(x[idx], recipe.jitter, gen)
                xb = random_crop_flip(xb, generator=gen) if recipe.crop_flip else xb
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with autocast:
                    parts = objective(net, xb, _take(y, idx))
                opt.zero_grad(set_to_none=True)
                parts["loss"].backward()
                if on_backward is not None:
                    on_backward(epoch * steps_per_epoch + step)
                opt.step()
                sched.step()
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0) + v.detach().float()
                bar.update()
            row = {k: float(v) / steps_per_epoch for k, v in sums.items()}  # one sync per epoch
            row.update(epoch=epoch + 1, lr=sched.get_last_lr()[0], seconds=time.perf_counter() - t0)
            if on_epoch is not None:
                row.update(on_epoch(epoch + 1))
                model.train()
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", epoch=epoch + 1)
            if not progress:
                EPOCHS.info("%s: epoch %d/%d, loss %.4f, %.0f s", desc, epoch + 1,
                            recipe.epochs, row["loss"], row["seconds"])
            if checkpoint is not None:
                state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "generator": gen.get_state(),
                         "cpu_rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda"
                         else None,
                         "history": history, "epoch": epoch + 1, "recipe": recipe.as_dict()}
                paths.save_atomic(checkpoint, lambda tmp, state=state: torch.save(state, tmp))
    bar.close()
    return history


# --- callbacks ------------------------------------------------------------------------------

class EarlyStopping:
    """An ``on_epoch`` callback of :func:`train` that keeps the best epoch's weights.

    After each epoch it scores the model (``score(model)``, higher is better, such as
    robust accuracy on held-out images), adds the score to the epoch's history row under
    `key`, and saves the weights when the score beats every earlier epoch's. They are saved
    at `path`, beside the resume file, so a resumed run keeps them; :meth:`restore` loads
    them into the model at the end.
    """

    def __init__(self, model: nn.Module, score: Callable[[nn.Module], float], path: Path,
                 key: str = "held_out_score"):
        self.model, self.score, self.path, self.key = model, score, path, key

    def __call__(self, epoch: int) -> dict[str, float]:
        value = self.score(self.model)
        best = self.best()
        if best is None or value > best[1]:
            blob = {"epoch": epoch, "score": value, "state_dict": self.model.state_dict()}
            paths.save_atomic(self.path, lambda tmp: torch.save(blob, tmp))
        return {self.key: value}

    def best(self) -> tuple[int, float] | None:
        """``(epoch, score)`` of the best epoch so far, or None before the first."""
        if not self.path.is_file():
            return None
        blob = torch.load(self.path, map_location="cpu", weights_only=True)
        return int(blob["epoch"]), float(blob["score"])

    def restore(self) -> int:
        """Load the best epoch's weights into the model; returns that epoch."""
        blob = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(blob["state_dict"])
        return int(blob["epoch"])


# --- evaluation ------------------------------------------------------------------------------

@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits for every row of `x`, in eval mode, in large batches (float32)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size]).float()
                          for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of `x` classified as `y`."""
    return float((predict(model, x).argmax(1) == y).float().mean())
