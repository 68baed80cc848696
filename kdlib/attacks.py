"""Adversarial attacks: L∞ PGD for training and evaluation, and AutoAttack.

PGD follows Madry et al. (2018): a uniform random start in the ε-ball, then
signed-gradient ascent steps on the cross-entropy, each followed by projection
to the ε-ball and clamping to [0, 1]. Inputs are images in [0, 1]; any
normalisation belongs inside the model. Gradients are taken with respect to the
input only, so the parameters' ``.grad`` is never touched.

AutoAttack (Croce & Hein, 2020) runs through ``pyautoattack==0.2.0``, used as
a black box. Its API differs from upstream ``autoattack``: ``AutoAttack(model,
*, attacks, device, eps, norm, seed, version)`` and ``run_standard_evaluation(x,
y, *, batch_size, state_path) -> (x_adv, y_adv)``; it logs progress at DEBUG
level on the ``auto-attack`` logger, never calls ``model.eval()`` and reseeds
the global RNG. Its own resume (``state_path``) does not work in 0.2.0, so
:func:`autoattack_eval` resumes from outside instead: it attacks fixed chunks of
the images and saves each finished chunk, so an interrupted evaluation loses at
most one chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from kdlib import paths
from kdlib.training import Objective, Targets

Mode = Literal["eval", "train"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def model_mode(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Run the block with `model` in `mode`, then restore the caller's mode."""
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', not {mode!r}")
    was_training = model.training
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was_training)


# --- PGD -------------------------------------------------------------------------------------

def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step: float,
        steps: int, *, random_start: bool = True, generator: torch.Generator | None = None,
        loss_fn: LossFn | None = None, mode: Mode = "eval") -> torch.Tensor:
    """L∞ PGD adversarial examples for the batch `x` (in [0, 1]) with labels `y`.

    Ascends ``loss_fn(logits, y)`` (mean cross-entropy by default) with steps of
    ``step · sign(grad)``, projecting to ``‖x_adv - x‖∞ ≤ eps`` and to [0, 1] after
    each. `generator` draws the random start (the global RNG when None). The model
    runs in `mode` ("eval" by default: BatchNorm statistics untouched; "train" for
    training code that wants batch statistics) and gets its own mode back after.
    No host synchronisation; not usable under ``torch.inference_mode``.
    """
    loss_fn = loss_fn or F.cross_entropy
    x = x.detach()
    # the ε-ball intersected with [0, 1] is a box per pixel: projecting is one clamp
    low, high = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = (x + (2 * noise - 1) * eps).clamp(0, 1)
    with model_mode(model, mode), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = loss_fn(model(x_adv).float(), y)
            (grad,) = torch.autograd.grad(loss, [x_adv])
            x_adv = torch.clamp(x_adv.detach() + step * grad.sign(), low, high)
    return x_adv.detach()


class Adversarial:
    """Adversarial training: `objective` applied to PGD examples crafted against the
    cross-entropy on the labels (random start from the global RNG, which
    :func:`kdlib.training.train` seeds and checkpoints). Targets are the labels or a
    dict with ``"labels"``.

    With `ramp_epochs`, ε (and the step with it) grows linearly over the first epochs,
    ``ε·e/ramp_epochs`` in epoch e (from 1), which helps a small network take off at a large
    ε: it is a :class:`kdlib.training.EpochObjective`, and :meth:`start_epoch` sets the scale.
    """

    def __init__(self, objective: Objective, eps: float, step: float, steps: int, *,
                 mode: Mode = "eval", ramp_epochs: int = 0):
        self.objective, self.eps, self.step, self.steps = objective, eps, step, steps
        self.mode, self.ramp_epochs, self.scale = mode, ramp_epochs, 1.0

    def start_epoch(self, epoch: int) -> None:
        self.scale = min(1.0, epoch / self.ramp_epochs) if self.ramp_epochs else 1.0

    def __call__(self, model: nn.Module, x: torch.Tensor,
                 targets: Targets) -> dict[str, torch.Tensor]:
        labels = targets["labels"] if isinstance(targets, dict) else targets
        x_adv = pgd(model, x, labels, self.scale * self.eps, self.scale * self.step,
                    self.steps, mode=self.mode)
        return self.objective(model, x_adv, targets)


