"""Summaries over seeds: mean, spread, confidence interval and Welch's test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _st


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and a 95% t-interval of a handful of runs."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float

    def fmt(self, scale: float = 100.0, digits: int = 2) -> str:
        """``98.73 ± 0.05`` (or just the mean when there is one run)."""
        if self.n < 2:
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


def summarize(values: Sequence[float]) -> Summary:
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        raise ValueError("no values to summarise")
    mean = sum(vals) / n
    if n < 2:
        return Summary(mean, math.nan, n, math.nan, math.nan)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = _st.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that `a` and `b` have equal means.

    NaN when either side has fewer than two runs or both have zero spread.
    """
    if len(a) < 2 or len(b) < 2 or (len(set(a)) == 1 and len(set(b)) == 1):
        return math.nan
    res = _st.ttest_ind(list(a), list(b), equal_var=False)
    return float(res.pvalue)


def welch_p_from_summary(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float,
                         n_b: int) -> float:
    """Welch's two-sided p-value from published means, sample stds and run counts.

    Lets a page test the paper's own claims from its ``mean ± std`` cells.
    """
    res = _st.ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False)
    return float(res.pvalue)


def detectable_difference(std: float, n: int, *, alpha: float = 0.05,
                          power: float = 0.8) -> float:
    """The smallest true difference between two arms of `n` runs each, with seed-to-seed
    standard deviation `std`, that a two-sided test at level `alpha` finds with `power`.

    ``(t_{1-α/2, ν} + t_{power, ν}) · std · √(2/n)`` with ν = 2(n - 1) degrees of freedom;
    for large n the factor tends to 1.96 + 0.84 = 2.80. NaN for fewer than two runs.
    """
    if n < 2 or math.isnan(std):
        return math.nan
    df = 2 * (n - 1)
    factor = _st.t.ppf(1 - alpha / 2, df) + _st.t.ppf(power, df)
    return float(factor * std * math.sqrt(2 / n))
