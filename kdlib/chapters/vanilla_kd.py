"""Table 1: Hinton's distillation of a 784-1200-1200-10 MLP into a 784-400-10 MLP on MNIST.

Runs, per seed: the ``teacher``; a ``student`` trained on the labels alone; a
``student_kd`` trained with Hinton's loss from the teacher of the same seed.
On the first seed, ``student_kd_sweep`` repeats the KD student for every
temperature × α of the profile's sweep. Both students share one recipe and
seed; only the objective differs. With ``trials``, ``teacher_trial`` is the
heavier teacher recipe that was tried first and set aside (:data:`TRIAL_TEACHER`),
kept so that the page can show it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from kdlib import networks, objectives, runs, training
from kdlib.chapters import Chapter, mnist
from kdlib.config import between, ge

NAME = "01_vanilla_kd"


@dataclass(frozen=True)
class Params(mnist.MnistTeacher):
    """Table 1: the shared MNIST teacher, and the students' recipe and KD settings."""

    student_epochs: int = field(default=1, metadata=ge(1))
    student_lr: float = field(default=0.05, metadata={"gt": 0})
    temperature: float = field(default=4.0, metadata={"gt": 0})
    alpha: float = field(default=0.9, metadata=between(0, 1))
    sweep_temperatures: list[float] = field(default_factory=list, metadata={"gt": 0})
    sweep_alphas: list[float] = field(default_factory=list, metadata=between(0, 1))


#: The teacher recipe tried first (Hinton's dropout 0.5 and 2-pixel jitter), set aside for
#: the lighter one after it scored lower on seed 0.
TRIAL_TEACHER = {"teacher_dropout": 0.5, "teacher_jitter": 2}


def trial_teacher(cfg: Params) -> Params:
    return dataclasses.replace(cfg, **TRIAL_TEACHER)


def student_recipe(cfg: Params) -> training.Recipe:
    return mnist.student_recipe(cfg, cfg.student_epochs, cfg.student_lr)


def student(cfg: Params, seed: int, kd: objectives.HintonKD | None) -> networks.Training:
    """A student on the teacher's own images: from the labels alone (`kd` None) or
    distilled with Hinton's loss from the teacher of the same seed."""
    return mnist.student(cfg, seed, student_recipe(cfg), mnist.data(cfg), kd)


def plan(cfg: Params) -> list[runs.Run]:
    """Teachers, both students per seed, and the sweep's KD students on the first seed; each
    run measured by :func:`kdlib.digits.class_metrics`."""
    run = functools.partial(mnist.measured, cfg, NAME)
    plan = [run("teacher", mnist.teacher(cfg, s)) for s in cfg.seeds]
    for s in cfg.seeds:
        plan += [run("student", student(cfg, s, None)),
                 run("student_kd", student(cfg, s, objectives.HintonKD(cfg.temperature,
                                                                       cfg.alpha)))]
    plan += [run("student_kd_sweep", student(cfg, cfg.seeds[0], objectives.HintonKD(t, a)))
             for t in cfg.sweep_temperatures for a in cfg.sweep_alphas]
    if cfg.trials:
        plan.append(run("teacher_trial", mnist.teacher(trial_teacher(cfg), cfg.seeds[0])))
    return plan


#: Chapter 1, declared.
CHAPTER = Chapter(name=NAME, title="Vanilla distillation on MNIST (Table 1)", params=Params,
                  plan=plan, page="kdlib.pages.table1",
                  tiny={"train_size": 600, "teacher_epochs": 1, "student_epochs": 1})
