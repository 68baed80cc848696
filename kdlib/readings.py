"""Readings: the settings the paper leaves open, each declared once with its alternatives.

The paper does not fix every setting a reproduction needs (the loss weights for 10
classes, the self-teacher, early stopping). A chapter's primary parameters are one
reading of them; a :class:`Reading` names another, as the parameters it changes. A
profile pre-registers which readings it runs (``readings``) and on which seeds
(``reading_seeds``); :func:`runs` adds their runs to the chapter's plan, and only the
runs whose spec the reading changes: a row it leaves alone is shared with the primary
reading, so its records are paired with theirs seed by seed. A reading's record is
named ``<row>@<reading>``; :func:`substitute` gives the records a claim sees under a
reading (each row replaced by its reading's runs, every row on the reading's seeds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kdlib import runs
from kdlib.config import Common, ProfileError

#: What separates a row's name from its reading's in a record name.
SEP = "@"


@dataclass(frozen=True)
class Reading:
    """Another defensible reading of settings the paper leaves open.

    `setting` says in words what is open, `primary` the chapter's reading of it and
    `alternative` this one (each with its source), `changes` the parameters this one sets.
    """

    name: str
    setting: str
    primary: str
    alternative: str
    changes: Mapping[str, Any]


def declared(readings: Sequence[Reading], names: Sequence[str]) -> list[Reading]:
    """The readings `names` (a profile's ``readings``), in declaration order; a
    :class:`ProfileError` names an unknown one."""
    known = {r.name: r for r in readings}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ProfileError(f"readings: unknown {unknown}; this chapter declares "
                           f"{sorted(known)}")
    return [r for r in readings if r.name in names]


def runs_of(reading: Reading, cfg: Common, plan: Callable[[Any], list[runs.Run]]
            ) -> list[runs.Run]:
    """The runs `reading` adds to `plan` under `cfg`: those its changes alter, on the
    reading seeds, each named ``<row>@<reading>``."""
    if not cfg.reading_seeds:
        return []
    base = dataclasses.replace(cfg, seeds=list(cfg.reading_seeds), readings=[])
    shared = {(r.name, r.spec_hash) for r in plan(base)}
    other = plan(dataclasses.replace(base, **reading.changes))
    return [dataclasses.replace(r, name=f"{r.name}{SEP}{reading.name}", reading=reading.name)
            for r in other if (r.name, r.spec_hash) not in shared]


def rows_changed(records_or_names: Mapping[str, Any] | Sequence[str], reading: str
                 ) -> set[str]:
    """The rows that `reading` has runs of, among record names."""
    return {n.split(SEP, 1)[0] for n in records_or_names
            if SEP in n and n.split(SEP, 1)[1] == reading}


def substitute(records: runs.Records, reading: str, seeds: Sequence[int]) -> runs.Records:
    """The records a claim sees under `reading`: every primary row on `seeds`, a row the
    reading changes replaced by its ``<row>@<reading>`` runs, and a row only the reading
    has (a teacher it trains otherwise) under its own name."""
    keep = set(seeds)
    out: runs.Records = {}
    only = [n.split(SEP, 1)[0] for n in records if n.endswith(f"{SEP}{reading}")]
    for name in [n for n in records if SEP not in n] + [n for n in only if n not in records]:
        chosen = records.get(f"{name}{SEP}{reading}", records.get(name, []))
        out[name] = [r for r in chosen if int(r.seed) in keep]
    return out


def primary(records: runs.Records) -> runs.Records:
    """The records of the primary reading only."""
    return {n: rs for n, rs in records.items() if SEP not in n}
