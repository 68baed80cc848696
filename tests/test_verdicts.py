"""The verdict rules, on hand-made per-seed values, against scipy computed independently."""

import math

import numpy as np
import pytest
from scipy import stats as st

from kdlib import verdicts
from kdlib.verdicts import ALPHA, MARGIN_SHARE, POWER, Decision


def seeds(*values):
    return dict(enumerate(values))


def test_the_rules_constants_are_the_stated_ones():
    assert (ALPHA, POWER, MARGIN_SHARE) == (0.05, 0.8, 0.5)
    assert verdicts.VERDICTS == ("reproduced", "not reproduced", "inconclusive at this power",
                                 "nothing to explain at this scale",
                                 "premise not met at this scale", "not run at this scale")


def test_compare_pairs_rows_of_the_same_seeds_and_falls_back_to_welch():
    a, b = seeds(0.90, 0.92, 0.95, 0.91), seeds(0.89, 0.90, 0.94, 0.89)
    c = verdicts.compare(a, b)
    diffs = [100 * (x - y) for x, y in zip(a.values(), b.values(), strict=True)]
    assert c.paired and c.n == 4
    assert c.difference == pytest.approx(sum(diffs) / 4)
    assert c.p == pytest.approx(st.ttest_rel(list(a.values()), list(b.values())).pvalue)
    assert c.welch_p == pytest.approx(st.ttest_ind(list(a.values()), list(b.values()),
                                                   equal_var=False).pvalue)
    half = st.t.ppf(0.975, 3) * st.tstd(diffs) / 2
    assert c.ci == pytest.approx((sum(diffs) / 4 - half, sum(diffs) / 4 + half))
    assert c.sd == pytest.approx(st.tstd(diffs))
    assert c.sd_a == pytest.approx(100 * st.tstd(list(a.values())))
    assert c.sd_b == pytest.approx(100 * st.tstd(list(b.values())))
    # other seeds: Welch, with no interval
    w = verdicts.compare(a, {k + 10: v for k, v in b.items()})
    assert not w.paired and w.p == w.welch_p == c.welch_p and math.isnan(w.ci[0])
    assert w.difference == pytest.approx(c.difference) and w.n == 4
    assert "paired t-test over 4 seeds" in c.in_words() and "no seeds to pair" in w.in_words()
    # one seed: no pairing, no test
    assert not verdicts.compare(seeds(0.9), seeds(0.8)).paired


def test_gain_reproduces_refutes_or_says_how_many_seeds_it_needs():
    base = seeds(0.900, 0.910, 0.920, 0.905)
    up = {k: v + d for (k, v), d in zip(base.items(), (0.010, 0.012, 0.009, 0.011),
                                        strict=True)}
    g = verdicts.gain(up, base, 0.5)
    assert g.verdict == "reproduced" and g.paired and g.decided
    assert g.difference == pytest.approx(1.05) and g.p < ALPHA
    assert g.claimed == 0.5 and "paper: +0.50" in g.test
    down = {k: v - 0.01 * (1 + k / 10) for k, v in base.items()}
    assert verdicts.gain(down, base, 0.5).verdict == "not reproduced"
    # no significant difference, but the test had the power to see the paper's size
    flat = {k: v + d for (k, v), d in zip(base.items(), (0.0002, -0.0003, 0.0001, -0.0001),
                                          strict=True)}
    g = verdicts.gain(flat, base, 0.5)
    assert g.p >= ALPHA and g.power >= POWER and g.verdict == "not reproduced"
    assert g.seeds_needed is None
    # no significant difference and too little power: inconclusive, with the seeds needed
    noisy = {k: v + d for (k, v), d in zip(base.items(), (0.01, -0.012, 0.008, -0.005),
                                           strict=True)}
    g = verdicts.gain(noisy, base, 0.5)
    assert g.verdict == "inconclusive at this power" and not g.decided
    assert g.power < POWER and g.seeds_needed > 4
    from kdlib import stats

    assert g.seeds_needed == stats.paired_seeds_needed(0.5, verdicts.compare(noisy, base).sd)
    assert g.detectable == pytest.approx(stats.paired_detectable(
        verdicts.compare(noisy, base).sd, 4))
    # one seed: no test
    single = verdicts.gain(seeds(0.99), seeds(0.98), 0.5)
    assert single.verdict == "inconclusive at this power" and math.isnan(single.p)
    # no size stated: a null result stays inconclusive, and no "+nan" is printed
    unstated = verdicts.gain(flat, base, math.nan)
    assert unstated.verdict == "inconclusive at this power" and "paper" not in unstated.test
    assert unstated.seeds_needed is None


def test_gain_at_exactly_the_power_threshold_refutes():
    from kdlib import stats

    base = seeds(0.90, 0.91, 0.92, 0.93, 0.94)
    other = {k: v + d for (k, v), d in zip(base.items(), (0.001, -0.002, 0.0015, -0.001, 0.0),
                                           strict=True)}
    c = verdicts.compare(other, base)
    exact = stats.paired_detectable(c.sd, c.n)  # the size with exactly 80% power
    assert verdicts.gain(other, base, exact * 1.0001).verdict == "not reproduced"
    assert verdicts.gain(other, base, exact * 0.999).verdict == "inconclusive at this power"


def reading_rows():
    """A baseline, a distilled row about a point above it, and a control within 0.05 of it."""
    base = seeds(0.900, 0.910, 0.920, 0.905, 0.915)
    like = {k: v + d for (k, v), d in zip(base.items(), (0.010, 0.011, 0.009, 0.0105, 0.0095),
                                          strict=True)}
    same = {k: v + d for (k, v), d in zip(like.items(), (0.0005, -0.0004, 0.0003, -0.0002,
                                                         0.0001), strict=True)}
    return base, like, same


