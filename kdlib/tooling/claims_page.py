"""The "Claims at a glance" page and the intro's status table, generated from the records.

Each claim the chapters' pages declare (:func:`kdlib.pages.findings.all_claims`) is decided
at every scale that has records: the committed ``paper`` profile (the paper's
setting), the committed CPU stand-in (``cpu``, when the repository has that
profile) and the profile the book is built with. The paper's setting always has a
row, "not run at this scale" where it has no records. Nothing here is written by
hand: every verdict and number comes from :func:`kdlib.pages.findings.at`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from kdlib import chapters, config, pages, paths
from kdlib.pages import findings, verdict_tables
from kdlib.pages.findings import Finding
from kdlib.pages.verdict_tables import MARKS

#: The committed profiles whose records decide claims, widest scale first: the paper's
#: setting, the CPU stand-in, and its within-kind re-makes on an AMD EPYC (chapters 4-6's
#: readings, chapter 6's self-teacher reading, and chapter 4's self-teacher trained to fit).
CLAIM_SCALES = ("paper", "cpu", "cpu-amd", "cpu-amd-teachers", "cpu-amd-fit")
#: Profiles that re-make another's recipe on another kind of CPU: replication -> original.
REPLICATIONS = {"cpu-amd": "cpu", "cpu-amd-teachers": "cpu", "cpu-amd-fit": "cpu"}


def scales(build_profile: str) -> list[str]:
    """The profiles whose records decide claims, widest scale first."""
    names = [n for n in CLAIM_SCALES
             if n == "paper" or (paths.profiles_dir() / f"{n}.yaml").is_file()]
    return list(dict.fromkeys([*names, build_profile]))


def all_findings(build_profile: str) -> list[Finding]:
    """Every claim at every scale with records, plus the paper's setting always."""
    out = []
    for profile in scales(build_profile):
        try:
            found = findings.at(profile)
        except config.ProfileError:  # a profile without some chapter: nothing to decide
            continue
        out += [f for f in found if profile == "paper" or (
            f.claim.fixed_scale is None and f.decision.verdict != "not run at this scale")]
    order = {c.id: i for i, c in enumerate(findings.all_claims())}
    return sorted(out, key=lambda f: order[f.claim.id])  # stable: scales in order


_cell = verdict_tables.cell


def _link(chapter: str) -> str:
    return f"{{doc}}`{chapter.split('_', 1)[0]} <chapters/{chapter}>`"


def table(found: Sequence[Finding]) -> str:
    """The claims table in Markdown (:func:`kdlib.pages.verdict_tables.claims_table`)."""
    return verdict_tables.claims_table(found, _link)


numbers = verdict_tables.numbers_table


def tests(found: Sequence[Finding]) -> str:
    """How each verdict was decided: the rule and its inputs, and where the records are."""
    lines = ["| claim | scale | rule | its inputs | records |", "|---|---|---|---|---|"]
    for f in found:
        records = f"`results/{f.profile}/{f.claim.chapter}/`" if f.profile != "—" else "—"
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"**{f.claim.id}**", f.scale.split(":")[0], f.claim.test, f.decision.test,
            records)) + " |")
    return "\n".join(lines)


def counts(found: Sequence[Finding]) -> str:
    """One line: how many claims got each verdict at each scale (a reproduced one split by
    whether its size agrees with the paper's), and how many are robust across readings,
    depend on one, or have a failed premise."""
    by_scale: dict[str, dict[str, int]] = {}
    for f in found:
        d = f.decision
        key = d.verdict
        if d.verdict == "reproduced" and d.size_consistent is not None:
            key = ("reproduced, consistent in size" if d.size_consistent
                   else "reproduced in direction only")
        by_scale.setdefault(f.profile, {}).setdefault(key, 0)
        by_scale[f.profile][key] += 1
    parts = []
    for profile, n in by_scale.items():
        inner = ", ".join(f"{k} {v}" for k, v in n.items())
        mine = [f for f in found if f.profile == profile and f.readings]
        robust = sum(f.across_readings.startswith("same") for f in mine)
        depends = sum(f.across_readings.startswith("depends") for f in mine)
        if robust or depends:
            inner += (f" (across readings: {robust} robust, {depends} depending on a "
                      f"reading)")
        parts.append(f"`{profile}` profile: {inner}" if profile != "—" else f"analytic: {inner}")
    return "; ".join(parts) + "."


