"""What the image chapters share (Tables 3, 4 and 5, Figure 2): parameters, rows and their runs.

**Data.** CIFAR-10 for the paper's setting, or MNIST or Fashion-MNIST for a
scaled stand-in that runs offline on a CPU: a seeded subset of ``train_size``
training and ``test_size`` test images (:class:`kdlib.networks.Data`).

**Networks.** ResNet18 and ResNet50 in the CIFAR form, of ``width`` 64 (the
standard networks) or less, normalising inside the model so that attacks work on
images in [0, 1]; chapter 6 may use a smaller network (its ``Params.network``).

**Rows.** A chapter's table rows are :class:`Method` s: a network, a loss, whether
it trains on clean images or on PGD examples, and, for a distilled row, the method
whose trained network of the same seed teaches it. :func:`training_for` turns a row,
a seed and the chapter's parameters into the :class:`kdlib.networks.Training` that
fits it; the chapter's ``Params`` class says what its trainings add (gradient
logging, held-out images, early stopping, the threat). :data:`BASELINE`, the
ResNet18 trained with cross-entropy, is shared: its training depends only on the
settings Tables 3 and 4 share (:class:`ResNetRuns`), so one trained ResNet18 per
seed serves as both chapters' baseline, and as Re-KD's and Tf-KD-self's teacher.

**Paired seeds.** Runs of one seed share the initial weights of their
architecture, the order of batches, the augmentations and the PGD start noise;
only the objective differs.

**Loss weights.** :func:`kdlib.losses.hinton_kd` averages the KL over the batch
(``batchmean``); the official Tf-KD code divides it by the number of classes
too and multiplies it by a constant (the book's *Methods and deviations* page).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kdlib import networks, objectives, runs, training
from kdlib.attacks import Threat
from kdlib.config import Common, ProfileError, between, ge
from kdlib.readings import Reading

NUM_CLASSES = 10
#: Pixels of random translation for ``augment: jitter`` (MNIST).
JITTER_PIXELS = 2
#: Image channels of each data set.
CHANNELS = {"cifar10": 3, "mnist": 1, "fashion-mnist": 1}


# --- parameters ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageRuns(Common):
    """The data and training recipe of the image chapters (Tables 3 to 5).

    ``dataset`` is ``cifar10`` for the paper's setting, or ``mnist`` or
    ``fashion-mnist`` for a scaled stand-in that runs offline on a CPU (a subset, and
    networks of reduced ``width``).
    """

    dataset: Literal["mnist", "fashion-mnist", "cifar10"] = "mnist"
    train_size: int = field(default=256, metadata=between(16, 60000))
    test_size: int = field(default=500, metadata=between(8, 10000))
    width: int = field(default=4, metadata=ge(1))
    augment: Literal["crop_flip", "jitter", "none"] = "jitter"
    batch_size: int = field(default=64, metadata=ge(1))
    epochs: int = field(default=1, metadata=ge(1))
    lr: float = field(default=0.05, metadata={"gt": 0})
    weight_decay: float = field(default=0.0005, metadata=ge(0))
    schedule: Literal["cosine", "step"] = "cosine"
    warmup_epochs: float = field(default=0.0, metadata=ge(0))
    #: ε of the label-smoothing control rows.
    label_smoothing: float = field(default=0.1, metadata=between(0, 1))
    #: Where label smoothing puts ε: ``uniform``, ε/K on every class (this build's), or
    #: ``others``, ε/(K-1) on each wrong class (the official Tf-KD code's).
    label_smoothing_form: Literal["uniform", "others"] = field(
        default="uniform", metadata={"optional": True})
    #: The rows to run, by record name; empty: every row of the chapter. A row's teacher is
    #: trained whether or not its own row is listed.
    methods: list[str] = field(default_factory=list, metadata={"unique": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataset == "mnist" and self.augment == "crop_flip":
            raise ProfileError("augment 'crop_flip' mirrors images left-right, which turns "
                               "digits into other shapes; use 'jitter' or 'none' for MNIST")
        if self.dataset == "cifar10" and self.train_size > 50000:
            raise ProfileError(f"train_size {self.train_size} is larger than CIFAR-10's "
                               "50000 training images")
        if self.batch_size > self.train_size:
            raise ProfileError(f"batch_size {self.batch_size} is larger than train_size "
                               f"{self.train_size}")

    # What a chapter's trainings are made of; chapters override what they add.

    def network(self, arch: str | None) -> networks.Network:
        """The network of a row: the ResNet it names, at this width, for this data set."""
        if arch not in ("resnet18", "resnet50"):
            raise ValueError(f"a row of this chapter must name resnet18 or resnet50, not {arch}")
        return networks.ResNet(arch, self.width, CHANNELS[self.dataset], NUM_CLASSES,
                               self.dataset)

    def threat(self) -> Threat:
        """The threat model of adversarially trained rows."""
        raise ProfileError("this chapter has no adversarially trained rows")

    def training_options(self, method: Method) -> dict[str, Any]:
        """What this chapter's trainings log or hold out (see :class:`networks.Training`)."""
        return {}

    def for_teacher(self, method: Method) -> ImageRuns:
        """The parameters that train `method`'s teacher: these, unless a chapter trains a
        row's teacher otherwise than that teacher's own row."""
        return self