@dataclass(frozen=True)
class Threat:
    """An L∞ threat model and the PGD that plays it: ``steps`` signed-gradient steps of
    ``step`` on the cross-entropy from a uniform random start in the ε-ball.

    Adversarial training (:meth:`adversarial`) attacks the network in ``mode`` and may grow
    ε (and the step) over the first ``ramp_epochs`` epochs; :meth:`flags` and
    :meth:`accuracy` measure a network as it stands: eval mode, full ε, a seeded start.
    :meth:`spec` is the record form, so the ε a record names is the ε that was used.
    """

    eps: float
    step: float
    steps: int
    mode: Mode = "eval"
    ramp_epochs: int = 0

    def spec(self) -> dict[str, Any]:
        return {"eps": self.eps, "step": self.step, "steps": self.steps, "mode": self.mode,
                "ramp_epochs": self.ramp_epochs}

    def adversarial(self, objective: Objective) -> Objective:
        """`objective` on this threat's PGD examples (adversarial training)."""
        return Adversarial(objective, self.eps, self.step, self.steps, mode=self.mode,
                           ramp_epochs=self.ramp_epochs)

    def flags(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              batch_size: int = 512, *, seed: int = 0) -> torch.Tensor:
        """Per image: still classified as its label after this PGD (seeded start)."""
        return robust_flags_pgd(model, x, y, self.eps, self.step, self.steps, batch_size,
                                seed=seed)

    def accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 batch_size: int = 512, *, seed: int = 0) -> float:
        """Accuracy under this PGD (:meth:`flags`, one host sync)."""
        flags = self.flags(model, x, y, batch_size, seed=seed)
        return int(flags.sum()) / len(flags)


