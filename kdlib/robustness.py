"""Is a model's robustness real? The sanity checks a reviewer asks of a defence.

Carlini et al. (2019, "On Evaluating Adversarial Robustness") and the AutoAttack
authors list what an honest robustness number survives; :func:`audit` runs them on
one model and returns a :class:`Check` per rule, each passing or failing by a
stated, paired test on the per-image results (:func:`mcnemar`):

- ``sweep``: accuracy under PGD falls as ε grows, and an unbounded attack
  (ε = 1: any image in [0, 1]) leaves at most 1% of the points;
- ``stronger PGD``: more steps and random restarts do not lower accuracy
  significantly below PGD-20's (else PGD-20 was too weak to trust);
- ``margin loss``: PGD on the CW margin loss does not find significantly more than
  PGD on cross-entropy (else the cross-entropy's gradients mislead);
- ``transfer``: examples crafted on an independently trained standard model are not
  significantly more successful than the white-box attack;
- ``black box``: Square alone (no gradients) is not significantly more successful than
  PGD-20 on the same images;
- ``zero gradients``: at most 1% of the points have an all-zero input gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy import stats as _st
from torch import nn

from kdlib import attacks

#: Significance level of every paired test.
ALPHA = 0.05
#: PGD steps of the audit's reference attacks (the sweep, the margin loss, the transfer)
#: and of its unbounded attack.
REFERENCE_STEPS = 20
UNBOUNDED_STEPS = 50


def _own_steps(cap: int | None) -> tuple[int, int]:
    """The steps of the audit's reference and unbounded attacks, bounded by `cap`."""
    return (min(REFERENCE_STEPS, cap), min(UNBOUNDED_STEPS, cap)) if cap else (
        REFERENCE_STEPS, UNBOUNDED_STEPS)


def audit_steps(sweep: int, strong_steps: int, restarts: int, *, transfer: bool = True,
                cap: int | None = None) -> int:
    """Gradient steps (each a forward and a backward pass) per image of :func:`audit` with
    `sweep` extra ε values: what the cost model prices. `cap` as in :func:`audit`."""
    ref, unbounded = _own_steps(cap)
    return (ref * (sweep + 1) + unbounded + strong_steps * restarts + ref
            + (ref if transfer else 0) + 1)


def mcnemar(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int, float]:
    """McNemar's exact test on paired flags: ``(a only, b only, two-sided p)``.

    Counts the points where `a` holds and `b` does not, and the reverse; under the null
    hypothesis each discordant point falls either way with probability 1/2, so p is the
    two-sided binomial tail ``min(1, 2·P(X ≤ min(n01, n10)))``, ``X ~ Bin(n01 + n10, 1/2)``.
    """
    a, b = a.bool().cpu(), b.bool().cpu()
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    n = n01 + n10
    p = 1.0 if n == 0 else min(1.0, 2 * float(_st.binom.cdf(min(n01, n10), n, 0.5)))
    return n01, n10, p


def binomial_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a proportion of `k` successes in `n` trials."""
    if n == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    lo = 0.0 if k == 0 else float(_st.beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(_st.beta.ppf(1 - tail, k + 1, n - k))
    return lo, hi


def margin_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner's margin, ``max_{j≠y} z_j − z_y``, averaged: positive once misclassified."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return (others.max(1).values - true).mean()


def robust_flags(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                 *, restarts: int = 1, step: float | None = None, loss: str = "ce",
                 batch_size: int = 500, seed: int = 0) -> torch.Tensor:
    """Per image: still right after PGD with `restarts` random starts (broken by any one).
    The step is ``2.5·ε/steps`` unless given; `loss` is ``ce`` or ``margin``."""
    step = step if step is not None else 2.5 * eps / steps
    loss_fn = margin_loss if loss == "margin" else None
    flags = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for r in range(restarts):
        gen = torch.Generator(device=x.device).manual_seed(seed + r)
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            xa = attacks.pgd(model, xb, yb, eps, step, steps, generator=gen, loss_fn=loss_fn)
            with attacks.model_mode(model, "eval"), torch.no_grad():
                flags[i:i + batch_size] &= model(xa).argmax(1) == yb
    return flags.cpu()


def transfer_flags(model: nn.Module, source: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   eps: float, steps: int, *, batch_size: int = 500, seed: int = 0
                   ) -> torch.Tensor:
    """Per image: `model` still right on PGD examples crafted against `source`."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    flags = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        xa = attacks.pgd(source, xb, yb, eps, 2.5 * eps / steps, steps, generator=gen)
        with attacks.model_mode(model, "eval"), torch.no_grad():
            flags.append((model(xa).argmax(1) == yb).cpu())
    return torch.cat(flags)


