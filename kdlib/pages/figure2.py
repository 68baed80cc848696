"""The page of Figure 2: the gradients per layer that Table 4's runs recorded, and its claims."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kdlib import claims, pages, report, runs, stats, verdicts
from kdlib.chapters import teacher_free as chapter
from kdlib.chapters.images import BASELINE
from kdlib.chapters.teacher_free import TF_KD_REG, TF_KD_SELF
from kdlib.claims import Claim
from kdlib.pages import image_pages as common
from kdlib.results import Record

GLUE = "f2"
NAME = "05_gradients"
scale = common.scale


def gradients_of(record: Record) -> dict[str, Any]:
    """The gradient samples of one run; :class:`kdlib.claims.NotRecorded` where the profile
    sampled none (``grad_every: 0``)."""
    g = record.metric("gradients")
    if g is None:
        raise claims.NotRecorded(f"record {record.file} has no gradient samples")
    return g


def mean_gradient(record: Record) -> float:
    """Mean |gradient| over all layers of one run."""
    values = gradients_of(record)["mean_abs_grad"]
    return sum(values) / len(values)


#: Figure 2 gives no numbers; "significantly larger" is stated here as 10% larger than the
#: baseline's (a ratio of 1.10), the size the claims are tested for.
STATED = 0.10

CLAIMS = (
    Claim("F2 (reg)", NAME,
          "Tf-KD-reg models have significantly larger average gradients than the baseline.",
          f"Figure 2 (no numbers; tested for +{STATED:.0%})",
          "mean |gradient| over layers, per seed, relative to the baseline's mean (paired)",
          claims.per_seed_gain(TF_KD_REG, BASELINE, mean_gradient, STATED)),
    Claim("F2 (self)", NAME,
          "Tf-KD-self models have significantly larger average gradients than the baseline.",
          f"Figure 2 (no numbers; tested for +{STATED:.0%})",
          "mean |gradient| over layers, per seed, relative to the baseline's mean (paired)",
          claims.per_seed_gain(TF_KD_SELF, BASELINE, mean_gradient, STATED)),
    Claim("F2, reading", NAME,
          "KD mitigates vanishing gradients: the early layers get relatively larger gradients.",
          f"Figure 2 (no numbers; tested for +{STATED:.0%})",
          "early layers' mean |gradient| over the last layer's, per seed, Tf-KD-reg (official "
          "form) relative to the baseline's (paired)",
          claims.per_seed_gain(TF_KD_REG, BASELINE, lambda r: depth_ratio(r), STATED)),
)


def setting(cfg: chapter.Params) -> str:
    report.glue_value("f2_every", cfg.grad_every)
    return common.setting(cfg)


def results(records: runs.Records) -> pd.DataFrame:
    """Print the gradient table (nbval compares it) and return it."""
    table = gradient_table(gradient_frame(records))
    print(table.to_string())
    return table


def sentences(records: runs.Records) -> None:
    for line in gradient_sentences(gradient_frame(records)):
        print(line)


def glue_heatmap(records: runs.Records) -> None:
    """Glue Figure 2 (``f2_heatmap``) for the page's text."""
    pages.glue_figure("f2_heatmap", gradient_heatmap(gradient_frame(records)), records, NAME)


def glue_depth(records: runs.Records) -> pd.DataFrame:
    """Glue the depth profile (``f2_depth``) and return the depth test's table."""
    pages.glue_figure("f2_depth", depth_figure(gradient_frame(records)), records, NAME)
    return depth_test(records)


def samples(records: runs.Records) -> pd.DataFrame:
    """How many gradient samples each run recorded."""
    return pd.DataFrame([{"run": r.name, "seed": r.seed,
                          "record": f"{r.name}-{r.spec_hash}.json",
                          "sampled steps": r.metric("gradients")["samples"],
                          "every": r.metric("gradients")["every"],
                          "layers": len(r.metric("gradients")["layer"])}
                         for m in GRADIENT_METHODS for r in records.get(m, [])])


def show_records(records: runs.Records) -> None:
    pages.show(gradient_table(gradient_frame(records)), records, NAME, "figure2-gradients")
    pages.show(depth_test(records), records, NAME, "figure2-depth-test")


# --- Figure 2 --------------------------------------------------------------------------------

GRADIENT_METHODS = tuple(m.name for m in chapter.METHODS)
LABELS = {m.name: m.label for m in chapter.METHODS}


def _methods(frame: pd.DataFrame) -> tuple[str, ...]:
    """The rows of :data:`GRADIENT_METHODS` that `frame` has, the baseline first."""
    found = set(frame["method"])
    return tuple(m for m in GRADIENT_METHODS if m in found)