def write_forest(site: Path, found: Sequence[Finding]) -> str:
    """Draw the forest plot of `found` into ``book/figures/forest.png``; return the MyST
    figure that shows it (empty when nothing is plotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kdlib.pages import forest

    fig = forest.figure(found)
    if fig is None:
        return ""
    folder = site / "book" / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "forest.png", dpi=110)
    plt.close(fig)
    return """```{figure} figures/forest.png
:name: fig-forest
:alt: A forest plot: each claim's effect with its 95% interval, the paper's value and zero

Every claim at every scale with records: the effect this build measured (the paired mean
difference over seeds where the design pairs) with its 95% interval, coloured by the
verdict; the open diamond is the paper's value (0 for a reading: the control should work
like the distilled row), the dotted line zero.
```
"""


def _profile_line(profile: str) -> str:
    """The scale and seeds of each chapter of a profile, in words."""
    from kdlib import chapters

    try:
        cfgs = chapters.load_profile(profile)
    except config.ProfileError:
        return ""
    parts = []
    for name, cfg in cfgs.items():
        if chapters.get(name).records_of:
            continue
        parts.append(f"{name.split('_')[0]}: {findings.page(name).scale(cfg)}")
    return "; ".join(parts)


def _disclosed() -> list[str]:
    """What went wrong on the way, from the records: every committed profile's training that
    collapsed to one class or ran unstably, with a link to the chapter that shows it."""
    from kdlib import chapters, claims, runs

    out = []
    for profile in pages.committed_profiles():
        cfgs = chapters.load_profile(profile)
        for name, cfg in cfgs.items():
            ch = chapters.get(name)
            if ch.records_of:
                continue
            recs = runs.saved(chapters.plan(name, cfg))
            if recs is None:
                continue
            labels = getattr(findings.page(name), "LABELS", {})
            for line in pages.warnings(recs, labels):
                out.append(f"`{profile}`, {_link(name)}: {line}")
            flagged = claims.unstable(recs, list(recs))
            for why in flagged.values():
                out.append(f"`{profile}`, {_link(name)}: unstable training, {why} (the run "
                           f"stays in every verdict; its claims add the result without it)")
    return out


def _easy(found: Sequence[Finding]) -> str:
    """The parts that ran at the paper's own scale, with their cost, from the records."""
    from kdlib import chapters, runs

    hours = 0.0
    cfgs = chapters.load_profile("paper")
    for name in ("01_vanilla_kd", "02_omitted_digit"):
        recs = runs.saved(chapters.plan(name, cfgs[name])) or {}
        hours += sum(r.wall_time_s for rs in recs.values() for r in rs) / 3600
    gap = next((f.decision.difference for f in found if f.claim.id == "F1"), math.nan)
    return (f"The MNIST experiments (Tables 1 and 2) run at the paper's own scale on a CPU: "
            f"the `paper` profile's records of both took {hours:.1f} CPU hours in all (one "
            f"core a run). The virtual teacher of Figure 1 is a closed form, which the code "
            f"matches to {gap:.0e}.")


