"""The MNIST networks measured digit by digit (Tables 1 and 2), and the bias shift of Table 2.

:func:`class_metrics` measures a trained network (:func:`kdlib.networks.trained`) on its
data's test images: accuracy, errors and accuracy per digit. :func:`omitted_metrics`
measures a student trained without one digit (its :class:`kdlib.networks.Data` has an
``omitted_digit``) before and after a :class:`BiasShift`.

A student that never saw digit ``d`` rarely predicts it. The shift ``b`` added to the bias
of ``d``'s output unit is chosen so that the *fraction of held-out images predicted as d*
equals ``d``'s frequency among the training labels (about 11% for a 1, 10% for a 2): the
student should name a digit about as often as the digit occurs. The held-out images are
the drawn training images that no student trains on (``Data.held_out_from``); only the
student's logits on them are looked at, never their labels, and the test images only after
the shift is chosen. The fraction never decreases as ``b`` grows, so a bisection finds the
smallest ``b`` that reaches the target. The criterion ``"mass"`` matches the *mean softmax
mass* on ``d`` instead; records keep both.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from kdlib import networks, runs, training

Criterion = Literal["fraction", "mass"]


# --- accuracy per digit ---------------------------------------------------------------------------

def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor,
                     num_classes: int = 10) -> torch.Tensor:
    """Counts ``C[i, j]`` of images of class ``i`` predicted as ``j``."""
    flat = labels.long() * num_classes + pred.long()
    return torch.bincount(flat.cpu(), minlength=num_classes ** 2).reshape(num_classes,
                                                                          num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Share of each class's images predicted correctly (NaN for an empty class)."""
    c = confusion.double()
    return [float(v) for v in c.diagonal() / c.sum(1)]


def evaluate(logits: torch.Tensor, labels: torch.Tensor, digit: int) -> dict[str, Any]:
    """Accuracy overall, on the images of every other digit, on `digit` alone, and per class
    (each a float32 mean, as every MNIST record has it)."""
    pred = logits.argmax(1)
    right = pred == labels
    is_digit = labels == digit
    conf = confusion_matrix(pred, labels, logits.shape[1])
    return {"test_acc": float(right.float().mean()),
            "others_acc": float(right[~is_digit].float().mean()),
            "digit_acc": float(right[is_digit].float().mean()),
            "per_class_acc": per_class_accuracy(conf), "confusion": conf.tolist()}


def class_metrics(run: networks.Training, device: torch.device | str, *,
                  progress: bool = True) -> dict[str, Any]:
    """A run's record metrics: the trained network's test accuracy (a float32 mean), errors
    and accuracy per digit, and what its training recorded."""
    model, info = networks.trained(run, device, progress)
    setup = run.data.load(device)
    pred = training.predict(model, setup.x_test, run.network.eval_batch).argmax(1)
    right = pred == setup.y_test
    conf = confusion_matrix(pred, setup.y_test)
    return {"test_acc": float(right.float().mean()),
            "test_errors": int((~right).sum()), "test_size": len(right),
            "per_class_acc": per_class_accuracy(conf), **info}


def class_work(run: networks.Training) -> runs.Work:
    """What :func:`class_metrics` computes: `run`'s training and one forward pass per test
    image."""
    return dataclasses.replace(run.work(), forwards=run.data.test_size)


# --- the bias shift -------------------------------------------------------------------------------

def class_frequency(labels: torch.Tensor, digit: int) -> float:
    """Share of `labels` equal to `digit`: the target of the bias shift."""
    return float((labels == digit).float().mean())


def predicted_share(logits: torch.Tensor, digit: int, shift: float = 0.0,
                    criterion: Criterion = "fraction") -> float:
    """How much the model predicts `digit` once `shift` is added to its logit.

    ``"fraction"``: the share of rows whose top class is `digit`;
    ``"mass"``: the mean softmax probability of `digit`. Both grow with `shift`.
    """
    z = logits.float().clone()
    z[:, digit] += shift
    if criterion == "fraction":
        return float((z.argmax(1) == digit).float().mean())
    if criterion == "mass":
        return float(torch.softmax(z, 1)[:, digit].mean())
    raise ValueError(f"unknown criterion {criterion!r}; use 'fraction' or 'mass'")


