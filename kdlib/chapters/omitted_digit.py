"""Table 2: distillation onto a transfer set that never shows one digit.

Hinton et al. trained a small MNIST network on a transfer set with every
example of one digit removed, by distillation from a teacher that had seen
all ten. The student never gets a single example of that digit, yet learns a
good deal about it from the teacher's soft targets on the other digits. Its
remaining handicap is a too-low bias for the digit's output, which a single
shift of that bias repairs (see the book's *Methods and deviations* page).

The data, in this chapter's terms:

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

The bias shift. A student that never saw digit ``d`` rarely predicts it. We
add a shift ``b`` to the bias of ``d``'s output unit, choosing ``b`` so that
the *fraction of held-out images predicted as d* equals ``d``'s frequency
among the training labels (about 11% for a 1, 10% for a 2): the student
should name a digit about as often as the digit occurs. That fraction never
decreases as ``b`` grows, so a bisection finds the smallest ``b`` that
reaches the target. :func:`choose_bias_shift` can instead match the *mean
softmax mass* on ``d`` (criterion ``"mass"``); records keep both.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from kdlib import objectives, runs, training
from kdlib.chapters import Chapter, mnist
from kdlib.config import between, ge

NAME = "02_omitted_digit"

#: Training images from this position of MNIST's 60,000 on are held out from every student.
HELD_OUT_FROM = 50_000

Criterion = Literal["fraction", "mass"]

#: The student network (:data:`kdlib.chapters.mnist.NETWORKS`).
STUDENT = "mlp-400"

#: How the chapter's main bias shift is chosen (see the module docstring).
CRITERION: Criterion = "fraction"


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


# --- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OmittedSetup:
    """Chapter 1's data (the teacher's training set) and which images are held out."""

    base: mnist.MnistSetup
    held_out: torch.Tensor  # bool, one per training image of `base`, on its device


def held_out_mask(train_index: torch.Tensor, start: int = HELD_OUT_FROM) -> torch.Tensor:
    """True for the training images at position `start` or later of the full training split."""
    return train_index >= start


def load(cfg: Params) -> OmittedSetup:
    """Chapter 1's data for these settings, with the held-out images marked."""
    base = mnist.load(cfg)
    return OmittedSetup(base, held_out_mask(base.train_index).to(base.device))


