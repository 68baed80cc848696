"""The MNIST distillation runs behind Tables 1 and 2.

A run is described by a spec (see :mod:`kdlib.results`) built from a chapter's
parameters; its record is cached by the spec's hash, and the teacher's weights
are cached by theirs, so any chapter with the same teacher settings reuses
the same trained teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from kdlib import checkpoints, data, models, paper, report, results, training
from kdlib.config import VanillaKD


@dataclass(frozen=True)
class MnistSetup:
    """Train and test tensors on the run's device, and where they came from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    device: torch.device
    #: Position of each training image in the data set's full training split (on the CPU).
    train_index: torch.Tensor | None = None


def load(cfg: VanillaKD) -> MnistSetup:
    """The chapter's data set on its device, cut to ``train_size`` training images."""
    device = training.resolve_device(cfg.device)
    images = data.load_images(cfg.dataset)
    index = data.subset_indices(len(images.train), cfg.train_size, seed=0)
    x, y = images.train.subset(index).to(device)
    xt, yt = images.test.to(device)
    return MnistSetup(x, y, xt, yt, images.source, device, index)


def teacher_recipe(cfg: VanillaKD) -> training.Recipe:
    return training.Recipe(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size,
                           lr=cfg.teacher_lr, weight_decay=cfg.teacher_weight_decay,
                           jitter=cfg.teacher_jitter)


def student_recipe(cfg: VanillaKD) -> training.Recipe:
    """One recipe for both students: only the objective differs between them."""
    return training.Recipe(epochs=cfg.student_epochs, batch_size=cfg.batch_size,
                           lr=cfg.student_lr)


def _data_spec(cfg: VanillaKD) -> dict[str, Any]:
    return {"dataset": cfg.dataset, "train_size": cfg.train_size, "subset_seed": 0}


def teacher_spec(cfg: VanillaKD, seed: int) -> dict[str, Any]:
    return {"model": "mlp-1200-1200", "dropout": cfg.teacher_dropout, "input_dropout": 0.2,
            "data": _data_spec(cfg), "recipe": teacher_recipe(cfg).as_dict(), "seed": seed}


def student_spec(cfg: VanillaKD, seed: int, temperature: float | None = None,
                 alpha: float | None = None) -> dict[str, Any]:
    """Spec of a student: without KD when `temperature` is None."""
    spec: dict[str, Any] = {"model": "mlp-400", "data": _data_spec(cfg),
                            "recipe": student_recipe(cfg).as_dict(), "seed": seed}
    if temperature is not None:
        spec["kd"] = {"temperature": temperature, "alpha": alpha,
                      "teacher": teacher_spec(cfg, seed)}
    return spec


def _metrics(model: nn.Module, history: list[dict], setup: MnistSetup) -> dict[str, Any]:
    acc = training.accuracy(model, setup.x_test, setup.y_test)
    return {"test_acc": acc, "test_errors": round((1 - acc) * len(setup.y_test)),
            "final_train_loss": history[-1]["loss"] if history else None,
            "history": history}


