"""Deciding a claim from runs over seeds: a small fixed set of verdicts and the rules for each.

The unit of replication is the training run (a seed). Runs of one seed share their
initial weights, batch order, augmentation and PGD start noise (the design pairs:
``tests/test_pairing.py`` proves it), so two rows run on the same seeds are compared
seed by seed: a paired t-test on the per-seed differences (:func:`kdlib.stats.paired`),
with Welch's unpaired test beside it. Rows without common seeds fall back to Welch.

- :func:`gain`, "A is better than B by about the paper's δ": a significant difference
  (p < 0.05) in the claimed direction reproduces the claim, in the other direction refutes
  it. Without one, the power of the test used to detect the paper's δ decides: at 80% or
  more, a gain of that size would have been found, so the claim is *not reproduced*;
  below, the run is *inconclusive at this power*, and the decision says how many seeds
  would give 80% power.
- :func:`near`, "the value is about X": the mean lies within a stated tolerance.
- :func:`alike`, "the gain of A over B is C's (label smoothing's)", in two steps. First
  the effect to explain (A over B) must be established at this scale, in the paper's
  direction; else there is *nothing to explain at this scale*. Then an equivalence test
  (TOST, :func:`kdlib.stats.tost_paired`) with a margin declared before the records (the
  smallest difference of interest, from the paper's effect, never from the observed one)
  decides: equivalent, *reproduced*; the 90% interval of the difference wholly outside the
  margin, *not reproduced*; else inconclusive, with the seeds an equivalence test would need.
  The decision also says the margin at which the verdict would change.

Beside the verdict: where n ≤ 6 the exact sign-flip p (:func:`kdlib.stats.sign_flip_p`),
which cannot go below 2/2^n, so that a page says when only the t-test's normality decides;
the size of the effect against the paper's (:meth:`Decision.size`); Holm's adjustment over
the declared family of claims (:func:`family`), from which the verdict is taken; and the
premises a claim needs (:func:`premise_not_met`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from kdlib import stats

Verdict = Literal["reproduced", "not reproduced", "inconclusive at this power",
                  "nothing to explain at this scale", "premise not met at this scale",
                  "not run at this scale"]
VERDICTS: tuple[Verdict, ...] = ("reproduced", "not reproduced", "inconclusive at this power",
                                 "nothing to explain at this scale",
                                 "premise not met at this scale", "not run at this scale")
#: Significance level of every test.
ALPHA = 0.05
#: The power a design must have before a null result refutes a claim.
POWER = 0.8
#: The equivalence margin of a reading, as a share of the paper's effect it explains: label
#: smoothing explains the gain if it leaves less than half of the paper's effect unexplained.
MARGIN_SHARE = 0.5
#: Up to this many seeds a page shows the exact sign-flip p beside the t-test's.
EXACT_UP_TO = 6

#: Per-seed values of one row: seed -> value.
BySeed = Mapping[int, float]


@dataclass(frozen=True)
class Decision:
    """A verdict and the numbers it rests on (in the units of the values times the rule's
    scale, e.g. points).

    `difference` is the effect (the paired mean difference where the design pairs), with
    its 95% interval `ci`; `p` the deciding test's p-value and `welch_p` Welch's beside it;
    `power` the power of the test used to detect the paper's effect (`claimed`);
    `detectable` the smallest effect it detects with 80% power; `seeds_needed` how many
    seeds would give 80% power where the verdict is inconclusive; `notes` lines a page
    prints below the verdict (unstable runs and the result without them). `exact_p` is the
    exact sign-flip p of a paired test (NaN otherwise), `holm_p` the deciding p adjusted
    over the claim's family (:func:`family`), `margin_needed` (an equivalence test) the
    margin at which it would pass. `premises` are ``(premise, met, measured)`` triples;
    `tested` is the verdict the test gave when a premise was not met.
    """

    verdict: Verdict
    ours: str  # the measured quantity, "+0.79 (89.14 ± 0.50 (n = 3) vs ...)"
    test: str  # the rule's inputs, in words
    difference: float = math.nan
    p: float = math.nan
    detectable: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    welch_p: float = math.nan
    power: float = math.nan
    claimed: float = math.nan
    paired: bool = False
    n: int = 0
    seeds_needed: int | None = None
    hours_needed: float = math.nan  # CPU hours (one core a run) of `seeds_needed` seeds
    notes: tuple[str, ...] = field(default=())
    exact_p: float = math.nan
    holm_p: float = math.nan
    margin_needed: float = math.nan
    premises: tuple[tuple[str, bool | None, str], ...] = field(default=())
    tested: Verdict | None = None

    @property
    def decided(self) -> bool:
        return self.verdict in ("reproduced", "not reproduced")

    @property
    def size_ratio(self) -> tuple[float, float, float]:
        """Our effect over the paper's, with the 95% interval's ends over it (NaN where
        there is no claimed effect or no interval)."""
        c = self.claimed
        if math.isnan(c) or c == 0 or math.isnan(self.difference) or \
                any(math.isnan(x) for x in self.ci):
            return math.nan, math.nan, math.nan
        lo, hi = sorted((self.ci[0] / c, self.ci[1] / c))
        return self.difference / c, lo, hi

    @property
    def size_consistent(self) -> bool | None:
        """Whether the paper's effect lies in our 95% interval (None: nothing to compare)."""
        if math.isnan(self.claimed) or any(math.isnan(x) for x in self.ci):
            return None
        return bool(self.ci[0] <= self.claimed <= self.ci[1])

    def size(self) -> str:
        """The size beside the direction: ``consistent with the paper's size`` when the
        paper's effect lies in the 95% interval and no effect does not; ``too wide to tell the
        size`` when both lie in it; else how many times the paper's it is."""
        ratio, lo, hi = self.size_ratio
        if math.isnan(ratio):
            return ""
        if self.ci[1] < 0 < self.claimed or self.ci[0] > 0 > self.claimed:
            return (f"opposite to the paper's effect ({ratio:.1f}× it, 95% CI {lo:.1f}× to "
                    f"{hi:.1f}×)")
        if self.size_consistent and self.ci[0] <= 0 <= self.ci[1]:
            return (f"too wide to tell the size: the 95% interval ({lo:.1f}× to {hi:.1f}× the "
                    f"paper's effect) holds both the paper's effect and none")
        if self.size_consistent:
            return (f"consistent with the paper's size ({ratio:.1f}× the paper's effect, 95% CI "
                    f"{lo:.1f}× to {hi:.1f}×)")
        where = "larger" if self.ci[0] > self.claimed else "smaller"
        return (f"{ratio:.1f}× the paper's effect (95% CI {lo:.1f}× to {hi:.1f}×; the paper's "
                f"{self.claimed:+.2f} lies outside it: {where})")

    @property
    def label(self) -> str:
        """The verdict with its size where it is decided: ``reproduced in direction, 9.3× the
        paper's effect``, or the verdict alone."""
        ratio, _, _ = self.size_ratio
        if self.verdict == "reproduced" and self.size_consistent is False:
            return f"reproduced in direction, {ratio:.1f}× the paper's effect"
        if self.verdict == "reproduced" and self.size_consistent:
            return "reproduced, consistent with the paper's size"
        return self.verdict

    @property
    def only_t_decides(self) -> bool:
        """A significant paired verdict on so few seeds that the exact sign-flip test could
        not reach the level: the t-test's normality alone decides it."""
        return (self.paired and self.n <= EXACT_UP_TO and not math.isnan(self.exact_p)
                and self.p < ALPHA <= self.exact_p)


