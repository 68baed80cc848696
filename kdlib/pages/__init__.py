"""What each chapter's page shows beside its records: claims, tables, figures and prose.

One module per page, named for what it shows (``table1``, ``table2``, ``table3``, ``table4``
with Figure 1, ``figure2``, ``table5``; ``image_pages`` holds what the last four share) and
found through its chapter's :attr:`kdlib.chapters.Chapter.page`. A page module declares
the claims its chapter decides (``CLAIMS``), says in words what scale a parameter set is
(``scale(cfg)``) and what setting a page was built with (``setting(cfg)``), and draws the
chapter's tables and figures from records. Nothing here computes or changes a record, so no
edit here makes a record stale (:mod:`kdlib.staleness`).

This module holds what every page does the same way, so that a notebook cell is one
call: :func:`start` (validate the notebook's parameters, say the setting, list them),
:func:`records` (run or load the chapter's runs), :func:`show_claims` (the claims
decided at this page's scale), :func:`show_committed` (every committed profile's
records of this chapter, disclosed with their scale, staleness and warnings) and
:func:`findings` (every claim at a profile, for the claims page).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pandas as pd

from kdlib import (
    chapters,
    claims,
    config,
    flops,
    paths,
    readings,
    report,
    runs,
    staleness,
    verdicts,
)
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


# --- claims decided at a profile ------------------------------------------------------------------

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


def _rows_changed(chapter: str, reading: readings.Reading, cfg: config.Common
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
        changed = _rows_changed(claim.chapter, r, cfg) & set(claim.rows)
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


def findings(profile: str) -> list[Finding]:
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


# --- what every notebook does ---------------------------------------------------------------------

def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)


def _markdown(text: str) -> Any:
    from IPython.display import Markdown

    return Markdown(text)


def start(chapter: str, namespace: dict[str, Any]) -> config.Common:
    """A notebook's first call: validate its parameters (:func:`kdlib.chapters.parameters`),
    say what setting the page is built with, glue the profile and the number of seeds for
    the text (``<prefix>_profile``, ``<prefix>_seeds``), and list every parameter."""
    cfg = chapters.parameters(chapter, namespace)
    p = page(chapter)
    _display(_markdown(p.setting(cfg)))
    report.glue_value(f"{p.GLUE}_profile", cfg.profile)
    report.glue_value(f"{p.GLUE}_seeds", len(cfg.seeds))
    _display(report.params_table(cfg))
    return cfg


def records(chapter: str, cfg: config.Common, progress: bool = True) -> runs.Records:
    """Every record of the chapter under `cfg`, computing the missing ones, with a line per
    run and an estimate of the time left (:class:`kdlib.runs.Progress`)."""
    plan = chapters.plan(chapter, cfg)
    return runs.run_all(plan, progress, flops=flops.to_compute([r for r in plan if not r.done]))


def show_claims(chapter: str, cfg: config.Common) -> None:
    """Print the claims the chapter decides at `cfg`'s scale (every scale: the claims page),
    and draw them as a forest plot (:mod:`kdlib.pages.forest`)."""
    from kdlib.pages import forest, verdict_tables

    found = for_chapter(chapter, cfg)
    text = verdict_tables.claims_table(found)
    curve = verdict_tables.readings_table(found)
    if curve:
        text += ("\n\n**Under every reading** of the settings the paper leaves open (the "
                 "primary one first; the others on their pre-registered seeds):\n\n" + curve)
    text += "\n\n" + "\n\n".join(f"- {sentence(f)}" for f in found)
    _display(_markdown(text))
    fig = forest.figure(found, f"The claims of this chapter at {cfg.profile!r}")
    if fig is not None:
        import matplotlib.pyplot as plt

        _display(fig)
        plt.close(fig)


def committed_profiles(*, pilots: bool = False) -> list[str]:
    """The profiles whose records the repository commits, ``paper`` first (pilots only with
    `pilots`)."""
    names = []
    for path in sorted(paths.profiles_dir().glob("*.yaml")):
        prof = config.read(path)
        if prof.committed and prof.pilot == pilots:
            names.append(path.stem)
    return sorted(names, key=lambda n: (n != "paper", n != "cpu", n))


def show_committed(chapter: str) -> None:
    """Every committed profile's records of this chapter: a section each, with the profile's
    own description, the scale, whether its records are current for today's code, its
    warnings, the page's tables of them and the claims they decide. Nothing is computed."""
    p = page(chapter)
    for profile in committed_profiles():
        cfg, recs = chapters.committed(chapter, profile)
        if cfg is None:
            continue
        prof = config.read(profile)
        _display(_markdown(f"### The `{profile}` profile\n\n{prof.description}"))
        if recs is None:
            print(f"Its records of this chapter are not in this checkout (results/{profile}/"
                  f"{chapters.get(chapter).record_chapter}/); `python -m kdlib jobs {profile} "
                  f"--chapters {chapters.get(chapter).record_chapter}` makes them.")
            continue
        print(f"Scale: {p.scale(cfg)}.")
        for commit in staleness.stale_records(recs, chapter):
            print(f"Made at commit {commit[:7]}; this chapter's computation has changed since "
                  f"and the profile was not verified after it.")
        for line in staleness.other_environment(recs):
            print(f"Environment: {line}; its numbers may differ from this one's in their "
                  f"last bits.")
        for line in warnings(recs, getattr(p, "LABELS", {})):
            print("Warning:", line)
        p.show_records(recs)
        show_claims(chapter, cfg)


