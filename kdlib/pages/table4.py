"""The page of Table 4 and Figure 1: teacher-free distillation, and the claims they decide."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch

from kdlib import claims, losses, pages, paper, report, runs
from kdlib.chapters import images
from kdlib.chapters import teacher_free as chapter
from kdlib.chapters.images import BASELINE
from kdlib.chapters.teacher_free import LABEL_SMOOTHING, TF_KD_REG, TF_KD_SELF
from kdlib.claims import Claim
from kdlib.pages import image_pages as common
from kdlib.verdicts import Decision

GLUE = "t4"
NAME = chapter.NAME
LABELS = {m.name: m.label for m in chapter.METHODS}
scale = common.scale


def figure1_rule(records: runs.Records, cfg: Any) -> Decision:
    """Figure 1 reproduced: kdlib's virtual teacher against the closed form, and 0.2128 at
    T = 1 (δ = 0.9, K = 10)."""
    curve = virtual_teacher_curve(0.9, 10, (1, 2, 5, 10, 20))
    gap = max((curve[f"{p} (formula)"] - curve[f"{p} (kdlib)"]).abs().max()
              for p in ("correct", "incorrect"))
    at1 = float(curve.loc[1.0, "correct (kdlib)"])
    ok = gap < 1e-6 and abs(at1 - 0.2128) < 5e-5
    return Decision("reproduced" if ok else "not reproduced",
                    f"correct class {at1:.4f} at T = 1, "
                    f"{float(curve.loc[20.0, 'correct (kdlib)']):.4f} at T = 20",
                    f"kdlib's teacher against the closed form: largest gap {gap:.1e} "
                    f"(tolerance 1e-6)", gap)


T4 = paper.TABLE4
CLAIMS = (
    Claim("T4 (reg)", NAME, "Tf-KD-reg beats the ResNet18 baseline.",
          claims.change(T4["baseline"][0], T4["tf_kd_reg"][0]),
          f"gain of `{TF_KD_REG.name}` (the official form) over `{BASELINE.name}` "
          f"(paired)",
          claims.gain(TF_KD_REG, BASELINE,
                      100 * (T4["tf_kd_reg"][0] - T4["baseline"][0]))),
    Claim("T4 (self)", NAME, "Tf-KD-self beats the ResNet18 baseline.",
          claims.change(T4["baseline"][0], T4["tf_kd_self"][0]),
          f"gain of `{TF_KD_SELF.name}` over `{BASELINE.name}` (paired)",
          claims.gain(TF_KD_SELF, BASELINE, 100 * (T4["tf_kd_self"][0] - T4["baseline"][0])),
          premises=(claims.fits(BASELINE, "the self-teacher (the baseline of the same seed, "
                                          "or the one trained to fit) fits its training data",
                                trained_apart=images.teacher_row(TF_KD_SELF)),)),
    Claim("T4, reading", NAME, "Teacher-free KD's gain is label-smoothing regularisation.", "—",
          "label smoothing behaves like Tf-KD-reg (official form), within half the paper's "
          "Tf-KD-reg gain",
          claims.alike(LABEL_SMOOTHING, TF_KD_REG, BASELINE,
                       100 * (T4["tf_kd_reg"][0] - T4["baseline"][0]))),
    Claim("F1", NAME,
          "The virtual teacher's class probabilities against the temperature (δ = 0.9).",
          "Figure 1", "closed form against kdlib, and 0.2128 at T = 1", figure1_rule,
          fixed_scale="analytic: δ = 0.9, K = 10, T from 1 to 20"),
)


def setting(cfg: chapter.Params) -> str:
    """The setting in words; glues the label-smoothing ε and the matched one for the text."""
    report.glue_value("t4_ls", cfg.label_smoothing)
    report.glue_value("t4_ls_matched", common.matched_smoothing(cfg))
    return common.setting(cfg)


def figure1_glued() -> pd.DataFrame:
    """Glue Figure 1 and the largest gap between kdlib and the closed form (checked below
    1e-6), and return the curve at the paper's temperatures."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    curve = virtual_teacher_curve(0.9, 10, range(1, 21))
    gap = max((curve[f"{p} (formula)"] - curve[f"{p} (kdlib)"]).abs().max()
              for p in ("correct", "incorrect"))
    if gap >= 1e-6:
        raise AssertionError(f"formula and kdlib differ by {gap}")
    report.glue_value("t4_fig1_gap", float(gap))
    fig = figure1(curve, 0.9)
    glue("t4_fig1", fig, display=False)
    plt.close(fig)
    return curve.loc[[1.0, 2.0, 5.0, 10.0, 20.0]].round(4)


def table4(records: runs.Records) -> pd.DataFrame:
    """Table 4: test accuracy (%) of every row, the paper's beside ours, each compared with
    the baseline by Welch's test."""
    return pages.rows_table(records, chapter.METHODS, T4, paper.TABLE4_RUNS)


def results(records: runs.Records) -> pd.DataFrame:
    """Print Table 4's paper and run columns (nbval compares them) and return the table."""
    return common.printed(table4(records))


def verdicts(records: runs.Records, cfg: chapter.Params) -> None:
    """Plain words on each row against the baseline, what the paper's own cells say, and
    the claims decided at this scale."""
    pages.gain_sentences(records, chapter.METHODS)
    for m in chapter.METHODS:
        if m.paper and m is not BASELINE and m.name in records:
            print(common.paper_gain_sentence(m.label, T4[m.paper], BASELINE.label,
                                             T4["baseline"], paper.TABLE4_RUNS))
    print()
    pages.show_claims(NAME, cfg)


def show_records(records: runs.Records) -> None:
    pages.show(table4(records), records, NAME, "table4")


provenance = common.provenance


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