def zero_gradient_fraction(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           batch_size: int = 500) -> float:
    """Share of images whose cross-entropy has an all-zero gradient with respect to the input."""
    zeros = 0
    with attacks.model_mode(model, "eval"), torch.enable_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].detach().requires_grad_(True)
            loss = F.cross_entropy(model(xb).float(), y[i:i + batch_size], reduction="sum")
            (g,) = torch.autograd.grad(loss, [xb])
            zeros += int((g.flatten(1).abs().amax(1) == 0).sum())
    return zeros / len(x)


@dataclass(frozen=True)
class Check:
    """One sanity check: what was measured, the rule, and whether it passed."""

    name: str
    measured: str
    rule: str
    passed: bool


def _paired(name: str, reference: torch.Tensor, stronger: torch.Tensor, what: str) -> Check:
    """Fails when `stronger` leaves significantly fewer points than `reference` (McNemar)."""
    kept, lost, p = mcnemar(reference, stronger)
    gap = 100 * (float(reference.float().mean()) - float(stronger.float().mean()))
    return Check(name, f"{what}: {gap:+.2f} points below ({kept} images broken only by it, "
                       f"{lost} the other way; McNemar p = {p:.3g})",
                 "not significantly lower (p ≥ 0.05) than PGD-20", not (kept > lost and
                                                                          p < ALPHA))


def audit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
          pgd20: torch.Tensor, square: torch.Tensor | None = None,
          reference: nn.Module | None = None, sweep: Sequence[float] = (),
          batch_size: int = 500, strong_steps: int = 100, restarts: int = 5,
          cap: int | None = None) -> list[Check]:
    """The sanity checks of the module docstring on images `x`, labels `y`.

    `pgd20` are the per-image PGD-20 flags the evaluation already has (same images);
    `square` Square's flags on the first ``len(square)`` of them; `reference` an
    independently trained standard model for the transfer attack; `sweep` the ε values
    (beside ε itself) of the accuracy curve. `cap` bounds the steps of the audit's own
    PGD-20 and PGD-50 (a shape check, never a measurement; None: no bound).
    """
    checks = []
    ref, far = _own_steps(cap)
    eps_list = sorted({*sweep, eps})
    accs = [float(robust_flags(model, x, y, e, ref, batch_size=batch_size).float().mean())
            for e in eps_list]
    unbounded = float(robust_flags(model, x, y, 1.0, far, step=0.1,
                                   batch_size=batch_size).float().mean())
    falls = all(b <= a + 0.01 for a, b in zip(accs, accs[1:], strict=False))
    curve = ", ".join(f"ε {e:.3g}: {100 * a:.1f}%" for e, a in zip(eps_list, accs, strict=True))
    checks.append(Check("sweep", f"{curve}; unbounded (ε = 1): {100 * unbounded:.1f}%",
                        "falls as ε grows; at most 1% left unbounded",
                        falls and unbounded <= 0.01))
    strong = robust_flags(model, x, y, eps, strong_steps, restarts=restarts,
                          batch_size=batch_size)
    checks.append(_paired("stronger PGD", pgd20, strong,
                          f"PGD-{strong_steps} × {restarts} restarts"))
    margin = robust_flags(model, x, y, eps, ref, loss="margin", batch_size=batch_size)
    checks.append(_paired("margin loss", pgd20, margin, f"PGD-{ref} on the CW margin"))
    if reference is not None:
        moved = transfer_flags(model, reference, x, y, eps, ref, batch_size=batch_size)
        checks.append(_paired("transfer", pgd20, moved, "transfer from a standard model"))
    if square is not None:
        checks.append(_paired("black box", pgd20[:len(square)], square, "Square alone"))
    zero = zero_gradient_fraction(model, x, y, batch_size)
    checks.append(Check("zero gradients", f"{100 * zero:.1f}% of the images",
                        "at most 1%", zero <= 0.01))
    return checks
