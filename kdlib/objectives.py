"""What each method minimises: training objectives, and how a run's spec names them.

An objective is a function ``(model, x, targets) -> {"loss": ..., parts...}``
that :func:`kdlib.training.train` calls on every batch. :func:`from_spec` builds
the objective a run's spec describes, so the loss settings stored in a record
and the loss that was trained are one and the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from kdlib import attacks, losses
from kdlib.training import Objective, Targets


def supervised() -> Objective:
    """Cross-entropy on the hard labels."""
    return lambda model, x, y: losses.cross_entropy(model(x).float(), y)


def distillation(teacher: nn.Module, temperature: float, alpha: float) -> Objective:
    """Hinton KD from a frozen `teacher`, evaluated on the same (augmented) batch.

    Targets are the labels, or a dict with ``"labels"``. When the student sees
    un-augmented inputs, :func:`distillation_from_logits` gives the same loss with
    the teacher's logits computed once, not every epoch.
    """
    teacher.eval()

    def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            t = teacher(x).float()
        return losses.hinton_kd(model(x).float(), t, _labels(y), temperature, alpha)

    return objective


def distillation_from_logits(temperature: float, alpha: float) -> Objective:
    """Hinton KD from precomputed teacher logits: targets are
    ``{"labels": y, "teacher_logits": t}`` (see :func:`kdlib.training.predict`)."""

    def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
        return losses.hinton_kd(model(x).float(), y["teacher_logits"], y["labels"],
                                temperature, alpha)

    return objective


def virtual_teacher_kd(delta: float, temperature: float, alpha: float, *,
                       soften_student: bool = True, log_space: bool = False) -> Objective:
    """Tf-KD-reg: distillation from the hand-made virtual teacher
    (:func:`kdlib.losses.tf_kd_reg`)."""

    def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
        return losses.tf_kd_reg(model(x).float(), _labels(y), delta, temperature, alpha,
                                soften_student=soften_student, log_space=log_space)

    return objective


def label_smoothing(epsilon: float) -> Objective:
    """Cross-entropy against labels smoothed by `epsilon` (:func:`kdlib.losses.label_smoothing`)."""
    return lambda model, x, y: losses.label_smoothing(model(x).float(), _labels(y), epsilon)


def virtual_teacher_official(delta: float, temperature: float, alpha: float,
                             multiplier: float) -> Objective:
    """Tf-KD-reg in the official code's form (:func:`kdlib.losses.tf_kd_reg_official`)."""

    def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
        return losses.tf_kd_reg_official(model(x).float(), _labels(y), delta, temperature,
                                         alpha, multiplier)

    return objective


def _labels(y: Targets) -> torch.Tensor:
    return y["labels"] if isinstance(y, dict) else y


def from_spec(spec: Mapping[str, Any], teacher: nn.Module | None = None) -> Objective:
    """The objective that a run's ``objective`` spec describes.

    ``loss`` is ``cross_entropy``, ``label_smoothing`` (``epsilon``), ``tf_kd_reg``
    (``delta``, ``temperature``, ``alpha``, ``soften_student``, ``log_space``),
    ``tf_kd_reg_official`` (``delta``, ``temperature``, ``alpha``, ``multiplier``) or
    ``hinton_kd`` (``temperature``, ``alpha``; the frozen `teacher` is run on each
    batch). With ``inputs: PGD examples`` the loss is taken on PGD examples crafted
    with the spec's ``threat`` (:func:`kdlib.attacks.adversarial`).
    """
    loss = spec["loss"]
    if loss == "cross_entropy":
        base = supervised()
    elif loss == "label_smoothing":
        base = label_smoothing(spec["epsilon"])
    elif loss == "tf_kd_reg_official":
        base = virtual_teacher_official(spec["delta"], spec["temperature"], spec["alpha"],
                                        spec["multiplier"])
    elif loss == "tf_kd_reg":
        base = virtual_teacher_kd(spec["delta"], spec["temperature"], spec["alpha"],
                                  soften_student=spec["soften_student"],
                                  log_space=spec.get("log_space", False))
    elif loss == "hinton_kd":
        if teacher is None:
            raise ValueError("a hinton_kd objective needs its trained teacher")
        base = distillation(teacher, spec["temperature"], spec["alpha"])
    else:
        raise ValueError(f"unknown loss {loss!r} in objective spec {dict(spec)}")
    if spec.get("inputs") != "PGD examples":
        return base
    threat = spec["threat"]
    return attacks.adversarial(base, threat["eps"], threat["pgd_step"], threat["pgd_steps"],
                               mode=threat["mode"], ramp_epochs=threat.get("ramp_epochs", 0))