def test_alike_needs_an_effect_to_explain_then_decides_by_equivalence():
    base, like, same = reading_rows()
    d = verdicts.alike(same, like, base, 0.5)
    assert d.verdict == "reproduced" and d.detectable == pytest.approx(0.5)
    assert "TOST within the declared ±0.50" in d.test and d.p < ALPHA
    with pytest.raises(ValueError, match="margin"):
        verdicts.alike(same, like, base, 0.0)
    apart = {k: v - 0.009 - 0.0002 * k for k, v in like.items()}  # most of the gain gone
    assert verdicts.alike(apart, like, base, 0.5).verdict == "not reproduced"
    noisy = {k: v + d for (k, v), d in zip(like.items(), (0.01, -0.01, 0.006, -0.004, 0.0),
                                           strict=True)}
    d = verdicts.alike(noisy, like, base, 0.5)
    assert d.verdict == "inconclusive at this power" and d.seeds_needed > 5
    # no effect, or one against the paper's direction: nothing to explain
    none = {k: v + d for (k, v), d in zip(base.items(), (0.001, -0.001, 0.0005, -0.0005, 0.0),
                                          strict=True)}
    assert verdicts.alike(same, none, base, 0.5).verdict == "nothing to explain at this scale"
    worse = {k: v - 0.01 for k, v in base.items()}
    worse[0] -= 0.001
    d = verdicts.alike(same, worse, base, 0.5)
    assert d.verdict == "nothing to explain at this scale" and d.seeds_needed is None
    assert verdicts.alike(same, worse, base, 0.5, direction=-1).verdict != \
        "nothing to explain at this scale"


def test_near_and_the_sensitivity_note():
    assert verdicts.near([0.92, 0.93], 0.9273, 5.0).verdict == "reproduced"
    assert verdicts.near([0.80, 0.81], 0.9273, 5.0).verdict == "not reproduced"
    assert verdicts.near([0.90], 0.95, 5.0).verdict == "reproduced"  # exactly 5 points
    assert verdicts.near([0.899], 0.95, 5.0).verdict == "not reproduced"
    first = verdicts.gain(seeds(0.9, 0.91, 0.92), seeds(0.89, 0.9, 0.905), 0.5)
    again = verdicts.gain(seeds(0.9, 0.91), seeds(0.89, 0.9), 0.5)
    noted = verdicts.without(first, "seed 2 spiked", again)
    assert noted.verdict == first.verdict and noted.notes == (
        f"seed 2 spiked; without it: {again.ours}, {again.verdict}"
        + ("" if math.isnan(again.p) else f" (p = {again.p:.3g})"),)
    assert verdicts.not_run().verdict == "not run at this scale"
    assert verdicts.describe([0.9, 0.92]) == "91.00 ± 1.41 (n = 2)"


# --- every field and sentence of a decision, against scipy and statsmodels directly --------

def _fmt(values):
    """``mean ± std (n = k)`` in points, by hand."""
    values = list(values)
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{100 * mean:.2f} ± {100 * std:.2f} (n = {len(values)})"


def _paired_by_hand(a, b):
    """Mean, 95% CI, p and sd of the per-seed differences a - b, in points."""
    d = [100 * (a[k] - b[k]) for k in sorted(a)]
    n, mean, sd = len(d), sum(d) / len(d), st.tstd(d)
    half = st.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half), st.ttest_rel([a[k] for k in sorted(a)],
                                                          [b[k] for k in sorted(b)]).pvalue, sd


def _power(effect, sd, n):
    from statsmodels.stats.power import TTestPower

    return TTestPower().power(effect_size=effect / sd, nobs=n, alpha=0.05,
                              alternative="two-sided")


def _detectable(sd, n):
    from statsmodels.stats.power import TTestPower

    return TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8,
                                    alternative="two-sided") * sd


def test_a_paired_gain_decision_holds_every_number_and_says_them():
    base = seeds(0.900, 0.910, 0.920, 0.905)
    up = {k: v + d for (k, v), d in zip(base.items(), (0.010, 0.012, 0.009, 0.011), strict=True)}
    g = verdicts.gain(up, base, 0.1)
    mean, ci, p, sd = _paired_by_hand(up, base)
    welch = st.ttest_ind(list(up.values()), list(base.values()), equal_var=False).pvalue
    power, det = _power(0.1, sd, 4), _detectable(sd, 4)
    assert g.ours == f"{mean:+.2f} ({_fmt(up.values())} vs {_fmt(base.values())})"
    exact = 0.125  # all four differences positive: 2 of the 16 sign patterns
    assert g.test == (f"paired t-test over 4 seeds: p = {p:.3g}, 95% CI [{ci[0]:+.2f}, "
                      f"{ci[1]:+.2f}]; Welch p = {welch:.3g}; exact sign-flip p = {exact:.3g} "
                      f"(the smallest 4 seeds allow is 0.125: only the t-test's normality "
                      f"decides); detectable with 80% power: "
                      f"{det:.2f}; paper: +0.10, power to detect it {power:.0%}")
    assert g.exact_p == exact
    assert (g.difference, g.p, g.welch_p, g.power, g.detectable) == pytest.approx(
        (mean, p, welch, power, det), rel=1e-6)
    assert g.ci == pytest.approx(ci) and (g.claimed, g.paired, g.n) == (0.1, True, 4)
    assert 0.05 < power < 0.95 and g.verdict == "reproduced"
    assert g.seeds_needed is None and g.notes == () and math.isnan(g.hours_needed)