def describe(values: Sequence[float], scale: float = 100.0) -> str:
    """``98.92 ± 0.02 (n = 3)``, or the single value."""
    s = stats.summarize(values)
    return f"{s.fmt(scale)} (n = {s.n})"


def not_run(what: str = "no records at this scale") -> Decision:
    return Decision("not run at this scale", "—", what)


@dataclass(frozen=True)
class Comparison:
    """Two rows compared on their common seeds when they have the same seeds (paired), or
    as two samples (Welch). Values are in the units of the values times `scale`."""

    paired: bool
    n: int
    difference: float
    ci: tuple[float, float]
    p: float
    welch_p: float
    sd: float  # of the per-seed differences (paired), or the two stds averaged (Welch)
    sd_a: float
    sd_b: float
    n_a: int
    n_b: int
    exact_p: float = math.nan  # exact sign-flip p of the paired differences

    def power(self, effect: float) -> float:
        if math.isnan(effect):
            return math.nan
        if self.paired:
            return stats.paired_power(effect, self.sd, self.n)
        return stats.welch_power(effect, self.sd_a, self.sd_b, self.n_a, self.n_b)

    def detectable(self) -> float:
        if self.paired:
            return stats.paired_detectable(self.sd, self.n)
        if math.isnan(self.sd_a) or math.isnan(self.sd_b):
            return math.nan
        return stats.welch_detectable(self.sd_a, self.sd_b, self.n_a, self.n_b)

    def seeds_needed(self, effect: float) -> int | None:
        if math.isnan(effect) or effect == 0:
            return None
        try:
            if self.paired:
                return stats.paired_seeds_needed(effect, self.sd)
            return stats.welch_seeds_needed(effect, self.sd_a, self.sd_b)
        except ValueError:  # no spread to plan with
            return None

    def in_words(self) -> str:
        if self.paired:
            exact = ""
            if not math.isnan(self.exact_p):
                exact = f"; exact sign-flip p = {self.exact_p:.3g}"
                if self.p < ALPHA <= self.exact_p:
                    exact += (f" (the smallest {self.n} seeds allow is "
                              f"{stats.smallest_sign_flip_p(self.n):.3g}: only the t-test's "
                              f"normality decides)")
            return (f"paired t-test over {self.n} seeds: p = {self.p:.3g}, 95% CI "
                    f"[{self.ci[0]:+.2f}, {self.ci[1]:+.2f}]; Welch p = {self.welch_p:.3g}"
                    + exact)
        return f"Welch p = {self.welch_p:.3g} (the rows share no seeds to pair)"


