"""Table 3: reversed distillation (Re-KD), a trained ResNet18 teaching a ResNet50.

Rows: ``teacher_baseline`` (ResNet50, cross-entropy), ``baseline`` (ResNet18,
cross-entropy, shared with Table 4), ``re_kd`` (ResNet50 distilled from the
trained ResNet18 ``baseline`` of the same seed, in Hinton's loss form) and
``label_smoothing_r50``, the label-smoothing control of the paper's reading.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kdlib import objectives, runs
from kdlib.chapters import Chapter, images
from kdlib.chapters.images import BASELINE, Method
from kdlib.config import between

NAME = "03_reversed_kd"


@dataclass(frozen=True)
class Params(images.ResNetRuns):
    """Table 3: the shared ResNet runs and Re-KD's loss settings."""

    re_kd_temperature: float = field(default=20.0, metadata={"gt": 0})
    re_kd_alpha: float = field(default=0.13, metadata=between(0, 1))


def re_kd(cfg: Params) -> objectives.Loss:
    return objectives.HintonKD(cfg.re_kd_temperature, cfg.re_kd_alpha)


TEACHER_BASELINE = Method("teacher_baseline", "ResNet50: baseline", images.cross_entropy,
                          arch="resnet50", paper="teacher_baseline")
#: Table 4's baseline, the paper's "student baseline" here.
STUDENT_BASELINE = dataclasses.replace(BASELINE, paper="student_baseline")
RE_KD = Method("re_kd", "ResNet50: Re-KD (taught by ResNet18)", re_kd, arch="resnet50",
               teacher=STUDENT_BASELINE, paper="re_kd", versus=TEACHER_BASELINE)
LABEL_SMOOTHING_R50 = Method("label_smoothing_r50", "ResNet50: label smoothing (control)",
                             images.label_smoothing, arch="resnet50", versus=TEACHER_BASELINE)
#: The rows, each after the row it learns from.
METHODS = (STUDENT_BASELINE, TEACHER_BASELINE, RE_KD, LABEL_SMOOTHING_R50)


def plan(cfg: Params) -> list[runs.Run]:
    return images.resnet_plan(cfg, NAME, METHODS)


#: Chapter 3, declared.
CHAPTER = Chapter(
    name=NAME, title="Reversed distillation (Table 3)", params=Params, methods=METHODS,
    plan=plan, page="kdlib.pages.table3", readings=(images.SMOOTHING_OTHERS,),
    tiny={"train_size": 16, "test_size": 16, "batch_size": 8, "epochs": 2, "grad_every": 1})