def test_an_unpaired_gain_uses_welch_and_its_power():
    from statsmodels.stats.power import TTestIndPower

    a = {0: 0.90, 1: 0.91, 2: 0.93, 3: 0.92}
    b = {10: 0.905, 11: 0.90, 12: 0.915, 13: 0.91, 14: 0.90}
    g = verdicts.gain(a, b, 0.5)
    sa, sb = 100 * st.tstd(list(a.values())), 100 * st.tstd(list(b.values()))
    welch = st.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    sd = math.sqrt((sa**2 + sb**2) / 2)
    power = TTestIndPower().power(effect_size=0.5 / sd, nobs1=4, ratio=5 / 4, alpha=0.05,
                                  alternative="two-sided")
    det = TTestIndPower().solve_power(effect_size=None, nobs1=4, ratio=5 / 4, alpha=0.05,
                                      power=0.8, alternative="two-sided") * sd
    diff = 100 * (sum(a.values()) / 4 - sum(b.values()) / 5)
    assert not g.paired and g.n == 4 and g.p == pytest.approx(welch) == g.welch_p
    assert g.difference == pytest.approx(diff) and all(math.isnan(x) for x in g.ci)
    assert g.power == pytest.approx(power, rel=1e-6) and g.detectable == pytest.approx(det,
                                                                                      rel=1e-4)
    assert g.test == (f"Welch p = {welch:.3g} (the rows share no seeds to pair); detectable "
                      f"with 80% power: {det:.2f}; paper: +0.50, power to detect it "
                      f"{power:.0%}")
    assert g.verdict == "inconclusive at this power"
    n = 2
    while TTestIndPower().power(effect_size=0.5 / sd, nobs1=n, ratio=1, alpha=0.05,
                                alternative="two-sided") < 0.8:
        n += 1
    assert g.seeds_needed == n
    one = verdicts.compare({0: 0.9}, {5: 0.8, 6: 0.81})
    assert math.isnan(one.detectable()) and one.seeds_needed(0.5) is None
    assert one.n == 1 and one.n_a == 1 and one.n_b == 2 and math.isnan(one.sd)


def test_a_gain_without_spread_or_size_needs_no_seeds():
    c = verdicts.compare(seeds(0.9, 0.91), seeds(0.89, 0.90))  # identical differences
    assert c.seeds_needed(0.5) is None and c.seeds_needed(0.0) is None
    assert c.seeds_needed(math.nan) is None and math.isnan(c.power(math.nan))
    g = verdicts.gain(seeds(0.9, 0.91), seeds(0.89, 0.90), 0.5)
    assert g.verdict == "inconclusive at this power" and g.test == "one seed or no spread: no test"
    assert g.difference == pytest.approx(1.0) and g.paired and g.n == 2
    unstated = verdicts.gain(seeds(0.9, 0.91, 0.92), seeds(0.9, 0.905, 0.925), math.nan)
    assert unstated.test.endswith(f"detectable with 80% power: {unstated.detectable:.2f}")
    assert math.isnan(unstated.claimed) and math.isnan(unstated.power)


def test_near_holds_its_interval_and_says_its_distance():
    values = [0.92, 0.93, 0.925]
    d = verdicts.near(values, 0.9273, 0.5)
    mean = 100 * sum(values) / 3
    half = st.t.ppf(0.975, 2) * 100 * st.tstd(values) / math.sqrt(3)
    assert d.verdict == "reproduced" and d.ours == _fmt(values) and d.n == 3
    assert d.difference == pytest.approx(mean - 92.73)
    assert d.ci == pytest.approx((mean - half - 92.73, mean + half - 92.73))
    assert d.test == f"|ours − paper| = {abs(mean - 92.73):.2f}, tolerance 0.5"
    assert verdicts.near(values, 0.9273 + 0.006, 0.5).verdict == "not reproduced"
    assert verdicts.near(values, 0.9195, 0.5).verdict == "not reproduced"  # 0.55 above
    assert verdicts.near(values, 0.9205, 0.5).verdict == "reproduced"  # 0.45 above
    assert verdicts.near([0.5], 0.4, 10.0, scale=100.0).verdict == "reproduced"
    assert verdicts.near([5.0], 4.0, 1.0, scale=1.0).difference == pytest.approx(1.0)


def test_a_reading_decision_holds_every_number_and_says_them():
    from statsmodels.stats.weightstats import ttost_paired

    base, like, same = reading_rows()
    margin = 0.37  # declared, whatever the effect turns out to be
    d = verdicts.alike(same, like, base, margin)
    eff, _, eff_p, _ = _paired_by_hand(like, base)
    mean, ci, _, sd = _paired_by_hand(same, like)
    x = [100 * same[k] for k in range(5)]
    y = [100 * like[k] for k in range(5)]
    tost_p = ttost_paired(np.asarray(x), np.asarray(y), -margin, margin)[0]
    half = st.t.ppf(0.95, 4) * sd / math.sqrt(5)
    welch = st.ttest_ind(list(same.values()), list(like.values()), equal_var=False).pvalue
    assert d.ours == f"{mean:+.2f} ({_fmt(same.values())} vs {_fmt(like.values())})"
    needed = max(abs(mean - half), abs(mean + half))
    assert d.test == (f"effect to explain {eff:+.2f} (p = {eff_p:.3g}, paired); TOST within "
                      f"the declared ±{margin:.2f}: p = {tost_p:.3g}, 90% CI "
                      f"[{mean - half:+.2f}, {mean + half:+.2f}]; the verdict would change at "
                      f"a margin of {needed:.2f}")
    assert d.margin_needed == pytest.approx(needed)
    # the margin that changes it is where the TOST p crosses 5%
    assert ttost_paired(np.asarray(x), np.asarray(y), -needed * 1.001, needed * 1.001)[0] < 0.05
    assert ttost_paired(np.asarray(x), np.asarray(y), -needed * 0.999, needed * 0.999)[0] > 0.05
    assert (d.p, d.detectable, d.difference, d.welch_p) == pytest.approx(
        (tost_p, margin, mean, welch), rel=1e-6)
    assert d.ci == pytest.approx(ci) and d.paired and d.n == 5 and d.seeds_needed is None
    assert math.isnan(d.power) and math.isnan(d.claimed)


