"""What Tables 1 and 2 share: MNIST, the 1200-1200 teacher, the 400-unit student.

Both chapters describe their runs with the typed values of :mod:`kdlib.networks`, and
train their teacher from the same parameters (:class:`MnistTeacher`): when two profiles'
sections agree on those settings, :func:`teacher` is one :class:`~kdlib.networks.Training`,
trained once and loaded by the other chapter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from kdlib import digits, networks, objectives, runs, training
from kdlib.config import Common, between, ge

#: Test images: the whole test split of MNIST and of Fashion-MNIST.
TEST_SIZE = 10_000
#: Dropout of the teacher's input pixels (Hinton et al.'s 20%).
TEACHER_INPUT_DROPOUT = 0.2
#: The paper's small model: 784-400-10, no regularisation.
STUDENT = networks.MLPNet((784, 400, 10))


@dataclass(frozen=True)
class MnistTeacher(Common):
    """The MNIST data and teacher settings that Tables 1 and 2 share."""

    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    train_size: int = field(default=2000, metadata=between(100, 60000))
    batch_size: int = field(default=128, metadata=ge(1))
    teacher_epochs: int = field(default=1, metadata=ge(1))
    teacher_lr: float = field(default=0.05, metadata={"gt": 0})
    teacher_weight_decay: float = field(default=0.0001, metadata=ge(0))
    teacher_dropout: float = field(default=0.3, metadata=between(0, 0.95))
    teacher_jitter: int = field(default=1, metadata=between(0, 4))
    #: Also run the recipes that were tried and set aside, so the page can disclose them.
    trials: bool = False


def data(cfg: MnistTeacher) -> networks.Data:
    """The drawn training images and the whole test split."""
    return networks.Data(cfg.dataset, cfg.train_size, TEST_SIZE)


def teacher_network(cfg: MnistTeacher) -> networks.MLPNet:
    """The paper's large model: 784-1200-1200-10 with dropout."""
    return networks.MLPNet((784, 1200, 1200, 10), cfg.teacher_dropout, TEACHER_INPUT_DROPOUT)


def teacher_recipe(cfg: MnistTeacher) -> training.Recipe:
    return training.Recipe(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size,
                           lr=cfg.teacher_lr, weight_decay=cfg.teacher_weight_decay,
                           jitter=cfg.teacher_jitter, engine=training.engine_here(cfg.engine))


def student_recipe(cfg: MnistTeacher, epochs: int, lr: float, jitter: int = 0) -> training.Recipe:
    """The students' recipe: SGD with Nesterov momentum and a cosine schedule, no weight decay;
    the same for a student with and without KD, so that only the objective differs."""
    return training.Recipe(epochs=epochs, batch_size=cfg.batch_size, lr=lr, jitter=jitter,
                           engine=training.engine_here(cfg.engine))


def teacher(cfg: MnistTeacher, seed: int) -> networks.Training:
    """The teacher of `seed`, trained with cross-entropy on the drawn training images."""
    return networks.Training("teacher", teacher_network(cfg), data(cfg), teacher_recipe(cfg),
                             seed, networks.ObjectiveSpec(objectives.CrossEntropy()))


def student(cfg: MnistTeacher, seed: int, recipe: training.Recipe, on: networks.Data,
            kd: objectives.HintonKD | None) -> networks.Training:
    """The student of `seed` trained on `on` with `recipe`: from the labels alone (`kd`
    None) or distilled from the teacher of the same seed, whose logits are computed once
    when the student's images are never shifted."""
    objective = (networks.ObjectiveSpec(objectives.CrossEntropy()) if kd is None else
                 networks.ObjectiveSpec(kd, teacher=teacher(cfg, seed),
                                        teacher_once=not recipe.jitter))
    return networks.Training("student" if kd is None else "student_kd", STUDENT, on, recipe,
                             seed, objective)


def measured(cfg: MnistTeacher, chapter: str, name: str, fit: networks.Training) -> runs.Run:
    """The run `name` of `chapter` that trains `fit` and measures its accuracy per digit
    (:func:`kdlib.digits.class_metrics`) on the device the profile names, resolved where the
    run executes, so that a plan is the same on any machine."""
    return networks.planned(cfg.profile, chapter, name, fit,
                            functools.partial(digits.class_metrics, fit, cfg.device),
                            digits.class_work(fit), cfg.device)
