"""The page of Table 3: reversed distillation, and the claims it decides."""

from __future__ import annotations

import pandas as pd

from kdlib import claims, pages, paper, runs
from kdlib.chapters import reversed_kd as chapter
from kdlib.chapters.reversed_kd import (
    LABEL_SMOOTHING_R50,
    RE_KD,
    STUDENT_BASELINE,
    TEACHER_BASELINE,
)
from kdlib.claims import Claim
from kdlib.pages import image_pages as common

GLUE = "t3"
NAME = chapter.NAME
LABELS = {m.name: m.label for m in chapter.METHODS}
scale = common.scale
setting = common.setting

T3 = paper.TABLE3
GAIN = 100 * (T3["re_kd"][0] - T3["teacher_baseline"][0])
#: Re-KD asks a weaker network to teach a stronger one: the ResNet50 must be at least as
#: accurate as the ResNet18 that teaches it (in the paper: 95.29 against 94.90).
WEAK_TEACHER = claims.at_least(
    TEACHER_BASELINE, STUDENT_BASELINE, "test_acc",
    "the ResNet50 baseline is at least as accurate as the ResNet18 that teaches it")
CLAIMS = (
    Claim("T3", NAME, "Re-KD: a ResNet18 teacher improves a ResNet50.",
          claims.change(T3["teacher_baseline"][0], T3["re_kd"][0]),
          f"gain of `{RE_KD.name}` over `{TEACHER_BASELINE.name}` (paired)",
          claims.gain(RE_KD, TEACHER_BASELINE, GAIN), premises=(WEAK_TEACHER,)),
    Claim("T3, reading", NAME, "Re-KD's gain is label-smoothing regularisation.", "—",
          "label smoothing behaves like Re-KD, within half the paper's Re-KD gain",
          claims.alike(LABEL_SMOOTHING_R50, RE_KD, TEACHER_BASELINE, GAIN),
          premises=(WEAK_TEACHER,)),
)


def table3(records: runs.Records) -> pd.DataFrame:
    """Table 3: test accuracy (%) of both baselines, Re-KD and the control, the paper's
    beside ours; each compared with the ResNet50 baseline, from our runs and from the
    paper's ``mean ± std`` over its 3 runs."""
    return pages.rows_table(records, chapter.METHODS, T3, paper.TABLE3_RUNS)


def results(records: runs.Records) -> pd.DataFrame:
    """Print Table 3's paper and run columns (nbval compares them) and return the table."""
    return common.printed(table3(records))


def verdicts(records: runs.Records, cfg: chapter.Params) -> None:
    """Plain words on each row against the ResNet50 baseline, what the paper's own cells
    say, and the claims decided at this scale."""
    pages.gain_sentences(records, chapter.METHODS)
    print(common.paper_gain_sentence("Re-KD ResNet50", T3["re_kd"], "ResNet50 baseline",
                                     T3["teacher_baseline"], paper.TABLE3_RUNS))
    print()
    pages.show_claims(NAME, cfg)


def show_records(records: runs.Records) -> None:
    pages.show(table3(records), records, NAME, "table3")


provenance = common.provenance