def test_a_reading_is_refuted_on_either_side_and_needs_a_tost_size_when_undecided():
    from kdlib import stats

    base = seeds(0.900, 0.910, 0.920, 0.905, 0.915)
    like = {k: v + 0.01 + 0.0002 * (k % 2) for k, v in base.items()}
    above = {k: v + 0.009 + 0.0002 * k for k, v in like.items()}
    below = {k: v - 0.009 - 0.0002 * k for k, v in like.items()}
    for control in (above, below):
        assert verdicts.alike(control, like, base, 0.5).verdict == "not reproduced"
    noisy = {k: v + d for (k, v), d in zip(like.items(), (0.01, -0.01, 0.006, -0.004, 0.0),
                                           strict=True)}
    d = verdicts.alike(noisy, like, base, 0.5)
    eff = verdicts.compare(like, base).difference
    sd = verdicts.compare(noisy, like).sd
    assert d.seeds_needed == stats.tost_seeds_needed(0.5, sd)
    # the effect to explain is there, but the control ran on other seeds: no TOST
    other = {k + 20: v for k, v in same_seeds(like).items()}
    d = verdicts.alike(other, like, base, 0.5)
    assert d.verdict == "inconclusive at this power"
    assert d.test.endswith("; no paired seeds for an equivalence test")
    assert d.test.startswith(f"effect to explain {eff:+.2f} (p = ")


def same_seeds(row):
    return {k: v + 0.0001 * k for k, v in row.items()}


def test_nothing_to_explain_says_why_and_what_would_establish_it():
    from kdlib import stats

    base = seeds(0.900, 0.910, 0.920, 0.905, 0.915)
    weak = {k: v + d for (k, v), d in zip(base.items(), (0.004, -0.002, 0.003, -0.001, 0.001),
                                          strict=True)}
    d = verdicts.alike(same_seeds(weak), weak, base, 0.5)
    c = verdicts.compare(weak, base)
    assert d.verdict == "nothing to explain at this scale"
    assert d.test == (f"effect to explain {c.difference:+.2f} (p = {c.p:.3g}, paired): not "
                      "established in the paper's direction, so there is no gain here for the "
                      "control to explain")
    assert d.seeds_needed == stats.paired_seeds_needed(abs(c.difference), c.sd)
    unpaired = {k + 10: v for k, v in weak.items()}
    d = verdicts.alike(weak, unpaired, base, 0.5)
    assert ", Welch)" in d.test and d.verdict == "nothing to explain at this scale"
    flipped = verdicts.alike(same_seeds(weak), weak, base, 0.5, direction=-1)
    assert flipped.verdict == "nothing to explain at this scale" and flipped.seeds_needed is None


def test_the_rules_read_values_in_the_scale_they_are_given():
    g = verdicts.gain({0: 90.0, 1: 91.0, 2: 92.5}, {0: 89.0, 1: 90.2, 2: 91.4}, 0.5, scale=1.0)
    mean, ci, p, _ = _paired_by_hand({k: v / 100 for k, v in {0: 90.0, 1: 91.0, 2: 92.5}.items()},
                                     {k: v / 100 for k, v in {0: 89.0, 1: 90.2, 2: 91.4}.items()})
    assert g.difference == pytest.approx(mean) and g.p == pytest.approx(p)
    assert g.ci == pytest.approx(ci)
    assert g.ours.startswith(f"{mean:+.2f} (91.17 ± 1.26 (n = 3) vs 90.20 ± 1.20 (n = 3))")


def test_without_adds_a_note_and_keeps_the_rest():
    first = verdicts.gain(seeds(0.9, 0.91, 0.92), seeds(0.89, 0.9, 0.905), 0.5)
    one = verdicts.gain(seeds(0.9), seeds(0.89), 0.5)
    noted = verdicts.without(first, "seed 1 spiked", one)
    assert noted.notes == (f"seed 1 spiked; without it: {one.ours}, {one.verdict}",)
    spread = verdicts.gain(seeds(0.9, 0.91, 0.92), seeds(0.89, 0.905, 0.911), 0.5)
    assert not math.isnan(spread.p)
    assert verdicts.without(first, "why", spread).notes == (
        f"why; without it: {spread.ours}, {spread.verdict} (p = {spread.p:.3g})",)
    twice = verdicts.without(noted, "again", one)
    assert twice.notes[0] == noted.notes[0] and len(twice.notes) == 2
    assert (twice.verdict, twice.p, twice.ci) == (first.verdict, first.p, first.ci)
    assert verdicts.not_run("no CIFAR-10").test == "no CIFAR-10"
    assert verdicts.not_run().ours == "—" and verdicts.not_run().test == "no records at this scale"
    assert not verdicts.not_run().decided


