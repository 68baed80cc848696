"""The "Claims at a glance" page and the intro's status table, generated from the records.

Each claim the chapters' pages declare (:func:`kdlib.pages.all_claims`) is decided
at every scale that has records: the committed ``paper`` profile (the paper's
setting), the committed CPU stand-in (``cpu``, when the repository has that
profile) and the profile the book is built with. The paper's setting always has a
row, "not run at this scale" where it has no records. Nothing here is written by
hand: every verdict and number comes from :func:`kdlib.pages.findings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kdlib import config, pages, paths
from kdlib.pages import Finding

#: How the verdict column shows each verdict.
MARKS = {"reproduced": "**reproduced**", "not reproduced": "**not reproduced**",
         "inconclusive at this power": "*inconclusive at this power*",
         "not run at this scale": "not run at this scale"}


def scales(build_profile: str) -> list[str]:
    """The profiles whose records decide claims, widest scale first."""
    names = ["paper"] + (["cpu"] if (paths.profiles_dir() / "cpu.yaml").is_file() else [])
    return list(dict.fromkeys([*names, build_profile]))


def all_findings(build_profile: str) -> list[Finding]:
    """Every claim at every scale with records, plus the paper's setting always."""
    out = []
    for profile in scales(build_profile):
        try:
            found = pages.findings(profile)
        except config.ProfileError:  # a profile without some chapter: nothing to decide
            continue
        out += [f for f in found if profile == "paper" or (
            f.claim.fixed_scale is None and f.decision.verdict != "not run at this scale")]
    order = {c.id: i for i, c in enumerate(pages.all_claims())}
    return sorted(out, key=lambda f: order[f.claim.id])  # stable: scales in order


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(chapter: str) -> str:
    return f"{{doc}}`{chapter.split('_', 1)[0]} <chapters/{chapter}>`"


def table(found: Sequence[Finding]) -> str:
    """The claims table in Markdown: claim, paper, scale, ours, verdict, where."""
    lines = ["| claim | paper | scale | ours | verdict | chapter |", "|---|---|---|---|---|---|"]
    for f in found:
        d = f.decision
        stale = (f" (stale: made at `{', '.join(c[:10] for c in f.stale)}`, whose code has "
                 f"changed since; re-run to refresh)" if f.stale else "")
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"**{f.claim.id}** {f.claim.statement}", f.claim.paper, f.scale, d.ours,
            f"{MARKS[d.verdict]}{stale}", _link(f.claim.chapter))) + " |")
    return "\n".join(lines)


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
    """One line: how many claims got each verdict, at each scale."""
    by_scale: dict[str, dict[str, int]] = {}
    for f in found:
        by_scale.setdefault(f.profile, {}).setdefault(f.decision.verdict, 0)
        by_scale[f.profile][f.decision.verdict] += 1
    parts = []
    for profile, n in by_scale.items():
        inner = ", ".join(f"{k} {v}" for k, v in n.items())
        parts.append(f"`{profile}` profile: {inner}" if profile != "—" else f"analytic: {inner}")
    return "; ".join(parts) + "."


def write(site: Path, build_profile: str) -> list[Finding]:
    """Write ``book/claims.md`` and ``book/status.md`` (included by the intro)."""
    found = all_findings(build_profile)
    rules = "\n".join(f"- {MARKS[v]}: {why}" for v, why in (
        ("reproduced", "the test finds the paper's effect in the paper's direction (or the "
                       "value within the stated tolerance)"),
        ("not reproduced", "the test finds the opposite, or no effect although the seeds "
                           "could have detected one of the paper's size"),
        ("inconclusive at this power", "no significant difference, and the seeds could not "
                                       "have detected one as small as the paper's"),
        ("not run at this scale", "no records at this scale")))
    page = f"""# Claims at a glance

Every claim of the paper, decided by a stated test from this book's records. Each row
names the **scale** it was decided at: the paper's own setting, or a named stand-in that a
CPU can run (another data set, narrower networks, another ε). A verdict at a stand-in
scale says what the records show there, not what the paper's setting would show. The
tests are Welch's two-sided test at 5% on the per-seed values; "detectable" is the
smallest difference the seeds could find with 80% power (`kdlib.stats`).

{rules}

In this build: {counts(found)}

{table(found)}

## How each verdict was decided

{tests(found)}

Each chapter's claims are declared on its page (`kdlib/pages/`), from the rules of
`kdlib/claims.py`; the tests are in `kdlib/verdicts.py`.
"""
    (site / "book" / "claims.md").write_text(page)
    status = ["| claim | verdict, scale |", "|---|---|"]
    for f in found:
        status.append(f"| {f.claim.id}: {_cell(f.claim.statement)} | "
                      f"{MARKS[f.decision.verdict]}, {_cell(f.scale)} |")
    (site / "book" / "status.md").write_text("\n".join(status) + "\n")
    return found