def choose_bias_shift(logits: torch.Tensor, digit: int, target: float,
                      criterion: Criterion = "fraction", tol: float = 1e-4) -> float:
    """The smallest shift of `digit`'s logit at which its predicted share reaches `target`.

    The share is non-decreasing in the shift, so the answer is bracketed (doubling
    outwards from ±1) and then bisected to within `tol`. With ``"fraction"`` this is, up
    to `tol`, the ``target`` quantile of the margins ``max_{j≠d} z_j - z_d``.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must lie strictly between 0 and 1, got {target}")
    if logits.ndim != 2 or len(logits) == 0 or not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be a non-empty (N, classes) tensor of finite values")

    def share(b: float) -> float:
        return predicted_share(logits, digit, b, criterion)

    lo, hi = -1.0, 1.0
    while share(lo) >= target:
        lo *= 2
    while share(hi) < target:
        hi *= 2
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if share(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def apply_bias_shift(model: nn.Module, digit: int, shift: float) -> nn.Module:
    """A copy of `model` whose output bias for `digit` is raised by `shift`.

    The output layer is the model's last :class:`torch.nn.Linear`; `model` itself is left
    unchanged.
    """
    shifted = copy.deepcopy(model)
    last = [m for m in shifted.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[digit] += shift
    return shifted


@dataclass(frozen=True)
class BiasShift:
    """The bias shift of a student trained without one digit, chosen on the held-out
    training images by `criterion` (see the module docstring), to a target share equal to
    the digit's frequency among the drawn training labels."""

    criterion: Criterion = "fraction"

    def spec(self) -> dict[str, Any]:
        return {"bias_shift": {"criterion": self.criterion, "chosen_on": "held-out images",
                               "target": "frequency in the training labels"}}


def record_spec(run: networks.Training, shift: BiasShift) -> dict[str, Any]:
    """The record spec of a student measured with `shift`."""
    return {**run.spec(), "evaluation": shift.spec()}


def omitted_metrics(run: networks.Training, shift: BiasShift, device: torch.device | str, *,
                    progress: bool = True) -> dict[str, Any]:
    """Train (or load) a student whose data omit a digit, then measure it before and after
    the bias shift: the shift is chosen first, from the student's logits on the held-out
    images, and only then are the test images looked at."""
    digit = run.data.omitted_digit
    if digit is None or run.data.held_out_from is None:
        raise ValueError(f"{run.method}: a bias shift needs data with an omitted digit and "
                         "held-out images")
    model, info = networks.trained(run, device, progress)
    held_logits = training.predict(model, run.data.held_out_images(device))
    target = class_frequency(run.data.whole.load(device).y_train, digit)
    chosen = choose_bias_shift(held_logits, digit, target, shift.criterion)
    mass_shift = choose_bias_shift(held_logits, digit, target, "mass")

    setup = run.data.load(device)
    x_test, y_test = setup.x_test, setup.y_test
    before = evaluate(training.predict(model, x_test), y_test, digit)
    after = evaluate(training.predict(apply_bias_shift(model, digit, chosen), x_test),
                     y_test, digit)
    mass = evaluate(training.predict(apply_bias_shift(model, digit, mass_shift), x_test),
                    y_test, digit)
    return {"transfer_size": len(setup.y_train), **info, **before, "omitted_digit": digit,
            "target_share": target, "held_out_size": len(held_logits),
            "held_out_share": predicted_share(held_logits, digit, 0.0, shift.criterion),
            "shift_criterion": shift.criterion, "shift": chosen,
            "shifted_held_out_share": predicted_share(held_logits, digit, chosen,
                                                      shift.criterion),
            **{f"shifted_{k}": v for k, v in after.items()},
            "mass_shift": mass_shift,
            **{f"mass_shifted_{k}": mass[k] for k in ("test_acc", "others_acc", "digit_acc")}}


def omitted_work(run: networks.Training) -> runs.Work:
    """What :func:`omitted_metrics` computes: the student's training, its logits on the
    held-out images and three passes over the test images (before, after each shift)."""
    data = run.data
    held = data.train_size * max(0.0, 1 - (data.held_out_from or 0)
                                 / networks.TRAIN_SPLIT[data.dataset])
    return dataclasses.replace(run.work(), forwards=3 * run.data.test_size + held)
