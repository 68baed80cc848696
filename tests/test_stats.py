"""Summaries over seeds against textbook values: t-table intervals and Welch's test by hand."""

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats as st
from scipy.optimize import brentq

from kdlib import stats

# two-sided 95% critical values of Student's t, from a printed table (df: t_{0.975, df})
T_TABLE = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622}

# accuracies of two students over seeds: different means, spreads and run counts
A = [0.981, 0.983, 0.979, 0.986]
B = [0.975, 0.969, 0.978, 0.972, 0.960]


def welch_by_hand(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Two-sided Welch p-value: t over the unpooled standard error, Welch–Satterthwaite df."""
    se_a, se_b = var_a / n_a, var_b / n_b
    t = (mean_a - mean_b) / math.sqrt(se_a + se_b)
    df = (se_a + se_b) ** 2 / (se_a**2 / (n_a - 1) + se_b**2 / (n_b - 1))
    return 2 * st.t.sf(abs(t), df), t, df


def mean_var(values):
    m = sum(values) / len(values)
    return m, sum((v - m) ** 2 for v in values) / (len(values) - 1)


# --- summarize ---------------------------------------------------------------------------------

def test_summary_of_four_runs_by_hand():
    s = stats.summarize([1, 2, 3, 4])
    std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)  # ddof=1: sqrt(5/3)
    assert (s.mean, s.n) == (2.5, 4)
    assert s.std == pytest.approx(std, rel=1e-12)
    half = T_TABLE[3] * std / 2  # t_{0.975, 3} * s / sqrt(4)
    assert s.ci_high - s.mean == pytest.approx(half, rel=5e-5)
    assert s.mean - s.ci_low == pytest.approx(half, rel=5e-5)
    assert (s.ci_low, s.ci_high) == pytest.approx((2.5 - 2.0542, 2.5 + 2.0542), abs=1e-4)


@pytest.mark.parametrize("values", [[0.5, 0.7], [0.9, 0.8, 1.0], [0.2, 0.4, 0.1, 0.3, 0.5],
                                    [float(i) ** 1.5 for i in range(10)]])
def test_interval_half_width_follows_the_t_table(values):
    n = len(values)
    mean, var = mean_var(values)
    s = stats.summarize(values)
    assert s.n == n and s.mean == pytest.approx(mean, rel=1e-12)
    assert s.std == pytest.approx(math.sqrt(var), rel=1e-12)
    half = T_TABLE[n - 1] * math.sqrt(var / n)
    assert s.mean - s.ci_low == pytest.approx(half, rel=5e-5)
    assert s.ci_high - s.mean == pytest.approx(half, rel=5e-5)
    assert s.ci_low < s.mean < s.ci_high


def test_two_runs_use_twelve_point_seven():
    s = stats.summarize([0.0, 1.0])  # std = 1/sqrt(2), half = 12.706 * (1/sqrt2) / sqrt2
    assert s.std == pytest.approx(math.sqrt(0.5), rel=1e-12)
    assert s.ci_high - 0.5 == pytest.approx(T_TABLE[1] / 2, rel=5e-5)
    assert 0.5 - s.ci_low == pytest.approx(T_TABLE[1] / 2, rel=5e-5)


def test_identical_runs_have_a_zero_width_interval():
    s = stats.summarize((0.25, 0.25, 0.25))  # any sequence, ints or floats
    assert (s.mean, s.std, s.n, s.ci_low, s.ci_high) == (0.25, 0.0, 3, 0.25, 0.25)


def test_one_run_has_a_mean_but_no_spread():
    s = stats.summarize([0.9873])
    assert s.mean == 0.9873 and s.n == 1
    assert math.isnan(s.std) and math.isnan(s.ci_low) and math.isnan(s.ci_high)
    assert isinstance(stats.summarize([3]).mean, float)


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="^no values to summarise$"):
        stats.summarize([])


# --- formatting --------------------------------------------------------------------------------

def test_fmt_shows_percent_with_two_digits():
    assert stats.summarize([0.9871, 0.9875]).fmt() == "98.73 ± 0.03"
    assert stats.summarize([0.9873]).fmt() == "98.73"  # one run: no spread to show
    s = stats.Summary(mean=1.23456, std=0.5, n=3, ci_low=0.0, ci_high=2.0)
    assert s.fmt() == "123.46 ± 50.00"
    assert s.fmt(scale=1.0) == "1.23 ± 0.50"
    assert s.fmt(digits=1) == "123.5 ± 50.0"
    assert s.fmt(1.0, 3) == "1.235 ± 0.500"
    assert stats.Summary(0.5, math.nan, 1, math.nan, math.nan).fmt(10, 0) == "5"


# --- Welch's test ------------------------------------------------------------------------------

def test_welch_p_matches_the_welch_satterthwaite_formula():
    ma, va = mean_var(A)
    mb, vb = mean_var(B)
    p, t, df = welch_by_hand(ma, va, len(A), mb, vb, len(B))
    assert t == pytest.approx(3.33759, abs=1e-5) and df == pytest.approx(5.67461, abs=1e-5)
    assert stats.welch_p(A, B) == pytest.approx(p, rel=1e-9)
    assert stats.welch_p(B, A) == pytest.approx(p, rel=1e-9)  # two-sided
    # the pooled-variance (Student) test gives another answer on the same data
    sp = ((len(A) - 1) * va + (len(B) - 1) * vb) / (len(A) + len(B) - 2)
    t_pooled = (ma - mb) / math.sqrt(sp * (1 / len(A) + 1 / len(B)))
    assert abs(stats.welch_p(A, B) - 2 * st.t.sf(t_pooled, len(A) + len(B) - 2)) > 1e-3


def test_welch_p_is_a_float_in_the_unit_interval():
    p = stats.welch_p((0.1, 0.2, 0.3), (0.15, 0.35))  # tuples, and two runs on one side
    assert type(p) is float
    ma, va = mean_var([0.1, 0.2, 0.3])
    mb, vb = mean_var([0.15, 0.35])
    assert p == pytest.approx(welch_by_hand(ma, va, 3, mb, vb, 2)[0], rel=1e-9)
    assert 0.0 < p < 1.0
    assert stats.welch_p((0.15, 0.35), (0.1, 0.2, 0.3)) == pytest.approx(p, rel=1e-9)
    assert stats.welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on zero spread
def test_welch_p_needs_two_runs_a_side_and_some_spread():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quietly: scipy would warn about the empty samples
        assert math.isnan(stats.welch_p([0.9], [0.8, 0.85]))
        assert math.isnan(stats.welch_p([0.8, 0.85], [0.9]))
        assert math.isnan(stats.welch_p([], [0.8, 0.85]))
        assert math.isnan(stats.welch_p([0.8, 0.85], []))
        assert math.isnan(stats.welch_p([], []))
    assert math.isnan(stats.welch_p([0.5, 0.5], [0.5, 0.5, 0.5]))  # zero spread on both sides


def test_welch_p_of_two_different_constant_samples_is_nan_as_documented():
    assert math.isnan(stats.welch_p([0.5, 0.5], [0.6, 0.6, 0.6]))
    assert math.isnan(stats.welch_p([0.5, 0.5], [0.5, 0.5]))
    assert not math.isnan(stats.welch_p([0.5, 0.5], [0.6, 0.61]))  # one spread is enough


def test_detectable_difference_against_textbook_values():
    # large n: (z_0.975 + z_0.8) * s * sqrt(2/n) = 2.8016 * s * sqrt(2/n)
    assert stats.detectable_difference(1.0, 10_000) == pytest.approx(
        2.8016 * math.sqrt(2 / 10_000), rel=1e-3)
    # n = 3: nu = 4, t_0.975 = 2.7764, t_0.8 = 0.9410 (t tables)
    assert stats.detectable_difference(0.5, 3) == pytest.approx(
        (2.7764 + 0.9410) * 0.5 * math.sqrt(2 / 3), rel=1e-3)
    # n = 2: nu = 2, t_0.975 = 4.3027, t_0.8 = 1.0607; alpha and power are honoured
    assert stats.detectable_difference(1.0, 2) == pytest.approx(4.3027 + 1.0607, rel=1e-3)
    assert stats.detectable_difference(1.0, 2, alpha=0.1, power=0.5) == pytest.approx(
        2.9200, rel=1e-3)  # t_0.95 = 2.9200, t_0.5 = 0
    assert math.isnan(stats.detectable_difference(0.5, 1))
    assert math.isnan(stats.detectable_difference(math.nan, 5))


def test_welch_p_from_summary_agrees_with_the_raw_runs():
    ma, va = mean_var(A)
    mb, vb = mean_var(B)
    p_hand = welch_by_hand(ma, va, len(A), mb, vb, len(B))[0]
    p = stats.welch_p_from_summary(ma, math.sqrt(va), len(A), mb, math.sqrt(vb), len(B))
    assert type(p) is float
    assert p == pytest.approx(p_hand, rel=1e-9)
    assert p == pytest.approx(stats.welch_p(A, B), rel=1e-9)


def test_welch_p_from_a_papers_mean_and_std_cells():
    # 98.0 ± 0.5 over 3 runs against 97.0 ± 1.5 over 6 runs, worked out by hand
    p, t, df = welch_by_hand(98.0, 0.25, 3, 97.0, 2.25, 6)
    assert t == pytest.approx(1.0 / math.sqrt(0.25 / 3 + 2.25 / 6), rel=1e-12)
    assert df == pytest.approx((0.25 / 3 + 0.375) ** 2 / ((0.25 / 3) ** 2 / 2 + 0.375**2 / 5))
    assert stats.welch_p_from_summary(98.0, 0.5, 3, 97.0, 1.5, 6) == pytest.approx(p, rel=1e-9)
    # every argument matters: swapping the sides' spreads or counts changes the answer
    assert stats.welch_p_from_summary(98.0, 1.5, 3, 97.0, 0.5, 6) != pytest.approx(p, rel=1e-3)
    assert stats.welch_p_from_summary(98.0, 0.5, 6, 97.0, 1.5, 3) != pytest.approx(p, rel=1e-3)
    assert stats.welch_p_from_summary(97.0, 0.5, 3, 98.0, 1.5, 6) == pytest.approx(p, rel=1e-9)
    assert stats.welch_p_from_summary(98.0, 0.5, 3, 98.0, 1.5, 6) == pytest.approx(1.0)


# --- paired comparisons ------------------------------------------------------------------------
#
# Reference values from R (t.test, the pwr package, power.t.test, equivalence::tost) as
# published; where a published number is only given to a few digits, the test also checks
# the exact value against an independent computation with scipy's non-central t.

# Student's sleep data (Cushny & Peebles 1905; R's `sleep` data set): extra hours of sleep of
# the same ten patients under two drugs. R: t.test(extra ~ group, data = sleep, paired = TRUE)
# gives t = -4.0621, df = 9, p-value = 0.002833, mean difference -1.58,
# 95 percent confidence interval -2.4598858 -0.7001142.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# the `clinic` data of statsmodels' TOST tests (statsmodels/stats/tests/test_tost.py), first
# and second variable of the 15 subjects of group 1 and of group 2, used as pairs there; its
# reference values come from R (t.test(..., paired = TRUE) and equivalence::tost)
CLINIC_1A = [2.84, 2.51, 2.41, 2.95, 3.14, 3.79, 4.14, 3.85, 3.02, 3.45, 5.37, 3.81, 4.19, 3.16,
             3.84]
CLINIC_1B = [2.60, 2.82, 2.18, 3.46, 4.01, 3.04, 3.47, 4.06, 2.91, 3.59, 4.51, 3.16, 3.86, 3.31,
             3.02]
CLINIC_2A = [4.00, 3.26, 4.14, 3.42, 3.25, 4.34, 4.97, 4.31, 3.11, 3.41, 5.02, 4.21, 4.59, 5.30,
             4.32]
CLINIC_2B = [3.76, 3.66, 3.65, 3.60, 3.48, 2.87, 3.24, 3.92, 3.99, 4.21, 4.21, 3.31, 3.61, 2.97,
             2.73]


def nct_power(es, n_a, n_b=None, alpha=0.05):
    """Two-sided t-test power straight from scipy's non-central t: one sample (paired) of
    `n_a`, or two samples of `n_a` and `n_b` with a pooled variance."""
    if n_b is None:
        df, nc = n_a - 1, es * math.sqrt(n_a)
    else:
        df, nc = n_a + n_b - 2, es * math.sqrt(n_a * n_b / (n_a + n_b))
    c = st.t.isf(alpha / 2, df)
    # the tail against the effect as the upper tail of -nc: scipy's cdf is NaN far out there
    return st.nct.sf(c, df, nc) + st.nct.sf(c, df, -nc)


def test_paired_t_test_on_students_sleep_data():
    r = stats.paired(SLEEP_1, SLEEP_2)
    diffs = [x - y for x, y in zip(SLEEP_1, SLEEP_2, strict=True)]
    mean, var = mean_var(diffs)
    assert r.n == 10
    assert r.mean == pytest.approx(-1.58, abs=1e-12) and r.mean == pytest.approx(mean, rel=1e-12)
    assert r.sd == pytest.approx(math.sqrt(var), rel=1e-12)
    assert r.mean / (r.sd / math.sqrt(10)) == pytest.approx(-4.0621, abs=5e-5)  # R's t
    assert (r.ci_low, r.ci_high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-7)
    assert r.p == pytest.approx(0.002833, abs=5e-7)
    assert r.p == pytest.approx(2 * st.t.cdf(r.mean / (r.sd / math.sqrt(10)), 9), rel=1e-9)
    assert type(r.p) is float
    # the other way round: the differences change sign, the spread and p do not
    s = stats.paired(SLEEP_2, SLEEP_1)
    assert (s.n, s.mean, s.sd) == (10, pytest.approx(1.58, abs=1e-12), pytest.approx(r.sd))
    assert (s.ci_low, s.ci_high) == pytest.approx((0.7001142, 2.4598858), abs=1e-7)
    assert s.p == pytest.approx(r.p, rel=1e-12)


def test_paired_t_test_on_the_clinic_data():
    # R: t.test(clinic$var1[1:15], clinic$var1[16:30], paired = TRUE), as recorded in
    # statsmodels' test_tost.py (ttest_clinic_paired_1)
    r = stats.paired(CLINIC_1A, CLINIC_1B)
    assert r.n == 15
    assert r.mean == pytest.approx(0.1646666666666667, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.1264911434745851, 0.4558244768079186),
                                                  rel=1e-12)
    assert r.p == pytest.approx(0.245199929713149, rel=1e-12)
    assert r.mean / (r.sd / math.sqrt(15)) == pytest.approx(1.213001548676048, rel=1e-12)


def test_paired_t_test_of_two_pairs_uses_one_degree_of_freedom():
    r = stats.paired([1.0, 2.0], [0.0, 0.5])  # differences 1.0 and 1.5
    sd = math.sqrt(0.125)
    assert (r.n, r.mean) == (2, 1.25)
    assert r.sd == pytest.approx(sd, rel=1e-12)
    half = T_TABLE[1] * sd / math.sqrt(2)
    assert (r.ci_low, r.ci_high) == pytest.approx((1.25 - half, 1.25 + half), rel=5e-5)
    assert r.p == pytest.approx(2 * st.t.sf(5.0, 1), rel=1e-9)  # t = 1.25 / (sd / sqrt 2) = 5


def test_paired_takes_tuples_of_ints():
    r = stats.paired((1, 2, 4), (0, 0, 1))  # differences 1, 2, 3
    assert (r.n, r.mean, r.sd) == (3, 2.0, 1.0)
    assert type(r.mean) is float
    assert r.p == pytest.approx(2 * st.t.sf(2 * math.sqrt(3), 2), rel=1e-9)
    assert (r.ci_low, r.ci_high) == pytest.approx((2 - 4.3027 / math.sqrt(3),
                                                   2 + 4.3027 / math.sqrt(3)), rel=1e-4)


def test_paired_one_pair_has_a_difference_and_nothing_else():
    r = stats.paired([0.75], [0.5])
    assert (r.n, r.mean) == (1, 0.25)
    assert math.isnan(r.sd) and math.isnan(r.ci_low) and math.isnan(r.ci_high)
    assert math.isnan(r.p)


def test_paired_identical_differences_have_no_p_value_as_documented():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning from scipy about the zero spread
        r = stats.paired([1.5, 2.5, 3.5], [1.25, 2.25, 3.25])  # 0.25 on every seed
        assert (r.n, r.mean, r.sd, r.ci_low, r.ci_high) == (3, 0.25, 0.0, 0.25, 0.25)
        assert math.isnan(r.p)
        same = stats.paired([0.9, 0.8], [0.9, 0.8])  # a method against itself
        assert (same.n, same.mean, same.sd, same.ci_low, same.ci_high) == (2, 0.0, 0.0, 0.0, 0.0)
        assert math.isnan(same.p)
    # almost identical is a real, tiny spread, with a p-value
    assert stats.paired([1.5, 2.5, 3.5], [1.25, 2.25, 3.0]).p < 0.5


def test_paired_needs_two_equally_long_non_empty_samples():
    with pytest.raises(ValueError, match=r"^paired needs two non-empty samples of one length, "
                                         r"got 2 and 3$"):
        stats.paired([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="got 1 and 0$"):
        stats.paired([1.0], [])
    with pytest.raises(ValueError, match="got 0 and 1$"):
        stats.paired([], [1.0])
    with pytest.raises(ValueError, match="got 0 and 0$"):
        stats.paired([], [])


# --- power and seed counts ---------------------------------------------------------------------

def test_paired_power_against_pwr_and_the_non_central_t():
    # R, pwr: pwr.t.test(n = 20, d = 0.5, type = "paired") gives power = 0.5645044
    p = stats.paired_power(0.5, 1.0, 20)
    assert type(p) is float
    assert p == pytest.approx(0.5645044, abs=5e-8)
    assert p == pytest.approx(nct_power(0.5, 20), rel=1e-12)
    assert stats.paired_power(0.5, 1.0, 20, alpha=0.05) == p  # the default level
    assert stats.paired_power(0.05, 0.1, 20) == pytest.approx(p, rel=1e-12)  # effect / sd
    assert stats.paired_power(-0.5, 1.0, 20) == pytest.approx(p, rel=1e-12)  # two-sided
    assert stats.paired_power(0.5, 1.0, 20, alpha=0.01) == pytest.approx(
        nct_power(0.5, 20, alpha=0.01), rel=1e-12)
    assert stats.paired_power(0.3, 0.2, 7, 0.1) == pytest.approx(nct_power(1.5, 7, alpha=0.1),
                                                                 rel=1e-12)


def test_paired_power_of_no_difference_is_the_level():
    assert stats.paired_power(0.0, 1.0, 10) == pytest.approx(0.05, abs=1e-15)
    assert stats.paired_power(0.0, 0.3, 4, alpha=0.2) == pytest.approx(0.2, abs=1e-15)


def test_paired_power_of_two_pairs_and_far_in_the_tails():
    assert stats.paired_power(1.0, 1.0, 2) == pytest.approx(nct_power(1.0, 2), rel=1e-12)
    # statsmodels' own two-sided power is NaN here (scipy's non-central t fails far in the
    # tail against the effect); that tail is 0, so the power is the upper tail alone
    c = st.t.isf(0.025, 1)
    assert stats.paired_power(6.0, 1.0, 2) == pytest.approx(st.nct.sf(c, 1, 6 * math.sqrt(2)),
                                                            rel=1e-12)
    assert stats.paired_power(6.0, 1.0, 2) == pytest.approx(0.4944274954, abs=1e-10)
    # ... and here the tail with the effect is NaN: it is 1
    assert stats.paired_power(13.0, 1.0, 10) == 1.0
    assert stats.paired_power(1.3, 0.1, 10) == 1.0


def test_paired_power_is_nan_without_two_pairs_or_a_spread():
    for n in (1, 0, 1.5):
        assert math.isnan(stats.paired_power(0.5, 1.0, n))
    for sd in (0.0, -1.0, math.nan):
        assert math.isnan(stats.paired_power(0.5, sd, 10))
    assert math.isnan(stats.paired_power(0.0, 0.0, 10))


@pytest.mark.parametrize("n", [2, 3, 5, 20, 34, 200])
def test_paired_detectable_inverts_paired_power(n):
    d = stats.paired_detectable(0.3, n)
    assert type(d) is float and d > 0
    assert stats.paired_power(d, 0.3, n) == pytest.approx(0.8, abs=1e-9)
    assert nct_power(d / 0.3, n) == pytest.approx(0.8, abs=1e-9)
    assert stats.paired_detectable(0.3, n, alpha=0.05, power=0.8) == d  # the defaults
    d2 = stats.paired_detectable(0.3, n, alpha=0.01, power=0.9)
    assert d2 > d
    assert stats.paired_power(d2, 0.3, n, alpha=0.01) == pytest.approx(0.9, abs=1e-9)
    assert stats.paired_detectable(0.3, n, 0.01) == pytest.approx(
        stats.paired_detectable(0.3, n, alpha=0.01, power=0.8), rel=1e-12)


def test_paired_detectable_against_statsmodels_and_its_edges():
    # statsmodels: TTestPower().solve_power(nobs=20, alpha=0.05, power=0.8) = 0.66044165...
    assert stats.paired_detectable(1.0, 20) == pytest.approx(0.6604416544, abs=1e-9)
    assert stats.paired_detectable(2.0, 20) == pytest.approx(
        2 * stats.paired_detectable(1.0, 20), rel=1e-12)
    assert stats.paired_detectable(0.0, 20) == 0.0
    assert math.isnan(stats.paired_detectable(math.nan, 20))
    assert math.isnan(stats.paired_detectable(1.0, 1))
    assert math.isnan(stats.paired_detectable(1.0, 0))


def test_paired_seeds_needed_against_textbook_values():
    # R, pwr: pwr.t.test(d = 0.5, power = 0.8, type = "paired") gives n = 33.36713 pairs
    assert brentq(lambda n: nct_power(0.5, n) - 0.8, 2, 100) == pytest.approx(33.36713,
                                                                              abs=1e-5)
    assert stats.paired_seeds_needed(0.5, 1.0) == 34
    assert stats.paired_seeds_needed(0.5, 1.0, alpha=0.05, power=0.8) == 34
    assert stats.paired_seeds_needed(0.05, 0.1) == 34
    assert stats.paired_seeds_needed(-0.5, 1.0) == 34
    # Dalgaard, Introductory Statistics with R (2nd ed., 2008), section 8.3:
    # power.t.test(delta = 10, sd = 10 * sqrt(2), power = 0.85, type = "paired") gives
    # n = 19.96892 (R leaves out the tail against the effect; to 1e-5 the same here)
    assert brentq(lambda n: nct_power(1 / math.sqrt(2), n) - 0.85, 2, 100) == pytest.approx(
        19.96892, abs=5e-5)
    assert stats.paired_seeds_needed(10, 10 * math.sqrt(2), power=0.85) == 20
    # other levels and powers, each the smallest n that reaches the power
    assert stats.paired_seeds_needed(0.5, 1.0, alpha=0.01) == 51
    assert stats.paired_seeds_needed(0.5, 1.0, power=0.9) == 44
    assert stats.paired_seeds_needed(0.5, 1.0, 0.01, 0.9) == 63


@pytest.mark.parametrize(("effect", "sd", "alpha", "power"), [
    (0.5, 1.0, 0.05, 0.8), (0.002, 0.004, 0.05, 0.8), (1.0, 1.0, 0.01, 0.9),
    (2.0, 1.0, 0.05, 0.8), (0.2, 1.0, 0.1, 0.5), (3.0, 1.0, 0.05, 0.95)])
def test_paired_seeds_needed_is_the_smallest_that_reaches_the_power(effect, sd, alpha, power):
    n = stats.paired_seeds_needed(effect, sd, alpha, power)
    assert type(n) is int and n >= 2
    assert stats.paired_power(effect, sd, n, alpha) >= power
    assert n == 2 or stats.paired_power(effect, sd, n - 1, alpha) < power
    assert nct_power(effect / sd, n, alpha=alpha) >= power - 1e-12


def test_paired_seeds_needed_for_large_effects_and_at_exactly_the_power():
    # statsmodels' own solver gives up on these (NaN power while bracketing)
    assert stats.paired_seeds_needed(20.0, 1.0) == 2  # power 0.97 with two pairs
    assert stats.paired_seeds_needed(10.0, 1.0) == 3  # 0.73 with two, 1.0 with three
    assert stats.paired_seeds_needed(-10.0, 1.0) == 3
    assert stats.paired_seeds_needed(6.31, 1.0) == 3
    # a power reached exactly counts as reached
    exact = stats.paired_power(0.5, 1.0, 34)
    assert stats.paired_seeds_needed(0.5, 1.0, power=exact) == 34
    assert stats.paired_seeds_needed(0.5, 1.0, power=exact + 1e-9) == 35
    two = stats.paired_power(20.0, 1.0, 2)
    assert stats.paired_seeds_needed(20.0, 1.0, power=two) == 2
    assert stats.paired_seeds_needed(20.0, 1.0, power=two + 1e-9) == 3


def test_paired_seeds_needed_refuses_no_difference_and_no_spread():
    with pytest.raises(ValueError, match="^a difference of 0 cannot be detected$"):
        stats.paired_seeds_needed(0.0, 1.0)
    with pytest.raises(ValueError, match="^a difference of 0 cannot be detected$"):
        stats.paired_seeds_needed(0, 1.0, 0.05, 0.8)
    for sd in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match=f"^sd must be positive, got {sd}$"):
            stats.paired_seeds_needed(1.0, sd)


def test_welch_power_against_r_and_the_non_central_t():
    # R: power.t.test(n = 20, delta = 1) gives power = 0.8689528 (R leaves out the tail against
    # the effect, 2e-7 here)
    p = stats.welch_power(1.0, 1.0, 1.0, 20, 20)
    assert type(p) is float
    assert p == pytest.approx(0.8689528, abs=5e-7)
    assert p == pytest.approx(nct_power(1.0, 20, 20), rel=1e-12)
    assert stats.welch_power(1.0, 1.0, 1.0, 20, 20, alpha=0.05) == p
    assert stats.welch_power(-0.5, 0.5, 0.5, 20, 20) == pytest.approx(p, rel=1e-12)
    # R, pwr: pwr.t.test(n = 64, d = 0.5) gives power = 0.8014596
    assert stats.welch_power(0.5, 1.0, 1.0, 64, 64) == pytest.approx(0.8014596, abs=5e-8)
    assert stats.welch_power(0.5, 1.0, 1.0, 64, 64) == pytest.approx(nct_power(0.5, 64, 64),
                                                                     rel=1e-12)
    # unequal spreads and arms: Student's test with the average variance
    es = 0.4 / math.sqrt((0.3**2 + 0.5**2) / 2)
    p = stats.welch_power(0.4, 0.3, 0.5, 4, 6)
    assert p == pytest.approx(nct_power(es, 4, 6), rel=1e-12)
    assert stats.welch_power(0.4, 0.5, 0.3, 6, 4) == pytest.approx(p, rel=1e-12)
    assert stats.welch_power(0.4, 0.3, 0.5, 4, 6, 0.01) == pytest.approx(
        nct_power(es, 4, 6, alpha=0.01), rel=1e-12)
    assert stats.welch_power(0.4, 0.0, 0.5, 3, 9) == pytest.approx(
        nct_power(0.4 / math.sqrt(0.125), 3, 9), rel=1e-12)
    assert stats.welch_power(0.0, 0.3, 0.5, 4, 6) == pytest.approx(0.05, abs=1e-15)
    assert stats.welch_power(17.5, 1.0, 1.0, 10, 10) == 1.0  # scipy's NaN tail with the effect


def test_welch_power_is_nan_without_two_runs_a_side_or_a_spread():
    assert stats.welch_power(1.0, 1.0, 1.0, 2, 2) == pytest.approx(nct_power(1.0, 2, 2),
                                                                   rel=1e-12)
    for n_a, n_b in ((1, 5), (5, 1), (1, 1), (0, 5)):
        assert math.isnan(stats.welch_power(1.0, 1.0, 1.0, n_a, n_b))
    for sd_a, sd_b in ((0.0, 0.0), (math.nan, 1.0), (1.0, math.nan)):
        assert math.isnan(stats.welch_power(1.0, sd_a, sd_b, 5, 5))


@pytest.mark.parametrize(("sd_a", "sd_b", "n_a", "n_b"), [
    (1.0, 1.0, 2, 2), (0.3, 0.5, 4, 6), (0.5, 0.3, 6, 4), (1.0, 1.0, 20, 20), (0.2, 0.2, 3, 30)])
def test_welch_detectable_inverts_welch_power(sd_a, sd_b, n_a, n_b):
    d = stats.welch_detectable(sd_a, sd_b, n_a, n_b)
    assert type(d) is float and d > 0
    assert stats.welch_power(d, sd_a, sd_b, n_a, n_b) == pytest.approx(0.8, abs=1e-9)
    es = d / math.sqrt((sd_a**2 + sd_b**2) / 2)
    assert nct_power(es, n_a, n_b) == pytest.approx(0.8, abs=1e-9)
    assert stats.welch_detectable(sd_a, sd_b, n_a, n_b, alpha=0.05, power=0.8) == d
    d2 = stats.welch_detectable(sd_a, sd_b, n_a, n_b, 0.01, 0.9)
    assert stats.welch_power(d2, sd_a, sd_b, n_a, n_b, 0.01) == pytest.approx(0.9, abs=1e-9)


def test_welch_detectable_edges():
    # statsmodels: TTestIndPower().solve_power(nobs1=20, alpha=0.05, power=0.8) = 0.90912903...
    assert stats.welch_detectable(1.0, 1.0, 20, 20) == pytest.approx(0.909129, abs=1e-6)
    assert stats.welch_detectable(2.0, 2.0, 20, 20) == pytest.approx(
        2 * stats.welch_detectable(1.0, 1.0, 20, 20), rel=1e-12)
    assert stats.welch_detectable(0.0, 0.0, 5, 5) == 0.0
    assert math.isnan(stats.welch_detectable(math.nan, 1.0, 5, 5))
    for n_a, n_b in ((1, 5), (5, 1), (1, 1)):
        assert math.isnan(stats.welch_detectable(1.0, 1.0, n_a, n_b))


def test_welch_seeds_needed_against_textbook_values():
    # R, pwr: pwr.t.test(d = 0.5, power = 0.8) gives n = 63.76561 in each group (Cohen 1988,
    # table 2.4.1: 64)
    assert brentq(lambda n: nct_power(0.5, n, n) - 0.8, 2, 200) == pytest.approx(63.76561,
                                                                                 abs=1e-5)
    assert stats.welch_seeds_needed(0.5, 1.0, 1.0) == 64
    assert stats.welch_seeds_needed(0.5, 1.0, 1.0, alpha=0.05, power=0.8) == 64
    assert stats.welch_seeds_needed(-0.05, 0.1, 0.1) == 64
    # R: power.t.test(power = .90, delta = 1) gives n = 22.02110
    assert brentq(lambda n: nct_power(1.0, n, n) - 0.9, 2, 100) == pytest.approx(22.02110,
                                                                                 abs=5e-5)
    assert stats.welch_seeds_needed(1.0, 1.0, 1.0, power=0.9) == 23
    # R, pwr: pwr.t.test(d = 2/3, power = 0.9) gives n = 48.26427 (a Cross Validated question,
    # "Power calculations"); here with the stds 0.6 and 0.8 averaged to sqrt(0.5)
    assert stats.welch_seeds_needed(math.sqrt(0.5) * 2 / 3, 0.6, 0.8, power=0.9) == 49
    assert stats.welch_seeds_needed(1.0, 1.0, 1.0, alpha=0.01) == 26
    assert stats.welch_seeds_needed(1.0, 1.0, 1.0, 0.01, 0.9) == 32


@pytest.mark.parametrize(("effect", "sd_a", "sd_b", "alpha", "power"), [
    (0.5, 1.0, 1.0, 0.05, 0.8), (0.4, 0.3, 0.5, 0.05, 0.8), (1.0, 1.0, 1.0, 0.01, 0.9),
    (3.0, 1.0, 0.5, 0.05, 0.8), (0.2, 0.5, 1.0, 0.1, 0.5)])
def test_welch_seeds_needed_is_the_smallest_that_reaches_the_power(effect, sd_a, sd_b, alpha,
                                                                   power):
    n = stats.welch_seeds_needed(effect, sd_a, sd_b, alpha, power)
    assert type(n) is int and n >= 2
    assert stats.welch_power(effect, sd_a, sd_b, n, n, alpha) >= power
    assert n == 2 or stats.welch_power(effect, sd_a, sd_b, n - 1, n - 1, alpha) < power


def test_welch_seeds_needed_for_large_effects_at_exactly_the_power_and_errors():
    assert stats.welch_seeds_needed(20.0, 1.0, 1.0) == 2
    assert stats.welch_seeds_needed(5.0, 1.0, 1.0) == 3
    assert stats.welch_seeds_needed(3.0, 1.0, 1.0) == 4
    exact = stats.welch_power(0.5, 1.0, 1.0, 64, 64)
    assert stats.welch_seeds_needed(0.5, 1.0, 1.0, power=exact) == 64
    assert stats.welch_seeds_needed(0.5, 1.0, 1.0, power=exact + 1e-9) == 65
    with pytest.raises(ValueError, match="^a difference of 0 cannot be detected$"):
        stats.welch_seeds_needed(0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"^the stds must not both be 0, got 0.0 and 0.0$"):
        stats.welch_seeds_needed(1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"^the stds must not both be 0, got nan and 1.0$"):
        stats.welch_seeds_needed(1.0, math.nan, 1.0)
    assert stats.welch_seeds_needed(1.0, 0.0, math.sqrt(2)) == stats.welch_seeds_needed(
        1.0, 1.0, 1.0)  # one spread is enough


# --- equivalence (TOST) ------------------------------------------------------------------------

def tost_by_hand(a, b, margin, alpha=0.05):
    """Two one-sided t-tests on the differences, with scipy's t: (p, 1 - 2 alpha interval)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean, var = mean_var(d)
    se = math.sqrt(var / n)
    p_low = st.t.sf((mean + margin) / se, n - 1)  # H0: mean <= -margin
    p_upp = st.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= +margin
    half = st.t.ppf(1 - alpha, n - 1) * se
    return max(p_low, p_upp), (mean - half, mean + half)


def test_tost_on_the_clinic_data_against_r():
    # R, equivalence::tost(clinic$var1[1:15] - clinic$var1[16:30], epsilon = 0.6), from
    # statsmodels' test_tost.py (tost_clinic_paired_1): p = 0.003166881489265175, rejected
    r = stats.tost_paired(CLINIC_1A, CLINIC_1B, 0.6)
    assert (r.margin, r.equivalent) == (0.6, True)
    assert type(r.p) is float
    assert r.p == pytest.approx(0.003166881489265175, rel=1e-12)
    assert r.mean == pytest.approx(0.1646666666666667, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.0744336620516462, 0.4037669953849797),
                                                  rel=1e-12)
    assert stats.tost_paired(CLINIC_1A, CLINIC_1B, 0.6, alpha=0.05) == r
    # ... and the second variable (tost_clinic_paired): p = 0.4412034046017588, not rejected
    r = stats.tost_paired(CLINIC_2A, CLINIC_2B, 0.6)
    assert (r.margin, r.equivalent) == (0.6, False)
    assert r.p == pytest.approx(0.4412034046017588, rel=1e-12)
    assert r.mean == pytest.approx(0.5626666666666665, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.1261653305099018, 0.999168002823431),
                                                  rel=1e-12)