def compare(a: BySeed, b: BySeed, scale: float = 100.0) -> Comparison:
    """Row `a` against row `b`: paired over their seeds when both ran the same seeds."""
    va, vb = [float(v) for v in a.values()], [float(v) for v in b.values()]
    sa, sb = stats.summarize(va), stats.summarize(vb)
    welch = stats.welch_p(va, vb)
    if set(a) == set(b) and len(a) >= 2:
        seeds = sorted(a)
        pr = stats.paired([a[s] for s in seeds], [b[s] for s in seeds])
        exact = (stats.sign_flip_p([a[s] - b[s] for s in seeds])
                 if pr.n <= EXACT_UP_TO else math.nan)
        return Comparison(True, pr.n, pr.mean * scale, (pr.ci_low * scale, pr.ci_high * scale),
                          pr.p, welch, pr.sd * scale, sa.std * scale, sb.std * scale, sa.n,
                          sb.n, exact)
    d = (sa.mean - sb.mean) * scale
    return Comparison(False, min(sa.n, sb.n), d, (math.nan, math.nan), welch, welch,
                      math.nan, sa.std * scale, sb.std * scale, sa.n, sb.n)


def gain(treated: BySeed, baseline: BySeed, claimed: float, *,
         scale: float = 100.0) -> Decision:
    """Is `treated` better than `baseline`, as the paper claims by `claimed` (in the units of
    the values times `scale`, e.g. points)? See the module docstring."""
    c = compare(treated, baseline, scale)
    ours = (f"{c.difference:+.2f} ({describe(list(treated.values()), scale)} vs "
            f"{describe(list(baseline.values()), scale)})")
    power, det = c.power(claimed), c.detectable()
    common = dict(difference=c.difference, p=c.p, detectable=det, ci=c.ci, welch_p=c.welch_p,
                  power=power, claimed=claimed, paired=c.paired, n=c.n, exact_p=c.exact_p)
    if math.isnan(c.p):  # then there is no spread, and no power either
        return Decision("inconclusive at this power", ours, "one seed or no spread: no test",
                        **common)
    test = c.in_words() + f"; detectable with 80% power: {det:.2f}"
    if not math.isnan(claimed):
        test += f"; paper: {claimed:+.2f}, power to detect it {power:.0%}"
    if c.p < ALPHA:
        return Decision("reproduced" if c.difference > 0 else "not reproduced", ours, test,
                        **common)
    if not math.isnan(power) and power >= POWER:
        return Decision("not reproduced", ours, test, **common)
    return Decision("inconclusive at this power", ours, test, **common,
                    seeds_needed=c.seeds_needed(claimed))


def near(values: Sequence[float], paper: float, tolerance: float, *,
         scale: float = 100.0) -> Decision:
    """Is the mean of `values` within `tolerance` of the paper's value (both times `scale`)?"""
    s = stats.summarize(values)
    d = s.mean * scale - paper * scale
    verdict: Verdict = "reproduced" if abs(d) <= tolerance else "not reproduced"
    ci = ((s.ci_low - paper) * scale, (s.ci_high - paper) * scale)
    return Decision(verdict, describe(values, scale),
                    f"|ours − paper| = {abs(d):.2f}, tolerance {tolerance:g}", d, n=s.n, ci=ci)