def test_every_branch_of_gain_says_what_it_measured():
    base = seeds(0.900, 0.910, 0.920, 0.905)
    small = {k: v + d for (k, v), d in zip(base.items(), (0.003, 0.0032, 0.0028, 0.0031),
                                           strict=True)}
    g = verdicts.gain(small, base, 0.5)  # a significant gain under one point
    assert g.verdict == "reproduced" and 0 < g.difference < 1
    expected_ours = f"{g.difference:+.2f} ({_fmt(small.values())} vs {_fmt(base.values())})"
    flat = {k: v + d for (k, v), d in zip(base.items(), (0.0002, -0.0003, 0.0001, -0.0001),
                                          strict=True)}
    noisy = {k: v + d for (k, v), d in zip(base.items(), (0.01, -0.012, 0.008, -0.005),
                                           strict=True)}
    for row in (small, flat, noisy):
        d = verdicts.gain(row, base, 0.5)
        mean, ci, p, _ = _paired_by_hand(row, base)
        assert d.ours == f"{mean:+.2f} ({_fmt(row.values())} vs {_fmt(base.values())})"
        assert d.test.startswith(f"paired t-test over 4 seeds: p = {p:.3g}, 95% CI "
                                 f"[{ci[0]:+.2f}, {ci[1]:+.2f}]; Welch p = ")
        assert d.test.endswith(f"; paper: +0.50, power to detect it {d.power:.0%}")
    assert expected_ours == g.ours
    single = verdicts.gain(seeds(0.99), seeds(0.98), 0.5)
    assert single.ours == "+1.00 (99.00 (n = 1) vs 98.00 (n = 1))"
    assert single.difference == pytest.approx(1.0) and single.claimed == 0.5
    c = verdicts.compare(noisy, base)
    assert c.n_a == c.n_b == 4 and c.seeds_needed(1.0) == \
        __import__("kdlib").stats.paired_seeds_needed(1.0, c.sd)
    w = verdicts.compare(base, {k + 10: v for k, v in base.items()})
    assert w.paired is False and c.paired is True


def test_every_branch_of_a_reading_keeps_its_numbers():
    base = seeds(0.900, 0.910, 0.920, 0.905, 0.915)
    like = {k: v + 0.01 + 0.0002 * (k % 2) for k, v in base.items()}
    eff = verdicts.compare(like, base)
    words = f"effect to explain {eff.difference:+.2f} (p = {eff.p:.3g}, paired)"
    below = {k: v - 0.009 - 0.0002 * k for k, v in like.items()}
    noisy = {k: v + d for (k, v), d in zip(like.items(), (0.002, -0.012, 0.001, -0.011, -0.004),
                                           strict=True)}
    shifted = {k: v + 0.001 for k, v in like.items()}  # the same difference on every seed
    for control, verdict in ((below, "not reproduced"), (noisy, "inconclusive at this power"),
                             (shifted, "inconclusive at this power")):
        d = verdicts.alike(control, like, base, eff.difference / 2)
        c = verdicts.compare(control, like)
        eq = __import__("kdlib").stats.tost_paired([100 * control[k] for k in range(5)],
                                                   [100 * like[k] for k in range(5)],
                                                   eff.difference / 2)
        assert d.verdict == verdict, control
        assert d.ours == (f"{c.difference:+.2f} ({_fmt(control.values())} vs "
                          f"{_fmt(like.values())})")
        assert d.test.startswith(f"{words}; TOST within the declared ±"
                                 f"{eff.difference / 2:.2f}: p = ")
        assert (d.difference, d.ci, d.welch_p, d.paired, d.n) == (c.difference, c.ci,
                                                                  c.welch_p, True, 5)
        assert d.p == eq.p or (math.isnan(d.p) and math.isnan(eq.p))
    # noisy: below the margin on one side only is not a refutation
    eq = verdicts.alike(noisy, like, base, eff.difference / 2)
    assert "90% CI [-" in eq.test and eq.seeds_needed > 5
    assert verdicts.alike(shifted, like, base, 0.5).seeds_needed is None  # no spread to plan with
    # the control on other seeds: no TOST, but its numbers are kept
    other = {k + 20: v + 0.002 for k, v in like.items()}
    d = verdicts.alike(other, like, base, 0.5)
    c = verdicts.compare(other, like)
    assert d.ours.startswith(f"{c.difference:+.2f} (") and d.welch_p == c.welch_p
    assert d.difference == c.difference and d.paired is False and d.p == c.p == c.welch_p
    # nothing to explain keeps the control's numbers too
    none = verdicts.alike(shifted, like, like, 0.5)
    c = verdicts.compare(shifted, like)
    assert none.verdict == "nothing to explain at this scale"
    assert none.ours.startswith(f"{c.difference:+.2f} (") and none.difference == c.difference
    assert (none.ci, none.n) == (c.ci, 5) and math.isnan(none.p) and math.isnan(c.p)
    # two paired seeds are enough for a TOST
    two = verdicts.alike({0: 0.95, 1: 0.969}, {0: 0.951, 1: 0.9705}, {0: 0.90, 1: 0.92}, 0.5)
    assert "TOST" in two.test


def test_rules_in_points_read_points():
    pts = {0: 90.0, 1: 91.0, 2: 92.0, 3: 90.5, 4: 91.5}
    like = {k: v + 1.0 + 0.02 * (k % 2) for k, v in pts.items()}
    same = {k: v + 0.01 * (-1) ** k for k, v in like.items()}
    d = verdicts.alike(same, like, pts, 0.5, scale=1.0)
    assert d.verdict == "reproduced" and "TOST within the declared ±0.50" in d.test
    assert d.ours.endswith(f"({_fmt([v / 100 for v in same.values()])} vs "
                           f"{_fmt([v / 100 for v in like.values()])})")
    n = verdicts.near([90.0, 91.0], 90.3, 1.0, scale=1.0)
    assert n.ours == "90.50 ± 0.71 (n = 2)" and n.verdict == "reproduced"


# --- issue 25: few seeds, the family, premises and size -----------------------------------

def test_a_paired_verdict_on_five_seeds_says_when_only_the_t_test_decides():
    base = {k: 0.90 + 0.01 * k for k in range(5)}
    better = {k: v + 0.01 + 0.0005 * (-1) ** k for k, v in base.items()}
    d = verdicts.gain(better, base, 1.0)
    assert d.verdict == "reproduced" and d.p < 0.001
    assert d.exact_p == 0.0625 and d.only_t_decides
    assert "exact sign-flip p = 0.0625 (the smallest 5 seeds allow is 0.0625: only the " \
           "t-test's normality decides)" in d.test
    # above 6 seeds the exact p is not computed
    many = verdicts.gain({k: 0.9 + 0.001 * k for k in range(8)},
                         {k: 0.89 + 0.0012 * k for k in range(8)}, 1.0)
    assert math.isnan(many.exact_p) and not many.only_t_decides