def test_tost_matches_two_one_sided_t_tests_by_hand():
    a = [0.981, 0.979, 0.985, 0.983, 0.980, 0.984]
    b = [0.980, 0.981, 0.982, 0.984, 0.978, 0.983]
    for margin, alpha in ((0.005, 0.05), (0.002, 0.1), (0.003, 0.2)):
        p, (lo, hi) = tost_by_hand(a, b, margin, alpha)
        r = stats.tost_paired(a, b, margin, alpha)
        assert r.margin == margin
        assert r.p == pytest.approx(p, rel=1e-9)
        assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-9)
        assert r.mean == pytest.approx(0.004 / 6, rel=1e-9)
        assert r.equivalent == (p < alpha)
    assert stats.tost_paired(a, b, 0.005).equivalent  # a tiny difference, a wide margin
    assert not stats.tost_paired(a, b, 0.001).equivalent  # a narrow margin


def test_tost_a_difference_beyond_the_margin_is_not_equivalent():
    a = [0.90, 0.92, 0.91, 0.93, 0.90]
    b = [0.80, 0.81, 0.83, 0.82, 0.79]
    r = stats.tost_paired(a, b, 0.05)
    assert not r.equivalent and r.p > 0.99
    assert r.ci_low > 0.05
    assert r.p == pytest.approx(tost_by_hand(a, b, 0.05)[0], rel=1e-9)