def summary(found: Sequence[Finding], build_profile: str, figure: str) -> str:
    """The book's opening, in the form the ML Reproducibility Challenge asks of a report:
    scope, methodology, results, what was easy, what was difficult. Every count and every
    problem listed is computed from the records."""
    claims_list = "\n".join(f"- **{c.id}**: {c.statement} (paper: {c.paper})"
                             for c in findings.all_claims())
    at = "\n".join(f"- `{p}`: {_profile_line(p)}" for p in scales(build_profile)
                   if _profile_line(p))
    decided = [f for f in found if f.decision.verdict in ("reproduced", "not reproduced")]
    judged = [f for f in found if f.decision.verdict != "not run at this scale"]
    problems = "\n".join(f"- {line}" for line in _disclosed()) or "- none in the records"
    return f"""## Reproducibility summary

**Scope.** The paper makes {len(findings.all_claims())} claims this book tests, one or more per
table and figure:

{claims_list}

**Methodology.** Every chapter is an executable notebook over `kdlib`; every number comes from
a result record that names its full specification, the code's commit and the machine. The
claims are decided at every scale with records:

{at}

The unit of replication is the training run (a seed). Rows run on the same seeds share their
initial weights, batch order, augmentation and attack noise, so two rows are compared seed by
seed (a paired t-test at 5%, Welch's test beside it); a null result refutes a claim only when
the test had 80% power to see the paper's effect, and an explanation ("the gain is label
smoothing") is decided by an equivalence test, within a margin declared before the records
(half the paper's gain), once the gain it explains is established. Holm's method adjusts the
p-values over each profile's declared family of claims. A claim whose premise fails at a
scale (a Re-KD "teacher" more accurate than its student, a self-teacher that does not fit its
data, an AKD less robust than AT) is *premise not met at this scale*, whatever the test says;
a reproduced claim also says whether its size agrees with the paper's; and each claim is
decided again under every pre-registered reading of the settings the paper leaves open. An
undecided claim says how many seeds would decide it.

**Results.** {len(decided)} of the {len(judged)} verdicts with records are decided
(reproduced or not reproduced). By scale: {counts(found)} {{doc}}`claims` gives each
verdict with its numbers.

{figure}
**What was easy.** {_easy(found)}

**What was difficult.**

- The paper's CIFAR-10 experiments (Tables 3 to 5, Figure 2) need a GPU and CIFAR-10, and the
  machines that build this book reach neither: they are implemented, exercised at full shape
  in CI, and decided here at named CPU stand-ins (smaller data, narrower networks) whose
  verdicts say what the stand-in shows, not what CIFAR-10 would.
- The paper gives neither its CIFAR-10 hyper-parameters nor its number of seeds for Table 5;
  the loss weights come from the official Tf-KD code's CIFAR-100 settings.
- Recipes that failed, and runs that trained unstably, stay on the pages as disclosed rows:

{problems}
"""


def unclaimed_rows() -> str:
    """Every row a chapter runs that no claim decides (this build's controls and variants,
    and any row added since), one line each, so that this page names every row run."""
    used = {row for c in findings.all_claims() for row in getattr(c.decide, "rows", ())}
    lines = [f"- {_link(ch.name)} `{m.name}`: {m.label}" for ch in chapters.all_chapters()
             if not ch.records_of for m in ch.methods if m.name not in used]
    return "\n".join(lines) or "Every row a chapter runs is decided by a claim."


def _replication_intro() -> str:
    """Which profile replicates which, in words."""
    parts = [f"`{rep}` re-makes rows of `{orig}` on the same recipe and decides the same claims"
             for rep, orig in REPLICATIONS.items()
             if (paths.profiles_dir() / f"{rep}.yaml").is_file()]
    return ("; ".join(parts) + ". Below, each claim decided at both: whether its verdict "
            "replicates, and whether the replication's effect lies inside the original's 95% "
            "interval.") if parts else "no profile replicates another here."