def _gain(p, verdict="reproduced", power=0.9):
    return Decision(verdict, "ours", "test", difference=1.0, p=p, power=power, claimed=1.0)


def test_the_family_turns_a_verdict_that_loses_significance_inconclusive():
    out = verdicts.family([_gain(0.001), _gain(0.03), _gain(0.2, "not reproduced"),
                           Decision("not run at this scale", "—", "—")])
    assert [d.holm_p for d in out[:3]] == pytest.approx([0.003, 0.06, 0.2])
    assert out[0].verdict == "reproduced"
    assert out[1].verdict == "inconclusive at this power"
    assert "not after Holm's adjustment over the 3 claims of its family (p = 0.06)" in \
        out[1].notes[0]
    assert out[2].verdict == "not reproduced"  # rested on power: unchanged
    assert out[3].verdict == "not run at this scale" and math.isnan(out[3].holm_p)
    # a premise-not-met verdict keeps its name; the test's own verdict is adjusted
    failed = verdicts.premise_not_met(_gain(0.03), [("premise", False, "measured")])
    out = verdicts.family([failed, _gain(0.04), _gain(0.001)])
    assert out[0].verdict == "premise not met at this scale"
    assert out[0].tested == "inconclusive at this power"





def test_a_failed_premise_names_itself_and_keeps_the_tests_verdict():
    d = verdicts.premise_not_met(_gain(0.001), [("a", True, "x"), ("b", False, "y")])
    assert d.verdict == "premise not met at this scale" and d.tested == "reproduced"
    assert d.premises == (("a", True, "x"), ("b", False, "y"))
    kept = verdicts.premise_not_met(_gain(0.001), [("a", True, "x"), ("c", None, "z")])
    assert kept.verdict == "reproduced" and kept.tested is None
    assert verdicts.premise_not_met(Decision("not run at this scale", "—", "—"),
                                    [("b", False, "y")]).verdict == "not run at this scale"


def test_size_beside_direction():
    big = Decision("reproduced", "o", "t", difference=1.58, ci=(1.23, 1.93), claimed=0.17)
    ratio, lo, hi = big.size_ratio
    assert (ratio, lo, hi) == pytest.approx((1.58 / 0.17, 1.23 / 0.17, 1.93 / 0.17))
    assert big.size_consistent is False
    assert big.label == f"reproduced in direction, {1.58 / 0.17:.1f}× the paper's effect"
    assert "lies outside it: larger" in big.size()
    fits = Decision("reproduced", "o", "t", difference=0.5, ci=(0.2, 0.8), claimed=0.41)
    assert fits.size_consistent and fits.label == "reproduced, consistent with the paper's size"
    # by hand: 0.5 / 0.41 = 1.22, 0.2 / 0.41 = 0.49, 0.8 / 0.41 = 1.95
    assert fits.size() == ("consistent with the paper's size (1.2× the paper's effect, 95% CI "
                           "0.5× to 2.0×)")
    # an interval holding the paper's effect and zero tells nothing of the size
    wide = Decision("not reproduced", "o", "t", difference=0.30, ci=(-0.01, 0.61), claimed=0.44)
    assert wide.size_consistent
    # by hand: -0.01 / 0.44 = -0.02, 0.61 / 0.44 = 1.39
    assert wide.size() == ("too wide to tell the size: the 95% interval (-0.0× to 1.4× the "
                           "paper's effect) holds both the paper's effect and none")
    for ends in ((0.0, 0.61), (-0.5, 0.0)):  # an end at zero counts as holding it
        touching = Decision("x", "o", "t", difference=0.2, ci=ends, claimed=ends[0] or ends[1])
        assert touching.size().startswith("too wide")
    negative = Decision("x", "o", "t", difference=-1.0, ci=(-1.5, -0.5), claimed=-0.8)
    assert negative.size().startswith("consistent with the paper's size (1.2×")
    opposite = Decision("not reproduced", "o", "t", difference=-1.2, ci=(-1.6, -0.5),
                        claimed=1.29)
    assert opposite.size().startswith("opposite to the paper's effect")
    assert opposite.label == "not reproduced"
    assert Decision("reproduced", "o", "t").size() == ""


def test_size_from_numpy_numbers_is_a_plain_bool():
    import numpy as np

    d = Decision("reproduced", "o", "t", difference=0.63,
                 ci=(np.float64(0.61), np.float64(0.64)), claimed=0.67)
    assert d.size_consistent is False
    assert d.label == "reproduced in direction, 0.9× the paper's effect"


# --- the edges of each rule, in the words a reader sees (mutation testing's survivors) -----