def test_tost_p_equal_to_alpha_is_not_equivalent():
    p = stats.tost_paired(CLINIC_1A, CLINIC_1B, 0.6).p
    assert not stats.tost_paired(CLINIC_1A, CLINIC_1B, 0.6, alpha=p).equivalent
    assert stats.tost_paired(CLINIC_1A, CLINIC_1B, 0.6, alpha=p * (1 + 1e-9)).equivalent


def test_tost_without_a_spread_tests_nothing_as_documented():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for margin in (1.0, 0.125):  # the constant 0.25 inside, then outside the margin
            r = stats.tost_paired([1.5, 2.5, 3.5], [1.25, 2.25, 3.25], margin)
            assert (r.margin, r.mean, r.ci_low, r.ci_high, r.equivalent) == (
                margin, 0.25, 0.25, 0.25, False)
            assert math.isnan(r.p)
        r = stats.tost_paired([0.75], [0.5], 1.0)  # one pair
        assert (r.margin, r.mean, r.equivalent) == (1.0, 0.25, False)
        assert math.isnan(r.p) and math.isnan(r.ci_low) and math.isnan(r.ci_high)


def test_tost_refuses_a_margin_that_is_not_positive_and_unpaired_samples():
    for margin in (0.0, -0.1, math.nan):
        with pytest.raises(ValueError, match=f"^margin must be positive, got {margin}$"):
            stats.tost_paired(CLINIC_1A, CLINIC_1B, margin)
    with pytest.raises(ValueError, match="^paired needs two non-empty samples of one length"):
        stats.tost_paired([1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="got 0 and 0$"):
        stats.tost_paired([], [], 0.5)


def test_tost_power_matches_a_simulation_and_the_normal_approximation():
    import numpy as np

    rng = np.random.default_rng(0)
    for n, margin, diff in ((5, 1.0, 0.0), (10, 1.0, 0.0), (12, 0.8, 0.2)):
        x = rng.normal(diff, 1.0, (200_000, n))
        m, s = x.mean(1), x.std(1, ddof=1)
        t = st.t.ppf(0.95, n - 1)
        simulated = float(np.mean(np.abs(m) < margin - t * s / np.sqrt(n)))
        assert stats.tost_power(margin, 1.0, n, difference=diff) == pytest.approx(simulated,
                                                                                abs=0.004)
    # Chow, Shao & Wang's normal approximation for paired equivalence at δ = 0:
    # n = (z_{1-α} + z_{1-β/2})² σ² / margin², 34.3 for σ/margin = 2; the t-test needs a
    # few more
    approx = (st.norm.ppf(0.95) + st.norm.ppf(0.9)) ** 2 * 4
    assert approx == pytest.approx(34.26, abs=0.01)
    n = stats.tost_seeds_needed(0.5, 1.0)
    assert n == 36
    assert stats.tost_power(0.5, 1.0, n) >= 0.8 > stats.tost_power(0.5, 1.0, n - 1)
    assert stats.tost_seeds_needed(0.5, 1.0, power=0.9) > n
    assert stats.tost_seeds_needed(0.5, 1.0, alpha=0.1) < n
    assert stats.tost_seeds_needed(0.5, 1.0, difference=0.1) > n
    assert stats.tost_power(0.5, 1.0, 36, alpha=0.05) > stats.tost_power(0.5, 1.0, 36,
                                                                         alpha=0.01)
    assert math.isnan(stats.tost_power(0.5, 1.0, 1))
    assert math.isnan(stats.tost_power(0.5, 0, 9))
    assert math.isnan(stats.tost_power(0.0, 1.0, 9))
    for bad in ((0.0, 1.0), (0.5, 0.0)):
        with pytest.raises(ValueError, match="positive"):
            stats.tost_seeds_needed(*bad)
    with pytest.raises(ValueError, match="never equivalent"):
        stats.tost_seeds_needed(0.5, 1.0, difference=0.5)
    assert stats.tost_power(0.01, 1.0, 2) < 1e-4  # a margin far inside the noise: hopeless


@pytest.mark.parametrize(("margin", "sd", "alpha", "power", "difference"), [
    (0.5, 1.0, 0.05, 0.8, 0.2), (1.0, 0.2, 0.05, 0.8, 0.0), (1.0, 0.45, 0.05, 0.8, 0.0),
    (1.0, 0.15, 0.05, 0.8, 0.0), (0.3, 0.2, 0.1, 0.9, 0.05), (2.0, 1.0, 0.05, 0.8, -0.5)])
def test_tost_seeds_needed_is_the_smallest_that_reaches_the_power(margin, sd, alpha, power,
                                                                 difference):
    """Against a count from 2 upwards, with a true difference, other levels and answers of
    2 and 3 pairs."""
    n = 2
    while stats.tost_power(margin, sd, n, alpha, difference) < power:
        n += 1
    assert stats.tost_seeds_needed(margin, sd, alpha, power, difference) == n
    assert stats.tost_power(margin, sd, n, alpha, difference) <= 1.0


def test_tost_seeds_needed_names_what_it_refuses():
    with pytest.raises(ValueError, match="never equivalent"):
        stats.tost_seeds_needed(0.5, 1.0, difference=-0.6)
    with pytest.raises(ValueError, match="must be positive, got 0.5 and 0"):
        stats.tost_seeds_needed(0.5, 0)


# --- the exact sign-flip test --------------------------------------------------------------------


def sign_flip_by_enumeration(d):
    observed = abs(sum(d))
    count = sum(abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-12
                for signs in itertools.product((1, -1), repeat=len(d)))
    return count / 2 ** len(d)


@pytest.mark.parametrize("d", [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, -2.0, 3.0, 4.0, 5.0],
                               [0.3, -0.1, 0.2], [0.5, 0.5, -0.5, 0.25, 1.0, -0.75]])
