"""What the ResNet chapters share (Tables 3, 4 and 5, Figure 2): data, networks, recipe, runs.

**Data.** CIFAR-10 for the paper's setting, or MNIST or Fashion-MNIST for a
scaled stand-in that runs offline on a CPU; a seeded subset of ``train_size``
training and ``test_size`` test images, held in memory on the device once per
process for each setting (:func:`load`).

**Networks.** ResNet18 and ResNet50 in the CIFAR form (:mod:`kdlib.models`), of
``width`` 64 (the standard networks) or less, normalising inside the model so
that attacks work on images in [0, 1].

**Methods.** A chapter's table rows are :class:`Method` s: a network, a loss
spec (which :func:`kdlib.objectives.from_spec` turns into the objective) and,
for a distilled row, the method whose trained network of the same seed teaches
it, frozen and run on the student's augmented batch. :data:`BASELINE`, the
ResNet18 trained with cross-entropy, is shared: its spec depends only on the
settings Tables 3 and 4 share (:class:`ResNetRuns`), so one trained ResNet18 per
seed serves as both chapters' baseline, as Re-KD's and Tf-KD-self's teacher.

**Gradient statistics** (Figure 2). Every ResNet run records, every
``grad_every`` optimiser steps, each layer's mean absolute weight gradient,
in sums that survive a resume (:class:`kdlib.gradients.GradientLog`).

**Paired seeds.** Runs of one seed share the initial weights of their
architecture and the order of batches and augmentations; only the objective
differs.

**Loss weights.** :func:`kdlib.losses.hinton_kd` averages the KL over the batch
(``batchmean``); the official Tf-KD code divides it by the number of classes
too (``reduction='mean'``) and multiplies it by a constant. :func:`batchmean_alpha`
converts its α to ours.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from kdlib import (
    checkpoints,
    data,
    gradients,
    models,
    objectives,
    paths,
    report,
    runs,
    stats,
    training,
)
from kdlib.config import Common, ProfileError, between, ge

NUM_CLASSES = 10
#: Pixels of random translation for ``augment: jitter`` (MNIST).
JITTER_PIXELS = 2
#: Evaluation batch: large batches of a ResNet50 run slower per image on a CPU.
EVAL_BATCH = 128
#: Data set -> (channels, image side, per-channel mean and std for the model's Normalize).
DATASETS = {"cifar10": (3, 32, (models.CIFAR10_MEAN, models.CIFAR10_STD)),
            "mnist": (1, 28, (models.MNIST_MEAN, models.MNIST_STD)),
            "fashion-mnist": (1, 28, (models.FASHION_MEAN, models.FASHION_STD))}


# --- parameters ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageRuns(Common):
    """The data and training recipe of the ResNet chapters (Tables 3 to 5).

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
    #: The rows to run, by record name; empty: every row of the chapter. A row's teacher is
    #: trained whether or not its own row is listed.
    methods: list[str] = field(default_factory=list, metadata={"unique": True})

    def __post_init__(self) -> None:
        if self.dataset == "mnist" and self.augment == "crop_flip":
            raise ProfileError("augment 'crop_flip' mirrors images left-right, which turns "
                               "digits into other shapes; use 'jitter' or 'none' for MNIST")
        if self.dataset == "cifar10" and self.train_size > 50000:
            raise ProfileError(f"train_size {self.train_size} is larger than CIFAR-10's "
                               "50000 training images")
        if self.batch_size > self.train_size:
            raise ProfileError(f"batch_size {self.batch_size} is larger than train_size "
                               f"{self.train_size}")


@dataclass(frozen=True)
class ResNetRuns(ImageRuns):
    """The runs that Tables 3 and 4 share: :class:`ImageRuns` and how often gradients are
    recorded. Runs with equal values here share their trained baselines."""

    grad_every: int = field(default=1, metadata=ge(1))


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


def tf_kd_reg_loss(cfg: TfKdLosses) -> dict[str, Any]:
    """The loss spec of Tf-KD-reg at `cfg`'s settings (this build's form)."""
    return {"loss": "tf_kd_reg", "reduction": "batchmean", "delta": cfg.tf_reg_delta,
            "temperature": cfg.tf_reg_temperature, "alpha": cfg.tf_reg_alpha,
            "soften_student": cfg.tf_reg_soften_student}