def teacher(cfg: VanillaKD, seed: int, setup: MnistSetup,
            progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """The trained teacher for `seed` and its loss history, from the checkpoint cache
    when a teacher with this exact spec was trained before (by any chapter)."""

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        history = training.train(model, training.supervised(), setup.x_train, setup.y_train,
                                 teacher_recipe(cfg), seed=seed, checkpoint=resume,
                                 desc=f"teacher seed {seed}", progress=progress)
        return {"history": history}

    model, info = checkpoints.trained_model(
        "mnist-teacher", teacher_spec(cfg, seed),
        lambda: training.seeded(seed, lambda: models.teacher_mlp(cfg.teacher_dropout, 0.2)),
        fit, setup.device)
    return model, info["history"]


def teacher_record(cfg: VanillaKD, seed: int, setup: MnistSetup,
                   progress: bool = True) -> dict[str, Any]:
    """The teacher's result record; trains the teacher only if the record is missing."""
    return results.cached_run(cfg.profile, "01_vanilla_kd", "teacher", teacher_spec(cfg, seed),
                              lambda: _metrics(*teacher(cfg, seed, setup, progress), setup),
                              device=str(setup.device))


def student(cfg: VanillaKD, seed: int, setup: MnistSetup, temperature: float | None = None,
            alpha: float | None = None, name: str | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Record of a student trained without KD (`temperature` None) or with Hinton's KD.

    `name` overrides the record's name (``student`` or ``student_kd``), as the
    temperature sweep does to keep its runs apart from the main table's.
    """
    spec = student_spec(cfg, seed, temperature, alpha)
    name = name or ("student" if temperature is None else "student_kd")

    def compute() -> dict[str, Any]:
        targets: training.Targets = setup.y_train
        if temperature is None:
            objective = training.supervised()
        else:  # students see un-augmented images, so the teacher's logits are computed once
            logits = training.predict(teacher(cfg, seed, setup, progress)[0], setup.x_train)
            targets = {"labels": setup.y_train, "teacher_logits": logits}
            objective = training.distillation_from_logits(temperature, alpha)
        model = training.seeded(seed, models.student_mlp).to(setup.device)
        history = training.train(model, objective, setup.x_train, targets,
                                 student_recipe(cfg), seed=seed,
                                 desc=f"{name} seed {seed}", progress=progress)
        return _metrics(model, history, setup)

    return results.cached_run(cfg.profile, "01_vanilla_kd", name, spec, compute,
                              device=str(setup.device))


def saved_records(cfg: VanillaKD) -> dict[str, list[dict[str, Any]]] | None:
    """The main runs of `cfg` that are already on disk, or None if any is missing.

    Used to show another profile's committed records (such as ``paper``)
    without training anything.
    """
    names = {"teacher": lambda s: teacher_spec(cfg, s),
             "student": lambda s: student_spec(cfg, s),
             "student_kd": lambda s: student_spec(cfg, s, cfg.temperature, cfg.alpha)}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, spec_of in names.items():
        found = [results.record_path(cfg.profile, "01_vanilla_kd", name, spec_of(s))
                 for s in cfg.seeds]
        if not all(p.is_file() for p in found):
            return None
        out[name] = [results.load_record(p) for p in found]
    return out


def table1(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Table 1: the paper's accuracies beside this build's, from the three run lists."""
    rows = [("Teacher 784-1200-1200-10", paper.TABLE1["teacher_acc"], "teacher"),
            ("Student 784-400-10, no KD", paper.TABLE1["student_acc"], "student"),
            ("Student 784-400-10, KD", paper.TABLE1["student_kd_acc"], "student_kd")]
    return report.comparison_table(
        report.comparison_row(label, ref, report.metric(runs[name])) for label, ref, name in rows)


def sweep(cfg: VanillaKD, setup: MnistSetup, progress: bool = True) -> pd.DataFrame:
    """KD student accuracy (%) on the first seed for each temperature × alpha of the sweep."""
    seed = cfg.seeds[0]
    rows = [{"temperature": t, "alpha": a,
             "test acc (%)": 100 * student(cfg, seed, setup, t, a, name="student_kd_sweep",
                                           progress=progress)["metrics"]["test_acc"]}
            for t in cfg.sweep_temperatures for a in cfg.sweep_alphas]
    return pd.DataFrame(rows, columns=["temperature", "alpha", "test acc (%)"])


# --- independent runs, for kdlib.jobs ----------------------------------------------------------

def run(cfg: VanillaKD, name: str, seed: int, temperature: float | None = None,
        alpha: float | None = None) -> dict[str, Any]:
    """One run on its own, as a worker process does it: load the data, return the record.

    `name` is ``teacher`` or a student's record name (``student``, ``student_kd``,
    ``student_kd_sweep``); the notebook's calls then find the record cached.
    """
    setup = load(cfg)
    if name == "teacher":
        return teacher_record(cfg, seed, setup, progress=False)
    return student(cfg, seed, setup, temperature, alpha, name=name, progress=False)


def plan(cfg: VanillaKD) -> list[tuple[str, dict[str, Any], Callable[[], dict[str, Any]]]]:
    """Every run of the chapter as ``(record name, spec, call)``, teachers first.

    The calls are picklable (:func:`functools.partial` of :func:`run`). A KD
    student whose teacher is not trained yet trains it through the checkpoint
    cache, or waits for the process that holds its lock.
    """
    runs = [("teacher", teacher_spec(cfg, s), partial(run, cfg, "teacher", s))
            for s in cfg.seeds]
    for s in cfg.seeds:
        runs.append(("student", student_spec(cfg, s), partial(run, cfg, "student", s)))
        runs.append(("student_kd", student_spec(cfg, s, cfg.temperature, cfg.alpha),
                     partial(run, cfg, "student_kd", s, cfg.temperature, cfg.alpha)))
    seed = cfg.seeds[0]  # as sweep()
    for t in cfg.sweep_temperatures:
        for a in cfg.sweep_alphas:
            runs.append(("student_kd_sweep", student_spec(cfg, seed, t, a),
                         partial(run, cfg, "student_kd_sweep", seed, t, a)))
    return runs