def test_sign_flip_p_is_the_exact_enumeration_and_scipys_permutation_test(d):
    p = stats.sign_flip_p(d)
    assert p == pytest.approx(sign_flip_by_enumeration(d))
    ref = st.permutation_test((np.asarray(d),), np.mean, permutation_type="samples",
                              n_resamples=np.inf, alternative="two-sided")
    assert p == pytest.approx(ref.pvalue)


def test_the_sign_flip_floor_is_two_over_two_to_the_n():
    assert stats.sign_flip_p([0.1, 0.2, 0.3, 0.4, 0.5]) == 0.0625 == stats.smallest_sign_flip_p(5)
    assert stats.smallest_sign_flip_p(12) == pytest.approx(2 / 4096)
    assert stats.sign_flip_p([0.0, 0.0]) == 1.0
    assert math.isnan(stats.sign_flip_p([]))
    with pytest.raises(ValueError, match="2\\^n"):
        stats.sign_flip_p([1.0] * 21)




# --- Holm's adjustment ---------------------------------------------------------------------------


def test_holm_by_hand_and_against_statsmodels():
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max
    assert stats.holm(ps) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))
    with_nan = stats.holm([0.01, math.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1])
    assert with_nan[2] == pytest.approx(0.04)




# --- the spread's confidence bounds ------------------------------------------------------------