def test_size_says_on_which_side_of_the_interval_the_papers_effect_lies():
    smaller = Decision("reproduced", "o", "t", difference=0.5, ci=(0.2, 0.8), claimed=1.5)
    # by hand: 0.5 / 1.5 = 0.33, 0.2 / 1.5 = 0.13, 0.8 / 1.5 = 0.53
    assert smaller.size() == ("0.3× the paper's effect (95% CI 0.1× to 0.5×; the paper's "
                              "+1.50 lies outside it: smaller)")
    assert smaller.label == "reproduced in direction, 0.3× the paper's effect"
    # a negative claim: our interval lies above it, straddling 0, so not opposite
    above = Decision("reproduced", "o", "t", difference=0.1, ci=(-0.5, 0.5), claimed=-1.0)
    assert above.size() == ("-0.1× the paper's effect (95% CI -0.5× to 0.5×; the paper's "
                            "-1.00 lies outside it: larger)")
    # an interval that only touches 0 is not wholly opposite to the paper's effect
    touch_low = Decision("reproduced", "o", "t", difference=-0.5, ci=(-1.0, 0.0), claimed=0.5)
    assert touch_low.size() == ("-1.0× the paper's effect (95% CI -2.0× to 0.0×; the paper's "
                                "+0.50 lies outside it: smaller)")
    touch_high = Decision("reproduced", "o", "t", difference=0.5, ci=(0.0, 1.0), claimed=-0.5)
    assert not touch_high.size().startswith("opposite")
    assert touch_high.size().endswith("the paper's -0.50 lies outside it: larger)")
    # wholly above 0 against a negative claim: opposite, with the ratios by hand
    opposite = Decision("not reproduced", "o", "t", difference=0.6, ci=(0.3, 0.9), claimed=-1.0)
    assert opposite.size() == "opposite to the paper's effect (-0.6× it, 95% CI -0.9× to -0.3×)"


def test_the_exact_p_is_that_of_the_per_seed_differences_up_to_six_seeds():
    from itertools import product

    a = seeds(0.91, 0.93, 0.905, 0.95)
    b = seeds(0.90, 0.91, 0.91, 0.92)  # differences +1, +2, -0.5, +3 points
    d = [a[k] - b[k] for k in range(4)]
    far = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= abs(sum(d)) - 1e-12
           for signs in product((1, -1), repeat=4)]
    assert sum(far) / 16 == 0.25  # the observed pattern, the one with -0.5 flipped, negated
    c = verdicts.compare(a, b)
    assert c.exact_p == 0.25
    assert c.in_words().endswith(f"; Welch p = {c.welch_p:.3g}; exact sign-flip p = 0.25")
    six = verdicts.compare({k: 0.90 + 0.01 * k for k in range(6)},
                           {k: 0.89 + 0.01 * k + 0.001 * (k % 2) for k in range(6)})
    assert six.paired and six.n == 6 and six.exact_p == 2 / 2**6  # all six differences > 0
    seven = verdicts.compare({k: 0.90 + 0.01 * k for k in range(7)},
                             {k: 0.89 + 0.01 * k + 0.001 * (k % 2) for k in range(7)})
    assert seven.paired and math.isnan(seven.exact_p)


def test_above_six_seeds_the_paired_words_say_no_exact_p():
    a = {k: 0.9 + 0.001 * k for k in range(8)}
    b = {k: 0.89 + 0.0012 * k for k in range(8)}
    g = verdicts.gain(a, b, 1.0)
    mean, ci, p, sd = _paired_by_hand(a, b)
    welch = st.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    assert g.test == (f"paired t-test over 8 seeds: p = {p:.3g}, 95% CI [{ci[0]:+.2f}, "
                      f"{ci[1]:+.2f}]; Welch p = {welch:.3g}; detectable with 80% power: "
                      f"{_detectable(sd, 8):.2f}; paper: +1.00, power to detect it "
                      f"{_power(1.0, sd, 8):.0%}")


def _paired_comparison(p, exact_p, n=5):
    return verdicts.Comparison(True, n, 1.0, (0.1, 1.9), p, 0.2, 0.8, 1.0, 1.0, n, n, exact_p)


def test_only_the_t_test_decides_exactly_when_it_is_below_alpha_and_the_exact_p_is_not():
    head = "paired t-test over 5 seeds: p = {p}, 95% CI [+0.10, +1.90]; Welch p = 0.2; "
    note = (" (the smallest 5 seeds allow is 0.0625: only the t-test's normality decides)")
    cases = [(0.05, 0.0625, False),  # p at alpha is not significant: nothing to flag
             (0.01, 0.05, True),  # an exact p at alpha does not reach it either
             (0.01, 0.0625, True), (0.01, 0.03125, False)]
    for p, exact, flagged in cases:
        words = _paired_comparison(p, exact).in_words()
        assert words == head.format(p=f"{p:.3g}") + f"exact sign-flip p = {exact:.3g}" + (
            note if flagged else "")
        decision = Decision("reproduced", "o", "t", p=p, exact_p=exact, paired=True, n=5)
        assert decision.only_t_decides is flagged


def test_gain_at_p_exactly_alpha_or_power_exactly_80_percent(monkeypatch):
    from kdlib import stats

    base, treated = seeds(0.90, 0.91, 0.92, 0.93), seeds(0.91, 0.92, 0.93, 0.94)
    at_alpha = _paired_comparison(ALPHA, 0.125, n=4)
    monkeypatch.setattr(verdicts, "compare", lambda a, b, scale=100.0: at_alpha)
    g = verdicts.gain(treated, base, 0.5)  # p = 0.05 is not below 0.05: power decides
    assert g.verdict == "inconclusive at this power" and g.p == ALPHA
    assert g.power == pytest.approx(_power(0.5, 0.8, 4)) and g.power < POWER
    assert g.seeds_needed == stats.paired_seeds_needed(0.5, 0.8)
    assert "p = 0.05, 95% CI [+0.10, +1.90]" in g.test
    # a null result at exactly 80% power refutes
    monkeypatch.setattr(verdicts, "compare",
                        lambda a, b, scale=100.0: _paired_comparison(0.3, 0.5, n=4))
    monkeypatch.setattr(verdicts.Comparison, "power", lambda self, effect: POWER)
    g = verdicts.gain(treated, base, 0.5)
    assert g.verdict == "not reproduced" and g.power == POWER and g.seeds_needed is None
    assert g.test.endswith("; paper: +0.50, power to detect it 80%")