def tf_kd_reg_official_loss(cfg: TfKdLosses) -> dict[str, Any]:
    """The loss spec of Tf-KD-reg in the official code's form, at T and α of `cfg`."""
    return {"loss": "tf_kd_reg_official", "delta": cfg.tf_reg_official_delta,
            "temperature": cfg.tf_reg_temperature, "alpha": cfg.tf_reg_alpha,
            "multiplier": cfg.tf_reg_official_multiplier}


def label_smoothing_loss(cfg: Any) -> dict[str, Any]:
    """The loss spec of the label-smoothing control, at the profile's ε."""
    return {"loss": "label_smoothing", "epsilon": cfg.label_smoothing}


def matched_smoothing(cfg: TfKdLosses, num_classes: int = NUM_CLASSES) -> float:
    """The ε of label smoothing whose targets put as much mass on the wrong classes as the
    official Tf-KD-reg loss does.

    That loss, ``(1-α)·CE + w·KL(q ‖ softmax(s))`` with ``w = α·multiplier/K`` on the
    ``batchmean`` KL, is (up to a constant) cross-entropy against the target
    ``((1-α)·onehot + w·q) / (1-α+w)``, whose wrong classes hold ``w·(1-q_correct)/(1-α+w)``;
    label smoothing's hold ``ε·(K-1)/K``.
    """
    from kdlib import losses

    q = losses.virtual_teacher(torch.tensor([0]), num_classes, cfg.tf_reg_official_delta,
                               cfg.tf_reg_temperature)[0]
    w = cfg.tf_reg_alpha * cfg.tf_reg_official_multiplier / num_classes
    wrong = w * (1 - float(q[0])) / (1 - cfg.tf_reg_alpha + w)
    return wrong * num_classes / (num_classes - 1)


def hinton_loss(temperature: float, alpha: float) -> dict[str, Any]:
    """The loss spec of Hinton's KD (its teacher is added by the method)."""
    return {"loss": "hinton_kd", "reduction": "batchmean", "temperature": temperature,
            "alpha": alpha}


def batchmean_alpha(alpha: float, num_classes: int, multiplier: float = 1.0) -> float:
    """Our α for the official code's ``(1-α)·CE + α·multiplier·T²·KL_mean``.

    ``KL_mean`` (``reduction='mean'``) is our ``batchmean`` KL divided by K, so the
    official soft term weighs ``w = α·multiplier/K`` against ``1-α`` for the hard
    term. Keeping that ratio in ``(1-α')·CE + α'·T²·KL`` gives ``α' = w/(1-α+w)``.
    The overall factor ``1-α+w`` is dropped: with SGD it would act as a change of
    learning rate.
    """
    w = alpha * multiplier / num_classes
    return w / (1 - alpha + w)


def conversion_table() -> pd.DataFrame:
    """The official hyper-parameters (CIFAR-100) and their α in our loss at K = 10 and 100."""
    rows = [("Re-KD", 0.6, 20.0, 1.0), ("Tf-KD-self", 0.95, 6.0, 50.0)]
    return pd.DataFrame([{"method": m, "official α": a, "T": t, "multiplier": k,
                          "our α, K = 10 (CIFAR-10)": round(batchmean_alpha(a, 10, k), 4),
                          "our α, K = 100 (CIFAR-100)": round(batchmean_alpha(a, 100, k), 4)}
                         for m, a, t, k in rows]).set_index("method")


def recipe(cfg: ImageRuns) -> training.Recipe:
    """One recipe for every run: SGD with momentum 0.9 (not Nesterov, as in the official code)."""
    return training.Recipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                           momentum=0.9, nesterov=False, weight_decay=cfg.weight_decay,
                           schedule=cfg.schedule, warmup_epochs=cfg.warmup_epochs,
                           jitter=JITTER_PIXELS if cfg.augment == "jitter" else 0,
                           crop_flip=cfg.augment == "crop_flip", engine=cfg.engine)


# --- data and networks --------------------------------------------------------------------------

#: Training and test tensors (floats in [0, 1]) on the run's device, and their source.
ImageSetup = data.OnDevice


def load(cfg: ImageRuns) -> ImageSetup:
    """The data of `cfg`'s runs; loaded once per process for each data setting.

    ``cifar10`` raises :class:`kdlib.data.DatasetUnavailableError`, saying where
    to put the files, when CIFAR-10 is neither on disk nor downloadable.
    """
    device = training.resolve_device(cfg.device)
    return _load(cfg.dataset, cfg.train_size, cfg.test_size, str(device), str(paths.data_dir()))