def test_sd_bounds_against_the_chi_square_table():
    # printed chi-square quantiles, 3 degrees of freedom: 0.216 (2.5%), 1.005 (20%), 9.348 (97.5%)
    lo, hi = stats.sd_interval(0.28, 4)
    assert lo == pytest.approx(0.28 * math.sqrt(3 / 9.348), rel=1e-3)
    assert hi == pytest.approx(0.28 * math.sqrt(3 / 0.2158), rel=1e-3)
    assert stats.sd_upper(0.28, 4) == pytest.approx(0.28 * math.sqrt(3 / 1.005), rel=1e-3)
    assert math.isnan(stats.sd_upper(0.3, 1))


# --- edges and independent checks, from the mutation run -----------------------------------------


def test_detectable_difference_of_no_runs_is_nan():
    assert math.isnan(stats.detectable_difference(0.5, 0))  # fewer than two runs, not an error


def test_sd_bounds_of_two_values_use_one_degree_of_freedom():
    # printed chi-square quantiles, 1 degree of freedom: 0.000982 (2.5%), 0.0642 (20%),
    # 5.024 (97.5%)
    assert stats.sd_upper(0.5, 2) == pytest.approx(0.5 * math.sqrt(1 / 0.0642), rel=1e-3)
    lo, hi = stats.sd_interval(0.5, 2)
    assert lo == pytest.approx(0.5 * math.sqrt(1 / 5.024), rel=1e-3)
    assert hi == pytest.approx(0.5 * math.sqrt(1 / 0.000982), rel=1e-3)
    assert all(math.isnan(x) for x in stats.sd_interval(0.5, 1))


