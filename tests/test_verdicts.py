"""The verdict rules, on hand-made per-seed values, against scipy computed independently."""

import math

import pytest
from scipy import stats as st

from kdlib import verdicts
from kdlib.verdicts import ALPHA, MARGIN_SHARE, POWER


def seeds(*values):
    return dict(enumerate(values))


def test_the_rules_constants_are_the_stated_ones():
    assert (ALPHA, POWER, MARGIN_SHARE) == (0.05, 0.8, 0.5)
    assert verdicts.VERDICTS == ("reproduced", "not reproduced", "inconclusive at this power",
                                 "nothing to explain at this scale", "not run at this scale")


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


def test_alike_needs_an_effect_to_explain_then_decides_by_equivalence():
    base = seeds(0.900, 0.910, 0.920, 0.905, 0.915)
    like = {k: v + d for (k, v), d in zip(base.items(), (0.010, 0.011, 0.009, 0.0105, 0.0095),
                                          strict=True)}
    same = {k: v + d for (k, v), d in zip(like.items(), (0.0005, -0.0004, 0.0003, -0.0002,
                                                         0.0001), strict=True)}
    d = verdicts.alike(same, like, base)
    assert d.verdict == "reproduced" and d.detectable == pytest.approx(0.5 * 1.0)
    assert "TOST within ±0.50" in d.test and d.p < ALPHA
    apart = {k: v - 0.009 - 0.0002 * k for k, v in like.items()}  # most of the gain gone
    assert verdicts.alike(apart, like, base).verdict == "not reproduced"
    noisy = {k: v + d for (k, v), d in zip(like.items(), (0.01, -0.01, 0.006, -0.004, 0.0),
                                           strict=True)}
    d = verdicts.alike(noisy, like, base)
    assert d.verdict == "inconclusive at this power" and d.seeds_needed > 5
    # no effect, or one against the paper's direction: nothing to explain
    none = {k: v + d for (k, v), d in zip(base.items(), (0.001, -0.001, 0.0005, -0.0005, 0.0),
                                          strict=True)}
    assert verdicts.alike(same, none, base).verdict == "nothing to explain at this scale"
    worse = {k: v - 0.01 for k, v in base.items()}
    worse[0] -= 0.001
    d = verdicts.alike(same, worse, base)
    assert d.verdict == "nothing to explain at this scale" and d.seeds_needed is None
    assert verdicts.alike(same, worse, base, direction=-1).verdict != \
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
