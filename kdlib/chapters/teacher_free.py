"""Table 4, Figure 1 and Figure 2: teacher-free distillation of a ResNet18.

Rows: ``baseline`` (ResNet18, cross-entropy, shared with Table 3),
``tf_kd_reg`` (distilled from the hand-made virtual teacher,
:func:`kdlib.losses.tf_kd_reg`) and ``tf_kd_self`` (distilled from the trained
``baseline`` of the same seed). Figure 1 draws the virtual teacher; Figure 2
(chapter ``05_gradients``, the same runs) compares the gradients each run
recorded while it trained.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from kdlib import losses, paper, runs, stats
from kdlib.chapters import images
from kdlib.chapters.images import BASELINE, Method

NAME = "04_teacher_free"


@dataclass(frozen=True)
class Params(images.TfKdLosses, images.ResNetRuns):
    """Table 4 (and Figure 2, which reads its runs): the shared ResNet runs and the two
    teacher-free losses."""


def tf_kd_self_loss(cfg: Params) -> dict[str, Any]:
    return images.hinton_loss(cfg.tf_self_temperature, cfg.tf_self_alpha)


def tf_kd_reg_loss(cfg: Params) -> dict[str, Any]:
    return {**images.tf_kd_reg_loss(cfg), "log_space": False}


TF_KD_REG_OFFICIAL = Method("tf_kd_reg_official", "ResNet18: Tf-KD-reg (official form)",
                            "resnet18", images.tf_kd_reg_official_loss)
TF_KD_REG = Method("tf_kd_reg", "ResNet18: Tf-KD-reg (this build's form)", "resnet18",
                   tf_kd_reg_loss)
TF_KD_SELF = Method("tf_kd_self", "ResNet18: Tf-KD-self", "resnet18", tf_kd_self_loss,
                    teacher=BASELINE)
LABEL_SMOOTHING = Method("label_smoothing", "ResNet18: label smoothing (control)", "resnet18",
                         images.label_smoothing_loss)
#: The rows, each after the method it learns from.
METHODS = (BASELINE, TF_KD_REG_OFFICIAL, TF_KD_REG, TF_KD_SELF, LABEL_SMOOTHING)
#: The paper's row of each method (its Tf-KD-reg numbers came from the official code).
PAPER_ROW = {"baseline": "baseline", "tf_kd_reg_official": "tf_kd_reg",
             "tf_kd_self": "tf_kd_self"}


scale = images.scale


def plan(cfg: Params) -> list[runs.Run]:
    return images.plan(cfg, NAME, METHODS)


def table4(records: runs.Records) -> pd.DataFrame:
    """Table 4: test accuracy (%) of every method, the paper's beside ours, each compared
    with the baseline by Welch's test."""
    t = paper.TABLE4
    rows = [(m, t.get(PAPER_ROW.get(m.name, "")), None if m is BASELINE else BASELINE)
            for m in METHODS]
    return images.comparison(records, rows, t, paper.TABLE4_RUNS)


# --- Figure 1: the virtual teacher -------------------------------------------------------------

def virtual_teacher_formula(delta: float, num_classes: int,
                            temperature: float) -> tuple[float, float]:
    """Correct- and incorrect-class probability of the virtual teacher, in closed form.

    ``softmax(p/T)`` of ``p = (δ, (1-δ)/(K-1), ...)``: the correct class gets
    ``e^{δ/T} / (e^{δ/T} + (K-1)·e^{(1-δ)/((K-1)T)})``.
    """
    a = math.exp(delta / temperature)
    b = math.exp((1 - delta) / (num_classes - 1) / temperature)
    z = a + (num_classes - 1) * b
    return a / z, b / z


def virtual_teacher_curve(delta: float = 0.9, num_classes: int = 10,
                          temperatures: Iterable[float] = range(1, 21)) -> pd.DataFrame:
    """Figure 1's curves from the formula and from :func:`kdlib.losses.virtual_teacher`."""
    rows = []
    label = torch.tensor([0])
    for t in temperatures:
        correct, wrong = virtual_teacher_formula(delta, num_classes, float(t))
        q = losses.virtual_teacher(label, num_classes, delta, float(t))[0].double()
        rows.append({"T": float(t), "correct (formula)": correct, "incorrect (formula)": wrong,
                     "correct (kdlib)": float(q[0]), "incorrect (kdlib)": float(q[1])})
    return pd.DataFrame(rows).set_index("T")


