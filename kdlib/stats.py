"""Summaries over seeds: mean, spread, confidence interval and Welch's test; paired
comparisons, power and seed counts, and equivalence tests (scipy and statsmodels)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as _st
from scipy.optimize import brentq

if TYPE_CHECKING:
    from statsmodels.stats.power import TTestIndPower, TTestPower


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


# --- paired comparisons, power and equivalence (scipy and statsmodels) --------------------------
#
# statsmodels is imported inside the functions that use it: it takes about half a second to
# import, and most users of this module (report, verdicts) only need the summaries above.
#
# Powers come from statsmodels' TTestPower / TTestIndPower, one tail at a time (see
# _two_sided_power). Detectable differences and seed counts are solved from those powers with
# scipy's brentq rather than statsmodels' solve_power, which is off by up to 0.7 in power for
# two or three seeds (it meets NaN powers while bracketing), gives up with NaN for large
# effects, and sometimes returns a one-element array or the negative root.

#: brentq's upper bracket for a standardized effect size (power is 1 long before).
_MAX_EFFECT = 1e6
#: brentq's upper bracket for a number of seeds.
_MAX_N = 1e15


@dataclass(frozen=True)
class Paired:
    """Two methods run on the same seeds, compared seed by seed (differences ``a - b``).

    ``mean`` is the mean difference, ``sd`` the sample std of the differences (ddof=1) and
    ``ci_low``/``ci_high`` its 95% t-interval; ``p`` is the two-sided paired t-test's p-value.
    One pair: ``sd``, the interval and ``p`` are NaN. Identical differences on every seed:
    ``sd`` is 0, the interval is the single value, and ``p`` is NaN (t is ±∞ or 0/0, so the
    test says nothing; identical runs usually mean the seed had no effect).
    """

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    p: float


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """Paired comparison of `a` and `b`, the same seeds in the same order (see :class:`Paired`).

    Raises ValueError when the two have different lengths or are empty.
    """
    n = len(a)
    if n != len(b) or n == 0:
        raise ValueError(f"paired needs two non-empty samples of one length, got {n} and "
                         f"{len(b)}")
    diffs = [float(a[i]) - float(b[i]) for i in range(n)]
    d0 = diffs[0]
    if n == 1:
        return Paired(1, d0, math.nan, math.nan, math.nan, math.nan)
    if diffs.count(d0) == n:
        return Paired(n, d0, 0.0, d0, d0, math.nan)
    s = summarize(diffs)
    p = float(_st.ttest_rel(a, b).pvalue)
    return Paired(n, s.mean, s.std, s.ci_low, s.ci_high, p)


def _two_sided_power(analysis: TTestPower | TTestIndPower, effect_size: float, alpha: float,
                     **nobs: float) -> float:
    """Two-sided power from a statsmodels power class, as its two one-sided tails at alpha/2.

    The same number as ``analysis.power(..., alternative="two-sided")``, except where scipy's
    non-central t returns NaN far in a tail (non-centrality beyond about 7 for the tail
    against the effect, about 35 for the tail with it): those tails are 0 and 1 to double
    precision and are counted so, instead of turning the power into NaN.
    """
    es = abs(effect_size)
    toward = analysis.power(effect_size=es, alpha=alpha / 2, alternative="larger", **nobs)
    against = analysis.power(effect_size=es, alpha=alpha / 2, alternative="smaller", **nobs)
    return float(np.nan_to_num(toward, nan=1.0) + np.nan_to_num(against))  # NaN: 1 and 0


def _smallest_effect(power_of: Callable[[float], float], power: float) -> float:
    """The standardized effect size at which ``power_of`` reaches `power` (alpha < power < 1)."""
    return brentq(lambda es: power_of(es) - power, 0.0, _MAX_EFFECT)


def _smallest_n(power_at: Callable[[float], float], power: float) -> int:
    """The smallest whole n >= 2 with ``power_at(n) >= power``: the real-valued root, rounded
    down, then stepped up to the first whole number that reaches `power`.
    """
    if power_at(2) >= power:
        return 2
    n = math.floor(brentq(lambda x: power_at(x) - power, 2.0, _MAX_N))
    while power_at(n) < power:
        n += 1
    return n


def paired_power(effect: float, sd: float, n: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level `alpha` over `n` pairs.

    `effect` is the true mean difference and `sd` the std of the per-seed differences:
    statsmodels' ``TTestPower`` (the one-sample t-test on the differences) with effect size
    ``effect / sd``. NaN for fewer than two pairs or an `sd` that is not positive (0 or NaN):
    without spread, any non-zero difference is certain and the question is moot.
    """
    if n < 2 or not sd > 0:
        return math.nan
    from statsmodels.stats.power import TTestPower

    return _two_sided_power(TTestPower(), effect / sd, alpha, nobs=n)