def warnings(recs: runs.Records, labels: dict[str, str]) -> list[str]:
    """Training that collapsed to one class (:func:`kdlib.report.collapsed`)."""
    if not any("clean_acc" in r.metrics for rs in recs.values() for r in rs):
        return []
    return report.collapsed(recs, labels)


# --- provenance under every table and figure --------------------------------------------------

def provenance_line(records: runs.Records, chapter: str) -> str:
    """Where a table's or a figure's numbers come from, in one line of plain text: the
    profile, the number of runs and seeds, the commits that made them and whether they are
    current for today's code (:func:`kdlib.staleness.stale_records`), and the command that
    re-makes them."""
    recs = [r for rs in records.values() for r in rs]
    if not recs:
        return "No records."
    profiles = sorted({r.profile for r in recs})
    seeds = sorted({r.seed for r in recs},
                   key=lambda s: (s is None, s if isinstance(s, int) else 0, str(s)))
    commits = sorted({(r.commit or "?")[:7] for r in recs})
    record_chapter = chapters.get(chapter).record_chapter
    stale = staleness.stale_records(records, record_chapter)
    state = ("stale for today's code (made at " + ", ".join(c[:7] for c in stale)
             + "; `python -m kdlib verify` checks by re-running a sample)" if stale
             else "current for today's code")
    other = staleness.other_environment(records)
    if other:
        state += "; " + "; ".join(other)
    profile = profiles[0]
    return (f"Records: profile {', '.join(profiles)}, {len(recs)} runs, seeds "
            f"{', '.join(map(str, seeds))}, made at commit {', '.join(commits)}, {state}. "
            f"Re-make: python -m kdlib jobs {profile} --chapters {record_chapter} (runs "
            f"already recorded are skipped), then python -m kdlib run {profile} {chapter}.")


def csv_link(table: pd.DataFrame, name: str) -> str:
    """An HTML link that downloads `table` as ``<name>.csv`` (the file is in the link, so it
    works offline and needs no file beside the page)."""
    import base64

    data = base64.b64encode(table.to_csv().encode()).decode()
    return (f'<a class="kdlib-csv" download="{name}.csv" href="data:text/csv;base64,{data}">'
            f"Download this table as CSV ({name}.csv)</a>")


def show(table: pd.DataFrame, records: runs.Records, chapter: str, name: str) -> None:
    """Display `table`, then where its numbers come from (:func:`provenance_line`) and a link
    that downloads it as CSV."""
    _display(table)
    below(table, records, chapter, name)


