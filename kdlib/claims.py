"""The paper's claims, and the rules that decide each one from a chapter's records.

A :class:`Claim` states what the paper says (:mod:`kdlib.paper` holds its words and
numbers), names the chapter whose records decide it and the rows it compares, and
carries its *rule*: a function ``(records, parameters) -> Decision``
(:mod:`kdlib.verdicts` holds the tests). The rules here are built from rows, never
from record names typed out: :func:`gain` ("A beats B"), :func:`alike` ("control C
works like A") and :func:`per_seed_gain` for a derived measure. Each is a
:class:`RowRule` that knows its rows (so that a reading that changes one of them,
:mod:`kdlib.readings`, is known to matter), compares them seed by seed (the design
pairs), adds the CPU hours that the seeds it would need cost, and, where a run trained
unstably or collapsed (:mod:`kdlib.instability`), or where a seed was also run by the
pilot that chose the seeds, adds the verdict without those seeds as a sensitivity line.

A claim may need *premises* (:class:`Premise`): conditions under which its test answers
the paper's question at all (the "teacher" of Re-KD less accurate than its student...).
They are measured from the same records, and a claim whose premise fails gets the
verdict *premise not met at this scale* (:func:`kdlib.verdicts.premise_not_met`).

Which claims a chapter decides is declared on its page (:mod:`kdlib.pages`), where
:func:`kdlib.pages.findings.at` decides them at a profile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kdlib import instability, report, results, runs, stats, verdicts
from kdlib.verdicts import Decision

Records = runs.Records
Rule = Callable[[Records, Any], Decision]
#: The level of training cross-entropy at which a self-teacher fits its training data: the
#: official Tf-KD teacher (200 epochs on CIFAR) ends far below it (pre-registered, issue 25).
FIT_LOSS = 0.10


class NotRecorded(Exception):  # noqa: N818 (a state of the records, not an error)
    """A derived measure the records lack by design (a profile that samples no gradients):
    the claim is not run, and says why."""


class Row(Protocol):
    """A table row a rule compares: anything with the ``name`` of its records."""

    name: str


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how the records decide it."""

    id: str
    chapter: str
    statement: str  # the claim in words, as the paper makes it
    paper: str  # the paper's numbers
    test: str  # the rule, in words
    decide: Rule  # (records of the chapter, its parameters) -> Decision
    #: The scale of a claim that no run decides (an analytic one), else None.
    fixed_scale: str | None = None
    #: What must hold at a scale for the test to answer the paper's question.
    premises: tuple[Premise, ...] = ()

    @property
    def rows(self) -> tuple[str, ...]:
        """The record names the rule compares (none for an analytic claim)."""
        return getattr(self.decide, "rows", ())

    def judge(self, records: Records, cfg: Any) -> Decision:
        """The rule's decision with the premises measured on the same records."""
        decision = self.decide(records, cfg)
        return verdicts.premise_not_met(decision, [p.check(records) for p in self.premises])


@dataclass(frozen=True)
class Premise:
    """A condition a claim's test needs at a scale: `text` in words, `measure(records)` gives
    whether it holds (None: not measurable from these records) and the measurement."""

    text: str
    measure: Callable[[Records], tuple[bool | None, str]]

    def check(self, records: Records) -> tuple[str, bool | None, str]:
        met, measured = self.measure(records)
        return self.text, met, measured


def at_least(row: Row | str, other: Row | str, key: str, what: str) -> Premise:
    """"`row` is at least as good as `other` on `key`": the mean paired difference over their
    common seeds is not negative (its 95% interval is shown)."""
    def measure(records: Records) -> tuple[bool | None, str]:
        a, b = by_seed(records, row, key), by_seed(records, other, key)
        common = sorted(set(a) & set(b))
        if len(common) < 2:
            return None, "fewer than two common seeds"
        pr = stats.paired([a[s] for s in common], [b[s] for s in common])
        words = (f"`{_name(row)}` − `{_name(other)}` = {100 * pr.mean:+.2f} points, 95% CI "
                 f"[{100 * pr.ci_low:+.2f}, {100 * pr.ci_high:+.2f}] (paired over "
                 f"{pr.n} seeds, p = {pr.p:.3g})")
        return pr.mean >= 0, words
    return Premise(what, measure)


