"""Table 4 and Figures 1 and 2: teacher-free distillation of a ResNet18.

Rows: ``baseline`` (ResNet18, cross-entropy, shared with Table 3),
``tf_kd_reg`` and ``tf_kd_reg_ours`` (distilled from the hand-made virtual
teacher, in the official code's form, the paper's row, and in this build's,
:mod:`kdlib.losses`), ``tf_kd_self`` (distilled from the trained ``baseline``
of the same seed) and ``label_smoothing``, the control of the paper's reading.
Figure 1 draws the virtual teacher (no runs); Figure 2 (chapter ``05_gradients``)
compares the layer gradients these same runs recorded while they trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kdlib import runs
from kdlib.chapters import Chapter, images
from kdlib.chapters.images import BASELINE, Method
from kdlib.config import ge
from kdlib.readings import Reading

NAME = "04_teacher_free"


@dataclass(frozen=True)
class Params(images.TfKdLosses, images.ResNetRuns):
    """Table 4 (and Figure 2, which reads its runs): the shared ResNet runs and the two
    teacher-free losses."""

    #: The epochs of Tf-KD-self's teacher; 0: the baseline of the same seed is the teacher.
    #: Otherwise the teacher is the baseline's recipe run this long, a run of its own
    #: (``tf_kd_self_teacher``), and only the baseline row stays at ``epochs``.
    tf_self_teacher_epochs: int = field(default=0, metadata={**ge(0), "optional": True})

    def for_teacher(self, method: Method) -> Params:
        if method == TF_KD_SELF and self.tf_self_teacher_epochs:
            return dataclasses.replace(self, epochs=self.tf_self_teacher_epochs,
                                       tf_self_teacher_epochs=0)
        return self


TF_KD_REG = Method("tf_kd_reg", "ResNet18: Tf-KD-reg (official form)",
                   images.tf_kd_reg_official, arch="resnet18", paper="tf_kd_reg",
                   versus=BASELINE)
TF_KD_REG_OURS = Method("tf_kd_reg_ours", "ResNet18: Tf-KD-reg (this build's form)",
                        images.tf_kd_reg, arch="resnet18", versus=BASELINE)
TF_KD_SELF = Method("tf_kd_self", "ResNet18: Tf-KD-self", images.tf_kd_self, arch="resnet18",
                    teacher=BASELINE, paper="tf_kd_self", versus=BASELINE)
LABEL_SMOOTHING = Method("label_smoothing", "ResNet18: label smoothing (control)",
                         images.label_smoothing, arch="resnet18", versus=BASELINE)
#: The rows, each after the row it learns from.
METHODS = (BASELINE, TF_KD_REG, TF_KD_REG_OURS, TF_KD_SELF, LABEL_SMOOTHING)


def plan(cfg: Params) -> list[runs.Run]:
    return images.resnet_plan(cfg, NAME, METHODS)


#: Tf-KD-self's teacher: the baseline as it is, or trained until it fits its training data.
SELF_TEACHER_FIT = Reading(
    "self-teacher-fit", "Tf-KD-self's teacher",
    "the baseline of the same seed, trained as long as the student (at `cpu`, 8 epochs: "
    "its training cross-entropy ends at 0.30-0.35)",
    "the baseline's recipe run for 96 epochs, so that the teacher fits its training data as "
    "the official one does (the best of 200 epochs on CIFAR); the student and the baseline "
    "it is compared with keep their epochs",
    {"tf_self_teacher_epochs": 96})
#: Tf-KD-self's teacher trained to fit, and its student and baseline trained as long as it.
SELF_TEACHER_FIT_EQUAL = Reading(
    "self-teacher-fit-equal", "how long Tf-KD-self's teacher, student and baseline train",
    "every row trains the chapter's epochs (at `cpu`, 8), and the teacher is the baseline "
    "of the same seed",
    "every row trains 96 epochs: the teacher (the baseline of the same seed) fits its "
    "training data as under `self-teacher-fit`, and the student and the baseline it is "
    "compared with train as long as it, as in the official code, so that a gain is not "
    "distillation from a network trained longer than the baseline",
    {"epochs": 96})
#: The other readings of Table 4's open settings (kdlib.readings).
READINGS = (images.SELF_ALPHA_CIFAR100, images.MULTIPLIER_100, images.SMOOTHING_OTHERS,
            SELF_TEACHER_FIT, SELF_TEACHER_FIT_EQUAL)

TINY = {"train_size": 16, "test_size": 16, "batch_size": 8, "epochs": 2, "grad_every": 1}

#: Chapter 4, declared.
CHAPTER = Chapter(name=NAME, title="Teacher-free distillation (Table 4, Figure 1)",
                  params=Params, methods=METHODS, plan=plan, page="kdlib.pages.table4",
                  tiny=TINY, readings=READINGS)
#: Chapter 5 (Figure 2) shows the gradients chapter 4's runs recorded: it has no runs of its own.
GRADIENTS = Chapter(name="05_gradients", title="Gradients per layer (Figure 2)", params=Params,
                    methods=METHODS, plan=plan, page="kdlib.pages.figure2", tiny=TINY,
                    records_of=NAME, readings=READINGS)