def below(table: pd.DataFrame, records: runs.Records, chapter: str, name: str) -> None:
    """Under a table the page's text shows (glued), where its numbers come from and a link
    that downloads it as CSV."""
    from IPython.display import HTML

    _display(HTML(f'<p class="kdlib-provenance">{provenance_line(records, chapter)} '
                  f"{csv_link(table, name)}</p>"))


def glue_figure(key: str, fig: Any, records: runs.Records, chapter: str) -> None:
    """Glue `fig` as ``<key>`` for the page's text and :func:`provenance_line` as
    ``<key>_provenance`` for its caption, then close it."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(key, fig, display=False)
    report.glue_value(f"{key}_provenance", provenance_line(records, chapter))
    plt.close(fig)


# --- tables shared by the pages -------------------------------------------------------------------

def fmt_p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def provenance(recs: runs.Records, columns: dict | None = None) -> pd.DataFrame:
    """One row per record: where each number came from (:func:`kdlib.runs.provenance`)."""
    return runs.provenance(recs, columns)


def rows_table(recs: runs.Records, methods: Sequence[Any], reference: dict[str, Any],
               paper_runs: int, key: str = "test_acc") -> pd.DataFrame:
    """Test accuracy (%) of every row with records, the paper's beside ours, each row with a
    ``versus`` compared with it (:func:`versus`: the paired difference over seeds with its
    95% interval and p, Welch's p, the smallest difference detectable with 80% power), and
    the paper's own mean ± std compared by Welch's test."""
    from kdlib import stats

    out = []
    for method in methods:
        if method.name not in recs:
            continue
        values = report.metric(recs[method.name], key)
        ref = reference.get(method.paper or "")
        paper_cell = "—" if ref is None else f"{100 * ref[0]:.2f} ± {100 * ref[1]:.2f}"
        row = report.comparison_row(method.label, paper_cell, values)
        row["paper: Welch p vs baseline"] = "—"
        base = method.versus
        if base is not None and base.name in recs:
            base_ref = reference.get(base.paper or "")
            if ref is not None and base_ref is not None:
                row["paper: Welch p vs baseline"] = fmt_p(stats.welch_p_from_summary(
                    *ref, paper_runs, *base_ref, paper_runs))
        row.update(versus(recs, method, base, key, "baseline"))
        out.append(row)
    return report.comparison_table(out)


def versus(recs: runs.Records, row: Any, base: Any, key: str, what: str,
           scale: float = 100.0, digits: int = 2) -> dict[str, str]:
    """The cells that compare `row` with `base` (None, or without records: dashes): the
    paired difference over seeds with its 95% interval and p (where the two ran the same
    seeds), Welch's p beside it, and the smallest difference the test used detects with
    80% power (:func:`kdlib.verdicts.compare`)."""
    cells = {f"paired diff vs {what} [95% CI]": "—", f"paired p vs {what}": "—",
             f"Welch p vs {what}": "—", "detectable (80%)": "—"}
    if base is None or base.name not in recs or row.name == base.name:
        return cells
    c = verdicts.compare(claims.by_seed(recs, row, key), claims.by_seed(recs, base, key),
                         scale)
    det = c.detectable()
    if c.paired:
        cells[f"paired diff vs {what} [95% CI]"] = (
            f"{c.difference:+.{digits}f} [{c.ci[0]:+.{digits}f}, {c.ci[1]:+.{digits}f}]")
        cells[f"paired p vs {what}"] = fmt_p(c.p)
    cells[f"Welch p vs {what}"] = fmt_p(c.welch_p)
    cells["detectable (80%)"] = "—" if math.isnan(det) else f"{det:.{digits}f}"
    return cells


def gain_sentences(recs: runs.Records, methods: Sequence[Any], key: str = "test_acc") -> None:
    """Print, for every row compared with another, whether it beats it (plain words)."""
    for m in methods:
        if m.versus is not None and m.name in recs and m.versus.name in recs:
            print(report.gain_sentence(m.label, report.metric(recs[m.name], key),
                                       m.versus.label, report.metric(recs[m.versus.name], key)))


__all__ = ["Finding", "all_claims", "claims", "decide", "findings", "for_chapter", "page",
           "records", "sentence", "show_claims", "show_committed", "start"]