def fits(teacher: Row | str, what: str, level: float = FIT_LOSS,
         trained_apart: str | None = None) -> Premise:
    """"The teacher `teacher` fits its training data": the mean final training cross-entropy
    of its runs is at most `level`. Where the records hold `trained_apart` (the teacher
    trained otherwise than its row, under a reading), those runs are the teacher."""
    def measure(records: Records) -> tuple[bool | None, str]:
        name = trained_apart if trained_apart in records else _name(teacher)
        losses = [float(r.metric("final_train_loss")) for r in records.get(name, [])
                  if "final_train_loss" in r.metrics]
        if not losses:
            return None, "no training loss recorded"
        mean = sum(losses) / len(losses)
        return mean <= level, (f"`{name}` ends at a training cross-entropy of "
                               f"{mean:.3f} ({min(losses):.3f}–{max(losses):.3f} over "
                               f"{len(losses)} seeds); the premise asks ≤ {level:g}")
    return Premise(what, measure)


def values(records: Records, row: Row | str, key: str = "test_acc") -> list[float]:
    """`key` of every record of `row` (a row or a record name), in seed order."""
    return report.metric(records.get(_name(row), []), key)


def by_seed(records: Records, row: Row | str, key: str = "test_acc",
            measure: Callable[[results.Record], float] | None = None) -> dict[int, float]:
    """Seed -> `key` (or `measure(record)`) of every record of `row`; a missing metric is a
    :class:`kdlib.results.MissingMetricError` naming the record."""
    get = measure or (lambda r: float(r.metric(key)))
    return {int(r.seed): get(r) for r in records.get(_name(row), [])}


def _name(row: Row | str) -> str:
    return getattr(row, "name", row)


def _has(records: Records, *rows: Row | str) -> bool:
    return all(_name(r) in records for r in rows)


def unstable(records: Records, rows: Sequence[Row | str]) -> dict[int, str]:
    """Seed -> why, for the seeds where a run of `rows` trained unstably
    (:mod:`kdlib.instability`: a loss spike, a held-out collapse or a collapse to chance)."""
    out: dict[int, list[str]] = {}
    for row in rows:
        for r in records.get(_name(row), []):
            flags = instability.flags(r.metrics.get("history") or [], metrics=r.metrics)
            if flags:
                out.setdefault(int(r.seed), []).append(
                    f"`{_name(row)}` seed {r.seed}: {flags[0].detail}")
    return {seed: "; ".join(why) for seed, why in out.items()}


def _drop(records: Records, seeds: set[int]) -> Records:
    return {name: [r for r in rs if int(r.seed) not in seeds]
            for name, rs in records.items()}


def hours(records: Records, rows: Sequence[Row | str], seeds: int | None) -> float:
    """CPU hours (one core a run, as the records ran) of `seeds` seeds of `rows`, at their
    records' mean time to make (:attr:`kdlib.results.Record.seconds_to_make`)."""
    if not seeds:
        return math.nan
    per_seed = 0.0
    for row in rows:
        times = [t for r in records.get(_name(row), []) if (t := r.seconds_to_make) is not None]
        per_seed += sum(times) / len(times) if times else 0.0
    return seeds * per_seed / 3600


def mixed_kinds(records: Records, rows: Sequence[Row | str]) -> str:
    """A note where the runs a claim pairs within a seed were made on different kinds of CPU
    (a training need not end bit for bit the same on two kinds), else ""."""
    kinds: dict[int, set[str]] = {}
    for row in rows:
        for r in records.get(_name(row), []):
            kinds.setdefault(int(r.seed), set()).add(r.cpu)
    mixed = sorted(s for s, k in kinds.items() if len(k) > 1)
    if not mixed:
        return ""
    names = sorted(set().union(*(kinds[s] for s in mixed)))
    return (f"pairs across kinds of CPU: within seeds {mixed} the runs compared were made on "
            f"{' and on '.join(names)}")


def one_computation(records: Records, rows: Sequence[Row | str]) -> str:
    """A note where two compared rows are one computation: on every common seed their specs
    differ in nothing but the row's ``method`` name (a reading can give two methods the same
    settings), so their difference is zero by construction; else ""."""
    if len(rows) != 2:
        return ""
    def what(r: results.Record) -> dict[str, Any]:
        return {k: v for k, v in r.spec.items() if k != "method"}
    a, b = ({r.seed: what(r) for r in records.get(_name(row), [])} for row in rows)
    common = sorted(set(a) & set(b))
    if not common or any(a[s] != b[s] for s in common):
        return ""
    return (f"`{_name(rows[0])}` and `{_name(rows[1])}` are one computation here: on seeds "
            f"{common} their specs differ only in the row's name, so the test compares a "
            f"method with itself")