def tost_power_over_the_sample_std(margin, sd, n, alpha=0.05, difference=0.0):
    """The TOST's power integrated over the sample std s itself (s·√(n-1)/sd is chi-distributed
    with n - 1 degrees of freedom), up to s = margin·√n / t, where the interval of half-width
    t·s/√n no longer fits inside the margin."""
    from scipy.integrate import quad

    df = n - 1
    t = st.t.ppf(1 - alpha, df)
    se = sd / math.sqrt(n)

    def density(s):
        half = margin - t * s / math.sqrt(n)
        shown = st.norm.cdf((half - difference) / se) - st.norm.cdf((-half - difference) / se)
        return shown * st.chi.pdf(s * math.sqrt(df) / sd, df) * math.sqrt(df) / sd

    return quad(density, 0, margin * math.sqrt(n) / t, epsabs=1e-13, epsrel=1e-12, limit=500)[0]


@pytest.mark.parametrize(("margin", "sd", "n", "alpha", "difference"), [
    (1.0, 0.1, 2, 0.05, 0.0), (1.0, 0.45, 3, 0.05, 0.0), (1.0, 0.6, 4, 0.05, 0.2),
    (0.5, 1.0, 10, 0.05, 0.0), (0.3, 0.2, 5, 0.1, 0.05), (1.0, 0.75, 7, 0.05, 0.0),
    (2.0, 3.0, 20, 0.05, -0.5)])
