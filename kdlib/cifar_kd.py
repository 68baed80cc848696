"""Tables 3 and 4 and Figure 2: reversed and teacher-free distillation of ResNets.

**Runs.** Every run is one call, ``run(cfg, method, seed) -> record``. It loads
its own data (kept in memory per data setting, see :func:`load`), so a
scheduler can call runs in any order or process: :func:`plan` lists a
chapter's runs as :mod:`kdlib.jobs` expects them, and :func:`depends_on` the
runs whose trained weights a run needs. The methods:

- chapter ``03_reversed_kd`` (Table 3): ``baseline`` (ResNet18, cross-entropy),
  ``teacher_baseline`` (ResNet50, cross-entropy) and ``re_kd`` (ResNet50
  distilled from the trained ResNet18 ``baseline`` of the same seed);
- chapter ``04_teacher_free`` (Table 4): ``baseline``, ``tf_kd_reg`` (ResNet18
  distilled from the virtual teacher, :func:`kdlib.losses.tf_kd_reg`) and
  ``tf_kd_self`` (ResNet18 distilled from the trained ``baseline`` of the same
  seed).

**Trained weights are reused.** Each network is trained through
:func:`kdlib.checkpoints.trained_model`, keyed by its spec, with a resume file
after every epoch. The ``baseline`` spec depends only on the settings the
chapters share (:class:`kdlib.config.ResNetRuns`), so one trained ResNet18 per
seed serves as both chapters' baseline, as Re-KD's student-teacher and as
Tf-KD-self's teacher; it is never trained twice.

**Teachers see the augmented batch.** With crop/flip or jitter augmentation a
teacher's logits change with every batch, so Re-KD and Tf-KD-self run the
frozen teacher on the very batch the student sees
(:func:`kdlib.training.distillation`), rather than precomputing logits once as
the MNIST MLP chapters may.

**Paired seeds.** Runs of one seed share the initial weights of their
architecture and the order of batches and augmentations; only the objective
differs.

**Gradient statistics** (Figure 2). Every run records, every ``grad_every``
optimiser steps, each layer's mean absolute weight gradient
(:class:`kdlib.gradients.GradientRecorder`). The running sums are saved beside
the resume file after each epoch, so a resumed run still covers all its steps.
The per-layer and per-stage means are part of the run's record, where chapter 5
reads them.

**Loss weights.** :func:`kdlib.losses.hinton_kd` is
``(1-α)·CE + α·T²·KL`` with the KL averaged over the batch (``batchmean``). The
official Tf-KD code divides the KL by the number of classes K as well
(``reduction='mean'``) and multiplies it by a constant; :func:`batchmean_alpha`
converts its α to ours.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from kdlib import (
    checkpoints,
    data,
    gradients,
    losses,
    models,
    paper,
    paths,
    report,
    results,
    stats,
    training,
)
from kdlib.config import GradientStats, ImageRuns, ResNetRuns, ReversedKD, TeacherFree, as_dict

NUM_CLASSES = 10
#: Pixels of random translation for ``augment: jitter`` (MNIST).
JITTER_PIXELS = 2
#: Evaluation batch: large batches of a ResNet50 run slower per image on a CPU.
EVAL_BATCH = 128

CHAPTER_OF: dict[type, str] = {ReversedKD: "03_reversed_kd", TeacherFree: "04_teacher_free"}
#: The runs of each chapter, baseline first (the others may learn from it).
METHODS: dict[str, tuple[str, ...]] = {
    "03_reversed_kd": ("baseline", "teacher_baseline", "re_kd"),
    "04_teacher_free": ("baseline", "tf_kd_reg", "tf_kd_self"),
}
ARCH = {"baseline": "resnet18", "teacher_baseline": "resnet50", "re_kd": "resnet50",
        "tf_kd_reg": "resnet18", "tf_kd_self": "resnet18"}
#: Method -> the method whose trained network (same seed) is its teacher.
TEACHER = {"re_kd": "baseline", "tf_kd_self": "baseline"}
LABELS = {"baseline": "ResNet18: baseline", "teacher_baseline": "ResNet50: baseline",
          "re_kd": "ResNet50: Re-KD (taught by ResNet18)", "tf_kd_reg": "ResNet18: Tf-KD-reg",
          "tf_kd_self": "ResNet18: Tf-KD-self"}
#: Data set -> (channels, image side, per-channel mean and std for the model's Normalize).
DATASETS = {"cifar10": (3, 32, (models.CIFAR10_MEAN, models.CIFAR10_STD)),
            "mnist": (1, 28, (models.MNIST_MEAN, models.MNIST_STD))}
#: Sustained training throughput assumed for the paper profile's cost (see :func:`cost_table`).
ASSUMED_TFLOPS = 20.0


# --- configuration -------------------------------------------------------------------------------

def runs_config(cfg: ResNetRuns) -> ReversedKD | TeacherFree:
    """The parameter set whose runs `cfg` names: chapter 5's parameters are Table 4's."""
    if isinstance(cfg, GradientStats):
        return TeacherFree(**as_dict(cfg))
    if type(cfg) not in CHAPTER_OF:
        raise TypeError(f"no runs for {type(cfg).__name__}; expected ReversedKD or TeacherFree")
    return cfg


def chapter_of(cfg: ResNetRuns) -> str:
    """The chapter whose records `cfg`'s runs write (``03_reversed_kd`` or ``04_teacher_free``)."""
    return CHAPTER_OF[type(runs_config(cfg))]


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
                           crop_flip=cfg.augment == "crop_flip")


