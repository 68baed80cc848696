"""Which page shows a chapter, and each claim of the paper decided at a profile.

:func:`page` finds a chapter's page module (:attr:`kdlib.chapters.Chapter.page`) and checks
what it declares; :func:`all_claims` collects the claims the pages declare. :func:`decide`
decides one claim from its chapter's records under a profile: its primary reading, and the
same claim under every other reading that changes one of its rows (a :class:`Finding`);
:func:`adjusted` applies Holm's method over the profile's declared family; :func:`at` (every
claim at a profile, for the claims page) and :func:`for_chapter` (a chapter's page) do both.
:func:`sentence` says a finding in one line. Nothing here computes or changes a record.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from kdlib import chapters, config, readings, runs, staleness, verdicts
from kdlib.claims import Claim
from kdlib.verdicts import Decision

#: What every page module declares: the chapter it shows, its claims, its scale and setting.
DECLARES = ("NAME", "CLAIMS", "scale", "setting")


def page(chapter: str) -> ModuleType:
    """The page module of `chapter`, checked: it shows that chapter and declares
    :data:`DECLARES` (a :class:`TypeError` names what is wrong)."""
    name = chapters.get(chapter).page
    module = importlib.import_module(name)
    missing = [a for a in DECLARES if not hasattr(module, a)]
    if missing or chapter != module.NAME:
        raise TypeError(f"{chapter}'s page {name} " + (f"lacks {missing}" if missing else
                        f"shows chapter {module.NAME!r}"))
    return module


@dataclass(frozen=True)
class UnderReading:
    """A claim decided under another reading of the paper's open settings
    (:mod:`kdlib.readings`); `decision` is None where the profile did not pre-register the
    reading or its records are not all made."""

    reading: readings.Reading
    registered: bool
    decision: Decision | None


@dataclass(frozen=True)
class Finding:
    """A claim decided at one profile: its primary reading's `decision` (Holm-adjusted over
    the profile's declared family, :func:`kdlib.verdicts.family`), and the same claim under
    every other reading that changes one of its rows."""

    claim: Claim
    profile: str
    scale: str
    decision: Decision
    stale: tuple[str, ...] = ()  # commits of records made by code that has changed since
    readings: tuple[UnderReading, ...] = ()
    #: The primary reading on the other readings' seeds (None: they are the same seeds).
    on_reading_seeds: Decision | None = None
    #: The primary decision before Holm's adjustment (None: not adjusted).
    unadjusted: Decision | None = None

    @property
    def across_readings(self) -> str:
        """``same unadjusted verdict under all 3 readings``, ``depends on <setting>``, or ""
        where no other reading was run. Each reading is compared with the primary one on the same
        seeds, both unadjusted for the family (like with like)."""
        reference = self.on_reading_seeds or self.unadjusted or self.decision
        if reference.verdict == "not run at this scale":
            return ""
        ran = [u for u in self.readings if u.decision is not None]
        left = len(self.readings) - len(ran)
        tail = (f" ({left} declared reading{'s' if left > 1 else ''} not run at this scale)"
                if left else "")
        if not ran:
            return ("no other reading run at this scale" + tail) if self.readings else ""
        differ = [u for u in ran if u.decision.verdict != reference.verdict]
        if not differ:
            return f"same unadjusted verdict under all {len(ran) + 1} readings" + tail
        return ("depends on " + "; ".join(f"{u.reading.setting} ({u.reading.name}: "
                                          f"{u.decision.verdict})" for u in differ) + tail)


def all_claims() -> list[Claim]:
    """Every claim of the paper, in book order (each page's ``CLAIMS``)."""
    return [c for ch in chapters.all_chapters() for c in page(ch.name).CLAIMS]


def rows_changed(chapter: str, reading: readings.Reading, cfg: config.Common
                  ) -> frozenset[str]:
    """The rows of `chapter` that `reading` changes under `cfg` (a reading can change a row
    under one profile and not under another: the final epoch is the best one for a profile
    that does not stop early)."""
    base = dataclasses.replace(cfg, seeds=cfg.seeds[:1], reading_seeds=cfg.seeds[:1],
                               readings=[], pilot_seeds=[])
    return frozenset(run.name.split(readings.SEP)[0]
                     for run in readings.runs_of(reading, base, chapters.get(chapter).plan))


def _under_readings(claim: Claim, cfg: config.Common, records: runs.Records
                    ) -> tuple[UnderReading, ...]:
    out = []
    for r in chapters.get(claim.chapter).readings:
        changed = rows_changed(claim.chapter, r, cfg) & set(claim.rows)
        if not changed:
            continue
        registered = r.name in cfg.readings
        made = registered and all(
            {int(x.seed) for x in records.get(f"{row}{readings.SEP}{r.name}", [])}
            >= set(cfg.reading_seeds) for row in changed)
        decision = (claim.judge(readings.substitute(records, r.name, cfg.reading_seeds), cfg)
                    if made else None)
        if decision is not None and decision.verdict == "not run at this scale":
            decision = None  # a row the claim compares was not run under this profile
        out.append(UnderReading(r, registered, decision))
    return tuple(out)


def decide(claim: Claim, cfg: config.Common | None,
           plan: Sequence[runs.Run] | None = None) -> Finding:
    """`claim` decided from the records of its chapter under `cfg` (None: not run), under its
    primary reading and every other one (not adjusted for its family: :func:`findings`)."""
    if claim.fixed_scale is not None:
        return Finding(claim, "—", claim.fixed_scale, claim.judge({}, cfg))
    if cfg is None:
        return Finding(claim, "—", "—", verdicts.not_run("no such profile section"))
    plan = plan if plan is not None else chapters.plan(claim.chapter, cfg)
    records = runs.saved(plan)
    scale = page(claim.chapter).scale(cfg)
    if records is None:
        return Finding(claim, cfg.profile, scale, verdicts.not_run())
    under = _under_readings(claim, cfg, records)
    subset = (claim.judge(readings.substitute(records, "", cfg.reading_seeds), cfg)
              if any(u.decision for u in under) and set(cfg.reading_seeds) != set(cfg.seeds)
              else None)
    return Finding(claim, cfg.profile, scale, claim.judge(readings.primary(records), cfg),
                   staleness.stale_records(records, claim.chapter, plan), under, subset)


def family_of(profile: str) -> str:
    """The multiplicity family `profile` declares (:data:`kdlib.config.FAMILIES`); a profile
    that is not a file of ``profiles/`` takes each chapter as its family."""
    try:
        return config.read(profile).family
    except config.ProfileError:
        return "chapter"


def adjusted(found: Sequence[Finding], family: str) -> list[Finding]:
    """`found` with each primary decision adjusted by Holm's method over its `family`: every
    claim of the list (``profile``), those of one chapter (``chapter``) or none (``claim``)."""
    if family == "claim":
        return list(found)
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(found):
        if f.claim.fixed_scale is None:
            groups.setdefault(f.claim.chapter if family == "chapter" else "", []).append(i)
    out = list(found)
    for members in groups.values():
        decisions = verdicts.family([found[i].decision for i in members])
        for i, d in zip(members, decisions, strict=True):
            out[i] = dataclasses.replace(found[i], decision=d, unadjusted=found[i].decision)
    return out


def _decided(cfgs: dict[str, config.Common], family: str) -> list[Finding]:
    """Every claim decided under `cfgs` (each chapter's plan built once), adjusted over
    `family`."""
    plans = {c: chapters.plan(c, cfg) for c, cfg in cfgs.items()}
    found = [decide(c, cfgs.get(c.chapter), plans.get(c.chapter)) for c in all_claims()]
    return adjusted(found, family)


def at(profile: str) -> list[Finding]:
    """Every claim decided at `profile` (the profile's records only, nothing is run), the
    primary verdicts adjusted over the profile's declared family."""
    return _decided(chapters.load_profile(profile), family_of(profile))


def for_chapter(chapter: str, cfg: config.Common) -> list[Finding]:
    """The claims `chapter` decides at `cfg`'s scale, adjusted over the family its profile
    declares (the whole profile's claims where that is the family)."""
    family = family_of(cfg.profile)
    cfgs: dict[str, config.Common] = {}
    if family == "profile":
        try:
            cfgs = chapters.load_profile(cfg.profile)
        except config.ProfileError:
            cfgs = {}
        family = "profile" if chapter in cfgs else "chapter"
    found = _decided({**cfgs, chapter: cfg}, family)
    return [f for f in found if f.claim.chapter == chapter]


def sentence(f: Finding, markdown: bool = True) -> str:
    """One line for a page: the claim, its verdict and scale, the numbers behind it, what
    an undecided claim would need, and any sensitivity note."""
    d = f.decision
    verdict = f"**{d.label}**" if markdown else d.label
    stale = (f" (stale: made at {', '.join(c[:7] for c in f.stale)}; this chapter's "
             f"computation has changed since)" if f.stale else "")
    line = (f"{f.claim.id}, \"{f.claim.statement}\" (paper: {f.claim.paper}): {verdict} at "
            f"{f.scale}{stale}. Ours: {d.ours}; {d.test}.")
    for text, met, measured in d.premises:
        state = {True: "met", False: "not met", None: "not measured"}[met]
        line += f" Premise ({text}): {state}, {measured}."
    if d.tested:
        line += f" The test alone says: {d.tested}."
    if not math.isnan(d.holm_p):
        line += f" Holm-adjusted p over its family: {d.holm_p:.3g}."
    if size := d.size():
        line += f" Size: {size}."
    if f.across_readings:
        line += f" Across readings: {f.across_readings}."
    if d.seeds_needed:
        line += (f" Deciding it would take {d.seeds_needed} seeds"
                 + (f" (about {d.hours_needed:.1f} CPU hours, one core a run)"
                    if not math.isnan(d.hours_needed) else "") + ".")
    for note in d.notes:
        line += f" Sensitivity: {note}."
    return line