def robust_flags_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                     step: float, steps: int, batch_size: int = 512, *,
                     random_start: bool = True, seed: int = 0) -> torch.Tensor:
    """Per-example bool: still classified as `y` after PGD (eval mode, seeded start).

    `x` and `y` must be on the model's device."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    flags = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        xa = pgd(model, xb, yb, eps, step, steps, random_start=random_start, generator=gen)
        with model_mode(model, "eval"), torch.no_grad():
            flags.append(model(xa).argmax(1) == yb)
    return torch.cat(flags)


# --- AutoAttack ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AutoAttackResult:
    """Outcome of :func:`autoattack_eval`; tensors are on the CPU."""

    clean: torch.Tensor  # bool: correct on the clean input
    robust: torch.Tensor  # bool: correct on the clean input and not broken by any attack
    x_adv: torch.Tensor  # the adversarial example of each broken point, else the clean input
    attacks: tuple[str, ...]
    eps: float
    norm: str
    #: Robust accuracy after each attack that ran, in order, over all the images.
    after_attack: dict[str, float] = field(default_factory=dict)
    #: pyautoattack's own warnings (``pyautoattack.checks``): zero gradients, a randomised
    #: or probability-output model, Square beating the gradient attacks, and so on.
    flags: tuple[str, ...] = ()

    @property
    def clean_accuracy(self) -> float:
        return int(self.clean.sum()) / len(self.clean)

    @property
    def robust_accuracy(self) -> float:
        return int(self.robust.sum()) / len(self.robust)


class _AttackLog(logging.Handler):
    """Collects pyautoattack's log: its warnings (the flags of ``pyautoattack.checks``) and
    the robust accuracy it reports after each attack; echoes to stderr when `verbose`."""

    AFTER = re.compile(r"robust accuracy after (\S+): ([\d.]+)%")

    def __init__(self, verbose: bool):
        super().__init__(logging.DEBUG)
        self.verbose = verbose
        self.flags: list[str] = []
        self.after: dict[str, float] = {}
        self.echo = logging.Formatter("[AutoAttack %(asctime)s] %(message)s", "%H:%M:%S")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.flags.append(message)
        if found := self.AFTER.search(message):
            self.after[found[1].lower()] = float(found[2]) / 100
        if self.verbose:
            print(self.echo.format(record), file=sys.stderr)


@contextlib.contextmanager
def _listening(log: _AttackLog) -> Iterator[None]:
    """Attach `log` to the ``auto-attack`` logger (at DEBUG) while the block runs."""
    logger = logging.getLogger("auto-attack")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No parameter gradients in the block (FAB calls ``.backward()`` on the logits)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, req in flags:
            p.requires_grad_(req)


def capped(aa: Any, cap: int) -> Any:
    """`aa` (a pyautoattack ``AutoAttack``) with every attack's iterations (APGD, APGD-T, FAB)
    and Square's queries at most `cap`, through the attacks' public settings (``n_iter``,
    ``n_queries``), as pyautoattack's own versions set them. A shape check, never a
    measurement: a capped AutoAttack is weaker than the one the paper reports."""
    for attack in (aa.apgd, aa.apgd_targeted, aa.fab):
        attack.n_iter = min(attack.n_iter, cap)
    aa.square.n_queries = min(aa.square.n_queries, cap)
    return aa


def _attack_chunk(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                  norm: str, version: str, attacks: Sequence[str] | None, batch_size: int,
                  seed: int, device: torch.device, verbose: bool,
                  cap: int | None = None) -> dict[str, Any]:
    """One call of pyautoattack on `x`, `y`: per-image flags, examples, its log."""
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, eps=eps, norm=norm, seed=seed, device=device,
                    version="custom" if attacks else version,
                    attacks=list(attacks) if attacks else None)
    if cap is not None:
        capped(aa, cap)
    log = _AttackLog(verbose)
    rng_devices = ([torch.cuda.current_device() if device.index is None else device.index]
                   if device.type == "cuda" else [])
    with (model_mode(model, "eval"), _frozen(model), _listening(log),
          torch.random.fork_rng(devices=rng_devices)):
        x_adv, y_adv = aa.run_standard_evaluation(x, y, batch_size=batch_size)
        with torch.no_grad():
            clean = torch.cat([model(x[i:i + batch_size].to(device).float()).argmax(1).cpu()
                               for i in range(0, len(x), batch_size)]) == y.cpu()
    return {"clean": clean, "robust": y_adv.cpu() == y.cpu(), "x_adv": x_adv.detach().cpu(),
            "attacks": tuple(aa.attacks_to_run), "after_attack": dict(log.after),
            "flags": list(log.flags)}


def _after_attack(parts: Sequence[dict[str, Any]], order: Sequence[str]) -> dict[str, float]:
    """Robust accuracy after each attack over all chunks. A chunk that skipped an attack
    (no robust point was left) keeps its accuracy from before it."""
    ran = [a for a in order if any(a in p["after_attack"] for p in parts)]
    n = sum(len(p["clean"]) for p in parts)
    out = {}
    for attack in ran:
        total = 0.0
        for p in parts:
            value = float(p["clean"].float().mean())
            for a in order[:order.index(attack) + 1]:
                value = p["after_attack"].get(a, value)
            total += value * len(p["clean"])
        out[attack] = total / n
    return out


def _check_folder(folder: Path, meta: dict[str, Any]) -> None:
    """Refuse to resume from chunks written for another evaluation (``meta.json``)."""
    side = folder / "meta.json"
    if side.is_file() and json.loads(side.read_text()) != meta:
        raise ValueError(f"{folder} holds chunks of another evaluation "
                         f"({json.loads(side.read_text())} != {meta}); delete it to restart")
    folder.mkdir(parents=True, exist_ok=True)
    side.write_text(json.dumps(meta))


def autoattack_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    norm: Literal["Linf", "L2", "L1"] = "Linf",
                    version: Literal["standard", "plus", "rand"] = "standard",
                    square_only: bool = False, attacks: Sequence[str] | None = None,
                    batch_size: int = 500, chunk: int | None = None,
                    folder: str | Path | None = None, seed: int = 0,
                    device: torch.device | str | None = None,
                    verbose: bool = True, cap: int | None = None) -> AutoAttackResult:
    """AutoAttack robust accuracy of `model` on `x` (in [0, 1]) with labels `y`.

    Runs the model in eval mode, float32, on `device` (the model's by default),
    without parameter gradients and without disturbing the global RNG; restores the
    model's mode. `square_only` runs the black-box Square attack alone (the
    gradient-masking check); `attacks` picks any subset with pyautoattack's
    ``version='custom'`` defaults. The images are attacked in chunks of `chunk`
    (all at once when None), each with the same `seed`; with `folder`, every finished
    chunk is saved there and a later call with the same folder loads it instead of
    attacking it again, so an interrupted evaluation loses at most one chunk.
    `verbose` prints pyautoattack's per-attack progress. `cap` bounds every attack's
    iterations and queries (:func:`capped`; None: pyautoattack's budgets).
    """
    if cap is not None and cap < 1:
        raise ValueError(f"cap must be at least 1 (or None), not {cap}")
    if square_only:
        attacks = ["square"]
    if device is None:
        device = next(model.parameters(), x).device
    device = torch.device(device)
    y = y.long()
    size = chunk or max(len(x), 1)
    folder = Path(folder) if folder is not None else None
    if folder is not None:
        labels = hashlib.sha1(y.cpu().numpy().tobytes()).hexdigest()[:16]
        _check_folder(folder, {"eps": eps, "norm": norm, "version": version,
                               "attacks": list(attacks or []), "n": len(x), "chunk": size,
                               "seed": seed, "labels_sha1": labels,
                               **({"cap": cap} if cap is not None else {})})
    parts = []
    for i, start in enumerate(range(0, len(x), size)):
        saved = folder / f"chunk-{i:05d}.pt" if folder is not None else None
        if saved is not None and saved.is_file():
            parts.append(torch.load(saved, weights_only=True))
            continue
        part = _attack_chunk(model, x[start:start + size], y[start:start + size], eps,
                             norm=norm, version=version, attacks=attacks,
                             batch_size=batch_size, seed=seed, device=device, verbose=verbose,
                             cap=cap)
        if saved is not None:
            paths.save_atomic(saved, lambda tmp, part=part: torch.save(part, tmp))
        parts.append(part)
    run = parts[0]["attacks"]
    return AutoAttackResult(
        clean=torch.cat([p["clean"] for p in parts]),
        robust=torch.cat([p["robust"] for p in parts]),
        x_adv=torch.cat([p["x_adv"] for p in parts]), attacks=tuple(run), eps=eps, norm=norm,
        after_attack=_after_attack(parts, run),
        flags=tuple(dict.fromkeys(f for p in parts for f in p["flags"])))
