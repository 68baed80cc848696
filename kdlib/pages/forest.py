"""A forest plot of the verdicts: each claim's effect with its 95% interval, the paper's value
and zero marked, the verdict in the colour.

One line per claim and scale (:class:`kdlib.pages.findings.Finding`). The effect is what the rule
measured: the paired mean difference over seeds where the design pairs (else the difference
of the means), in accuracy points; for a reading, the control's difference from the
distilled row (whose paper value is 0: "works like"); for a claim about a value, ours minus
the paper's. Claims on relative measures (Figure 2's gradient ratios) get a panel of their
own. Analytic claims and claims not run at a scale have no line. A reproduced claim whose
interval excludes the paper's value is labelled with its size (``9.3× paper``): reproduced
in direction only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: How far from zero each panel shows (points, or the relative scale): an effect or interval
#: beyond is drawn at the edge, as an arrow with its value.
LIMITS = {"accuracy points": 12.0, "relative to the baseline": 1.0}
#: The colour of each verdict.
COLOURS = {"reproduced": "#1a7f37", "not reproduced": "#cf222e",
           "inconclusive at this power": "#9a6700",
           "nothing to explain at this scale": "#0969da",
           "premise not met at this scale": "#8250df", "not run at this scale": "#8c959f"}


def rows(found: Sequence[Any]) -> list[dict[str, Any]]:
    """The plotted lines: label, effect, interval, paper's value, verdict, panel."""
    out = []
    for f in found:
        d = f.decision
        if f.claim.fixed_scale is not None or d.verdict == "not run at this scale" \
                or math.isnan(d.difference):
            continue
        reading = d.verdict == "nothing to explain at this scale" or "TOST" in d.test
        paper = 0.0 if reading else (0.0 if "tolerance" in d.test else d.claimed)
        relative = "relative" in f.claim.test or f.claim.paper.startswith("Figure 2")
        ratio = d.size_ratio[0]
        size = (f" ({ratio:.1f}× paper)" if d.verdict == "reproduced" and not reading
                and d.size_consistent is False else "")
        out.append({"label": f"{f.claim.id} · {f.profile}{size}", "effect": d.difference,
                    "low": d.ci[0], "high": d.ci[1], "paper": paper, "verdict": d.verdict,
                    "panel": "relative to the baseline" if relative else "accuracy points"})
    return out


def figure(found: Sequence[Any], title: str = ""):
    """The forest plot of `found` (a matplotlib figure), or None when nothing is plotted."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    lines = rows(found)
    if not lines:
        return None
    panels = [p for p in ("accuracy points", "relative to the baseline")
              if any(r["panel"] == p for r in lines)]
    heights = [sum(r["panel"] == p for r in lines) for p in panels]
    shown = [v for v in COLOURS if any(r["verdict"] == v for r in lines)]
    # inches: a line per claim, each panel's axis and label, then the title and the legend
    title_in = 0.35 if title else 0.0
    header_in = title_in + 0.25 * math.ceil((len(shown) + 1) / 3) + 0.1
    height_in = 0.42 * sum(heights) + 0.75 * len(panels) + header_in
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, height_in),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        chosen = [r for r in lines if r["panel"] == panel][::-1]
        lim = LIMITS[panel]
        for y, r in enumerate(chosen):
            colour = COLOURS[r["verdict"]]
            if not math.isnan(r["low"]):
                ax.plot([max(-lim, r["low"]), min(lim, r["high"])], [y, y], color=colour, lw=2)
            if abs(r["effect"]) <= lim:
                ax.plot(r["effect"], y, "o", color=colour, ms=6)
            else:  # off the panel: an arrow at the edge, with the value
                edge = math.copysign(lim, r["effect"])
                ax.plot(edge, y, "<" if edge < 0 else ">", color=colour, ms=8)
                ax.annotate(f"{r['effect']:+.1f}", (edge, y), xytext=(6 if edge < 0 else -6, 4),
                            textcoords="offset points", fontsize=7, color=colour,
                            ha="left" if edge < 0 else "right")
            if not math.isnan(r["paper"]):
                ax.plot(r["paper"], y, "D", mfc="none", mec="black", ms=6)
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_xlim(-lim * 1.05, lim * 1.05)
        ax.set_ylim(-0.6, len(chosen) - 0.4)
        ax.set_yticks(range(len(chosen)), [r["label"] for r in chosen], fontsize=8)
        ax.set_xlabel(f"effect ({panel}; 95% CI)")
        ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color=COLOURS[v], marker="o", lw=2, label=v) for v in shown]
    handles.append(Line2D([], [], color="black", marker="D", mfc="none", lw=0,
                          label="the paper's value"))
    if any("× paper)" in r["label"] for r in lines):
        handles.append(Line2D([], [], lw=0, label="(k× paper): reproduced in direction only"))
    if title:
        fig.suptitle(title, y=1 - 0.08 / height_in, va="top", fontsize=9)
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - title_in / height_in))
    fig.tight_layout(rect=(0, 0, 1, 1 - header_in / height_in))
    return fig
