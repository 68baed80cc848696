"""Table 3: reversed distillation (Re-KD), a trained ResNet18 teaching a ResNet50.

Rows: ``teacher_baseline`` (ResNet50, cross-entropy), ``baseline`` (ResNet18,
cross-entropy, shared with Table 4) and ``re_kd`` (ResNet50 distilled from the
trained ResNet18 ``baseline`` of the same seed, in Hinton's loss form).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kdlib import paper, runs
from kdlib.chapters import images
from kdlib.chapters.images import BASELINE, Method
from kdlib.config import between

NAME = "03_reversed_kd"


@dataclass(frozen=True)
class Params(images.ResNetRuns):
    """Table 3: the shared ResNet runs and Re-KD's loss settings."""

    re_kd_temperature: float = field(default=20.0, metadata={"gt": 0})
    re_kd_alpha: float = field(default=0.13, metadata=between(0, 1))


def re_kd_loss(cfg: Params) -> dict[str, Any]:
    return images.hinton_loss(cfg.re_kd_temperature, cfg.re_kd_alpha)


TEACHER_BASELINE = Method("teacher_baseline", "ResNet50: baseline", "resnet50",
                          images.cross_entropy_loss)
RE_KD = Method("re_kd", "ResNet50: Re-KD (taught by ResNet18)", "resnet50", re_kd_loss,
               teacher=BASELINE)
LABEL_SMOOTHING_R50 = Method("label_smoothing_r50", "ResNet50: label smoothing (control)",
                             "resnet50", images.label_smoothing_loss)
#: The rows, each after the method it learns from.
METHODS = (BASELINE, TEACHER_BASELINE, RE_KD, LABEL_SMOOTHING_R50)


scale = images.scale


def plan(cfg: Params) -> list[runs.Run]:
    return images.plan(cfg, NAME, METHODS)


def table3(records: runs.Records) -> pd.DataFrame:
    """Table 3: test accuracy (%) of both baselines and the Re-KD ResNet50, paper beside ours.

    The p-values are Welch's test of Re-KD against the ResNet50 baseline, from
    our runs and from the paper's ``mean ± std`` over its 3 runs.
    """
    t = paper.TABLE3
    return images.comparison(records, [(TEACHER_BASELINE, t["teacher_baseline"], None),
                                       (BASELINE, t["student_baseline"], None),
                                       (RE_KD, t["re_kd"], TEACHER_BASELINE),
                                       (LABEL_SMOOTHING_R50, None, TEACHER_BASELINE)],
                             {"teacher_baseline": t["teacher_baseline"]}, paper.TABLE3_RUNS)