def gradient_frame(records: runs.Records) -> pd.DataFrame:
    """Long form of the recorded gradients: method, seed, position, stage, layer, value."""
    rows = []
    for method in GRADIENT_METHODS:
        for r in records.get(method, []):  # a profile may run some of the rows
            g = r.metric("gradients")
            if g is None:
                raise ValueError(f"record {r.name}-{r.spec_hash} has no gradient samples")
            for i, (stage, layer, v) in enumerate(zip(g["stage"], g["layer"],
                                                      g["mean_abs_grad"], strict=True)):
                rows.append({"method": method, "seed": r.seed, "position": i,
                             "stage": stage, "layer": layer, "mean_abs_grad": v})
    return pd.DataFrame(rows)


def network_means(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per method, each seed's mean over layers of the mean |gradient|."""
    per_seed = frame.groupby(["method", "seed"])["mean_abs_grad"].mean()
    return {m: per_seed[m].tolist() for m in _methods(frame)}


def network_seeds(frame: pd.DataFrame) -> dict[str, dict[int, float]]:
    """Per method, seed -> the mean over layers of the mean |gradient|."""
    per_seed = frame.groupby(["method", "seed"])["mean_abs_grad"].mean()
    return {m: {int(s): float(v) for s, v in per_seed[m].items()} for m in _methods(frame)}


def gradient_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean |gradient| per stage (mean over seeds and the stage's layers), with the ratio
    of each teacher-free run to the baseline, and the per-seed network means compared with
    the baseline's: paired over seeds, Welch beside."""
    order = list(dict.fromkeys(frame.sort_values("position")["stage"]))
    by_stage = (frame.groupby(["method", "stage"])["mean_abs_grad"].mean()
                .unstack("stage")[order].reindex(list(_methods(frame))))
    means = network_means(frame)
    out = by_stage.map(lambda v: f"{v:.3e}")
    out["all layers"] = [stats.summarize(means[m]).mean for m in _methods(frame)]
    base = out.loc["baseline", "all layers"]
    out["ratio to baseline"] = [f"{v / base:.2f}" for v in out["all layers"]]
    seeds = network_seeds(frame)
    for m in _methods(frame)[1:]:
        c = verdicts.compare(seeds[m], seeds["baseline"], scale=1.0)
        out.loc[m, "paired p vs baseline"] = pages.fmt_p(c.p) if c.paired else "—"
        out.loc[m, "Welch p vs baseline"] = pages.fmt_p(c.welch_p)
    out = out.fillna("—")
    out["all layers"] = [f"{v:.3e}" for v in out["all layers"]]
    out.index = [LABELS[m] for m in _methods(frame)]
    return out


def gradient_sentences(frame: pd.DataFrame) -> list[str]:
    """One plain-words line per teacher-free method: larger gradients than the baseline?"""
    means = network_means(frame)
    base = stats.summarize(means["baseline"])
    lines = []
    for m in _methods(frame)[1:]:
        s = stats.summarize(means[m])
        ratio = s.mean / base.mean
        c = verdicts.compare(network_seeds(frame)[m], network_seeds(frame)["baseline"], 1.0)
        p = c.p
        seeds_larger = sum(a > b for a, b in zip(means[m], means["baseline"], strict=True))
        if s.n < 2:
            verdict = "from a single seed, so nothing can be said about the spread"
        elif ratio > 1 and p < 0.05:
            verdict = "larger than the baseline's, beyond the seed-to-seed spread"
        elif ratio > 1:
            verdict = "larger on average, but not clearly beyond the seed-to-seed spread"
        else:
            verdict = "not larger than the baseline's"
        lines.append(f"{LABELS[m]}: mean |gradient| over all layers is {ratio:.2f}× the "
                     f"baseline's (larger on {seeds_larger} of {s.n} paired seeds, Welch p = "
                     f"{pages.fmt_p(p)}): {verdict}.")
    return lines


def gradient_heatmap(frame: pd.DataFrame):
    """Figure 2: mean |gradient| of every layer (columns, grouped by stage) for each method
    (rows), averaged over seeds; below, each method's ratio to the baseline."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    table = (frame.groupby(["method", "position"])["mean_abs_grad"].mean()
             .unstack("position").reindex(list(_methods(frame))))
    layers = frame.drop_duplicates("position").sort_values("position")
    values = table.to_numpy()
    ratio = np.log2(values / values[0])
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.8), sharex=True)
    im = axes[0].imshow(values, aspect="auto", cmap="viridis",
                        norm=LogNorm(values.min(), values.max()))
    fig.colorbar(im, ax=axes[0], label="mean |gradient|", pad=0.01)
    lim = max(float(np.abs(ratio).max()), 1e-3)
    im2 = axes[1].imshow(ratio, aspect="auto", cmap="RdBu_r",
                         norm=TwoSlopeNorm(0.0, -lim, lim))
    fig.colorbar(im2, ax=axes[1], label="log₂ ratio to baseline", pad=0.01)
    stages = layers["stage"].tolist()
    bounds = [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    centers = {}
    for i, s in enumerate(stages):
        centers.setdefault(s, []).append(i)
    for ax in axes:
        ax.set_yticks(range(len(_methods(frame))))
        ax.set_yticklabels([LABELS[m].removeprefix("ResNet18: ") for m in _methods(frame)])
        for b in bounds:
            ax.axvline(b - 0.5, color="white", lw=1.5)
    axes[1].set_xticks([float(np.mean(v)) for v in centers.values()])
    axes[1].set_xticklabels(list(centers))
    axes[1].set_xlabel("layer (convolutions and the linear head, in network order), by stage")
    fig.tight_layout()
    return fig


# --- Figure 2's claim, tested: a depth profile that does not depend on the loss's scale -------

#: The stages that make up the "early" layers of the depth test.
EARLY = ("stem", "layer1")


def depth_ratio(record: Record) -> float:
    """Mean |gradient| of the early layers (:data:`EARLY`) over the last layer's (``fc``).

    A loss that scales every layer's gradient by one factor (a larger α, a T² weight)
    leaves this ratio unchanged; a loss that keeps the early layers learning relative to
    the head raises it. Vanishing gradients are a small ratio.
    """
    g = gradients_of(record)
    early = [v for v, s in zip(g["mean_abs_grad"], g["stage"], strict=True) if s in EARLY]
    last = [v for v, s in zip(g["mean_abs_grad"], g["stage"], strict=True) if s == "fc"]
    return (sum(early) / len(early)) / (sum(last) / len(last))


def depth_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """Each stage's mean |gradient| relative to the last layer's (``fc``), per method (mean
    over seeds of the per-seed ratios), in network order."""
    order = list(dict.fromkeys(frame.sort_values("position")["stage"]))
    per_seed = frame.groupby(["method", "seed", "stage"])["mean_abs_grad"].mean().unstack()
    rel = per_seed[order].div(per_seed["fc"], axis=0)
    out = rel.groupby(level="method").mean().reindex([m for m in GRADIENT_METHODS
                                                      if m in rel.index.get_level_values(0)])
    out.index = [LABELS[m] for m in out.index]
    return out


def depth_test(records: runs.Records) -> pd.DataFrame:
    """The stated test of "early layers get relatively larger gradients with KD": per seed,
    :func:`depth_ratio`; each method against the baseline, paired over seeds (Welch beside),
    at the stated size of :data:`STATED` of the baseline's mean ratio."""
    base = claims.by_seed(records, BASELINE, measure=depth_ratio)
    mean = stats.summarize(list(base.values())).mean
    rows = []
    for m in GRADIENT_METHODS:
        if m not in records:
            continue
        ratios = claims.by_seed(records, m, measure=depth_ratio)
        row = {"": LABELS[m],
               "early / last (mean ± std)": stats.summarize(list(ratios.values())).fmt(1.0, 3),
               "seeds": len(ratios)}
        if m != "baseline":
            d = verdicts.gain({s: v / mean for s, v in ratios.items()},
                              {s: v / mean for s, v in base.items()}, STATED, scale=1.0)
            row.update({"vs baseline (relative)": f"{d.difference:+.3f}",
                        "paired p" if d.paired else "Welch p": pages.fmt_p(d.p),
                        "verdict": d.verdict})
        rows.append(row)
    return pd.DataFrame(rows).set_index("").fillna("—")


def depth_figure(frame: pd.DataFrame):
    """Each stage's mean |gradient| relative to the last layer's, one line per method."""
    import matplotlib.pyplot as plt

    prof = depth_profile(frame)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for label, row in prof.iterrows():
        ax.plot(range(len(row)), row.to_numpy(), marker="o", label=label.removeprefix(
            "ResNet18: "))
    ax.set_xticks(range(len(prof.columns)), list(prof.columns))
    ax.set_yscale("log")
    ax.set_xlabel("stage (input → output)")
    ax.set_ylabel("mean |gradient| / last layer's")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
