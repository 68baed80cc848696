"""Adversarial attacks: L∞ PGD for training and evaluation, and AutoAttack.

PGD follows Madry et al. (2018): a uniform random start in the ε-ball, then
signed-gradient ascent steps on the cross-entropy, each followed by projection
to the ε-ball and clamping to [0, 1]. Inputs are images in [0, 1]; any
normalisation belongs inside the model. Gradients are taken with respect to the
input only, so the parameters' ``.grad`` is never touched.

AutoAttack (Croce & Hein, 2020) runs through ``pyautoattack==0.2.0``. Its API
differs from upstream ``autoattack``: ``AutoAttack(model, *, attacks, device,
eps, norm, seed, version)`` and ``run_standard_evaluation(x, y, *, batch_size,
state_path) -> (x_adv, y_adv)``; it logs progress at DEBUG level on the
``auto-attack`` logger, never calls ``model.eval()`` and reseeds the global RNG.
Its resume through ``state_path`` is broken in 0.2.0 (the attack sets are
reloaded as a string and a list, and the resume branch leaves ``y_adv``
unbound); :func:`autoattack_eval` works around all three, see :func:`_state_class`.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

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


def adversarial(objective: Objective, eps: float, step: float, steps: int, *,
                mode: Mode = "eval") -> Objective:
    """Adversarial training: `objective` applied to PGD examples crafted against the
    cross-entropy on the labels (random start from the global RNG, which
    :func:`kdlib.training.train` seeds and checkpoints). Targets are the labels or a
    dict with ``"labels"``."""

    def adversarial_objective(model: nn.Module, x: torch.Tensor,
                              targets: Targets) -> dict[str, torch.Tensor]:
        labels = targets["labels"] if isinstance(targets, dict) else targets
        return objective(model, pgd(model, x, labels, eps, step, steps, mode=mode), targets)

    return adversarial_objective


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


def robust_accuracy_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                        step: float, steps: int, batch_size: int = 512, **kw) -> float:
    """Accuracy under PGD, e.g. PGD-20: ``steps=20, step=eps/4`` (one host sync)."""
    flags = robust_flags_pgd(model, x, y, eps, step, steps, batch_size, **kw)
    return int(flags.sum()) / len(flags)


# --- AutoAttack ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AutoAttackResult:
    """Outcome of :func:`autoattack_eval`; flags are bool tensors on the CPU."""

    clean: torch.Tensor  # correct on the clean input
    robust: torch.Tensor  # correct on the clean input and not broken by any attack
    x_adv: torch.Tensor  # examples found by *this* call; the clean input elsewhere
    attacks: tuple[str, ...]
    eps: float
    norm: str
    #: Robust accuracy after each attack of this call, in order, as pyautoattack reports it.
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


def _state_class(states: list):
    """pyautoattack's ``EvaluationState``, fixed so that a saved state resumes.

    0.2.0 saves the attack set with ``str()`` and so refuses every saved state,
    and reloads the finished attacks as a list (no ``.add``); we parse both back.
    Its resume branch then leaves ``y_adv`` unbound, so we hide the restored flags
    until pyautoattack has recomputed the clean ones and AND the two: the run takes
    the fresh branch yet keeps the saved progress and clean accuracy (its log line
    "initial accuracy" then shows the restored robust accuracy). Finished attacks
    are saved at once (0.2.0 throttles that save to once a minute). Every state
    made is appended to `states`, so the caller can read the final flags.
    """
    from pyautoattack.state import EvaluationState

    class State(EvaluationState):
        def __init__(self, *args, **kwargs):
            if isinstance(kwargs.get("_attacks_to_run"), str):  # saved as str(set)
                kwargs["_attacks_to_run"] = set(ast.literal_eval(kwargs["_attacks_to_run"]))
            if "_run_attacks" in kwargs:  # saved as a list
                kwargs["_run_attacks"] = set(kwargs["_run_attacks"])
            super().__init__(*args, **kwargs)
            self._restored: torch.Tensor | None = None
            self._resumed = False
            states.append(self)

        @classmethod
        def from_disk(cls, path: Path) -> State:
            state = super().from_disk(path)
            state._restored, state._robust_flags = state._robust_flags, None
            state._resumed = True
            return state

        def _set_flags(self, flags: torch.Tensor) -> None:
            if self._restored is not None:
                flags &= self._restored.to(flags.device)  # in place: pyautoattack keeps `flags`
                self._restored = None
            EvaluationState.robust_flags.fset(self, flags)

        def _set_clean(self, accuracy: float) -> None:
            if not self._resumed:  # on resume pyautoattack passes the restored robust accuracy
                EvaluationState.clean_accuracy.fset(self, accuracy)

        robust_flags = EvaluationState.robust_flags.setter(_set_flags)
        clean_accuracy = EvaluationState.clean_accuracy.setter(_set_clean)

        def add_run_attack(self, attack: str) -> None:
            super().add_run_attack(attack)
            self.to_disk(force=True)

    return State


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


def _check_meta(state_path: Path, meta: dict) -> None:
    """Refuse to resume a state written for another evaluation (sidecar ``.meta.json``)."""
    side = state_path.with_name(state_path.name + ".meta.json")
    if state_path.exists() and side.exists():
        old = json.loads(side.read_text())
        if old != meta:
            raise ValueError(f"{state_path} was written for another evaluation "
                             f"({old} != {meta}); delete it to restart")
    state_path.parent.mkdir(parents=True, exist_ok=True)
    side.write_text(json.dumps(meta))


def autoattack_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    norm: Literal["Linf", "L2", "L1"] = "Linf",
                    version: Literal["standard", "plus", "rand"] = "standard",
                    square_only: bool = False, attacks: Sequence[str] | None = None,
                    batch_size: int = 500, state_path: str | Path | None = None, seed: int = 0,
                    device: torch.device | str | None = None, verbose: bool = True,
                    iterations: int | None = None,
                    square_queries: int | None = None) -> AutoAttackResult:
    """AutoAttack robust accuracy of `model` on `x` (in [0, 1]) with labels `y`.

    Runs the model in eval mode, float32, on `device` (the model's by default),
    without parameter gradients and without disturbing the global RNG; restores the
    model's mode. `square_only` runs the black-box Square attack alone (the
    gradient-masking check); `attacks` picks any subset with pyautoattack's
    ``version='custom'`` defaults. With `state_path` the evaluation resumes where an
    interrupted one stopped (points already broken stay broken, finished attacks are
    skipped; ``x_adv`` then holds only this call's examples). `verbose` prints
    pyautoattack's per-attack progress. `iterations` (APGD/FAB) and `square_queries`
    shrink the budget for smoke tests; never report numbers obtained with them.
    The result carries pyautoattack's warnings as ``flags`` and its robust accuracy after
    each attack as ``after_attack``.
    """
    from pyautoattack import AutoAttack
    from pyautoattack import autoattack as aa_module

    if square_only:
        attacks = ["square"]
    if device is None:
        device = next(model.parameters(), x).device
    device = torch.device(device)
    aa = AutoAttack(model, eps=eps, norm=norm, seed=seed, device=device,
                    version="custom" if attacks else version,
                    attacks=list(attacks) if attacks else None)
    if iterations is not None:
        for apgd in (aa.apgd, aa.apgd_targeted):
            apgd.n_iter = apgd.n_iter_orig = iterations
            apgd.n_iter_2 = max(int(0.22 * iterations), 1)
            apgd.n_iter_min = max(int(0.06 * iterations), 1)
            apgd.size_decr = max(int(0.03 * iterations), 1)
        aa.fab.n_iter = iterations
    if square_queries is not None:
        aa.square.n_queries = square_queries
    run = tuple(aa.attacks_to_run)
    y = y.long()
    if state_path is not None:
        state_path = Path(state_path)
        labels = hashlib.sha1(y.cpu().numpy().tobytes()).hexdigest()[:16]
        _check_meta(state_path, {"eps": eps, "norm": norm, "attacks": sorted(run), "n": len(x),
                                 "seed": seed, "labels_sha1": labels, "iterations": iterations,
                                 "square_queries": square_queries})
    states: list = []
    log = _AttackLog(verbose)
    rng_devices = ([torch.cuda.current_device() if device.index is None else device.index]
                   if device.type == "cuda" else [])
    with (model_mode(model, "eval"), _frozen(model), _listening(log),
          torch.random.fork_rng(devices=rng_devices),
          mock.patch.object(aa_module, "EvaluationState", _state_class(states))):
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=batch_size,
                                              state_path=state_path)
        with torch.no_grad():
            clean = torch.cat([model(x[i:i + batch_size].to(device).float()).argmax(1).cpu()
                               for i in range(0, len(x), batch_size)]) == y.cpu()
    robust = states[-1].robust_flags.cpu()
    return AutoAttackResult(clean=clean, robust=robust, x_adv=x_adv, attacks=run,
                            eps=eps, norm=norm, after_attack=dict(log.after),
                            flags=tuple(log.flags))