@dataclass(frozen=True)
class ResNetRuns(ImageRuns):
    """The runs that Tables 3 and 4 share: :class:`ImageRuns` and how often gradients are
    recorded. Runs with equal values here share their trained baselines."""

    grad_every: int = field(default=1, metadata=ge(1))

    def training_options(self, method: Method) -> dict[str, Any]:
        return {"grad_every": self.grad_every}


@dataclass(frozen=True)
class TfKdLosses:
    """The settings of the two teacher-free losses (Table 4's, reused by Table 5)."""

    tf_reg_delta: float = field(default=0.9, metadata=between(0, 1))
    tf_reg_temperature: float = field(default=20.0, metadata={"gt": 0})
    tf_reg_alpha: float = field(default=0.1, metadata=between(0, 1))
    tf_reg_soften_student: bool = True
    tf_self_temperature: float = field(default=6.0, metadata={"gt": 0})
    tf_self_alpha: float = field(default=0.99, metadata=between(0, 1))
    #: The official form of Tf-KD-reg (:func:`kdlib.losses.tf_kd_reg_official`): its δ, and
    #: the multiplier that gives its KL the official CIFAR-100 weight on 10 classes.
    tf_reg_official_delta: float = field(default=0.99, metadata=between(0, 1))
    tf_reg_official_multiplier: float = field(default=10.0, metadata={"gt": 0})


def recipe(cfg: ImageRuns) -> training.Recipe:
    """One recipe for every run: SGD with momentum 0.9 (not Nesterov, as in the official code)."""
    return training.Recipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                           momentum=0.9, nesterov=False, weight_decay=cfg.weight_decay,
                           schedule=cfg.schedule, warmup_epochs=cfg.warmup_epochs,
                           jitter=JITTER_PIXELS if cfg.augment == "jitter" else 0,
                           crop_flip=cfg.augment == "crop_flip",
                           engine=training.engine_here(cfg.engine))


def data(cfg: ImageRuns) -> networks.Data:
    return networks.Data(cfg.dataset, cfg.train_size, cfg.test_size)


# --- losses of the rows, from the parameters -----------------------------------------------------

def cross_entropy(cfg: ImageRuns) -> objectives.Loss:
    return objectives.CrossEntropy()


def label_smoothing(cfg: ImageRuns) -> objectives.Loss:
    """The label-smoothing control, at the profile's ε and form."""
    return objectives.LabelSmoothing(cfg.label_smoothing, cfg.label_smoothing_form)


def tf_kd_reg(cfg: TfKdLosses) -> objectives.Loss:
    """Tf-KD-reg in this build's form."""
    return objectives.TfKdReg(cfg.tf_reg_delta, cfg.tf_reg_temperature, cfg.tf_reg_alpha,
                              soften_student=cfg.tf_reg_soften_student)


def tf_kd_reg_official(cfg: TfKdLosses) -> objectives.Loss:
    """Tf-KD-reg in the official code's form, at T and α of `cfg`."""
    return objectives.TfKdRegOfficial(cfg.tf_reg_official_delta, cfg.tf_reg_temperature,
                                      cfg.tf_reg_alpha, cfg.tf_reg_official_multiplier)


def tf_kd_self(cfg: TfKdLosses) -> objectives.Loss:
    """Tf-KD-self: Hinton's loss at Table 4's ``tf_self_*`` settings."""
    return objectives.HintonKD(cfg.tf_self_temperature, cfg.tf_self_alpha)


# --- the readings of the settings the paper leaves open (kdlib.readings) -------------------------

