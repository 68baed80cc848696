"""Summaries over seeds against textbook values: t-table intervals and Welch's test by hand."""

import math
import warnings

import pytest
from scipy import stats as st

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