# --- data ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResNetSetup:
    """Training and test tensors (floats in [0, 1]) on the run's device, and their source."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    device: torch.device


def load(cfg: ImageRuns) -> ResNetSetup:
    """The data of `cfg`'s runs; loaded once per process for each data setting.

    ``cifar10`` raises :class:`kdlib.data.DatasetUnavailableError`, saying where
    to put the files, when CIFAR-10 is neither on disk nor downloadable.
    """
    device = training.resolve_device(cfg.device)
    return _load(cfg.dataset, cfg.train_size, cfg.test_size, str(device), str(paths.data_dir()))


@functools.cache
def _load(dataset: str, train_size: int, test_size: int, device: str, root: str) -> ResNetSetup:
    if dataset == "cifar10":
        images = data.load_cifar10(Path(root))
    else:
        images = data.load_images(dataset, root=Path(root))
    train = images.train.subset(data.subset_indices(len(images.train), train_size, seed=0))
    test = images.test.subset(data.subset_indices(len(images.test), test_size, seed=0))
    x, y = train.to(device)
    xt, yt = test.to(device)
    return ResNetSetup(x, y, xt, yt, images.source, torch.device(device))


#: Forget the data kept in memory (tests, or to free GPU memory).
clear_data_cache = _load.cache_clear


# --- specs and models ----------------------------------------------------------------------------

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


def _check(cfg: ReversedKD | TeacherFree, method: str) -> None:
    allowed = METHODS[chapter_of(cfg)]
    if method not in allowed:
        raise ValueError(f"unknown method {method!r} for {chapter_of(cfg)}; known: {allowed}")


def objective_spec(cfg: ResNetRuns, method: str, seed: int) -> dict[str, Any]:
    """The loss of `method` and everything it depends on (a teacher's full spec included)."""
    if method in ("baseline", "teacher_baseline"):
        return {"loss": "cross_entropy"}
    if method == "tf_kd_reg":
        return {"loss": "tf_kd_reg", "reduction": "batchmean", "delta": cfg.tf_reg_delta,
                "temperature": cfg.tf_reg_temperature, "alpha": cfg.tf_reg_alpha,
                "soften_student": cfg.tf_reg_soften_student, "log_space": False}
    temperature, alpha = _kd_settings(cfg, method)
    return {"loss": "hinton_kd", "reduction": "batchmean", "temperature": temperature,
            "alpha": alpha, "teacher_input": "the augmented batch",
            "teacher": run_spec(cfg, TEACHER[method], seed)}


def _kd_settings(cfg: ResNetRuns, method: str) -> tuple[float, float]:
    if method == "re_kd":
        return cfg.re_kd_temperature, cfg.re_kd_alpha
    return cfg.tf_self_temperature, cfg.tf_self_alpha


def run_spec(cfg: ResNetRuns, method: str, seed: int) -> dict[str, Any]:
    """Everything that determines a run's outcome; its hash names the record and checkpoint."""
    return {"method": method, "model": model_spec(cfg, ARCH[method]), "data": data_spec(cfg),
            "recipe": recipe(cfg).as_dict(), "seed": seed,
            "objective": objective_spec(cfg, method, seed),
            "gradients": {"every": cfg.grad_every}}


def checkpoint_path(cfg: ResNetRuns, method: str, seed: int) -> Path:
    """Where the run's trained weights go; runs with equal paths share one training."""
    return checkpoints.checkpoint_path(method, run_spec(runs_config(cfg), method, seed))


# --- objectives ----------------------------------------------------------------------------------

def objective(cfg: ResNetRuns, method: str,
              teacher: nn.Module | None = None) -> training.Objective:
    """The training objective of `method`; Re-KD and Tf-KD-self need their trained `teacher`.

    A teacher is run, frozen and in eval mode, on each (augmented) batch.
    """
    if method in ("baseline", "teacher_baseline"):
        return training.supervised()
    if method == "tf_kd_reg":
        delta, t, a, soft = (cfg.tf_reg_delta, cfg.tf_reg_temperature, cfg.tf_reg_alpha,
                             cfg.tf_reg_soften_student)
        return lambda model, x, y: losses.tf_kd_reg(model(x).float(), y, delta, t, a,
                                                    soften_student=soft)
    if teacher is None:
        raise ValueError(f"{method} needs its trained teacher")
    # Tf-KD-self's loss is Hinton's (losses.tf_kd_self), which training.distillation computes
    return training.distillation(teacher, *_kd_settings(cfg, method))


# --- gradient statistics that survive a resume -------------------------------------------------

class _GradientLog:
    """A :class:`~kdlib.gradients.GradientRecorder` whose sums are saved after every epoch.

    The state after epoch *e* is written to `path` at the last step of *e*,
    before the training checkpoint of *e*; the two latest are kept, so the
    state matching whichever checkpoint a resume starts from is always there.
    """

    def __init__(self, model: nn.Module, every: int, steps_per_epoch: int, path: Path,
                 resume: Path):
        self.recorder = gradients.GradientRecorder(model, every)
        self.steps_per_epoch, self.path = steps_per_epoch, path
        self.saved: dict[int, dict[str, Any]] = {}
        if resume.is_file() and path.is_file():
            done = torch.load(resume, map_location="cpu", weights_only=False)["epoch"]
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if done in saved:
                self.recorder.load_state_dict(saved[done])
                self.saved = {done: saved[done]}

    def __call__(self, step: int) -> None:
        self.recorder(step)
        if (step + 1) % self.steps_per_epoch == 0:
            epoch = (step + 1) // self.steps_per_epoch
            self.saved = {e: s for e, s in self.saved.items() if e == epoch - 1}
            self.saved[epoch] = self.recorder.state_dict()
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self.saved, tmp)
            tmp.replace(self.path)

    def summary(self) -> dict[str, Any] | None:
        """JSON form: each layer's stage, name and mean |gradient|, and each stage's mean."""
        if self.recorder.samples == 0:
            return None
        frame = self.recorder.frame()
        return {"every": self.recorder.every, "samples": self.recorder.samples,
                "layer": frame["layer"].tolist(), "stage": frame["stage"].tolist(),
                "mean_abs_grad": [float(v) for v in frame["mean_abs_grad"]],
                "stage_means": [{"stage": k, "mean_abs_grad": float(v)}  # in network order
                                for k, v in gradients.stage_means(frame).items()]}