@functools.cache
def _load(dataset: str, train_size: int, test_size: int, device: str, root: str) -> ImageSetup:
    if dataset == "cifar10":
        images = data.load_cifar10(Path(root))
    else:
        images = data.load_images(dataset, root=Path(root))
    train = images.train.subset(data.subset_indices(len(images.train), train_size, seed=0))
    test = images.test.subset(data.subset_indices(len(images.test), test_size, seed=0))
    x, y = train.to(device)
    xt, yt = test.to(device)
    return ImageSetup(x, y, xt, yt, images.source, torch.device(device))


def data_spec(cfg: ImageRuns) -> dict[str, Any]:
    return {"dataset": cfg.dataset, "train_size": cfg.train_size, "test_size": cfg.test_size,
            "subset_seed": 0}


def model_spec(cfg: ImageRuns, arch: str) -> dict[str, Any]:
    channels, _, _ = DATASETS[cfg.dataset]
    return {"arch": arch, "width": cfg.width, "in_channels": channels,
            "num_classes": NUM_CLASSES, "normalize": cfg.dataset}


def build(cfg: ImageRuns, arch: str) -> nn.Module:
    """An untrained ResNet18 or ResNet50 for `cfg`'s data, normalising inside the model."""
    channels, _, norm = DATASETS[cfg.dataset]
    factory = {"resnet18": models.resnet18, "resnet50": models.resnet50}[arch]
    return factory(num_classes=NUM_CLASSES, in_channels=channels, width=cfg.width,
                   normalize=norm)


@functools.cache
def _macs(arch: str, width: int, dataset: str) -> int:
    channels, side, _ = DATASETS[dataset]
    cfg = ImageRuns(dataset=dataset, width=width)
    return models.count_cost(build(cfg, arch), (channels, side, side)).macs


def macs(cfg: ImageRuns, arch: str) -> int:
    """Multiply-accumulates per image of `arch` at `cfg`'s width and image size."""
    return _macs(arch, cfg.width, cfg.dataset)


def evaluate(model: nn.Module, setup: ImageSetup) -> dict[str, Any]:
    """Test accuracy and error count of `model` on the setup's test images."""
    pred = training.predict(model, setup.x_test, batch_size=EVAL_BATCH).argmax(1)
    right = int((pred == setup.y_test).sum())
    n = len(setup.y_test)
    return {"test_acc": right / n, "test_errors": n - right, "test_size": n}