def test_tost_power_is_the_integral_over_the_sample_std(margin, sd, n, alpha, difference):
    """Spreads other than 1, with and without a true difference."""
    expected = tost_power_over_the_sample_std(margin, sd, n, alpha, difference)
    assert 0.01 < expected < 0.99
    assert stats.tost_power(margin, sd, n, alpha, difference) == pytest.approx(expected,
                                                                             abs=1e-9)


def test_tost_power_stays_a_probability_far_beyond_the_noise():
    for margin, n in ((5.0, 8), (3.0, 10), (2.0, 64)):  # margins far beyond the noise
        p = stats.tost_power(margin, 1.0, n)
        assert 1.0 - 1e-9 < p <= 1.0


def test_tost_seeds_needed_of_seven_pairs():
    # by the integral over the sample std: 0.752 with six pairs, 0.854 with seven
    assert tost_power_over_the_sample_std(1.0, 0.75, 6) < 0.8
    assert tost_power_over_the_sample_std(1.0, 0.75, 7) >= 0.8
    n = stats.tost_seeds_needed(1.0, 0.75)
    assert type(n) is int and n == 7
    assert type(stats.tost_seeds_needed(0.5, 1.0)) is int  # 36
    # a power reached exactly counts as reached
    exact = stats.tost_power(1.0, 0.75, 7)
    assert stats.tost_seeds_needed(1.0, 0.75, power=exact) == 7
    assert stats.tost_seeds_needed(1.0, 0.75, power=exact + 1e-9) == 8


