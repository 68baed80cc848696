"""Instability in a run's recorded training history: loss spikes, held-out collapses and
collapse to chance.

A run's record keeps ``metrics["history"]``, one dict per epoch with ``epoch`` (from 1) and
``loss`` (the epoch's mean training loss) and, when early stopping is on,
``held_out_pgd_acc`` (robust accuracy on held-out images after the epoch, in [0, 1]). The run
is *unstable* when its history shows either

- a **loss spike**: an epoch whose loss is more than ``factor`` (3) times the previous
  epoch's, or is not finite (NaN or ∞: training diverged); or
- a **held-out collapse**: an epoch whose held-out accuracy is more than ``drop`` (0.10,
  absolute) below the best of the earlier epochs. Every epoch that stays that far below is
  flagged, not just the first.

- a **collapse to chance**: the run ends where a network that learnt nothing ends: its
  final accuracy (``clean_acc``, else ``test_acc``) within ``chance_margin`` (0.05) of
  chance (1/K), or its last epoch's cross-entropy (``ce``, else ``loss``) within
  ``flat_share`` (10%) of log K, the cross-entropy of a uniform prediction. A collapsed run
  has a flat loss, so no spike rule sees it.

A value at exactly the threshold (to floating-point rounding: ``0.2 -> 0.6`` is exactly 3×)
is not flagged.

Why these thresholds. Adversarial training with Tf-KD-self on MNIST, 5 epochs, with the ε of
the attack ramped up over the first 3 epochs: seed 0's losses were 3.506, 0.576, 6.496,
1.144, 0.58, an 11.3× jump at epoch 3, while seeds 1 and 2 (3.769, 0.536, 0.392, 0.095,
0.074 and 3.603, 0.377, 0.677, 0.098, 0.073) and plain adversarial training (1.12, 0.566,
0.602, 0.325, 0.272) settled. The loss may rise while ε grows, by 1.8× for seed 2 at epoch 3
and 1.06× for plain AT, so a spike has to be well above that: 3× leaves room on both sides
(1.7 times seed 2's rise, a quarter of seed 0's spike). Seed 0's held-out accuracy (0.038,
0.268, 0.592, 0.821, 0.804) kept rising through the spike, so the loss is the signal that
catches it; its last dip, 0.017 below the best, is noise, while a collapse (the catastrophic
overfitting of adversarial training) loses tens of points within an epoch: 0.10 sits between.
The first recipe of chapter 6 (profile ``cpu-first-recipe``, lr 0.1 without warm-up) left
runs at 10.45% clean accuracy with a cross-entropy of 2.301 from the second epoch on (log 10
= 2.303), which neither rule above flags; the runs that learnt ended at 97–98% and a
cross-entropy below 0.5, far from both chance thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

LOSS_SPIKE = "loss spike"
HELD_OUT_COLLAPSE = "held-out collapse"
CHANCE = "collapse to chance"

#: The per-epoch records of a run: ``metrics["history"]``.
History = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Flag:
    """One sign of instability: what (``kind``), when (``epoch``) and the numbers (``detail``)."""

    kind: Literal["loss spike", "held-out collapse", "collapse to chance"]
    epoch: int
    detail: str


def _beyond(value: float, threshold: float) -> bool:
    """``value > threshold``, where a value within rounding of the threshold is not beyond it."""
    return value > threshold and not math.isclose(value, threshold)


def loss_spikes(history: History, factor: float = 3.0) -> list[Flag]:
    """Epochs whose loss is more than `factor` times the previous epoch's, or not finite.

    The first epoch has nothing to compare with, nor has an epoch after a loss that is not
    positive.
    """
    out: list[Flag] = []
    prev: Mapping[str, Any] | None = None
    for row in history:
        loss, epoch = float(row["loss"]), row["epoch"]
        if not math.isfinite(loss):
            out.append(Flag(LOSS_SPIKE, epoch, f"loss is {loss} at epoch {epoch}: training "
                                               "diverged"))
        elif prev is not None and prev["loss"] > 0 and _beyond(loss, factor * prev["loss"]):
            before = float(prev["loss"])
            out.append(Flag(LOSS_SPIKE, epoch,
                            f"loss rose from {before:.4g} at epoch {prev['epoch']} to {loss:.4g} "
                            f"at epoch {epoch}, {loss / before:.1f}× (more than {factor:g}×)"))
        prev = row
    return out


def held_out_collapses(history: History, drop: float = 0.10,
                       key: str = "held_out_pgd_acc") -> list[Flag]:
    """Epochs whose held-out accuracy (`key`) is more than `drop` (absolute) below the best
    of the earlier epochs. Epochs without the key (or with NaN) are skipped: nothing when the
    history has no held-out scores.
    """
    out: list[Flag] = []
    best: tuple[float, int] | None = None  # (accuracy, epoch)
    for row in history:
        acc = row.get(key)
        if acc is None or math.isnan(acc):
            continue
        epoch = row["epoch"]
        if best is not None and _beyond(best[0] - acc, drop):
            out.append(Flag(HELD_OUT_COLLAPSE, epoch,
                            f"held-out accuracy fell to {acc:.3f} at epoch {epoch}, "
                            f"{best[0] - acc:.3f} below the best {best[0]:.3f} of epoch {best[1]} "
                            f"(more than {drop:g})"))
        if best is None or acc > best[0]:
            best = (float(acc), epoch)
    return out


def chance_collapse(metrics: Mapping[str, Any], num_classes: int = 10,
                    chance_margin: float = 0.05, flat_share: float = 0.10) -> list[Flag]:
    """A run that ended at chance: final accuracy within `chance_margin` of 1/K, or a last
    cross-entropy within `flat_share` of log K (see the module docstring). Nothing when the
    record has neither number."""
    history = metrics.get("history") or []
    epoch = int(history[-1]["epoch"]) if history else 0
    acc = metrics.get("clean_acc", metrics.get("test_acc"))
    if isinstance(acc, int | float) and not isinstance(acc, bool) \
            and abs(acc - 1 / num_classes) <= chance_margin:
        return [Flag(CHANCE, epoch, f"final accuracy {acc:.4f}, within {chance_margin:g} of "
                                    f"chance ({1 / num_classes:g})")]
    if history:
        last = history[-1]
        ce = float(last.get("ce", last["loss"]))
        flat = math.log(num_classes)
        if abs(ce - flat) <= flat_share * flat:
            return [Flag(CHANCE, epoch, f"cross-entropy {ce:.4g} at the last epoch, within "
                                        f"{flat_share:.0%} of log {num_classes} = {flat:.4g} "
                                        f"(a uniform prediction)")]
    return []


def flags(history: History, *, factor: float = 3.0, drop: float = 0.10,
          key: str = "held_out_pgd_acc", metrics: Mapping[str, Any] | None = None,
          num_classes: int = 10) -> list[Flag]:
    """Loss spikes, held-out collapses and (given the record's `metrics`) a collapse to
    chance, in epoch order (a loss spike first when two fall on one epoch)."""
    found = loss_spikes(history, factor) + held_out_collapses(history, drop, key)
    if metrics is not None:
        found += chance_collapse(metrics, num_classes)
    return sorted(found, key=lambda f: f.epoch)


def unstable(history: History, *, factor: float = 3.0, drop: float = 0.10,
             key: str = "held_out_pgd_acc", metrics: Mapping[str, Any] | None = None) -> bool:
    """Whether the run shows any sign :func:`flags` looks for."""
    return bool(flags(history, factor=factor, drop=drop, key=key, metrics=metrics))
