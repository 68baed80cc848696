"""Table 2: distillation onto a transfer set that never shows one digit.

Hinton et al. trained a small MNIST network on a transfer set with every
example of one digit removed, by distillation from a teacher that had seen
all ten. The student never gets a single example of that digit, yet learns a
good deal about it from the teacher's soft targets on the other digits. Its
remaining handicap is a too-low bias for the digit's output, which a single
shift of that bias repairs (:mod:`kdlib.digits`; the book's *Methods and
deviations* page).

The data, in this chapter's terms (:func:`transfer`):

- the *teacher* trains on the chapter's training images, exactly as in
  chapter 1 (same images, same spec), so both chapters share one checkpoint;
- the *held-out* images are those training images whose position in MNIST's
  60,000 is :data:`HELD_OUT_FROM` or later, the classic 10,000-image
  validation split. No student ever trains on them: they are used, without
  their labels, to choose the bias shift. That the teacher saw them does not
  matter, because the shift is computed from the *student's* logits only;
- the *transfer set* is the rest of the training images with every example
  of the omitted digit removed;
- the test set is used for evaluation only, after the shift is chosen.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from kdlib import digits, networks, objectives, runs, training
from kdlib.chapters import Chapter, mnist
from kdlib.config import between, ge

NAME = "02_omitted_digit"

#: Training images from this position of MNIST's 60,000 on are held out from every student.
HELD_OUT_FROM = 50_000

#: How the chapter's main bias shift is chosen (:mod:`kdlib.digits`).
CRITERION: digits.Criterion = "fraction"


@dataclass(frozen=True)
class Params(mnist.MnistTeacher):
    """Table 2: the shared MNIST teacher, the digits to omit, and the students' settings."""

    digits: list[int] = field(default_factory=lambda: [1, 2],
                              metadata={**between(0, 9), "nonempty": True, "unique": True})
    student_epochs: int = field(default=1, metadata=ge(1))
    student_lr: float = field(default=0.05, metadata={"gt": 0})
    #: Random shifts (pixels) of the transfer images; the teacher labels each shifted batch.
    student_jitter: int = field(default=2, metadata=between(0, 4))
    temperature: float = field(default=10.0, metadata={"gt": 0})
    alpha: float = field(default=0.9, metadata=between(0, 1))


def transfer(cfg: Params, digit: int) -> networks.Data:
    """A student's data: the chapter's training images that are not held out, without
    `digit`."""
    return dataclasses.replace(mnist.data(cfg), held_out_from=HELD_OUT_FROM,
                               omitted_digit=digit)


def student_recipe(cfg: Params) -> training.Recipe:
    """Chapter 1's student recipe, with the transfer images shifted by up to `student_jitter`."""
    return mnist.student_recipe(cfg, cfg.student_epochs, cfg.student_lr, cfg.student_jitter)


def run_name(digit: int, kd: bool) -> str:
    """Record name of a student: ``student_omit1`` or ``student_kd_omit1``."""
    return f"student{'_kd' if kd else ''}_omit{digit}"


#: Record name of the distilled student in the recipe tried first: the transfer images
#: unshifted (``student_jitter: 0``), set aside after it recognised fewer omitted 2s.
TRIAL = "student_kd_nojitter_omit{digit}"


def trial(cfg: Params) -> Params:
    return dataclasses.replace(cfg, student_jitter=0)


def student(cfg: Params, seed: int, digit: int, kd: bool) -> networks.Training:
    """A student trained without `digit`: from the labels alone (the paper's "T = 1"
    column) or distilled from the seed's shared teacher, trained on all ten digits, which
    labels every shifted batch (or the unshifted transfer set once)."""
    loss = objectives.HintonKD(cfg.temperature, cfg.alpha) if kd else None
    return mnist.student(cfg, seed, student_recipe(cfg), transfer(cfg, digit), loss)


def plan(cfg: Params) -> list[runs.Run]:
    """Teachers (chapter 1's checkpoint when the settings agree), then both students for
    each seed and omitted digit, each measured before and after the bias shift
    (:func:`kdlib.digits.omitted_metrics`)."""
    device = cfg.device  # resolved where the run executes: a plan is the same on any machine
    shift = digits.BiasShift(CRITERION)

    def student_run(name: str, fit: networks.Training) -> runs.Run:
        return networks.planned(cfg.profile, NAME, name, fit,
                                functools.partial(digits.omitted_metrics, fit, shift, device),
                                digits.omitted_work(fit), device,
                                spec=digits.record_spec(fit, shift))

    plan = [mnist.measured(cfg, NAME, "teacher", mnist.teacher(cfg, s)) for s in cfg.seeds]
    plan += [student_run(run_name(d, kd), student(cfg, s, d, kd))
             for s in cfg.seeds for d in cfg.digits for kd in (False, True)]
    if cfg.trials:
        plan += [student_run(TRIAL.format(digit=d), student(trial(cfg), s, d, True))
                 for s in cfg.seeds for d in cfg.digits]
    return plan


#: Chapter 2, declared.
CHAPTER = Chapter(name=NAME, title="Distillation without one digit (Table 2)", params=Params,
                  plan=plan, page="kdlib.pages.table2",
                  tiny={"train_size": 600, "teacher_epochs": 1, "student_epochs": 1})