def _gradient_path(resume: Path) -> Path:
    return resume.with_name(resume.name.removesuffix(".pt") + ".grads.pt")


# --- runs ----------------------------------------------------------------------------------------

def evaluate(model: nn.Module, setup: ResNetSetup) -> dict[str, Any]:
    """Test accuracy and error count of `model` on the setup's test images."""
    pred = training.predict(model, setup.x_test, batch_size=EVAL_BATCH).argmax(1)
    right = int((pred == setup.y_test).sum())
    n = len(setup.y_test)
    return {"test_acc": right / n, "test_errors": n - right, "test_size": n}


def trained(cfg: ResNetRuns, method: str, seed: int,
            progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a run and its info (metrics, loss history, gradients).

    Loaded from the checkpoint cache when this exact run was trained before (by
    either chapter); otherwise trained, resuming from the last completed epoch
    if an earlier attempt was interrupted. A teacher is obtained the same way.
    """
    cfg = runs_config(cfg)
    _check(cfg, method)
    setup = load(cfg)
    spec = run_spec(cfg, method, seed)

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        teacher = trained(cfg, TEACHER[method], seed, progress)[0] if method in TEACHER else None
        log = _GradientLog(model, cfg.grad_every, len(setup.y_train) // cfg.batch_size,
                           _gradient_path(resume), resume)
        history = training.train(model, objective(cfg, method, teacher), setup.x_train,
                                 setup.y_train, recipe(cfg), seed=seed, checkpoint=resume,
                                 desc=f"{method} seed {seed}", progress=progress,
                                 on_backward=log)
        return {**evaluate(model, setup), "final_train_loss": history[-1]["loss"],
                "history": history, "gradients": log.summary(), "data_source": setup.source}

    model, info = checkpoints.trained_model(
        method, spec, lambda: training.seeded(seed, lambda: build(cfg, ARCH[method])), fit,
        setup.device)
    _gradient_path(checkpoints.checkpoint_path(method, spec).with_suffix(".resume.pt")).unlink(
        missing_ok=True)
    return model, info


def run(cfg: ResNetRuns, method: str, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """The record of one run: read from disk if it exists, else trained (or loaded) and saved.

    `cfg` is chapter 3's or chapter 4's parameters (chapter 5's count as
    chapter 4's); the record goes to that chapter's folder. Self-contained: it
    loads its data and, for Re-KD and Tf-KD-self, its teacher.
    """
    cfg = runs_config(cfg)
    _check(cfg, method)
    device = training.resolve_device(cfg.device)
    return results.cached_run(cfg.profile, chapter_of(cfg), method, run_spec(cfg, method, seed),
                              lambda: trained(cfg, method, seed, progress)[1],
                              device=str(device))


def runs_of(cfg: ResNetRuns) -> list[tuple[str, int]]:
    """Every ``(method, seed)`` of the chapter, each after the runs it depends on."""
    return [(m, s) for m in METHODS[chapter_of(cfg)] for s in runs_config(cfg).seeds]


def depends_on(method: str, seed: int) -> list[tuple[str, int]]:
    """The runs whose trained network `method` learns from (run them first)."""
    return [(TEACHER[method], seed)] if method in TEACHER else []


def plan(cfg: ResNetRuns) -> list[tuple[str, dict[str, Any], Callable[[], dict[str, Any]]]]:
    """Every run of the chapter as ``(record name, spec, call)``, baselines first
    (the job plan of :mod:`kdlib.jobs`).

    The calls are picklable (:func:`functools.partial` of :func:`run`). A run
    whose teacher is not trained yet trains it through the checkpoint cache, or
    waits for the process that holds the checkpoint's lock. Chapter 5 has no
    runs of its own: its parameters give chapter 4's plan, whose records go to
    ``04_teacher_free``.
    """
    cfg = runs_config(cfg)
    return [(m, run_spec(cfg, m, s), functools.partial(run, cfg, m, s, progress=False))
            for m, s in runs_of(cfg)]


def run_all(cfg: ResNetRuns, progress: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every run of the chapter, in :func:`runs_of` order, as ``{method: [record per seed]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for method, seed in runs_of(cfg):
        out.setdefault(method, []).append(run(cfg, method, seed, progress=progress))
    return out


def saved_records(cfg: ResNetRuns) -> dict[str, list[dict[str, Any]]] | None:
    """The chapter's records already on disk, or None if any is missing (nothing is run)."""
    cfg = runs_config(cfg)
    out: dict[str, list[dict[str, Any]]] = {}
    for method, seed in runs_of(cfg):
        path = results.record_path(cfg.profile, chapter_of(cfg), method,
                                   run_spec(cfg, method, seed))
        if not path.is_file():
            return None
        out.setdefault(method, []).append(results.load_record(path))
    return out


# --- tables --------------------------------------------------------------------------------------

def _paper_cell(ref: tuple[float, float]) -> str:
    return f"{100 * ref[0]:.2f} ± {100 * ref[1]:.2f}"


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def _table(runs: dict[str, list[dict[str, Any]]],
           rows: Sequence[tuple[str, tuple[float, float], str | None]], runs_in_paper: int,
           ref: dict[str, tuple[float, float]]) -> pd.DataFrame:
    out = []
    for method, paper_ref, base in rows:
        values = report.metric(runs[method])
        row = report.comparison_row(LABELS[method], _paper_cell(paper_ref), values)
        if base is None:
            row["paper: Welch p vs baseline"] = row["Welch p vs baseline"] = "—"
        else:
            row["paper: Welch p vs baseline"] = _p(stats.welch_p_from_summary(
                *paper_ref, runs_in_paper, *ref[base], runs_in_paper))
            row["Welch p vs baseline"] = _p(stats.welch_p(values, report.metric(runs[base])))
        out.append(row)
    return report.comparison_table(out)


def table3(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Table 3: test accuracy (%) of both baselines and the Re-KD ResNet50, paper beside ours.

    The p-values are Welch's test of Re-KD against the ResNet50 baseline, from
    our runs and from the paper's ``mean ± std`` over its 3 runs.
    """
    t = paper.TABLE3
    ref = {"teacher_baseline": t["teacher_baseline"]}
    return _table(runs, [("teacher_baseline", t["teacher_baseline"], None),
                         ("baseline", t["student_baseline"], None),
                         ("re_kd", t["re_kd"], "teacher_baseline")], paper.TABLE3_RUNS, ref)


def table4(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Table 4: test accuracy (%) of the ResNet18 baseline, Tf-KD-reg and Tf-KD-self."""
    t = paper.TABLE4
    return _table(runs, [("baseline", t["baseline"], None),
                         ("tf_kd_reg", t["tf_kd_reg"], "baseline"),
                         ("tf_kd_self", t["tf_kd_self"], "baseline")], paper.TABLE4_RUNS, t)


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


def scale_note(cfg: ResNetRuns) -> str:
    """A Markdown paragraph saying plainly what data and networks the page's runs used."""
    if cfg.dataset == "cifar10":
        size = ("the standard networks" if cfg.width == 64
                else f"**reduced to width {cfg.width}** (the standard networks have 64)")
        return (f"**Setting.** This page was built with the `{cfg.profile}` profile: CIFAR-10 "
                f"({cfg.train_size} training and {cfg.test_size} test images), CIFAR-form "
                f"ResNets of width {cfg.width} ({size}), {cfg.epochs} epochs, "
                f"{len(cfg.seeds)} seed(s).")
    return (f"**A scaled replication on MNIST, not CIFAR-10.** This page was built with the "
            f"`{cfg.profile}` profile, whose runs use a {cfg.train_size}-image subset of MNIST "
            f"(tested on {cfg.test_size} MNIST test images) and ResNet18/ResNet50 **reduced to "
            f"width {cfg.width}** (the standard networks have width 64), trained for "
            f"{cfg.epochs} epoch(s) over {len(cfg.seeds)} seed(s), so that it runs offline on a "
            f"CPU. The paper's numbers are CIFAR-10 accuracies of full-width networks trained "
            f"for about 200 epochs (this book's `paper` profile, which needs a GPU). Compare "
            f"the direction of each effect and its size against the seed-to-seed spread, not "
            f"the accuracies themselves.")


def data_summary(cfg: ResNetRuns, setup: ResNetSetup) -> pd.DataFrame:
    """Sizes, image shape and source of the page's data."""
    return pd.DataFrame([{"data set": cfg.dataset, "training images": len(setup.y_train),
                          "test images": len(setup.y_test),
                          "image": "×".join(map(str, setup.x_train.shape[1:])),
                          "augmentation": cfg.augment, "device": str(setup.device),
                          "source": setup.source}]).set_index("data set")


def model_table(cfg: ResNetRuns, archs: Iterable[str] = ("resnet18", "resnet50")) -> pd.DataFrame:
    """Parameters and per-image MACs of each network at `cfg`'s width and input size."""
    channels, side, _ = DATASETS[cfg.dataset]
    rows = []
    for arch in archs:
        net = build(cfg, arch)
        cost = models.count_cost(net, (channels, side, side))
        rows.append({"network": arch, "width": cfg.width,
                     "parameters": sum(p.numel() for p in net.parameters()),
                     f"MACs per {side}×{side} image": cost.macs})
    return pd.DataFrame(rows).set_index("network")


def cost_table(cfg: ResNetRuns, tflops: float = ASSUMED_TFLOPS) -> pd.DataFrame:
    """Compute of the chapter's runs under `cfg` (meant for the paper profile).

    Training costs about three forward passes per image (forward, and a
    backward pass of about twice the forward), at 2 FLOPs per MAC; a teacher
    adds one forward pass per image. Hours assume `tflops` sustained.
    """
    cfg = runs_config(cfg)
    channels, side, _ = DATASETS[cfg.dataset]
    macs = {a: models.count_cost(build(cfg, a), (channels, side, side)).macs
            for a in ("resnet18", "resnet50")}
    rows = []
    for method in METHODS[chapter_of(cfg)]:
        per_image = 6 * macs[ARCH[method]]
        if method in TEACHER:
            per_image += 2 * macs[ARCH[TEACHER[method]]]
        epoch = per_image * cfg.train_size
        run_flops = epoch * cfg.epochs + 2 * macs[ARCH[method]] * cfg.test_size
        hours = run_flops / (tflops * 1e12) / 3600
        rows.append({"run": LABELS[method], "training FLOPs per epoch": f"{epoch:.3g}",
                     "FLOPs per run": f"{run_flops:.3g}", "runs": len(cfg.seeds),
                     f"GPU hours at {tflops:g} TFLOP/s": round(hours * len(cfg.seeds), 1)})
    total = sum(r[f"GPU hours at {tflops:g} TFLOP/s"] for r in rows)
    rows.append({"run": "total", "training FLOPs per epoch": "", "FLOPs per run": "",
                 "runs": sum(r["runs"] for r in rows),
                 f"GPU hours at {tflops:g} TFLOP/s": round(total, 1)})
    return pd.DataFrame(rows).set_index("run")


def provenance(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """One row per record: run, seed, record file, accuracy, wall time, commit, device."""
    return pd.DataFrame([{"run": r["name"], "seed": r["spec"]["seed"],
                          "record": f"{r['name']}-{r['spec_hash']}.json",
                          "test acc (%)": round(100 * r["metrics"]["test_acc"], 2),
                          "wall time (s)": r["wall_time_s"],
                          "commit": (r["environment"]["git_commit"] or "")[:10],
                          "device": r["device"]} for rs in runs.values() for r in rs])


# --- Figure 1: the virtual teacher -------------------------------------------------------------

def virtual_teacher_formula(delta: float, num_classes: int,
                            temperature: float) -> tuple[float, float]:
    """Correct- and incorrect-class probability of the virtual teacher, in closed form.

    ``softmax(p/T)`` of ``p = (δ, (1-δ)/(K-1), ...)``: the correct class gets
    ``e^{δ/T} / (e^{δ/T} + (K-1)·e^{(1-δ)/((K-1)T)})``.
    """
    a = math.exp(delta / temperature)
    b = math.exp((1 - delta) / (num_classes - 1) / temperature)
    z = a + (num_classes - 1) * b
    return a / z, b / z


def virtual_teacher_curve(delta: float = 0.9, num_classes: int = 10,
                          temperatures: Iterable[float] = range(1, 21)) -> pd.DataFrame:
    """Figure 1's curves from the formula and from :func:`kdlib.losses.virtual_teacher`."""
    rows = []
    label = torch.tensor([0])
    for t in temperatures:
        correct, wrong = virtual_teacher_formula(delta, num_classes, float(t))
        q = losses.virtual_teacher(label, num_classes, delta, float(t))[0].double()
        rows.append({"T": float(t), "correct (formula)": correct, "incorrect (formula)": wrong,
                     "correct (kdlib)": float(q[0]), "incorrect (kdlib)": float(q[1])})
    return pd.DataFrame(rows).set_index("T")


def figure1(curve: pd.DataFrame, delta: float = 0.9):
    """The virtual teacher's correct- and incorrect-class probability against temperature."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for part, color in (("correct", "C0"), ("incorrect", "C3")):
        ax.plot(curve.index, curve[f"{part} (formula)"], color=color, lw=2,
                label=f"{part} class (formula)")
        ax.plot(curve.index, curve[f"{part} (kdlib)"], "o", color=color, ms=4, mfc="none",
                label=f"{part} class (kdlib.losses.virtual_teacher)")
    ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="uniform (1/K)")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("probability")
    ax.set_title(f"Virtual teacher, δ = {delta:g}, K = {NUM_CLASSES}")
    ax.set_xticks(range(0, 21, 2))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- Figure 2: gradients -----------------------------------------------------------------------

GRADIENT_METHODS = ("baseline", "tf_kd_reg", "tf_kd_self")


def gradient_frame(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Long form of the recorded gradients: method, seed, position, stage, layer, value."""
    rows = []
    for method in GRADIENT_METHODS:
        for r in runs[method]:
            g = r["metrics"]["gradients"]
            if g is None:
                raise ValueError(f"record {r['name']}-{r['spec_hash']} has no gradient samples")
            for i, (stage, layer, v) in enumerate(zip(g["stage"], g["layer"],
                                                      g["mean_abs_grad"], strict=True)):
                rows.append({"method": method, "seed": r["spec"]["seed"], "position": i,
                             "stage": stage, "layer": layer, "mean_abs_grad": v})
    return pd.DataFrame(rows)


def network_means(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Per method, each seed's mean over layers of the mean |gradient|."""
    per_seed = frame.groupby(["method", "seed"])["mean_abs_grad"].mean()
    return {m: per_seed[m].tolist() for m in GRADIENT_METHODS}


def gradient_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean |gradient| per stage (mean over seeds and the stage's layers), with the ratio
    of each teacher-free run to the baseline and Welch's test on the per-seed network means."""
    order = list(dict.fromkeys(frame.sort_values("position")["stage"]))
    by_stage = (frame.groupby(["method", "stage"])["mean_abs_grad"].mean()
                .unstack("stage")[order].reindex(list(GRADIENT_METHODS)))
    means = network_means(frame)
    out = by_stage.map(lambda v: f"{v:.3e}")
    out["all layers"] = [stats.summarize(means[m]).mean for m in GRADIENT_METHODS]
    base = out.loc["baseline", "all layers"]
    out["ratio to baseline"] = [f"{v / base:.2f}" for v in out["all layers"]]
    out["Welch p vs baseline"] = ["—"] + [_p(stats.welch_p(means[m], means["baseline"]))
                                          for m in GRADIENT_METHODS[1:]]
    out["all layers"] = [f"{v:.3e}" for v in out["all layers"]]
    out.index = [LABELS[m] for m in GRADIENT_METHODS]
    return out


def gradient_sentences(frame: pd.DataFrame) -> list[str]:
    """One plain-words line per teacher-free method: larger gradients than the baseline?"""
    means = network_means(frame)
    base = stats.summarize(means["baseline"])
    lines = []
    for m in GRADIENT_METHODS[1:]:
        s = stats.summarize(means[m])
        ratio = s.mean / base.mean
        p = stats.welch_p(means[m], means["baseline"])
        seeds_larger = sum(a > b for a, b in zip(means[m], means["baseline"], strict=True))
        if s.n < 2:
            verdict = "from a single seed, so nothing can be said about the spread"
        elif ratio > 1 and p < 0.05:
            verdict = "larger than the baseline's, beyond the seed-to-seed spread"
        elif ratio > 1:
            verdict = "larger on average, but not clearly beyond the seed-to-seed spread"
        else:
            verdict = "not larger than the baseline's"
        lines.append(f"{LABELS[m]}: mean |gradient| over all layers is {ratio:.2f}× the "
                     f"baseline's (larger on {seeds_larger} of {s.n} paired seeds, Welch p = "
                     f"{_p(p)}): {verdict}.")
    return lines


def gradient_heatmap(frame: pd.DataFrame):
    """Figure 2: mean |gradient| of every layer (columns, grouped by stage) for each method
    (rows), averaged over seeds; below, each method's ratio to the baseline."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    table = (frame.groupby(["method", "position"])["mean_abs_grad"].mean()
             .unstack("position").reindex(list(GRADIENT_METHODS)))
    layers = frame.drop_duplicates("position").sort_values("position")
    values = table.to_numpy()
    ratio = np.log2(values / values[0])
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.8), sharex=True)
    im = axes[0].imshow(values, aspect="auto", cmap="viridis",
                        norm=LogNorm(values.min(), values.max()))
    fig.colorbar(im, ax=axes[0], label="mean |gradient|", pad=0.01)
    lim = max(float(np.abs(ratio).max()), 1e-3)
    im2 = axes[1].imshow(ratio, aspect="auto", cmap="RdBu_r",
                         norm=TwoSlopeNorm(0.0, -lim, lim))
    fig.colorbar(im2, ax=axes[1], label="log₂ ratio to baseline", pad=0.01)
    stages = layers["stage"].tolist()
    bounds = [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    centers = {}
    for i, s in enumerate(stages):
        centers.setdefault(s, []).append(i)
    for ax in axes:
        ax.set_yticks(range(len(GRADIENT_METHODS)))
        ax.set_yticklabels([LABELS[m].removeprefix("ResNet18: ") for m in GRADIENT_METHODS])
        for b in bounds:
            ax.axvline(b - 0.5, color="white", lw=1.5)
    axes[1].set_xticks([float(np.mean(v)) for v in centers.values()])
    axes[1].set_xticklabels(list(centers))
    axes[1].set_xlabel("layer (convolutions and the linear head, in network order), by stage")
    fig.tight_layout()
    return fig
