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
from typing import Any

from torch import nn

from kdlib import objectives, runs, training
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


@dataclass(frozen=True)
class KD:
    """Hinton's loss settings of a distilled student."""

    temperature: float
    alpha: float


#: The student network (:data:`kdlib.chapters.mnist.NETWORKS`).
STUDENT = "mlp-400"


# --- specs --------------------------------------------------------------------------------------

def student_recipe(cfg: Params) -> training.Recipe:
    return mnist.student_recipe(cfg, cfg.student_epochs, cfg.student_lr)


def student_spec(cfg: Params, seed: int, kd: KD | None) -> dict[str, Any]:
    """Spec of a student trained on the labels alone (`kd` None) or distilled."""
    spec: dict[str, Any] = {"model": STUDENT, "data": mnist.data_spec(cfg),
                            "recipe": student_recipe(cfg).as_dict(), "seed": seed}
    if kd is not None:
        spec["kd"] = {"temperature": kd.temperature, "alpha": kd.alpha,
                      "teacher": mnist.teacher_spec(cfg, seed)}
    return spec


# --- computing a run ----------------------------------------------------------------------------

def _metrics(model: nn.Module, history: list[dict], setup: mnist.MnistSetup) -> dict[str, Any]:
    acc = training.accuracy(model, setup.x_test, setup.y_test)
    return {"test_acc": acc, "test_errors": round((1 - acc) * len(setup.y_test)),
            "final_train_loss": history[-1]["loss"] if history else None,
            "history": history}


def teacher_metrics(cfg: Params, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """The teacher's test accuracy and loss history (trained only if no checkpoint exists)."""
    setup = mnist.load(cfg)
    return _metrics(*mnist.teacher(cfg, seed, setup, progress), setup)


def student_metrics(cfg: Params, seed: int, kd: KD | None, *,
                    progress: bool = True) -> dict[str, Any]:
    """Train a student on un-augmented images; with `kd`, the teacher's logits are
    computed once and Hinton's loss replaces cross-entropy."""
    setup = mnist.load(cfg)
    targets: training.Targets = setup.y_train
    objective = objectives.CrossEntropy().objective()
    if kd is not None:
        logits = training.predict(mnist.teacher(cfg, seed, setup, progress)[0], setup.x_train)
        targets = {"labels": setup.y_train, "teacher_logits": logits}
        objective = objectives.HintonKD(kd.temperature, kd.alpha).from_logits()
    model = training.seeded(seed, mnist.NETWORKS[STUDENT]).to(setup.device)
    history = training.train(model, objective, setup.x_train, targets, student_recipe(cfg),
                             seed=seed, desc=f"student{'' if kd is None else ' KD'} seed {seed}",
                             progress=progress)
    return _metrics(model, history, setup)


# --- the plan -----------------------------------------------------------------------------------

def plan(cfg: Params) -> list[runs.Run]:
    """Teachers, both students per seed, and the sweep's KD students on the first seed."""
    device = str(training.resolve_device(cfg.device))
    student = runs.Work(mnist.macs("student"), trained_images=cfg.train_size * cfg.student_epochs,
                        forwards=10_000, family="mlp")
    with_logits = dataclasses.replace(student,
                                      extra_train_macs=mnist.macs("teacher") * cfg.train_size)

    def run(name: str, spec: dict, compute, **kw) -> runs.Run:
        return runs.Run(cfg.profile, NAME, name, spec, compute, device=device, **kw)

    def student_run(name: str, seed: int, kd: KD | None) -> runs.Run:
        needs = () if kd is None else (mnist.teacher_checkpoint(cfg, seed),)
        return run(name, student_spec(cfg, seed, kd),
                   functools.partial(student_metrics, cfg, seed, kd), needs=needs,
                   work=with_logits if kd else student)

    plan = [run("teacher", mnist.teacher_spec(cfg, s), functools.partial(teacher_metrics, cfg, s),
                trains=mnist.teacher_checkpoint(cfg, s), work=mnist.teacher_work(cfg))
            for s in cfg.seeds]
    for s in cfg.seeds:
        plan += [student_run("student", s, None),
                 student_run("student_kd", s, KD(cfg.temperature, cfg.alpha))]
    plan += [student_run("student_kd_sweep", cfg.seeds[0], KD(t, a))
             for t in cfg.sweep_temperatures for a in cfg.sweep_alphas]
    if cfg.trials:
        trial, seed = trial_teacher(cfg), cfg.seeds[0]
        plan.append(run("teacher_trial", mnist.teacher_spec(trial, seed),
                        functools.partial(teacher_metrics, trial, seed),
                        trains=mnist.teacher_checkpoint(trial, seed),
                        work=mnist.teacher_work(trial)))
    return plan


#: Chapter 1, declared.
CHAPTER = Chapter(name=NAME, title="Vanilla distillation on MNIST (Table 1)", params=Params,
                  plan=plan, page="kdlib.pages.vanilla_kd",
                  tiny={"train_size": 600, "teacher_epochs": 1, "student_epochs": 1})