def without_digit(x: torch.Tensor, y: torch.Tensor,
                  digit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples of `x`, `y` whose label is not `digit`."""
    keep = y != digit
    return x[keep], y[keep]


def transfer_set(setup: OmittedSetup, digit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's training data: the images that are not held out, minus `digit`."""
    keep = ~setup.held_out
    return without_digit(setup.base.x_train[keep], setup.base.y_train[keep], digit)


def held_out_images(setup: OmittedSetup) -> torch.Tensor:
    """The held-out images (their labels are never used)."""
    return setup.base.x_train[setup.held_out]


def class_frequency(labels: torch.Tensor, digit: int) -> float:
    """Share of `labels` equal to `digit`: the target of the bias shift."""
    return float((labels == digit).float().mean())


# --- the bias shift -----------------------------------------------------------------------------

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

    `logits` are the student's outputs on held-out *training* images; nothing
    else is looked at. The share is non-decreasing in the shift, so the answer
    is bracketed (doubling outwards from ±1) and then bisected to within `tol`.
    With ``"fraction"`` this is, up to `tol`, the ``target`` quantile of the
    margins ``max_{j≠d} z_j - z_d``.
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

    The output layer is the model's last :class:`torch.nn.Linear`; `model`
    itself is left unchanged.
    """
    shifted = copy.deepcopy(model)
    last = [m for m in shifted.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[digit] += shift
    return shifted


# --- evaluation ---------------------------------------------------------------------------------

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
    """Accuracy overall, on the images of every other digit, on `digit` alone, and per class."""
    pred = logits.argmax(1)
    right = pred == labels
    is_digit = labels == digit
    conf = confusion_matrix(pred, labels, logits.shape[1])
    return {"test_acc": float(right.float().mean()),
            "others_acc": float(right[~is_digit].float().mean()),
            "digit_acc": float(right[is_digit].float().mean()),
            "per_class_acc": per_class_accuracy(conf), "confusion": conf.tolist()}


def bias_corrected_metrics(model: nn.Module, setup: OmittedSetup, digit: int) -> dict[str, Any]:
    """The student's metrics before and after the bias shift, the shift and its target.

    The shift is chosen first, from the student's logits on the held-out
    images; only then are the test images looked at.
    """
    held_logits = training.predict(model, held_out_images(setup))
    target = class_frequency(setup.base.y_train, digit)
    shift = choose_bias_shift(held_logits, digit, target, CRITERION)
    mass_shift = choose_bias_shift(held_logits, digit, target, "mass")

    x_test, y_test = setup.base.x_test, setup.base.y_test
    before = evaluate(training.predict(model, x_test), y_test, digit)
    after = evaluate(training.predict(apply_bias_shift(model, digit, shift), x_test),
                     y_test, digit)
    mass = evaluate(training.predict(apply_bias_shift(model, digit, mass_shift), x_test),
                    y_test, digit)
    return {**before, "omitted_digit": digit, "target_share": target,
            "held_out_size": len(held_logits),
            "held_out_share": predicted_share(held_logits, digit, 0.0, CRITERION),
            "shift_criterion": CRITERION, "shift": shift,
            "shifted_held_out_share": predicted_share(held_logits, digit, shift, CRITERION),
            **{f"shifted_{k}": v for k, v in after.items()},
            "mass_shift": mass_shift,
            **{f"mass_shifted_{k}": mass[k] for k in ("test_acc", "others_acc", "digit_acc")}}


# --- runs ---------------------------------------------------------------------------------------

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


def student_spec(cfg: Params, seed: int, digit: int, kd: bool) -> dict[str, Any]:
    """Spec of a student trained without `digit`, from the labels alone or distilled (`kd`)."""
    spec: dict[str, Any] = {
        "model": STUDENT,
        "data": {**mnist.data_spec(cfg), "held_out_from": HELD_OUT_FROM, "omitted_digit": digit},
        "recipe": student_recipe(cfg).as_dict(), "seed": seed,
        "bias_shift": {"chosen_on": "held-out training images", "criterion": CRITERION,
                       "target": "frequency in the training labels"}}
    if kd:
        spec["kd"] = {"temperature": cfg.temperature, "alpha": cfg.alpha,
                      "teacher": mnist.teacher_spec(cfg, seed),
                      "teacher_input": ("each shifted batch" if cfg.student_jitter
                                        else "the transfer set, once")}
    return spec


def teacher_metrics(cfg: Params, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """The shared teacher's per-class test accuracy (trained only if no checkpoint exists)."""
    setup = load(cfg)
    model, history = mnist.teacher(cfg, seed, setup.base, progress)
    logits = training.predict(model, setup.base.x_test)
    conf = confusion_matrix(logits.argmax(1), setup.base.y_test, logits.shape[1])
    acc = float((logits.argmax(1) == setup.base.y_test).float().mean())
    return {"test_acc": acc, "per_class_acc": per_class_accuracy(conf),
            "final_train_loss": history[-1]["loss"] if history else None}


def student_metrics(cfg: Params, seed: int, digit: int, kd: bool, *,
                    progress: bool = True) -> dict[str, Any]:
    """Train a student on the transfer set without `digit` and measure it before and after
    the bias shift (:func:`bias_corrected_metrics`).

    Without `kd` it learns from the hard labels alone, the paper's "T = 1" column; with
    `kd` it learns from the seed's shared teacher, trained on all ten digits.
    """
    setup = load(cfg)
    x, y = transfer_set(setup, digit)
    targets: training.Targets = y
    objective = objectives.CrossEntropy().objective()
    if kd:
        teacher = mnist.teacher(cfg, seed, setup.base, progress)[0]
        if cfg.student_jitter:  # the teacher labels every shifted batch
            objective = objectives.HintonKD(cfg.temperature, cfg.alpha).objective(teacher)
        else:  # fixed inputs: the teacher's logits are computed once
            targets = {"labels": y, "teacher_logits": training.predict(teacher, x)}
            objective = objectives.HintonKD(cfg.temperature, cfg.alpha).from_logits()
    model = training.seeded(seed, mnist.NETWORKS[STUDENT]).to(setup.base.device)
    history = training.train(model, objective, x, targets, student_recipe(cfg), seed=seed,
                             desc=f"{run_name(digit, kd)} seed {seed}", progress=progress)
    return {"transfer_size": len(y), "history": history,
            "final_train_loss": history[-1]["loss"] if history else None,
            **bias_corrected_metrics(model, setup, digit)}


def plan(cfg: Params) -> list[runs.Run]:
    """Teachers (chapter 1's checkpoint when the settings agree), then both students for
    each seed and omitted digit."""
    device = str(training.resolve_device(cfg.device))
    # the transfer set is about 5/6 of the training images less the omitted digit's tenth
    transfer = cfg.train_size * 5 / 6 * 0.9
    student = runs.Work(mnist.macs("student"), trained_images=transfer * cfg.student_epochs,
                        forwards=10_000 + cfg.train_size / 6, family="mlp")
    teacher_each_batch = dataclasses.replace(student, teacher_macs=mnist.macs("teacher"))
    teacher_once = dataclasses.replace(student,
                                       extra_train_macs=mnist.macs("teacher") * transfer)

    def kd_work(c: Params) -> runs.Work:
        return teacher_each_batch if c.student_jitter else teacher_once

    plan = [runs.Run(cfg.profile, NAME, "teacher", mnist.teacher_spec(cfg, s),
                     partial(teacher_metrics, cfg, s), device=device,
                     trains=mnist.teacher_checkpoint(cfg, s), work=mnist.teacher_work(cfg))
            for s in cfg.seeds]
    for s in cfg.seeds:
        for d in cfg.digits:
            for kd in (False, True):
                plan.append(runs.Run(
                    cfg.profile, NAME, run_name(d, kd), student_spec(cfg, s, d, kd),
                    partial(student_metrics, cfg, s, d, kd), device=device,
                    needs=(mnist.teacher_checkpoint(cfg, s),) if kd else (),
                    work=kd_work(cfg) if kd else student))
    if cfg.trials:
        first = trial(cfg)
        plan += [runs.Run(cfg.profile, NAME, TRIAL.format(digit=d),
                          student_spec(first, s, d, True),
                          partial(student_metrics, first, s, d, True), device=device,
                          needs=(mnist.teacher_checkpoint(cfg, s),), work=kd_work(first))
                 for s in cfg.seeds for d in cfg.digits]
    return plan


#: Chapter 2, declared.
CHAPTER = Chapter(name=NAME, title="Distillation without one digit (Table 2)", params=Params,
                  plan=plan, page="kdlib.pages.omitted_digit",
                  tiny={"train_size": 600, "teacher_epochs": 1, "student_epochs": 1})
