"""What each method minimises: typed losses, each with its record form and its objective.

An objective is a function ``(model, x, targets) -> {"loss": ..., parts...}``
that :func:`kdlib.training.train` calls on every batch. A *loss* here is a small
frozen value (:class:`CrossEntropy`, :class:`LabelSmoothing`, :class:`HintonKD`,
:class:`TfKdReg`, :class:`TfKdRegOfficial`) with exactly two jobs:
:meth:`spec` writes it into a run's specification (the hash and the record), and
:meth:`objective` builds the function that trains. A loss setting that is not in
the spec cannot change what trains, and one that is in the spec is used.
The formulas are :mod:`kdlib.losses`'; each objective here only feeds them the
float32 logits and the labels. Targets are the labels, or a dict with ``"labels"``
(and ``"teacher_logits"`` for :meth:`HintonKD.from_logits`).
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
        return lambda model, x, y: losses.cross_entropy(model(x).float(), _labels(y))


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
        return lambda model, x, y: losses.label_smoothing(model(x).float(), _labels(y),
                                                          self.epsilon, self.form)


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
        """The loss with `teacher` (frozen, eval mode) run on the student's own batch."""
        if teacher is None:
            raise ValueError("Hinton's distillation needs its trained teacher")
        teacher.eval()

        def objective(model: nn.Module, x: torch.Tensor, y: Targets) -> dict[str, torch.Tensor]:
            with torch.no_grad():
                t = teacher(x).float()
            return losses.hinton_kd(model(x).float(), t, _labels(y), self.temperature,
                                    self.alpha)

        return objective

    def from_logits(self) -> Objective:
        """The same loss from the teacher's logits computed once, for a student that sees
        fixed inputs: targets are ``{"labels": y, "teacher_logits": t}``
        (:func:`kdlib.training.predict`)."""
        return lambda model, x, y: losses.hinton_kd(model(x).float(), y["teacher_logits"],
                                                    y["labels"], self.temperature, self.alpha)


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
        return lambda model, x, y: losses.tf_kd_reg(
            model(x).float(), _labels(y), self.delta, self.temperature, self.alpha,
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
        return lambda model, x, y: losses.tf_kd_reg_official(
            model(x).float(), _labels(y), self.delta, self.temperature, self.alpha,
            self.multiplier)
