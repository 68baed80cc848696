"""What each chapter's page shows beside its records: claims, tables, figures and prose.

One module per page, named for what it shows (``table1``, ``table2``, ``table3``, ``table4``
with Figure 1, ``figure2``, ``table5``; ``image_pages`` holds what the last four share) and
found through its chapter's :attr:`kdlib.chapters.Chapter.page`. A page module declares
the claims its chapter decides (``CLAIMS``), says in words what scale a parameter set is
(``scale(cfg)``) and what setting a page was built with (``setting(cfg)``), and draws the
chapter's tables and figures from records; :mod:`kdlib.pages.findings` decides those claims.
Nothing here computes or changes a record, so no edit here makes a record stale
(:mod:`kdlib.staleness`).

This module holds what every page does the same way, so that a notebook cell is one
call: :func:`start` (validate the notebook's parameters, say the setting, list them),
:func:`records` (run or load the chapter's runs), :func:`show_claims` (the claims
decided at this page's scale) and :func:`show_committed` (every committed profile's
records of this chapter, disclosed with their scale, staleness and warnings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from kdlib import chapters, claims, config, flops, paths, report, runs, staleness, verdicts
from kdlib.pages.findings import for_chapter, page, sentence

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