def paired_detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that the paired t-test over `n` pairs finds with
    `power`, given the std `sd` of the per-seed differences (the inverse of
    :func:`paired_power`). NaN for fewer than two pairs.
    """
    if n < 2:
        return math.nan
    return _smallest_effect(lambda es: paired_power(es, 1.0, n, alpha), power) * sd


def paired_seeds_needed(effect: float, sd: float, alpha: float = 0.05,
                        power: float = 0.8) -> int:
    """The smallest number of pairs (at least 2) whose paired t-test finds `effect` with `power`.

    Raises ValueError when `effect` is 0 (no number of seeds detects it) or `sd` is not
    positive.
    """
    if effect == 0:
        raise ValueError("a difference of 0 cannot be detected")
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    return _smallest_n(lambda k: paired_power(effect, sd, k, alpha), power)


def _average_sd(sd_a: float, sd_b: float) -> float:
    return math.sqrt((sd_a**2 + sd_b**2) / 2)


def welch_power(effect: float, sd_a: float, sd_b: float, n_a: float, n_b: float,
                alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test at level `alpha` to find a true difference
    `effect` between arms of `n_a` and `n_b` runs with stds `sd_a` and `sd_b`.

    statsmodels' ``TTestIndPower`` with effect size ``effect / sqrt((sd_a² + sd_b²) / 2)``:
    Welch's test approximated by Student's with the two variances averaged, exact for equal
    variances and close for equal arms. NaN when an arm has fewer than two runs or both stds
    are 0 (or one is NaN).
    """
    sd = _average_sd(sd_a, sd_b)
    if min(n_a, n_b) < 2 or not sd > 0:
        return math.nan
    from statsmodels.stats.power import TTestIndPower

    return _two_sided_power(TTestIndPower(), effect / sd, alpha, nobs1=n_a, ratio=n_b / n_a)


def welch_detectable(sd_a: float, sd_b: float, n_a: int, n_b: int, alpha: float = 0.05,
                     power: float = 0.8) -> float:
    """The smallest true difference that the two-sample t-test finds with `power` (the
    inverse of :func:`welch_power`). NaN when an arm has fewer than two runs.
    """
    if min(n_a, n_b) < 2:
        return math.nan
    es = _smallest_effect(lambda e: welch_power(e, 1.0, 1.0, n_a, n_b, alpha), power)
    return es * _average_sd(sd_a, sd_b)


def welch_seeds_needed(effect: float, sd_a: float, sd_b: float, alpha: float = 0.05,
                       power: float = 0.8) -> int:
    """Runs per arm (equal arms, at least 2) for the two-sample t-test to find `effect` with
    `power` (the approximation of :func:`welch_power`).

    Raises ValueError when `effect` is 0 or both stds are 0 (or one is NaN).
    """
    if effect == 0:
        raise ValueError("a difference of 0 cannot be detected")
    if not _average_sd(sd_a, sd_b) > 0:
        raise ValueError(f"the stds must not both be 0, got {sd_a} and {sd_b}")
    return _smallest_n(lambda k: welch_power(effect, sd_a, sd_b, k, k, alpha), power)


@dataclass(frozen=True)
class Equivalence:
    """TOST, two one-sided paired t-tests that the mean difference lies in (-margin, margin).

    ``p`` is the larger of the two one-sided p-values and ``equivalent`` is ``p < alpha``;
    ``ci_low``/``ci_high`` is the ``1 - 2·alpha`` (90%) t-interval of the mean difference,
    the interval the test corresponds to: equivalent exactly when it lies inside the margin.
    One pair, or identical differences on every seed: ``p`` is NaN and ``equivalent`` is
    False wherever the difference lies, since there is no spread to test with (nothing was
    tested, rather than a difference found); the interval is NaN for one pair and the single
    value otherwise.
    """

    margin: float
    mean: float
    ci_low: float
    ci_high: float
    p: float
    equivalent: bool


def tost_paired(a: Sequence[float], b: Sequence[float], margin: float,
                alpha: float = 0.05) -> Equivalence:
    """Equivalence of two methods run on the same seeds, within ± `margin` (see
    :class:`Equivalence`), from statsmodels' ``ttost_paired(a, b, -margin, margin)``.

    Raises ValueError when `margin` is not positive, or as :func:`paired` does.
    """
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}")
    pr = paired(a, b)
    if math.isnan(pr.p):
        return Equivalence(margin, pr.mean, pr.ci_low, pr.ci_high, math.nan, False)
    from statsmodels.stats.weightstats import ttost_paired

    p = float(ttost_paired(np.asarray(a), np.asarray(b), -margin, margin)[0])
    half = _st.t.ppf(1 - alpha, pr.n - 1) * pr.sd / math.sqrt(pr.n)
    return Equivalence(margin, pr.mean, pr.mean - half, pr.mean + half, p, p < alpha)


