"""The claims decided at a scale, as Markdown tables: one line per claim with its premise,
size and verdict; the statistics behind each verdict; and each claim under every reading
of the paper's open settings. A chapter's page and the claims page show the same tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kdlib.pages.findings import Finding

#: How a verdict shows in a table.
MARKS = {"reproduced": "**reproduced**", "not reproduced": "**not reproduced**",
         "inconclusive at this power": "*inconclusive at this power*",
         "nothing to explain at this scale": "*nothing to explain at this scale*",
         "premise not met at this scale": "*premise not met at this scale*",
         "not run at this scale": "not run at this scale"}


def cell(text: str) -> str:
    """`text` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def num(value: float | None, fmt: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, fmt)


def verdict_cell(f: Finding) -> str:
    """The verdict with its size where decided (``reproduced in direction, 9.3× the paper's
    effect``), and the test's own verdict where a premise failed."""
    d = f.decision
    text = MARKS[d.verdict]
    if d.label != d.verdict:
        text = f"**{d.label}**"
    if d.tested:
        text += f" (the test alone: {d.tested})"
    return text


def premise_cell(f: Finding) -> str:
    d = f.decision
    if not d.premises:
        return "—"
    return "; ".join(f"{'met' if met else 'not met' if met is False else 'not measured'}: "
                     f"{text} ({measured})" for text, met, measured in d.premises)


def claims_table(found: Sequence[Finding], link=None) -> str:
    """Claim, paper, scale, ours, premise, verdict (with size), readings (and chapter)."""
    head = ["claim", "paper", "scale", "ours", "premise at this scale", "verdict",
            "under the other readings"] + (["chapter"] if link else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in found:
        d = f.decision
        stale = (f" (stale: made at `{', '.join(c[:10] for c in f.stale)}`, whose code has "
                 f"changed since; re-run to refresh)" if f.stale else "")
        row = [f"**{f.claim.id}** {f.claim.statement}", f.claim.paper, f.scale, d.ours,
               premise_cell(f), verdict_cell(f) + stale, f.across_readings or "—"]
        if link:
            row.append(link(f.claim.chapter))
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines)


def numbers_table(found: Sequence[Finding]) -> str:
    """The statistics behind each primary verdict: the effect with its 95% interval, its size
    against the paper's, the paired p, Holm's adjusted p (from which the verdict is taken),
    the exact sign-flip p where n ≤ 6, the power at the observed spread to detect the
    paper's effect, what an undecided claim would need, and the notes: Welch's p, the margin
    at which an equivalence verdict would change, the sensitivity lines."""
    lines = ["| claim | scale | effect [95% CI] | size vs paper | paired p | Holm p | exact p "
             "(n ≤ 6) | achieved power (the paper's effect, our spread) | verdict | would "
             "need | note |", "|" + "---|" * 11]
    for f in found:
        d = f.decision
        if f.claim.fixed_scale is not None or d.verdict == "not run at this scale":
            continue
        ci = ("" if math.isnan(d.ci[0]) else f" [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}]")
        need = (f"{d.seeds_needed} seeds" + (f", {d.hours_needed:.1f} CPU h"
                                             if not math.isnan(d.hours_needed) else "")
                if d.seeds_needed else "—")
        exact = num(d.exact_p, ".3g") + (" (only the t-test decides)" if d.only_t_decides
                                        else "")
        notes = [f"Welch p {num(d.welch_p, '.3g')}."]
        if not math.isnan(d.margin_needed):
            notes.append(f"The equivalence verdict would change at a margin of "
                         f"{d.margin_needed:.2f}.")
        lines.append("| " + " | ".join(cell(x) for x in (
            f"**{f.claim.id}**", f.profile, f"{num(d.difference, '+.2f')}{ci}",
            d.size() or "—", num(d.p, ".3g") if d.paired else "—", num(d.holm_p, ".3g"), exact,
            num(d.power, ".0%"), verdict_cell(f), need, " ".join([*notes, *d.notes]))) + " |")
    return "\n".join(lines)


