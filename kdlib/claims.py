"""The paper's claims, and the rules that decide each one from a chapter's records.

A :class:`Claim` states what the paper says (:mod:`kdlib.paper` holds its words and
numbers), names the chapter whose records decide it and the rows it compares, and
carries its *rule*: a function ``(records, parameters) -> Decision``
(:mod:`kdlib.verdicts` holds the tests). The rules here are built from rows, never
from record names typed out: :func:`gain` ("A beats B"), :func:`alike` ("control C
works like A") and the per-seed forms of them for derived measures.

Which claims a chapter decides is declared on its page (:mod:`kdlib.pages`), where
:func:`kdlib.pages.findings` decides them at a profile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kdlib import report, runs, stats, verdicts
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
    return report.metric(records.get(getattr(row, "name", row), []), key)


def _has(records: Records, *rows: Row | str) -> bool:
    return all(getattr(r, "name", r) in records for r in rows)


def gain(treated: Row | str, baseline: Row | str, claimed: float,
         key: str = "test_acc") -> Rule:
    """"`treated` beats `baseline`" on `key` (:func:`kdlib.verdicts.gain`); `claimed` is the
    paper's difference in points."""
    def decide(records: Records, cfg: Any) -> Decision:
        if not _has(records, treated, baseline):
            return verdicts.not_run(f"no `{getattr(treated, 'name', treated)}` or "
                                    f"`{getattr(baseline, 'name', baseline)}` records")
        return verdicts.gain(values(records, treated, key), values(records, baseline, key),
                             claimed)
    return decide


def alike(control: Row, like: Row, base: Row, key: str = "test_acc") -> Rule:
    """"`control` (label smoothing) works like `like` (a distilled row)", at the resolution
    of `like`'s effect over `base` (:func:`kdlib.verdicts.alike`)."""
    def decide(records: Records, cfg: Any) -> Decision:
        if not _has(records, control, like, base):
            return verdicts.not_run(f"no `{control.name}` control at this scale")
        effect = 100 * (stats.summarize(values(records, like, key)).mean
                        - stats.summarize(values(records, base, key)).mean)
        return verdicts.alike(values(records, control, key), values(records, like, key), effect)
    return decide


def per_seed_gain(treated: Row, baseline: Row,
                  measure: Callable[[dict[str, Any]], float]) -> Rule:
    """"`treated` has a larger `measure` than `baseline`": `measure` of each seed's record,
    both divided by the baseline's mean so that the rule sees ratios."""
    def decide(records: Records, cfg: Any) -> Decision:
        if not _has(records, treated, baseline):
            return verdicts.not_run()
        try:
            base = [measure(r) for r in records[baseline.name]]
            ours = [measure(r) for r in records[treated.name]]
        except (KeyError, TypeError):
            return verdicts.not_run("no gradient samples recorded")
        mean = stats.summarize(base).mean
        return verdicts.gain([v / mean for v in ours], [v / mean for v in base], math.nan,
                             scale=1.0)
    return decide


def change(before: float, after: float, digits: int = 2) -> str:
    """A paper's change in words: ``98.06 → 98.73 (+0.67)`` from two fractions."""
    return (f"{100 * before:.{digits}f} → {100 * after:.{digits}f} "
            f"({100 * (after - before):+.{digits}f})")


def ordered(claims: Sequence[Claim]) -> list[Claim]:
    """`claims` in the paper's order (by chapter, then as declared)."""
    return sorted(claims, key=lambda c: c.chapter)