def test_tost_seeds_needed_says_why_a_difference_at_the_margin_is_refused():
    with pytest.raises(ValueError, match="^a true difference at or beyond the margin is never "
                                         "equivalent$"):
        stats.tost_seeds_needed(0.5, 1.0, difference=0.5)


def test_sign_flip_p_of_twenty_pairs_reaches_its_floor():
    # the most seeds it enumerates: 2^20 patterns, of which only all + and all - are as far out
    assert stats.sign_flip_p([0.01 * (i + 1) for i in range(20)]) == 2 / 2**20
    assert stats.smallest_sign_flip_p(20) == 2 / 2**20


@pytest.mark.parametrize("d", [["34.3", "79.6", "-113.9", "-48.3"],
                               ["221.7", "437.9", "-659.6", "-8.4"],
                               ["125.1", "259.1", "-384.2", "657.9"]])
def test_sign_flip_p_counts_exact_ties_in_large_units(d):
    """The first three differences sum to 0, so flipping them ties with the observed sum;
    floating-point sums miss the tie by rounding, in any unit. Against the enumeration in
    exact fractions."""
    from fractions import Fraction

    exact = [Fraction(x) for x in d]
    observed = abs(sum(exact))
    count = sum(abs(sum(s * x for s, x in zip(signs, exact, strict=True))) >= observed
                for signs in itertools.product((1, -1), repeat=len(d)))
    assert stats.sign_flip_p([float(x) for x in d]) == count / 2 ** len(d)
    assert stats.sign_flip_p([float(x) / 1000 for x in d]) == count / 2 ** len(d)


def test_smallest_sign_flip_p_of_one_and_no_pairs():
    # one pair: both signs give the same |mean|, so p is 1; two pairs: 2 of 4 patterns
    assert stats.smallest_sign_flip_p(1) == 1.0 == stats.sign_flip_p([0.3])
    assert stats.smallest_sign_flip_p(2) == 0.5 == stats.sign_flip_p([0.3, 0.1])
    # no pairs: no test, as sign_flip_p([]) says
    assert math.isnan(stats.smallest_sign_flip_p(0)) and math.isnan(stats.sign_flip_p([]))


def test_tost_power_is_one_where_equivalence_is_all_but_certain():
    # a margin of many standard errors: the mean and the sample std both lie far inside it,
    # so the power is 1 (a quadrature over the whole range up to where equivalence fails
    # used to miss the chi-square density and return about 0)
    assert stats.tost_power(1.0, 1.0, 1000) == pytest.approx(1.0, abs=1e-9)
    assert stats.tost_power(2.0, 1.0, 200) == pytest.approx(1.0, abs=1e-9)
    assert stats.tost_power(10.0, 0.1, 50) == pytest.approx(1.0, abs=1e-9)
