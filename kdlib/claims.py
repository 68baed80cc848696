"""The paper's claims, and the rules that decide each one from a chapter's records.

A :class:`Claim` states what the paper says (:mod:`kdlib.paper` holds its words and
numbers), names the chapter whose records decide it and the rows it compares, and
carries its *rule*: a function ``(records, parameters) -> Decision``
(:mod:`kdlib.verdicts` holds the tests). The rules here are built from rows, never
from record names typed out: :func:`gain` ("A beats B"), :func:`alike` ("control C
works like A") and :func:`per_seed_gain` for a derived measure. Each compares rows seed
by seed (the design pairs), adds the CPU hours that the seeds it would need cost, and,
where a run trained unstably (:mod:`kdlib.instability`), names it and adds the verdict
without it as a sensitivity line.

Which claims a chapter decides is declared on its page (:mod:`kdlib.pages`), where
:func:`kdlib.pages.findings` decides them at a profile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kdlib import instability, report, runs, stats, verdicts
from kdlib.verdicts import Decision

Records = runs.Records
Rule = Callable[[Records, Any], Decision]


class Row(Protocol):
    """A table row a rule compares: anything with the ``name`` of its records."""

    name: str


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how the records decide it."""

    id: str
    chapter: str
    statement: str  # as the paper states it (kdlib.paper.STATEMENTS)
    paper: str  # the paper's numbers
    test: str  # the rule, in words
    decide: Rule  # (records of the chapter, its parameters) -> Decision
    #: The scale of a claim that no run decides (an analytic one), else None.
    fixed_scale: str | None = None


def values(records: Records, row: Row | str, key: str = "test_acc") -> list[float]:
    """`key` of every record of `row` (a row or a record name), in seed order."""
    return report.metric(records.get(_name(row), []), key)


def by_seed(records: Records, row: Row | str, key: str = "test_acc",
            measure: Callable[[dict[str, Any]], float] | None = None) -> dict[int, float]:
    """Seed -> `key` (or `measure(record)`) of every record of `row`."""
    get = measure or (lambda r: float(r["metrics"][key]))
    return {int(r["spec"]["seed"]): get(r) for r in records.get(_name(row), [])}


def _name(row: Row | str) -> str:
    return getattr(row, "name", row)


def _has(records: Records, *rows: Row | str) -> bool:
    return all(_name(r) in records for r in rows)


def unstable(records: Records, rows: Sequence[Row | str]) -> dict[int, str]:
    """Seed -> why, for the seeds where a run of `rows` trained unstably
    (:mod:`kdlib.instability`: a loss spike or a held-out collapse)."""
    out: dict[int, list[str]] = {}
    for row in rows:
        for r in records.get(_name(row), []):
            flags = instability.flags(r["metrics"].get("history") or [])
            if flags:
                out.setdefault(int(r["spec"]["seed"]), []).append(
                    f"`{_name(row)}` seed {r['spec']['seed']}: {flags[0].detail}")
    return {seed: "; ".join(why) for seed, why in out.items()}


def _drop(records: Records, seeds: set[int]) -> Records:
    return {name: [r for r in rs if int(r["spec"]["seed"]) not in seeds]
            for name, rs in records.items()}


def hours(records: Records, rows: Sequence[Row | str], seeds: int | None) -> float:
    """CPU hours (one core a run, as the records ran) of `seeds` seeds of `rows`, at their
    records' mean wall time."""
    if not seeds:
        return math.nan
    per_seed = 0.0
    for row in rows:
        times = [r["wall_time_s"] for r in records.get(_name(row), []) if "wall_time_s" in r]
        per_seed += sum(times) / len(times) if times else 0.0
    return seeds * per_seed / 3600


def _checked(rule: Callable[[Records], Decision], rows: Sequence[Row | str]
             ) -> Callable[[Records, Any], Decision]:
    """`rule` with the CPU hours its seeds would need, and, when a run of `rows` trained
    unstably, the flagged seeds named and the rule again without them (a sensitivity
    line): the flagged runs stay in the verdict."""
    def decide(records: Records, cfg: Any) -> Decision:
        if not _has(records, *rows):
            return verdicts.not_run(f"no `{'` or `'.join(_name(r) for r in rows)}` records")
        decision = rule(records)
        if decision.seeds_needed:
            decision = dataclasses.replace(
                decision, hours_needed=hours(records, rows, decision.seeds_needed))
        flagged = unstable(records, rows)
        if flagged:
            why = "unstable training: " + "; ".join(flagged.values())
            rest = _drop(records, set(flagged))
            if all(rest[_name(r)] for r in rows):
                decision = verdicts.without(decision, why, rule(rest))
            else:  # every run of a row was flagged: nothing to decide without them
                decision = dataclasses.replace(decision, notes=(
                    *decision.notes, f"{why}; without it no run of a row is left"))
        return decision
    return decide


def gain(treated: Row | str, baseline: Row | str, claimed: float,
         key: str = "test_acc") -> Rule:
    """"`treated` beats `baseline`" on `key` (:func:`kdlib.verdicts.gain`, paired over
    seeds); `claimed` is the paper's difference in points."""
    return _checked(lambda records: verdicts.gain(by_seed(records, treated, key),
                                                  by_seed(records, baseline, key), claimed),
                    (treated, baseline))


def alike(control: Row, like: Row, base: Row, key: str = "test_acc") -> Rule:
    """"`control` (label smoothing) works like `like` (a distilled row)", as the explanation
    of `like`'s gain over `base` (:func:`kdlib.verdicts.alike`: the gain must be there, then
    an equivalence test with a margin of half of it)."""
    return _checked(lambda records: verdicts.alike(by_seed(records, control, key),
                                                   by_seed(records, like, key),
                                                   by_seed(records, base, key)),
                    (control, like, base))


def per_seed_gain(treated: Row, baseline: Row, measure: Callable[[dict[str, Any]], float],
                  claimed: float) -> Rule:
    """"`treated` has a larger `measure` than `baseline` by `claimed`": `measure` of each
    seed's record, both divided by the baseline's mean, so that the rule sees ratios and
    `claimed` is a relative size (0.10: ten per cent larger)."""
    def rule(records: Records) -> Decision:
        base = by_seed(records, baseline, measure=measure)
        mean = stats.summarize(list(base.values())).mean
        ours = by_seed(records, treated, measure=measure)
        return verdicts.gain({s: v / mean for s, v in ours.items()},
                             {s: v / mean for s, v in base.items()}, claimed, scale=1.0)

    def decide(records: Records, cfg: Any) -> Decision:
        try:
            return _checked(rule, (treated, baseline))(records, cfg)
        except (KeyError, TypeError):
            return verdicts.not_run("no gradient samples recorded")
    return decide


def change(before: float, after: float, digits: int = 2) -> str:
    """A paper's change in words: ``98.06 → 98.73 (+0.67)`` from two fractions."""
    return (f"{100 * before:.{digits}f} → {100 * after:.{digits}f} "
            f"({100 * (after - before):+.{digits}f})")