def alike(control: BySeed, like: BySeed, base: BySeed, margin: float, *, scale: float = 100.0,
          direction: int = 1) -> Decision:
    """Does `control` work like `like`, as a reading of `like`'s effect over `base` (whose
    sign the paper claims is `direction`) says, within the declared `margin` (in the units of
    the values times `scale`)? See the module docstring."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    effect = compare(like, base, scale)
    established = (not math.isnan(effect.p) and effect.p < ALPHA
                   and effect.difference * direction > 0)
    c = compare(control, like, scale)
    ours = (f"{c.difference:+.2f} ({describe(list(control.values()), scale)} vs "
            f"{describe(list(like.values()), scale)})")
    effect_words = (f"effect to explain {effect.difference:+.2f} (p = {effect.p:.3g}"
                    f"{', paired' if effect.paired else ', Welch'})")
    common = dict(difference=c.difference, p=c.p, ci=c.ci, welch_p=c.welch_p,
                  paired=c.paired, n=c.n)
    if not established:
        return Decision("nothing to explain at this scale", ours,
                        f"{effect_words}: not established in the paper's direction, so "
                        f"there is no gain here for the control to explain", **common,
                        seeds_needed=effect.seeds_needed(direction * abs(effect.difference))
                        if not math.isnan(effect.difference) and effect.difference *
                        direction > 0 else None)
    if not c.paired or c.n < 2:
        return Decision("inconclusive at this power", ours,
                        f"{effect_words}; no paired seeds for an equivalence test", **common)
    seeds = sorted(control)
    a, b = [control[s] * scale for s in seeds], [like[s] * scale for s in seeds]
    eq = stats.tost_paired(a, b, margin)
    needed = max(abs(eq.ci_low), abs(eq.ci_high))  # TOST passes exactly beyond its 90% CI
    test = (f"{effect_words}; TOST within the declared ±{margin:.2f}: p = {eq.p:.3g}, "
            f"90% CI [{eq.ci_low:+.2f}, {eq.ci_high:+.2f}]; the verdict would change at a "
            f"margin of {needed:.2f}")
    common = {**common, "p": eq.p, "detectable": margin, "margin_needed": needed}
    if eq.equivalent:
        return Decision("reproduced", ours, test, **common)
    if eq.ci_low > margin or eq.ci_high < -margin:
        return Decision("not reproduced", ours, test, **common)
    seeds_needed = (stats.tost_seeds_needed(margin, c.sd) if c.sd > 0 else None)
    return Decision("inconclusive at this power", ours, test, **common,
                    seeds_needed=seeds_needed)


def without(decision: Decision, why: str, again: Decision) -> Decision:
    """`decision` with a sensitivity note: what the rule says on the runs left after
    leaving out some (`why`), which the page prints below the verdict."""
    note = (f"{why}; without it: {again.ours}, {again.verdict}"
            + (f" (p = {again.p:.3g})" if not math.isnan(again.p) else ""))
    return replace(decision, notes=(*decision.notes, note))


def premise_not_met(decision: Decision,
                    premises: Sequence[tuple[str, bool | None, str]]) -> Decision:
    """`decision` with the premises a claim needs at this scale: where one is not met (False),
    the verdict is *premise not met at this scale* and the test's own verdict is kept as
    `tested`; met (True) or unmeasured (None) premises are only recorded beside it."""
    premises = tuple(premises)
    if decision.verdict == "not run at this scale" or all(m is not False for _, m, _ in premises):
        return replace(decision, premises=premises)
    return replace(decision, verdict="premise not met at this scale", tested=decision.verdict,
                   premises=premises)


def family(decisions: Sequence[Decision]) -> list[Decision]:
    """Holm's adjustment over a declared family of claims (:func:`kdlib.stats.holm` of each
    deciding p): each decision gets its `holm_p`, and a verdict that rested on p < α and does
    not keep it after the adjustment becomes *inconclusive at this power*, with a note. A
    verdict that rested on power (no difference found) is unchanged: adjusting only makes
    its p larger."""
    ps = [d.p if d.verdict != "not run at this scale" else math.nan for d in decisions]
    adjusted = stats.holm(ps, ALPHA)
    k = sum(not math.isnan(p) for p in ps)
    out = []
    for d, q in zip(decisions, adjusted, strict=True):
        d = replace(d, holm_p=q)
        verdict = d.tested or d.verdict
        rested_on_p = verdict in ("reproduced", "not reproduced") and d.p < ALPHA
        if rested_on_p and not q < ALPHA:
            note = (f"{verdict} alone (p = {d.p:.3g}), not after Holm's adjustment over the "
                    f"{k} claims of its family (p = {q:.3g})")
            if d.tested is not None:
                d = replace(d, tested="inconclusive at this power", notes=(*d.notes, note))
            else:
                d = replace(d, verdict="inconclusive at this power", notes=(*d.notes, note))
        out.append(d)
    return out