def readings_table(found: Sequence[Finding]) -> str:
    """Each claim under its primary reading and every other declared one that changes one of
    its rows: the effect [95% CI], paired p and verdict, with the effect's size against the
    paper's and the power the verdict's test had for the paper's effect (the other readings
    on their pre-registered seeds, not adjusted for the family: a sensitivity analysis)."""
    lines = ["| claim | scale | reading | setting | effect [95% CI] | paired p | n | verdict | "
             "note |", "|---|---|---|---|---|---|---|---|---|"]
    for f in found:
        if not f.readings:
            continue
        rows = [("primary", "the chapter's parameters", f.decision)]
        if f.on_reading_seeds is not None:
            rows.append(("primary", "the chapter's parameters, on the other readings' seeds",
                         f.on_reading_seeds))
        rows += [(u.reading.name, f"{u.reading.setting}: {u.reading.alternative}",
                  u.decision) for u in f.readings]
        for name, setting, d in rows:
            if d is None:
                lines.append("| " + " | ".join(cell(x) for x in (
                    f"**{f.claim.id}**", f.profile, name, setting, "—", "—", "—",
                    "not run at this scale", "—")) + " |")
                continue
            ci = ("" if math.isnan(d.ci[0]) else f" [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}]")
            verdict = MARKS[d.verdict] + (f" (the test alone: {d.tested})" if d.tested else "")
            beside = [d.size()]
            if not math.isnan(d.power):
                beside.append(f"power for the paper's effect {d.power:.0%} (at the observed "
                              f"spread)")
            verdict += "".join(f"; {x}" for x in beside if x)
            lines.append("| " + " | ".join(cell(x) for x in (
                f"**{f.claim.id}**", f.profile, f"**{name}**" if name == "primary" else name,
                setting, f"{num(d.difference, '+.2f')}{ci}",
                num(d.p, ".3g") if d.paired else "—", str(d.n or "—"), verdict,
                " ".join(n for n in d.notes if "kinds of CPU" in n) or "—")) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""



def replications(found: Sequence[Finding], pairs: dict[str, str]) -> list[dict[str, Any]]:
    """Each claim decided both at a profile and at its replication (`pairs`: replication ->
    original, e.g. the same recipe re-made on another kind of CPU): both verdicts and effects
    (primary readings, Holm-adjusted within each profile), whether the verdict replicates, and
    whether the replication's effect lies inside the original's 95% interval (None: no
    interval or no effect)."""
    by = {(f.profile, f.claim.id): f for f in found}
    out = []
    for f in found:
        o = by.get((pairs.get(f.profile), f.claim.id))
        if o is None or f.claim.fixed_scale is not None or "not run at this scale" in (
                o.decision.verdict, f.decision.verdict):
            continue
        lo, hi = o.decision.ci
        effect = f.decision.difference
        out.append({
            "claim": f.claim.id,
            **{f"{side}_{key}": value for side, x in (("original", o), ("replication", f))
               for key, value in (("profile", x.profile), ("verdict", x.decision.verdict),
                                  ("effect", x.decision.difference),
                                  ("ci", list(x.decision.ci)), ("n", x.decision.n))},
            "verdict_replicates": f.decision.verdict == o.decision.verdict,
            "effect_inside_original_ci": (None if math.isnan(lo) or math.isnan(effect)
                                          else bool(lo <= effect <= hi))})
    return out


def replication_table(found: Sequence[Finding], pairs: dict[str, str]) -> str:
    """:func:`replications` as a Markdown table (empty: none)."""
    lines = ["| claim | original: verdict, effect [95% CI], n | replication: verdict, effect "
             "[95% CI], n | verdict replicates | replication's effect inside the original's "
             "interval |", "|---|---|---|---|---|"]

    def side(r: dict[str, Any], key: str) -> str:
        lo, hi = r[f"{key}_ci"]
        ci = "" if math.isnan(lo) else f" [{lo:+.2f}, {hi:+.2f}]"
        return (f"`{r[f'{key}_profile']}`: {MARKS[r[f'{key}_verdict']]}, "
                f"{num(r[f'{key}_effect'], '+.2f')}{ci}, n = {r[f'{key}_n']}")

    for r in replications(found, pairs):
        inside = r["effect_inside_original_ci"]
        lines.append("| " + " | ".join(cell(x) for x in (
            f"**{r['claim']}**", side(r, "original"), side(r, "replication"),
            "yes" if r["verdict_replicates"] else "**no**",
            "—" if inside is None else "yes" if inside else "**no**")) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""

def declared_readings(profiles: Sequence[str]) -> str:
    """Every reading the chapters declare (:mod:`kdlib.readings`): the setting, the primary
    reading and this one, the chapters that declare it and which of `profiles` pre-register
    it, with the seeds."""
    from kdlib import chapters, config

    seen: dict[str, list[str]] = {}
    found = {}
    for ch in chapters.all_chapters():
        if ch.records_of:
            continue
        for r in ch.readings:
            found.setdefault(r.name, r)
            seen.setdefault(r.name, []).append(ch.name.split("_")[0])
    runs_at: dict[str, list[str]] = {}
    for profile in profiles:
        try:
            cfgs = chapters.load_profile(profile)
        except config.ProfileError:
            continue
        for name, cfg in cfgs.items():
            if chapters.get(name).records_of:
                continue
            for r in cfg.readings:
                runs_at.setdefault(r, []).append(
                    f"`{profile}` {name.split('_')[0]} (seeds "
                    f"{', '.join(map(str, cfg.reading_seeds))})")
    lines = ["| reading | setting | primary reading | this reading | chapters | run at |",
             "|---|---|---|---|---|---|"]
    for name, r in found.items():
        lines.append("| " + " | ".join(cell(x) for x in (
            f"`{name}`", r.setting, r.primary, r.alternative, ", ".join(seen[name]),
            "; ".join(runs_at.get(name, [])) or "not yet run")) + " |")
    return "\n".join(lines)