def write(site: Path, build_profile: str) -> list[Finding]:
    """Write ``book/claims.md`` and ``book/status.md`` (included by the intro), with the
    forest plot of every verdict."""
    found = all_findings(build_profile)
    figure = write_forest(site, found)
    rules = "\n".join(f"- {MARKS[v]}: {why}" for v, why in (
        ("reproduced", "the test finds the paper's effect in the paper's direction (or the "
                       "value within the stated tolerance)"),
        ("not reproduced", "the test finds the opposite, or no effect although the seeds "
                           "could have detected one of the paper's size"),
        ("inconclusive at this power", "no significant difference, and the seeds could not "
                                       "have detected one as small as the paper's"),
        ("nothing to explain at this scale", "a reading of a gain (\"it is label smoothing\")"
                                             " where the gain itself is not established"),
        ("premise not met at this scale", "the condition under which the test answers the "
                                          "paper's question fails at this scale (a Re-KD "
                                          "teacher more accurate than its student, a "
                                          "self-teacher that does not fit its data...); the "
                                          "test's own verdict is shown beside it"),
        ("not run at this scale", "no records at this scale")))
    replicated = (verdict_tables.replication_table(found, REPLICATIONS)
                  or "No replication has records in this build.")
    page = f"""# Claims at a glance

Every claim of the paper, decided by a stated test from this book's records. Each row
names the **scale** it was decided at: the paper's own setting, or a named stand-in that a
CPU can run (another data set, narrower networks, another ε). A verdict at a stand-in
scale says what the records show there, not what the paper's setting would show. Rows run
on the same seeds share their initial weights, batches, augmentation and attack noise, so
they are compared seed by seed: a paired t-test at 5% on the per-seed differences, with
Welch's unpaired test beside it; "power" is the paired test's power to detect the paper's
effect, and an undecided claim says how many seeds (and CPU hours) would decide it
(`kdlib.verdicts`, `kdlib.stats`).

{rules}

In this build: {counts(found)}

{figure}
{table(found)}

## Rows no claim decides

These rows are run beside the paper's (the controls and this build's own variants); their
numbers are on their chapter's page, and no claim's test compares them.

{unclaimed_rows()}

## Under every reading of the paper's open settings

The paper leaves settings open that a reproduction must fix (the loss weights for 10
classes, the self-teacher, early stopping). Each chapter declares the other defensible
readings of them (`kdlib/chapters/`), a profile pre-registers which it runs and on which
seeds, and each claim is decided again under every reading that changes one of its rows.
The primary reading's verdict is Holm-adjusted over the profile's family; the others are
shown unadjusted, as a sensitivity analysis, beside the primary reading on the same seeds.

{verdict_tables.readings_table(found) or "No other reading has records in this build."}

## Replicated on another kind of CPU

A training need not end bit for bit the same on two kinds of CPU (the methods page says
why), so a record made on one kind cannot be re-made exactly on another. What can be
checked there is the claim: {_replication_intro()}

{replicated}

## The statistics behind each verdict

Holm's method adjusts the deciding p-values over the family each profile declares
(`family:` in its YAML; `cpu` and `paper`: every claim of the profile), and each verdict
is taken from the adjusted p. Where a claim rests on 6 seeds or fewer, the exact sign-flip
p stands beside the t-test's: it cannot go below 2/2^n (0.0625 for 5 seeds), so a verdict
significant by the t-test alone rests on its normality, and says so.

{numbers(found)}

## How each verdict was decided

{tests(found)}

Each chapter's claims are declared on its page (`kdlib/pages/`), from the rules of
`kdlib/claims.py`; the tests are in `kdlib/verdicts.py`.
"""
    (site / "book" / "claims.md").write_text(page)
    (site / "book" / "summary.md").write_text(
        summary(found, build_profile,
                figure.replace(":name: fig-forest", ":name: fig-forest-summary")))
    status = ["| claim | verdict, scale |", "|---|---|"]
    for f in found:
        status.append(f"| {f.claim.id}: {_cell(f.claim.statement)} | "
                      f"{verdict_tables.verdict_cell(f)}, {_cell(f.scale)} |")
    (site / "book" / "status.md").write_text("\n".join(status) + "\n")
    return found