#: Tf-KD-self's balance of labels and teacher on 10 classes.
SELF_ALPHA_CIFAR100 = Reading(
    "alpha-cifar100", "Tf-KD-self's weight α′ on the teacher, for 10 classes",
    "α′ = 0.99: the official code's weights (0.95 and 50) as it computes them for 10 classes",
    "α′ = 0.905: the balance of labels and teacher those weights give on CIFAR-100",
    {"tf_self_alpha": 0.905})
#: The official Tf-KD-reg multiplier, literal or rescaled to 10 classes.
MULTIPLIER_100 = Reading(
    "multiplier-100", "the official Tf-KD-reg multiplier on 10 classes",
    "10: the official 100 × (10 / 100 classes), which keeps its KL's CIFAR-100 weight",
    "100: the official code run literally on 10 classes (its KL weighs 1.0)",
    {"tf_reg_official_multiplier": 100.0})
#: Where label smoothing puts its ε.
SMOOTHING_OTHERS = Reading(
    "smoothing-others", "where label smoothing puts ε",
    "ε/K on every class (Szegedy et al.)",
    "ε/(K−1) on each wrong class (the official Tf-KD code's)",
    {"label_smoothing_form": "others"})


# --- rows and their trainings ---------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    """One row of an image chapter's table.

    `loss(cfg)` gives its loss at the chapter's parameters; `arch` names its network
    (None: the chapter's, ``cfg.network(None)``); `adversarial` rows train on PGD examples
    of the chapter's threat; `teacher` is the row whose trained network of the same seed
    teaches this one, frozen and fed the same inputs. `paper` names its row in the
    paper's table (:mod:`kdlib.paper`) and `versus` the row the table compares it with.
    Its functions must be module-level, so that a run can be pickled.
    """

    name: str
    label: str
    loss: Callable[[Any], objectives.Loss]
    arch: str | None = None
    adversarial: bool = False
    teacher: Method | None = None
    paper: str | None = None
    versus: Method | None = None


#: The ResNet18 trained with cross-entropy: Table 3's student, Table 4's baseline, and the
#: teacher of Re-KD and Tf-KD-self.
BASELINE = Method("baseline", "ResNet18: baseline", cross_entropy, arch="resnet18",
                  paper="baseline")


def training_for(cfg: ImageRuns, method: Method, seed: int) -> networks.Training:
    """The training of `method` for `seed` under `cfg`, its teacher's included."""
    teacher = (training_for(cfg.for_teacher(method), method.teacher, seed)
               if method.teacher is not None else None)
    threat = cfg.threat() if method.adversarial else None
    return networks.Training(method.name, cfg.network(method.arch), data(cfg), recipe(cfg),
                             seed, networks.ObjectiveSpec(method.loss(cfg), threat, teacher),
                             **cfg.training_options(method))


def chosen(cfg: ImageRuns, methods: Sequence[Method]) -> list[Method]:
    """The rows of `methods` that `cfg.methods` names (all when it is empty)."""
    known = [m.name for m in methods]
    unknown = sorted(set(cfg.methods) - set(known))
    if unknown:
        raise ProfileError(f"methods: unknown {unknown}; this chapter's rows are {known}")
    return [m for m in methods if not cfg.methods or m.name in cfg.methods]


def resnet_plan(cfg: ResNetRuns, chapter: str, methods: Sequence[Method]) -> list[runs.Run]:
    """Every ``(method, seed)`` of Table 3 or 4, each after the runs it learns from: a run
    trains its network and measures its test accuracy
    (:func:`kdlib.networks.accuracy_metrics`). A teacher trained otherwise than its own row
    (:meth:`ImageRuns.for_teacher`) is a run of its own, ``<method>_teacher``, so that its
    training is recorded too."""
    device = cfg.device  # resolved where the run executes: a plan is the same on any machine

    def run_of(name: str, fit: networks.Training) -> runs.Run:
        return networks.planned(cfg.profile, chapter, name, fit,
                                functools.partial(networks.accuracy_metrics, fit, device),
                                networks.accuracy_work(fit), device)

    out = []
    for method in chosen(cfg, methods):
        for seed in cfg.seeds:
            fit = training_for(cfg, method, seed)
            teacher = fit.objective.teacher
            if teacher is not None and (teacher.spec()
                                        != training_for(cfg, method.teacher, seed).spec()):
                out.append(run_of(teacher_row(method), teacher))
            out.append(run_of(method.name, fit))
    return out


def teacher_row(method: Method) -> str:
    """The record name of `method`'s teacher where it is not its own row's network."""
    return f"{method.name}_teacher"