@dataclass(frozen=True)
class RowRule:
    """A rule over named rows: `rule(records)` decides, and calling the RowRule adds what
    every rule adds (see the module docstring). `missing` is what an error of `tolerate`
    while deciding means (a derived measure the records do not have)."""

    rows: tuple[str, ...]
    rule: Callable[[Records], Decision]
    tolerate: tuple[type[Exception], ...] = ()
    missing: str = ""

    def __call__(self, records: Records, cfg: Any) -> Decision:
        if not _has(records, *self.rows):
            return verdicts.not_run(f"no `{'` or `'.join(self.rows)}` records")
        try:
            decision = self._decide(records, cfg)
        except self.tolerate:
            return verdicts.not_run(self.missing)
        return decision

    def _decide(self, records: Records, cfg: Any) -> Decision:
        decision = self.rule(records)
        if decision.seeds_needed:
            decision = dataclasses.replace(
                decision, hours_needed=hours(records, self.rows, decision.seeds_needed))
        flagged = unstable(records, self.rows)
        if flagged:
            decision = self._without(decision, records, set(flagged),
                                     "unstable training: " + "; ".join(flagged.values()))
        for note in (mixed_kinds(records, self.rows), one_computation(records, self.rows)):
            if note:
                decision = dataclasses.replace(decision, notes=(*decision.notes, note))
        pilot = set(getattr(cfg, "pilot_seeds", []) or []) & {
            int(r.seed) for r in records.get(self.rows[0], [])}
        if pilot:
            decision = self._without(decision, records, pilot,
                                     f"seeds {sorted(pilot)} were also run by the pilot that "
                                     f"chose the seeds")
        return decision

    def _without(self, decision: Decision, records: Records, seeds: set[int],
                 why: str) -> Decision:
        rest = _drop(records, seeds)
        if all(rest[r] for r in self.rows):
            return verdicts.without(decision, why, self.rule(rest))
        return dataclasses.replace(decision, notes=(
            *decision.notes, f"{why}; without it no run of a row is left"))


def gain(treated: Row | str, baseline: Row | str, claimed: float,
         key: str = "test_acc") -> Rule:
    """"`treated` beats `baseline`" on `key` (:func:`kdlib.verdicts.gain`, paired over
    seeds); `claimed` is the paper's difference in points."""
    return RowRule((_name(treated), _name(baseline)),
                   lambda records: verdicts.gain(by_seed(records, treated, key),
                                                 by_seed(records, baseline, key), claimed))


def alike(control: Row, like: Row, base: Row, claimed: float, key: str = "test_acc") -> Rule:
    """"`control` (label smoothing) works like `like` (a distilled row)", as the explanation
    of `like`'s gain over `base`, which the paper puts at `claimed` points
    (:func:`kdlib.verdicts.alike`: the gain must be there, then an equivalence test whose
    margin, declared before the records, is :data:`kdlib.verdicts.MARGIN_SHARE` of the
    paper's gain)."""
    margin = verdicts.MARGIN_SHARE * abs(claimed)
    return RowRule((_name(control), _name(like), _name(base)),
                   lambda records: verdicts.alike(by_seed(records, control, key),
                                                  by_seed(records, like, key),
                                                  by_seed(records, base, key), margin))


def per_seed_gain(treated: Row, baseline: Row, measure: Callable[[results.Record], float],
                  claimed: float) -> Rule:
    """"`treated` has a larger `measure` than `baseline` by `claimed`": `measure` of each
    seed's record, both divided by the baseline's mean, so that the rule sees ratios and
    `claimed` is a relative size (0.10: ten per cent larger). A `measure` raises
    :class:`NotRecorded` where the records lack it by design (the claim is then not run);
    any other error propagates."""
    def rule(records: Records) -> Decision:
        base = by_seed(records, baseline, measure=measure)
        mean = stats.summarize(list(base.values())).mean
        ours = by_seed(records, treated, measure=measure)
        return verdicts.gain({s: v / mean for s, v in ours.items()},
                             {s: v / mean for s, v in base.items()}, claimed, scale=1.0)

    return RowRule((_name(treated), _name(baseline)), rule, (NotRecorded,),
                   "no gradient samples recorded")


def change(before: float, after: float, digits: int = 2) -> str:
    """A paper's change in words: ``98.06 → 98.73 (+0.67)`` from two fractions."""
    return (f"{100 * before:.{digits}f} → {100 * after:.{digits}f} "
            f"({100 * (after - before):+.{digits}f})")