def tost_power(margin: float, sd: float, n: float, alpha: float = 0.05,
               difference: float = 0.0) -> float:
    """Power of the paired TOST at level `alpha` over `n` pairs to show equivalence within
    ± `margin`, when the true mean difference is `difference` and the per-seed differences
    have std `sd`.

    Exact, by one integral over the sample std: equivalence is shown when
    ``|mean| < margin - t·s/√n`` (``t`` the one-sided ``1 - alpha`` quantile with n - 1
    degrees of freedom), with the mean normal and ``s²·(n-1)/sd²`` chi-square, independent
    (the formula behind Chow, Shao and Wang's sample sizes for paired equivalence). NaN for
    fewer than two pairs or an `sd` that is not positive.
    """
    if n < 2 or not sd > 0 or not margin > 0:
        return math.nan
    from scipy.integrate import quad

    df = n - 1
    t = _st.t.ppf(1 - alpha, df)
    se = sd / math.sqrt(n)

    def given(s: float) -> float:  # P(equivalence shown | sample std s)
        half = margin - t * s / math.sqrt(n)
        if half <= 0:
            return 0.0
        return float(_st.norm.cdf((half - difference) / se) - _st.norm.cdf((-half - difference)
                                                                           / se))

    # s = sd·sqrt(X/df), X ~ chi²(df): integrate over X
    # beyond `upper` no equivalence is shown; beyond the chi-square's 1e-15 tail nothing is
    # left to integrate (a wider range would let the quadrature miss the density's peak)
    upper = min(df * (margin * math.sqrt(n) / (t * sd)) ** 2, _st.chi2.isf(1e-15, df))
    value, _ = quad(lambda x: given(sd * math.sqrt(x / df)) * _st.chi2.pdf(x, df), 0, upper,
                    limit=200)
    return float(min(1.0, max(0.0, value)))


def tost_seeds_needed(margin: float, sd: float, alpha: float = 0.05, power: float = 0.8,
                      difference: float = 0.0) -> int:
    """The smallest number of pairs (at least 2) whose TOST shows equivalence within ±
    `margin` with `power` when the true difference is `difference` (:func:`tost_power`).

    Raises ValueError when `margin` or `sd` is not positive, or ``|difference| >= margin``.
    """
    if not margin > 0 or not sd > 0:
        raise ValueError(f"margin and sd must be positive, got {margin} and {sd}")
    if abs(difference) >= margin:
        raise ValueError("a true difference at or beyond the margin is never equivalent")
    n = 2
    while tost_power(margin, sd, n, alpha, difference) < power:
        n = n * 2 if n < 64 else n + 64
    lo = max(2, n // 2)
    while lo < n:  # the smallest n in (lo, n] that reaches `power`
        mid = (lo + n) // 2
        if tost_power(margin, sd, mid, alpha, difference) >= power:
            n = mid
        else:
            lo = mid + 1
    return n


def sign_flip_p(differences: Sequence[float]) -> float:
    """Exact two-sided p-value of the paired sign-flip (permutation) test that the mean of
    `differences` is 0: under the null each difference is as likely positive as negative, so
    every one of the 2^n sign patterns is equally likely; p is the share of them whose mean is
    at least as far from 0 as the observed one. Its smallest value is 2/2^n (0.0625 for 5
    seeds), whatever the data: with few seeds only the t-test, through its normality, can
    go lower. NaN for no differences; 1.0 when every difference is 0.
    """
    d = np.asarray([float(x) for x in differences])
    n = len(d)
    if n == 0:
        return math.nan
    if n > 20:
        raise ValueError(f"an exact sign-flip test enumerates 2^n patterns; n = {n} is too many")
    signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)  # every ±1 pattern
    means = np.abs((signs * d).sum(axis=1))
    observed = abs(d.sum())
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def smallest_sign_flip_p(n: int) -> float:
    """The smallest two-sided p an exact sign-flip test over `n` pairs can give: 2/2^n."""
    return 2.0 / 2 ** n if n > 0 else math.nan


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values of a family (statsmodels' ``multipletests(method="holm")``);
    a NaN (a claim with no test) is left out of the family and stays NaN."""
    from statsmodels.stats.multitest import multipletests

    ps = [float(p) for p in p_values]
    tested = [i for i, p in enumerate(ps) if not math.isnan(p)]
    out = [math.nan] * len(ps)
    if tested:
        adjusted = multipletests([ps[i] for i in tested], alpha=alpha, method="holm")[1]
        for i, q in zip(tested, adjusted, strict=True):
            out[i] = float(q)
    return out


def sd_upper(sd: float, n: int, level: float = 0.8) -> float:
    """One-sided upper `level` confidence bound of a normal standard deviation estimated as
    `sd` from `n` values: ``sd·√((n-1)/χ²_{1-level, n-1})``. Plan seeds at it, not at `sd`: a
    spread from a few pilot seeds is as often too small as too large, and power falls
    faster than it rises."""
    if n < 2 or math.isnan(sd):
        return math.nan
    return sd * math.sqrt((n - 1) / _st.chi2.ppf(1 - level, n - 1))


def sd_interval(sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided `level` confidence interval of a normal standard deviation (chi-square)."""
    if n < 2 or math.isnan(sd):
        return math.nan, math.nan
    tail = (1 - level) / 2
    return (sd * math.sqrt((n - 1) / _st.chi2.ppf(1 - tail, n - 1)),
            sd * math.sqrt((n - 1) / _st.chi2.ppf(tail, n - 1)))