# --- methods and their runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    """One row of a ResNet table.

    `loss(cfg)` gives the loss spec (see :func:`kdlib.objectives.from_spec`);
    `teacher` is the method whose trained network of the same seed teaches this
    one. Its functions must be module-level, so that a run can be pickled.
    """

    name: str
    label: str
    arch: str
    loss: Callable[[Any], dict[str, Any]]
    teacher: Method | None = None


def cross_entropy_loss(cfg: Any) -> dict[str, Any]:
    """The loss spec of plain training."""
    return {"loss": "cross_entropy"}


#: The ResNet18 trained with cross-entropy: Table 3's student, Table 4's baseline, and the
#: teacher of Re-KD and Tf-KD-self.
BASELINE = Method("baseline", "ResNet18: baseline", "resnet18", cross_entropy_loss)


def objective_spec(cfg: ResNetRuns, method: Method, seed: int) -> dict[str, Any]:
    """The loss of `method` and everything it depends on (a teacher's full spec included)."""
    spec = method.loss(cfg)
    if method.teacher is not None:
        spec = {**spec, "teacher_input": "the augmented batch",
                "teacher": run_spec(cfg, method.teacher, seed)}
    return spec


def run_spec(cfg: ResNetRuns, method: Method, seed: int) -> dict[str, Any]:
    """Everything that determines a run's outcome; its hash names the record and checkpoint."""
    return {"method": method.name, "model": model_spec(cfg, method.arch),
            "data": data_spec(cfg), "recipe": recipe(cfg).as_dict(), "seed": seed,
            "objective": objective_spec(cfg, method, seed),
            "gradients": {"every": cfg.grad_every}}


def checkpoint(cfg: ResNetRuns, method: Method, seed: int) -> Path:
    """Where the run's trained weights go; runs with equal paths share one training."""
    return checkpoints.checkpoint_path(method.name, run_spec(cfg, method, seed))


def trained(cfg: ResNetRuns, method: Method, seed: int,
            progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a run and its info (metrics, loss history, gradients).

    Loaded from the checkpoint cache when this exact run was trained before (by
    either chapter); otherwise trained, resuming from the last completed epoch
    if an earlier attempt was interrupted. A teacher is obtained the same way.
    """
    setup = load(cfg)
    spec = run_spec(cfg, method, seed)
    grads = paths.companion(checkpoint(cfg, method, seed), "grads")

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        teacher = (trained(cfg, method.teacher, seed, progress)[0]
                   if method.teacher is not None else None)
        log = gradients.GradientLog(model, cfg.grad_every, len(setup.y_train) // cfg.batch_size,
                                    grads, resume)
        history = training.train(model, objectives.from_spec(spec["objective"], teacher),
                                 setup.x_train, setup.y_train, recipe(cfg), seed=seed,
                                 checkpoint=resume, desc=f"{method.name} seed {seed}",
                                 progress=progress, on_backward=log)
        return {**evaluate(model, setup), "final_train_loss": history[-1]["loss"],
                "history": history, "gradients": log.summary(), "data_source": setup.source}

    model, info = checkpoints.trained_model(
        method.name, spec, lambda: training.seeded(seed, lambda: build(cfg, method.arch)), fit,
        setup.device)
    grads.unlink(missing_ok=True)
    return model, info


def metrics(cfg: ResNetRuns, method: Method, seed: int, *, progress: bool = True
            ) -> dict[str, Any]:
    """A run's metrics: its trained network's info (trained now or loaded)."""
    return trained(cfg, method, seed, progress)[1]


def plan(cfg: ResNetRuns, chapter: str, methods: Sequence[Method]) -> list[runs.Run]:
    """Every ``(method, seed)`` of a chapter, each after the runs it learns from."""
    device = str(training.resolve_device(cfg.device))
    images = cfg.train_size * cfg.epochs
    out = []
    for method in chosen(cfg, methods):
        teacher_macs = macs(cfg, method.teacher.arch) if method.teacher else 0
        for seed in cfg.seeds:
            out.append(runs.Run(
                cfg.profile, chapter, method.name, run_spec(cfg, method, seed),
                functools.partial(metrics, cfg, method, seed), device=device,
                trains=checkpoint(cfg, method, seed).name,
                needs=(checkpoint(cfg, method.teacher, seed).name,) if method.teacher else (),
                flops=runs.train_flops(macs(cfg, method.arch), images,
                                       teacher_macs=teacher_macs),
                eval_flops=runs.forward_flops(macs(cfg, method.arch), cfg.test_size)))
    return out


def chosen(cfg: ImageRuns, methods: Sequence[Any]) -> list[Any]:
    """The rows of `methods` that `cfg.methods` names (all when it is empty)."""
    known = [m.name for m in methods]
    unknown = sorted(set(cfg.methods) - set(known))
    if unknown:
        raise ProfileError(f"methods: unknown {unknown}; this chapter's rows are {known}")
    return [m for m in methods if not cfg.methods or m.name in cfg.methods]


# --- tables -------------------------------------------------------------------------------------

def fmt_p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def comparison(records: runs.Records, rows: Sequence[tuple[Method, tuple[float, float] | None,
                                                           Method | None]],
               paper_ref: dict[str, tuple[float, float]], paper_runs: int) -> pd.DataFrame:
    """Test accuracy (%) of each row's method, the paper's beside ours, with Welch's test of
    the row against its comparison method (`rows`: method, paper mean ± std, compared with),
    from our runs and from the paper's own mean ± std, and the smallest difference our
    seeds could detect with 80% power. Rows without records are left out."""
    out = []
    for method, ref, base in rows:
        if method.name not in records:
            continue
        values = report.metric(records[method.name])
        paper_cell = "—" if ref is None else f"{100 * ref[0]:.2f} ± {100 * ref[1]:.2f}"
        row = report.comparison_row(method.label, paper_cell, values)
        row["paper: Welch p vs baseline"] = row["Welch p vs baseline"] = "—"
        row["detectable (points)"] = "—"
        if base is not None:
            if ref is not None and base.name in paper_ref:
                row["paper: Welch p vs baseline"] = fmt_p(stats.welch_p_from_summary(
                    *ref, paper_runs, *paper_ref[base.name], paper_runs))
            others = report.metric(records[base.name])
            row["Welch p vs baseline"] = fmt_p(stats.welch_p(values, others))
            spread = max(stats.summarize(values).std, stats.summarize(others).std)
            det = stats.detectable_difference(100 * spread, min(len(values), len(others)))
            row["detectable (points)"] = "—" if math.isnan(det) else f"{det:.2f}"
        out.append(row)
    return report.comparison_table(out)


def paper_gain_sentence(treated: str, ref: tuple[float, float], baseline: str,
                        base: tuple[float, float], n: int = 3) -> str:
    """What the paper's own ``mean ± std`` cells say about its claimed gain."""
    gain = 100 * (ref[0] - base[0])
    spread = 100 * max(ref[1], base[1])
    p = stats.welch_p_from_summary(*ref, n, *base, n)
    verdict = ("larger than the spread across its runs" if gain > spread and p < 0.05
               else "inside the spread across its runs")
    return (f"Paper, {treated} vs {baseline}: {gain:+.2f} points (largest std {spread:.2f}, "
            f"Welch p = {p:.3g} from its mean ± std over n = {n}): {verdict}.")


def scale(cfg: ImageRuns) -> str:
    """The scale a chapter's records decide its claims at, in words."""
    paper = cfg.dataset == "cifar10" and cfg.width == 64 and cfg.train_size == 50000
    where = "paper setting" if paper else f"stand-in (`{cfg.profile}`)"
    return (f"{where}: {DATA_NAMES[cfg.dataset]} {cfg.train_size:,} images, ResNets of width "
            f"{cfg.width}, {cfg.epochs} epochs, {len(cfg.seeds)} seed(s)")


#: How pages name each data set.
DATA_NAMES = {"cifar10": "CIFAR-10", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def scale_note(cfg: ImageRuns) -> str:
    """A Markdown paragraph saying plainly what data and networks the page's runs used."""
    if cfg.dataset == "cifar10":
        size = ("the standard networks" if cfg.width == 64
                else f"**reduced to width {cfg.width}** (the standard networks have 64)")
        return (f"**Setting.** This page was built with the `{cfg.profile}` profile: CIFAR-10 "
                f"({cfg.train_size} training and {cfg.test_size} test images), CIFAR-form "
                f"ResNets of width {cfg.width} ({size}), {cfg.epochs} epochs, "
                f"{len(cfg.seeds)} seed(s).")
    name = DATA_NAMES[cfg.dataset]
    return (f"**A scaled replication on {name}, not CIFAR-10.** This page was built with the "
            f"`{cfg.profile}` profile, whose runs use a {cfg.train_size}-image subset of {name} "
            f"(tested on {cfg.test_size} {name} test images) and ResNet18/ResNet50 **reduced to "
            f"width {cfg.width}** (the standard networks have width 64), trained for "
            f"{cfg.epochs} epoch(s) over {len(cfg.seeds)} seed(s), so that it runs offline on a "
            f"CPU. The paper's numbers are CIFAR-10 accuracies of full-width networks trained "
            f"for about 200 epochs (this book's `paper` profile, which needs a GPU). Compare "
            f"the direction of each effect and its size against the seed-to-seed spread, not "
            f"the accuracies themselves.")


def data_summary(cfg: ImageRuns, setup: ImageSetup) -> pd.DataFrame:
    """Sizes, image shape and source of the page's data."""
    return pd.DataFrame([{"data set": cfg.dataset, "training images": len(setup.y_train),
                          "test images": len(setup.y_test),
                          "image": "×".join(map(str, setup.x_train.shape[1:])),
                          "augmentation": cfg.augment, "device": str(setup.device),
                          "source": setup.source}]).set_index("data set")


def model_table(cfg: ImageRuns, archs: Sequence[str] = ("resnet18", "resnet50")) -> pd.DataFrame:
    """Parameters and per-image MACs of each network at `cfg`'s width and input size."""
    channels, side, _ = DATASETS[cfg.dataset]
    rows = []
    for arch in archs:
        net = build(cfg, arch)
        rows.append({"network": arch, "width": cfg.width,
                     "parameters": sum(p.numel() for p in net.parameters()),
                     f"MACs per {side}×{side} image": macs(cfg, arch)})
    return pd.DataFrame(rows).set_index("network")


def provenance(records: runs.Records) -> pd.DataFrame:
    return runs.provenance(records, {
        "test acc (%)": lambda r: round(100 * r["metrics"]["test_acc"], 2)})
