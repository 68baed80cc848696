"""Deciding a claim from runs over seeds: a small fixed set of verdicts and the rules for each.

Every verdict comes with the numbers behind it, so a page can print the rule's
inputs beside its outcome. The rules:

- :func:`gain`, "A is better than B": Welch's two-sided test on the per-seed values.
  A significant difference (p < 0.05) in the claimed direction reproduces the claim,
  in the other direction refutes it. Without one, the smallest difference the seeds
  could detect with 80% power (:func:`kdlib.stats.detectable_difference`) decides:
  if it is no larger than the gain the paper reports, a gain of that size would have
  been found, so the claim is *not reproduced*; otherwise the run is *inconclusive
  at this power*.
- :func:`near`, "the value is about X": the mean lies within a stated tolerance of
  the paper's value.
- :func:`alike`, "A works like B" (the label-smoothing readings): not significantly
  different (p ≥ 0.05) while the seeds could have detected a difference as large as
  the effect being explained, *reproduced*; significantly different, *not
  reproduced*; otherwise inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kdlib import stats

Verdict = Literal["reproduced", "not reproduced", "inconclusive at this power",
                  "not run at this scale"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive at this power",
                                 "not run at this scale")
#: Significance level of every test.
ALPHA = 0.05


@dataclass(frozen=True)
class Decision:
    """A verdict and the numbers it rests on (in the units of the values, e.g. points)."""

    verdict: Verdict
    ours: str  # the measured quantity, "mean ± std (n = k)"
    test: str  # the rule's inputs, in words
    difference: float = math.nan
    p: float = math.nan
    detectable: float = math.nan


def describe(values: Sequence[float], scale: float = 100.0) -> str:
    """``98.92 ± 0.02 (n = 3)``, or the single value."""
    s = stats.summarize(values)
    return f"{s.fmt(scale)} (n = {s.n})"


def not_run(what: str = "no records at this scale") -> Decision:
    return Decision("not run at this scale", "—", what)


def _difference(a: Sequence[float], b: Sequence[float], scale: float
                ) -> tuple[float, float, float]:
    sa, sb = stats.summarize(a), stats.summarize(b)
    d = (sa.mean - sb.mean) * scale
    p = stats.welch_p(a, b)
    std = max(sa.std, sb.std) * scale if min(sa.n, sb.n) > 1 else math.nan
    return d, p, stats.detectable_difference(std, min(sa.n, sb.n))


def gain(treated: Sequence[float], baseline: Sequence[float], claimed: float, *,
         scale: float = 100.0) -> Decision:
    """Is `treated` better than `baseline`, as the paper claims by `claimed` (in the units
    of the values times `scale`, e.g. points)? See the module docstring."""
    d, p, det = _difference(treated, baseline, scale)
    ours = f"{d:+.2f} ({describe(treated, scale)} vs {describe(baseline, scale)})"
    test = f"Welch p = {p:.3g}; detectable with 80% power: {det:.2f}"
    if not math.isnan(claimed):
        test += f"; paper: {claimed:+.2f}"
    if math.isnan(p):
        verdict: Verdict = "inconclusive at this power"
        test = "one seed or no spread: no test"
    elif p < ALPHA:
        verdict = "reproduced" if d > 0 else "not reproduced"
    elif det <= abs(claimed):
        verdict = "not reproduced"
    else:
        verdict = "inconclusive at this power"
    return Decision(verdict, ours, test, d, p, det)


def near(values: Sequence[float], paper: float, tolerance: float, *,
         scale: float = 100.0) -> Decision:
    """Is the mean of `values` within `tolerance` of the paper's value (both times `scale`)?"""
    s = stats.summarize(values)
    d = s.mean * scale - paper * scale
    verdict: Verdict = "reproduced" if abs(d) <= tolerance else "not reproduced"
    return Decision(verdict, describe(values, scale),
                    f"|ours − paper| = {abs(d):.2f}, tolerance {tolerance:g}", d)


def alike(a: Sequence[float], b: Sequence[float], effect: float, *,
          scale: float = 100.0) -> Decision:
    """Does `a` behave like `b`, at the resolution of `effect` (the size of what `b` is
    said to explain, times `scale`)? See the module docstring."""
    d, p, det = _difference(a, b, scale)
    ours = f"{d:+.2f} ({describe(a, scale)} vs {describe(b, scale)})"
    test = (f"Welch p = {p:.3g}; detectable with 80% power: {det:.2f}; effect explained: "
            f"{effect:.2f}")
    if math.isnan(p):
        verdict: Verdict = "inconclusive at this power"
    elif p < ALPHA:
        verdict = "not reproduced"
    elif det <= abs(effect):
        verdict = "reproduced"
    else:
        verdict = "inconclusive at this power"
    return Decision(verdict, ours, test, d, p, det)
