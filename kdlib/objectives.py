"""What each method minimises: typed losses, each with its record form and its objective.

An objective is a function ``(model, x, targets) -> {"loss": ..., parts...}``
that :func:`kdlib.training.train` calls on every batch. A *loss* here is a small
frozen value (:class:`CrossEntropy`, :class:`LabelSmoothing`, :class:`HintonKD`,
:class:`TfKdReg`, :class:`TfKdRegOfficial`) with exactly two jobs:
:meth:`spec` writes it into a run's specification (the hash and the record), and
:meth:`objective` builds the function that trains. A loss setting that is not in
the spec cannot change what trains, and one that is in the spec is used.
The formulas are :mod:`kdlib.losses`'; the functions below build objectives from
them directly, for code that needs no record (tests, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from kdlib import losses
from kdlib.training import Objective, Targets


def _labels(y: Targets) -> torch.Tensor:
    return y["labels"] if isinstance(y, dict) else y


def supervised() -> Objective:
    """Cross-entropy on the hard labels."""
    return lambda model, x, y: losses.cross_entropy(model(x).float(), _labels(y))


def distillation(teacher: nn.Module, temperature: float, alpha: float) -> Objective:
    """Hinton KD from a frozen `teacher`, run on the same (augmented or attacked) batch.

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


def label_smoothing(epsilon: float, form: str = "uniform") -> Objective:
    """Cross-entropy against labels smoothed by `epsilon` in `form`
    (:func:`kdlib.losses.label_smoothing`)."""
    return lambda model, x, y: losses.label_smoothing(model(x).float(), _labels(y), epsilon,
                                                      form)


def virtual_teacher_official(delta: float, temperature: float, alpha: float,
                             multiplier: float) -> Objective:
    """Tf-KD-reg in the official code's form (:func:`kdlib.losses.tf_kd_reg_official`)."""

    def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
        return losses.tf_kd_reg_official(model(x).float(), _labels(y), delta, temperature,
                                         alpha, multiplier)

    return objective


# --- typed losses: one record form, one objective ---------------------------------------------

class Loss(Protocol):
    """A loss setting: its record form and the objective it trains with."""

    #: Whether :meth:`objective` needs a trained teacher network.
    needs_teacher: ClassVar[bool]

    def spec(self) -> dict[str, Any]: ...

    def objective(self, teacher: nn.Module | None = None) -> Objective: ...


@dataclass(frozen=True)
class CrossEntropy:
    """Plain training on the hard labels."""

    needs_teacher: ClassVar[bool] = False

    def spec(self) -> dict[str, Any]:
        return {"loss": "cross_entropy"}

    def objective(self, teacher: nn.Module | None = None) -> Objective:
        return supervised()


@dataclass(frozen=True)
class LabelSmoothing:
    """Cross-entropy against smoothed labels: ``(1-ε)·onehot + ε/K`` (``uniform``) or ε/(K-1)
    on each wrong class (``others``, the official Tf-KD code's;
    :func:`kdlib.losses.smoothed_labels`)."""

    epsilon: float
    form: str = "uniform"
    needs_teacher: ClassVar[bool] = False

    def spec(self) -> dict[str, Any]:
        # the form joins the spec only when it is not the first one, so that the records
        # made before it existed keep their names
        return {"loss": "label_smoothing", "epsilon": self.epsilon,
                **({"form": self.form} if self.form != "uniform" else {})}

    def objective(self, teacher: nn.Module | None = None) -> Objective:
        return label_smoothing(self.epsilon, self.form)


@dataclass(frozen=True)
class HintonKD:
    """Hinton's distillation from a trained teacher run on the student's own batch
    (:func:`kdlib.losses.hinton_kd`, the KL averaged over the batch)."""

    temperature: float
    alpha: float
    needs_teacher: ClassVar[bool] = True

    def spec(self) -> dict[str, Any]:
        return {"loss": "hinton_kd", "temperature": self.temperature, "alpha": self.alpha}

    def objective(self, teacher: nn.Module | None = None) -> Objective:
        if teacher is None:
            raise ValueError("Hinton's distillation needs its trained teacher")
        return distillation(teacher, self.temperature, self.alpha)


@dataclass(frozen=True)
class TfKdReg:
    """Tf-KD-reg in this build's form (:func:`kdlib.losses.tf_kd_reg`)."""

    delta: float
    temperature: float
    alpha: float
    soften_student: bool = True
    log_space: bool = False
    needs_teacher: ClassVar[bool] = False

    def spec(self) -> dict[str, Any]:
        return {"loss": "tf_kd_reg", "delta": self.delta, "temperature": self.temperature,
                "alpha": self.alpha, "soften_student": self.soften_student,
                "log_space": self.log_space}

    def objective(self, teacher: nn.Module | None = None) -> Objective:
        return virtual_teacher_kd(self.delta, self.temperature, self.alpha,
                                  soften_student=self.soften_student, log_space=self.log_space)


@dataclass(frozen=True)
class TfKdRegOfficial:
    """Tf-KD-reg as the official code computes it (:func:`kdlib.losses.tf_kd_reg_official`)."""

    delta: float
    temperature: float
    alpha: float
    multiplier: float
    needs_teacher: ClassVar[bool] = False

    def spec(self) -> dict[str, Any]:
        return {"loss": "tf_kd_reg_official", "delta": self.delta,
                "temperature": self.temperature, "alpha": self.alpha,
                "multiplier": self.multiplier}

    def objective(self, teacher: nn.Module | None = None) -> Objective:
        return virtual_teacher_official(self.delta, self.temperature, self.alpha,
                                        self.multiplier)
