"""A trained network, specified and fitted: data, network, objective and recipe in, weights out.

A :class:`Training` is everything that decides a trained network, as typed values
that each serialise one way (:meth:`Training.spec`, whose hash names the record
and the checkpoint) and build what runs:

- :class:`Data`: which seeded subset of which data set (:meth:`Data.load`);
- a network: :class:`ResNet`, :class:`SmallCNN` or :class:`MLPNet` (``build()``);
- :class:`ObjectiveSpec`: the loss (:mod:`kdlib.objectives`), whether it is taken
  on clean images or on the PGD examples of a :class:`kdlib.attacks.Threat`, and
  the :class:`Training` of the teacher it learns from, frozen and run on the same
  inputs as the student;
- the :class:`kdlib.training.Recipe` and the seed;
- what is logged or held out: layer gradients every ``grad_every`` steps
  (:class:`kdlib.gradients.GradientLog`), the last ``held_out`` training images kept
  out of training, and, with an :class:`EarlyStop`, the epoch whose held-out accuracy
  under the objective's threat was best (:class:`kdlib.training.EarlyStopping`).

:func:`trained` fits a :class:`Training` once and caches the weights
(:mod:`kdlib.checkpoints`): any chapter, process or job that asks for the same
training loads them. Runs with the same seed share their initial weights, batch
order, augmentation and PGD start noise; only the objective differs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from kdlib import (
    attacks,
    checkpoints,
    data,
    flops,
    gradients,
    models,
    objectives,
    paths,
    runs,
    training,
)

# --- data ---------------------------------------------------------------------------------------

#: Images in each data set's full training split.
TRAIN_SPLIT = {"mnist": 60_000, "fashion-mnist": 60_000, "cifar10": 50_000}


@dataclass(frozen=True)
class Data:
    """A seeded subset of a data set: ``train_size`` training and ``test_size`` test images,
    drawn with ``subset_seed`` (:func:`kdlib.data.subset_indices`).

    Two optional cuts of the training images (Table 2's transfer set): those whose position
    in the full training split is ``held_out_from`` or later are held out (never trained on;
    :meth:`held_out_images`), and every image of ``omitted_digit`` is removed.
    """

    dataset: Literal["mnist", "fashion-mnist", "cifar10"]
    train_size: int
    test_size: int
    subset_seed: int = 0
    held_out_from: int | None = None
    omitted_digit: int | None = None

    def spec(self) -> dict[str, Any]:
        out = {"dataset": self.dataset, "train_size": self.train_size,
               "test_size": self.test_size, "subset_seed": self.subset_seed}
        if self.held_out_from is not None:
            out["held_out_from"] = self.held_out_from
        if self.omitted_digit is not None:
            out["omitted_digit"] = self.omitted_digit
        return out

    @property
    def whole(self) -> Data:
        """The subset before either cut: every drawn training image."""
        return dataclasses.replace(self, held_out_from=None, omitted_digit=None)

    def train_images(self) -> float:
        """How many training images remain after the cuts: exact without them; with them, the
        expected number (a uniform draw, and a tenth of the images per digit)."""
        n = self.train_size
        if self.held_out_from is not None:
            n *= min(1.0, self.held_out_from / TRAIN_SPLIT[self.dataset])
        return n * 0.9 if self.omitted_digit is not None else n

    def load(self, device: torch.device | str) -> data.OnDevice:
        """The subsets as float tensors in [0, 1] on `device` (the training images after the
        cuts, in the order drawn), loaded once per process.

        CIFAR-10 raises :class:`kdlib.data.DatasetUnavailableError`, saying where to put
        the files, when it is neither on disk nor downloadable.
        """
        return _load(self, str(training.resolve_device(device)), str(paths.data_dir()))[0]

    def held_out_images(self, device: torch.device | str) -> torch.Tensor:
        """The drawn training images at or after ``held_out_from`` (their labels unused)."""
        return _load(self, str(training.resolve_device(device)), str(paths.data_dir()))[1]


def cuts(index: torch.Tensor, labels: torch.Tensor, held_out_from: int | None,
         omitted_digit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, held_out)`` masks of drawn training images, given their positions `index` in
    the full split and their `labels`: held out from position `held_out_from` on; kept when
    not held out and not of `omitted_digit`."""
    held = (index >= held_out_from if held_out_from is not None
            else torch.zeros(len(index), dtype=torch.bool))
    keep = ~held if omitted_digit is None else ~held & (labels != omitted_digit)
    return keep, held


@functools.cache
def _load(spec: Data, device: str, root: str) -> tuple[data.OnDevice, torch.Tensor]:
    images = (data.load_cifar10(Path(root)) if spec.dataset == "cifar10"
              else data.load_images(spec.dataset, root=Path(root)))
    index = data.subset_indices(len(images.train), spec.train_size, seed=spec.subset_seed)
    train = images.train.subset(index)
    keep, held = cuts(index, train.labels, spec.held_out_from, spec.omitted_digit)
    test = images.test.subset(data.subset_indices(len(images.test), spec.test_size,
                                                  seed=spec.subset_seed))
    x, y = train.subset(keep).to(device)
    xt, yt = test.to(device)
    held_out = train.subset(held).to(device)[0]
    return data.OnDevice(x, y, xt, yt, images.source, torch.device(device)), held_out


# --- networks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResNet:
    """A CIFAR-form ResNet18 or ResNet50 (:mod:`kdlib.models`) at ``width``, normalising its
    inputs with the statistics of the data set ``normalize``."""

    arch: Literal["resnet18", "resnet50"]
    width: int
    in_channels: int
    num_classes: int
    normalize: str
    #: Which measured CPU speed prices it (:class:`kdlib.runs.Work`).
    family: ClassVar[str] = "resnet"
    #: Evaluation batch: large batches of a ResNet50 run slower per image on a CPU.
    eval_batch: ClassVar[int] = 128

    def spec(self) -> dict[str, Any]:
        return {"arch": self.arch, "width": self.width, "in_channels": self.in_channels,
                "num_classes": self.num_classes, "normalize": self.normalize}

    def build(self) -> nn.Module:
        factory = {"resnet18": models.resnet18, "resnet50": models.resnet50}[self.arch]
        return factory(num_classes=self.num_classes, in_channels=self.in_channels,
                       width=self.width, normalize=models.NORMALIZATION[self.normalize])


@dataclass(frozen=True)
class SmallCNN:
    """Madry et al.'s MNIST network at ``width`` (:class:`kdlib.models.SmallCNN`)."""

    width: int
    normalize: str
    family: ClassVar[str] = "cnn"
    eval_batch: ClassVar[int] = 128

    def spec(self) -> dict[str, Any]:
        return {"arch": "cnn", "width": self.width, "normalize": self.normalize}

    def build(self) -> nn.Module:
        return models.SmallCNN(self.width, normalize=models.NORMALIZATION[self.normalize])


@dataclass(frozen=True)
class MLPNet:
    """A ReLU MLP with layer ``sizes``, dropout after each hidden layer and on its input
    pixels (:class:`kdlib.models.MLP`)."""

    sizes: tuple[int, ...]
    dropout: float = 0.0
    input_dropout: float = 0.0
    family: ClassVar[str] = "mlp"
    #: Evaluation batch (an MLP runs fastest in large ones).
    eval_batch: ClassVar[int] = 4096

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arch": "mlp", "sizes": list(self.sizes)}
        if self.dropout:
            out["dropout"] = self.dropout
        if self.input_dropout:
            out["input_dropout"] = self.input_dropout
        return out

    def build(self) -> nn.Module:
        return models.MLP(list(self.sizes), self.dropout, self.input_dropout)


Network = ResNet | SmallCNN | MLPNet


def input_shape(spec: Data) -> tuple[int, int, int]:
    """``(channels, height, width)`` of the data set's images."""
    return (3, 32, 32) if spec.dataset == "cifar10" else (1, 28, 28)


@functools.cache
def macs(network: Network, shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates per image of `network` on inputs of `shape`."""
    return models.count_cost(network.build(), shape).macs


# --- what a network learns from -----------------------------------------------------------------

@dataclass(frozen=True)
class ObjectiveSpec:
    """What a network minimises: `loss` on clean images, or on the PGD examples of `threat`
    (adversarial training); `teacher` is the training of the frozen network the loss
    distils from, run on the same inputs as the student: on every batch, or, with
    `teacher_once`, once on the training images before training starts (for a student
    whose images are never augmented; the loss takes ``{"labels", "teacher_logits"}``
    targets, :meth:`kdlib.objectives.HintonKD.from_logits`)."""

    loss: objectives.Loss
    threat: attacks.Threat | None = None
    teacher: Training | None = None
    teacher_once: bool = False

    def __post_init__(self) -> None:
        if self.loss.needs_teacher != (self.teacher is not None):
            raise ValueError(f"{type(self.loss).__name__} "
                             f"{'needs' if self.loss.needs_teacher else 'takes no'} teacher")
        if self.teacher_once and (self.teacher is None or self.threat is not None
                                  or not isinstance(self.loss, objectives.HintonKD)):
            raise ValueError("a teacher's logits are computed once only for Hinton's loss "
                             "(HintonKD.from_logits), on clean images")

    def spec(self) -> dict[str, Any]:
        out = {**self.loss.spec(),
               "inputs": "clean images" if self.threat is None else "PGD examples"}
        if self.threat is not None:
            out["threat"] = self.threat.spec()
        if self.teacher is not None:
            out["teacher"] = self.teacher.spec()
        if self.teacher_once:
            out["teacher_logits"] = "computed once"
        return out

    def build(self, teacher: nn.Module | None) -> training.Objective:
        """The objective that trains, given the trained teacher network (or None)."""
        if self.teacher_once:
            assert isinstance(self.loss, objectives.HintonKD)
            return self.loss.from_logits()
        base = self.loss.objective(teacher)
        return base if self.threat is None else self.threat.adversarial(base)


@dataclass(frozen=True)
class EarlyStop:
    """Keep the epoch whose accuracy on the held-out images, under the objective's own
    threat, was best; the attack runs in batches of ``batch`` images."""

    batch: int

    def spec(self) -> dict[str, Any]:
        return {"batch": self.batch}


# --- a training ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Training:
    """Everything that decides one trained network (see the module docstring)."""

    method: str
    network: Network
    data: Data
    recipe: training.Recipe
    seed: int
    objective: ObjectiveSpec
    grad_every: int = 0
    held_out: int = 0
    early_stop: EarlyStop | None = None

    def __post_init__(self) -> None:
        if self.objective.teacher_once and (self.recipe.jitter or self.recipe.crop_flip):
            raise ValueError("a teacher's logits computed once need un-augmented images")
        if self.early_stop and not (self.held_out and self.objective.threat):
            raise ValueError("early stopping needs held-out images and a threat to score "
                             "them under")

    def spec(self) -> dict[str, Any]:
        """The record form; its hash names the record and the checkpoint. Optional parts
        (gradient logging, held-out images, early stopping) appear only when used."""
        out = {"method": self.method, "model": self.network.spec(), "data": self.data.spec(),
               "recipe": self.recipe.as_dict(), "seed": self.seed,
               "objective": self.objective.spec()}
        if self.grad_every:
            out["gradients"] = {"every": self.grad_every}
        if self.held_out:
            out["held_out"] = self.held_out
        if self.early_stop is not None:
            out["early_stop"] = self.early_stop.spec()
        return out

    def work(self) -> runs.Work:
        """What training this network costs (:mod:`kdlib.flops` prices it): its
        multiply-accumulates on every training image of every epoch, the PGD steps of its
        threat, its teacher's forward passes (on every batch, or once), and early stopping's
        PGD on the held-out images after every epoch."""
        shape = input_shape(self.data)
        own = macs(self.network, shape)
        threat, teacher = self.objective.threat, self.objective.teacher
        images = self.data.train_images() - self.held_out
        stopping = (self.held_out * self.recipe.epochs * flops.pgd_forwards(threat.steps) * own
                    if self.early_stop is not None and threat is not None else 0.0)
        teacher_macs = macs(teacher.network, shape) if teacher is not None else 0.0
        once = teacher_macs * images if self.objective.teacher_once else 0.0
        return runs.Work(
            macs=own, trained_images=images * self.recipe.epochs,
            attack_steps=threat.steps if threat is not None else 0,
            teacher_macs=0.0 if self.objective.teacher_once else teacher_macs,
            extra_train_macs=stopping + once, family=self.network.family)

    @property
    def checkpoint(self) -> Path:
        """Where the trained weights go; trainings with equal specs share them."""
        return checkpoints.checkpoint_path(self.method, self.spec())

    def split(self, setup: data.OnDevice) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                  tuple[torch.Tensor, torch.Tensor]]:
        """``(train, held_out)``: the last ``held_out`` training images are kept out."""
        n = len(setup.y_train) - self.held_out
        x, y = setup.x_train, setup.y_train
        return (x[:n], y[:n]), (x[n:], y[n:])


def trained(run: Training, device: torch.device | str,
            progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of `run` on `device` (eval mode) and what its training recorded:
    ``history`` (per-epoch losses), ``final_train_loss``, ``epochs_trained``,
    ``data_source``, ``gradients`` (with ``grad_every``) and ``best_epoch`` (with an
    :class:`EarlyStop`).

    Loaded from the checkpoint cache when this exact training ran before (for any chapter);
    otherwise trained, resuming from the last completed epoch of an interrupted attempt. A
    teacher is obtained the same way, first.
    """
    setup = run.data.load(device)
    (x, y), (xv, yv) = run.split(setup)
    grads = paths.companion(run.checkpoint, "grads")
    best = paths.companion(run.checkpoint, "best")

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        teacher = (trained(run.objective.teacher, device, progress)[0]
                   if run.objective.teacher is not None else None)
        log = (gradients.GradientLog(model, run.grad_every, len(y) // run.recipe.batch_size,
                                     grads, resume) if run.grad_every else None)
        threat, stop = run.objective.threat, run.early_stop
        stopper = (training.EarlyStopping(model, lambda m: threat.accuracy(m, xv, yv, stop.batch),
                                          best, key="held_out_pgd_acc")
                   if stop is not None and threat is not None else None)
        targets: training.Targets = y
        if run.objective.teacher_once:
            targets = {"labels": y, "teacher_logits": training.predict(teacher, x)}
        history = training.train(model, run.objective.build(teacher), x, targets, run.recipe,
                                 seed=run.seed, checkpoint=resume,
                                 desc=f"{run.method} seed {run.seed}", progress=progress,
                                 on_backward=log, on_epoch=stopper)
        info: dict[str, Any] = {"history": history, "final_train_loss": history[-1]["loss"],
                                "epochs_trained": len(history), "data_source": setup.source}
        if log is not None:
            info["gradients"] = log.summary()
        if stopper is not None:
            info["best_epoch"] = stopper.restore()
        return info

    model, info = checkpoints.trained_model(
        run.method, run.spec(), lambda: training.seeded(run.seed, run.network.build), fit,
        setup.device)
    grads.unlink(missing_ok=True)
    best.unlink(missing_ok=True)
    return model, info


def accuracy_work(run: Training) -> runs.Work:
    """What :func:`accuracy_metrics` computes: `run`'s training and one forward pass per test
    image."""
    return dataclasses.replace(run.work(), forwards=run.data.test_size)


def accuracy_metrics(run: Training, device: torch.device | str, *,
                     progress: bool = True) -> dict[str, Any]:
    """A run's record metrics: the trained network's test accuracy and error count on the
    data's test images, and what its training recorded (:func:`trained`)."""
    model, info = trained(run, device, progress)
    training.as_trained(model, run.recipe)
    setup = run.data.load(device)
    pred = training.predict(model, setup.x_test, batch_size=run.network.eval_batch).argmax(1)
    right = int((pred == setup.y_test).sum())
    n = len(setup.y_test)
    return {"test_acc": right / n, "test_errors": n - right, "test_size": n, **info}


def planned(profile: str, chapter: str, name: str, fit: Training, compute: Callable[..., Any],
            work: runs.Work, device: str, *, spec: Mapping[str, Any] | None = None,
            needs: Sequence[Training] = ()) -> runs.Run:
    """The run `name` that trains `fit` (its spec, or `spec`, names its record) and measures
    it with `compute`; it loads the checkpoints of `fit`'s teacher and of `needs`."""
    teachers = [t for t in (fit.objective.teacher, *needs) if t is not None]
    return runs.Run(profile, chapter, name, dict(spec or fit.spec()), compute, device=device,
                    trains=fit.checkpoint.name, needs=tuple(t.checkpoint.name for t in teachers),
                    work=work)