def test_a_reading_in_points_says_its_effect_and_difference_in_points():
    pts = {0: 90.0, 1: 91.0, 2: 92.0, 3: 90.5, 4: 91.5}
    like = {k: v + 1.0 + 0.02 * (k % 2) for k, v in pts.items()}
    same = {k: v + 0.01 * (-1) ** k for k, v in like.items()}
    d = verdicts.alike(same, like, pts, 0.5, scale=1.0)
    effect = sum(like[k] - pts[k] for k in range(5)) / 5  # 1.008, by hand
    diff = sum(same[k] - like[k] for k in range(5)) / 5  # 0.002
    p = st.ttest_rel(list(like.values()), list(pts.values())).pvalue
    assert d.test.startswith(f"effect to explain {effect:+.2f} (p = {p:.3g}, paired); TOST ")
    assert d.difference == pytest.approx(diff) and d.ours.startswith(f"{diff:+.2f} (")


def test_a_reading_refuses_a_zero_margin_in_its_own_words():
    base, like, same = reading_rows()
    with pytest.raises(ValueError, match=r"^the equivalence margin must be positive, got 0\.0$"):
        verdicts.alike(same, like, base, 0.0)


def test_an_effect_at_p_exactly_alpha_is_not_established(monkeypatch):
    from dataclasses import replace

    base, like, same = reading_rows()
    real = verdicts.compare

    def effect_at_alpha(a, b, scale=100.0):
        c = real(a, b, scale)
        return replace(c, p=ALPHA) if (a, b) == (like, base) else c

    monkeypatch.setattr(verdicts, "compare", effect_at_alpha)
    d = verdicts.alike(same, like, base, 0.5)
    assert d.verdict == "nothing to explain at this scale"
    assert d.test.startswith(f"effect to explain {real(like, base).difference:+.2f} (p = 0.05, "
                             "paired): not established")


def test_an_interval_touching_the_margin_is_not_wholly_beyond_it(monkeypatch):
    from kdlib import stats

    base, like, same = reading_rows()
    sd = verdicts.compare(same, like).sd
    for lo, hi in ((0.5, 0.8), (-0.8, -0.5)):
        monkeypatch.setattr(stats, "tost_paired", lambda a, b, margin, lo=lo, hi=hi:
                            stats.Equivalence(margin, (lo + hi) / 2, lo, hi, 0.7, False))
        d = verdicts.alike(same, like, base, 0.5)
        assert d.verdict == "inconclusive at this power", (lo, hi)
        assert d.margin_needed == 0.8 and d.seeds_needed == stats.tost_seeds_needed(0.5, sd)
        assert f"90% CI [{lo:+.2f}, {hi:+.2f}]; the verdict would change at a margin of 0.80" \
            in d.test


def test_premises_met_or_unmeasured_are_recorded_beside_the_verdict():
    premises = [("a", True, "x"), ("c", None, "z")]
    kept = verdicts.premise_not_met(_gain(0.001), premises)
    assert kept.premises == (("a", True, "x"), ("c", None, "z")) and kept.verdict == "reproduced"
    not_run = verdicts.premise_not_met(verdicts.not_run(), [("b", False, "y")])
    assert not_run.premises == (("b", False, "y"),) and not_run.tested is None


def test_the_family_holds_only_claims_that_ran_and_says_what_the_adjustment_took():
    # a claim not run is no member of the family, whatever numbers it carries
    out = verdicts.family([_gain(0.03), Decision("not run at this scale", "—", "—", p=0.04)])
    assert out[0].verdict == "reproduced" and out[0].holm_p == pytest.approx(0.03)
    assert math.isnan(out[1].holm_p) and out[1].notes == ()
    # a refutation by a significant difference against the paper loses it too: Holm by hand,
    # 0.03 and 0.04 of two claims are 2 x 0.03 = 0.06 and max(0.06, 0.04) = 0.06
    against = Decision("not reproduced", "o", "t", difference=-1.0, p=0.03, claimed=1.0)
    out = verdicts.family([against, _gain(0.04)])
    assert [d.verdict for d in out] == ["inconclusive at this power"] * 2
    assert out[0].notes == ("not reproduced alone (p = 0.03), not after Holm's adjustment over "
                            "the 2 claims of its family (p = 0.06)",)
    # a null result at p = 0.05 rested on power, not on p: the adjustment leaves it alone
    out = verdicts.family([_gain(0.05, "not reproduced"), _gain(0.001)])
    assert out[0].verdict == "not reproduced" and out[0].notes == ()
    assert out[0].holm_p == pytest.approx(0.05)
    # an adjusted p of exactly 0.05 (2 x 0.025) is not below alpha
    out = verdicts.family([_gain(0.025), _gain(0.5, "not reproduced")])
    assert out[0].holm_p == 0.05 and out[0].verdict == "inconclusive at this power"
    assert out[1].verdict == "not reproduced"
    # a failed premise keeps its name, and the note says what the test's verdict lost
    failed = verdicts.premise_not_met(_gain(0.03), [("premise", False, "measured")])
    out = verdicts.family([failed, _gain(0.04), _gain(0.001)])
    assert (out[0].verdict, out[0].tested) == ("premise not met at this scale",
                                               "inconclusive at this power")
    assert out[0].notes == ("reproduced alone (p = 0.03), not after Holm's adjustment over the "
                            "3 claims of its family (p = 0.06)",)


def test_an_effect_without_an_interval_has_no_size():
    # an unpaired (Welch) decision carries no interval: no ratio, no size sentence, the bare
    # verdict as its label
    d = verdicts.Decision("reproduced", "x", "y", difference=0.9, claimed=0.5)
    assert all(math.isnan(x) for x in d.size_ratio)
    assert d.size() == "" and d.size_consistent is None and d.label == "reproduced"
    half = verdicts.Decision("reproduced", "x", "y", difference=0.9, claimed=0.5,
                             ci=(0.2, math.nan))
    assert half.size() == "" and half.label == "reproduced"