def figure1(curve: pd.DataFrame, delta: float = 0.9):
    """The virtual teacher's correct- and incorrect-class probability against temperature."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for part, color in (("correct", "C0"), ("incorrect", "C3")):
        ax.plot(curve.index, curve[f"{part} (formula)"], color=color, lw=2,
                label=f"{part} class (formula)")
        ax.plot(curve.index, curve[f"{part} (kdlib)"], "o", color=color, ms=4, mfc="none",
                label=f"{part} class (kdlib.losses.virtual_teacher)")
    ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="uniform (1/K)")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("probability")
    ax.set_title(f"Virtual teacher, δ = {delta:g}, K = {images.NUM_CLASSES}")
    ax.set_xticks(range(0, 21, 2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- Figure 2: gradients -----------------------------------------------------------------------

GRADIENT_METHODS = tuple(m.name for m in METHODS)
LABELS = {m.name: m.label for m in METHODS}


def gradient_frame(records: runs.Records) -> pd.DataFrame:
    """Long form of the recorded gradients: method, seed, position, stage, layer, value."""
    rows = []
    for method in GRADIENT_METHODS:
        for r in records[method]:
            g = r["metrics"]["gradients"]
            if g is None:
                raise ValueError(f"record {r['name']}-{r['spec_hash']} has no gradient samples")
            for i, (stage, layer, v) in enumerate(zip(g["stage"], g["layer"],
                                                      g["mean_abs_grad"], strict=True)):
                rows.append({"method": method, "seed": r["spec"]["seed"], "position": i,
                             "stage": stage, "layer": layer, "mean_abs_grad": v})
    return pd.DataFrame(rows)


def network_means(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per method, each seed's mean over layers of the mean |gradient|."""
    per_seed = frame.groupby(["method", "seed"])["mean_abs_grad"].mean()
    return {m: per_seed[m].tolist() for m in GRADIENT_METHODS}


def gradient_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean |gradient| per stage (mean over seeds and the stage's layers), with the ratio
    of each teacher-free run to the baseline and Welch's test on the per-seed network means."""
    order = list(dict.fromkeys(frame.sort_values("position")["stage"]))
    by_stage = (frame.groupby(["method", "stage"])["mean_abs_grad"].mean()
                .unstack("stage")[order].reindex(list(GRADIENT_METHODS)))
    means = network_means(frame)
    out = by_stage.map(lambda v: f"{v:.3e}")
    out["all layers"] = [stats.summarize(means[m]).mean for m in GRADIENT_METHODS]
    base = out.loc["baseline", "all layers"]
    out["ratio to baseline"] = [f"{v / base:.2f}" for v in out["all layers"]]
    out["Welch p vs baseline"] = ["—"] + [images.fmt_p(stats.welch_p(means[m], means["baseline"]))
                                          for m in GRADIENT_METHODS[1:]]
    out["all layers"] = [f"{v:.3e}" for v in out["all layers"]]
    out.index = [LABELS[m] for m in GRADIENT_METHODS]
    return out


def gradient_sentences(frame: pd.DataFrame) -> list[str]:
    """One plain-words line per teacher-free method: larger gradients than the baseline?"""
    means = network_means(frame)
    base = stats.summarize(means["baseline"])
    lines = []
    for m in GRADIENT_METHODS[1:]:
        s = stats.summarize(means[m])
        ratio = s.mean / base.mean
        p = stats.welch_p(means[m], means["baseline"])
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
                     f"{images.fmt_p(p)}): {verdict}.")
    return lines


def gradient_heatmap(frame: pd.DataFrame):
    """Figure 2: mean |gradient| of every layer (columns, grouped by stage) for each method
    (rows), averaged over seeds; below, each method's ratio to the baseline."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    table = (frame.groupby(["method", "position"])["mean_abs_grad"].mean()
             .unstack("position").reindex(list(GRADIENT_METHODS)))
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
        ax.set_yticks(range(len(GRADIENT_METHODS)))
        ax.set_yticklabels([LABELS[m].removeprefix("ResNet18: ") for m in GRADIENT_METHODS])
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


def depth_ratio(record: dict[str, Any]) -> float:
    """Mean |gradient| of the early layers (:data:`EARLY`) over the last layer's (``fc``).

    A loss that scales every layer's gradient by one factor (a larger α, a T² weight)
    leaves this ratio unchanged; a loss that keeps the early layers learning relative to
    the head raises it. Vanishing gradients are a small ratio.
    """
    g = record["metrics"]["gradients"]
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
    :func:`depth_ratio`; Welch's test of each method against the baseline."""
    from kdlib import verdicts

    base = [depth_ratio(r) for r in records["baseline"]]
    rows = []
    for m in GRADIENT_METHODS:
        if m not in records:
            continue
        ratios = [depth_ratio(r) for r in records[m]]
        row = {"": LABELS[m], "early / last (mean ± std)": stats.summarize(ratios).fmt(1.0, 3),
               "seeds": len(ratios)}
        if m != "baseline":
            d = verdicts.gain(ratios, base, math.nan, scale=1.0)
            row.update({"vs baseline": f"{d.difference:+.3f}", "Welch p": images.fmt_p(d.p),
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
