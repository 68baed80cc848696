"""Table 5: PGD adversarial training, alone and with distillation, under AutoAttack.

**Methods** (record names; the first four are the paper's rows):

- ``at``: PGD adversarial training (Madry et al., 2018): cross-entropy on PGD
  examples crafted against the network being trained. The paper's "AT student".
- ``akd``: Adversarial Knowledge Distillation (Maroto, Ortiz-Jiménez and
  Frossard, 2022: "adversarially training a student on a mixture of the
  original labels and the teacher outputs"). The student of the same
  architecture trains on its own PGD examples ``x'`` with
  ``(1-α)·CE(s(x'), y) + α·T²·KL(softmax(t(x')/T) ‖ softmax(s(x')/T))``, the
  teacher being the trained ``at`` network of the same seed, frozen, in eval
  mode, fed the same ``x'``. At ``T = 1`` this is cross-entropy against the
  mixed target ``(1-α)·onehot(y) + α·softmax(t(x'))`` (up to a constant). The
  paper's "student with AT teacher". ARD (Goldblum et al., 2019) is the
  relative that feeds the teacher the clean image instead.
- ``at_tf_kd_reg``: adversarial training with the Tf-KD-reg loss
  (:func:`kdlib.losses.tf_kd_reg`) on the PGD examples.
- ``at_tf_kd_self``: adversarial training with Tf-KD-self's loss (Hinton's, at
  Table 4's ``tf_self_*`` settings) and the ``at`` network as teacher, fed the
  same PGD examples. It differs from ``akd`` only in ``T`` and ``α``.
- ``standard`` (beyond the paper): the undefended network, cross-entropy on
  clean images, the reference that adversarial training must beat.
- ``kd_from_at`` (beyond the paper): a student trained on *clean* images only,
  distilled from the ``at`` teacher with AKD's ``T`` and ``α``: how much
  robustness distillation alone carries over.

PGD examples for training are crafted against the labels' cross-entropy with
the network in train mode (as Rice et al. do), ``pgd_steps`` steps of
``pgd_step`` from a uniform random start, inside the L∞ ball of ``eps`` and
the [0, 1] box (:func:`kdlib.attacks.pgd`).

**Early stopping** (``early_stop``). The last ``val_size`` training images
are never trained on, by any method. After every epoch of an adversarially
trained method, its PGD accuracy on them (the training attack) is measured,
and the weights of the best epoch are kept, which guards against robust
overfitting (Rice et al., 2020). The two clean-trained references, and every
method without ``early_stop``, are evaluated at their final weights.

**Evaluation** on the test subset: clean accuracy; PGD accuracy with
``eval_pgd_steps`` steps of ``eval_pgd_step`` (PGD-20); standard AutoAttack on
the first ``aa_size`` test images; Square alone (black-box, 5,000 queries) on
the first ``square_size``. The gradient-masking diagnostics compare these:
PGD well above AutoAttack, or Square below the gradient attacks, means the
gradients mislead the attacks, and the PGD number should not be trusted.
AutoAttack's own warnings are kept as its flags. AutoAttack attacks the images
in chunks of ``eval_batch`` and saves each finished chunk
(:func:`kdlib.paths.evaluation_dir`), so an interrupted evaluation resumes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from kdlib import (
    attacks,
    checkpoints,
    models,
    objectives,
    paper,
    paths,
    results,
    robustness,
    runs,
    stats,
    training,
    verdicts,
)
from kdlib.chapters import images
from kdlib.config import ProfileError, between, ge

NAME = "06_adversarial_tfkd"

#: AutoAttack's attacks, by pyautoattack's names.
AA_ATTACKS = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square",
              "apgd-dlr": "APGD-DLR", "fab": "FAB"}


@dataclass(frozen=True)
class Params(images.TfKdLosses, images.ImageRuns):
    """Table 5: PGD adversarial training, alone and with distillation, under AutoAttack.

    It takes Table 4's data, recipe and Tf-KD losses, and adds the network, the
    threat model (L∞ ``eps``, PGD ``pgd_steps`` steps of ``pgd_step`` for training,
    ``eval_pgd_steps`` of ``eval_pgd_step`` for the PGD evaluation), the AKD loss,
    optional early stopping on held-out robust accuracy, how many test images
    AutoAttack and Square-only see, and the batch of every evaluation (``eval_batch``,
    also the chunk of AutoAttack that is saved as soon as it is done).
    """

    arch: Literal["resnet18", "cnn", "mlp"] = "mlp"
    eps: float = field(default=0.1, metadata={"gt": 0, "le": 1})
    pgd_step: float = field(default=0.025, metadata={"gt": 0, "le": 1})
    pgd_steps: int = field(default=7, metadata=ge(1))
    #: Epochs over which the training ε (and step) grow linearly to their values; 0: none.
    eps_ramp_epochs: int = field(default=0, metadata=ge(0))
    eval_pgd_step: float = field(default=0.025, metadata={"gt": 0, "le": 1})
    eval_pgd_steps: int = field(default=20, metadata=ge(1))
    akd_temperature: float = field(default=1.0, metadata={"gt": 0})
    akd_alpha: float = field(default=0.9, metadata=between(0, 1))
    early_stop: bool = False
    val_size: int = field(default=0, metadata=ge(0))
    aa_size: int = field(default=20, metadata=ge(1))
    #: AutoAttack's attacks to run, in pyautoattack's names; empty: the standard version's
    #: four (APGD-CE, APGD-T, FAB-T, Square).
    aa_attacks: list[str] = field(default_factory=list)
    square_size: int = field(default=20, metadata=ge(1))
    eval_batch: int = field(default=500, metadata=ge(1))
    #: The robustness audit (:func:`kdlib.robustness.audit`) of every adversarially trained
    #: row: on the first `audit_size` test images, its stronger PGD with `audit_steps`
    #: steps and `audit_restarts` restarts.
    audit_size: int = field(default=20, metadata=ge(1))
    audit_steps: int = field(default=100, metadata=ge(1))
    audit_restarts: int = field(default=5, metadata=ge(1))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch in ("mlp", "cnn") and self.dataset != "mnist":
            raise ProfileError(f"arch {self.arch!r} is for MNIST; use 'resnet18' for CIFAR-10")
        if self.early_stop and self.val_size == 0:
            raise ProfileError("early_stop needs held-out images: set val_size > 0")
        if self.val_size and self.train_size - self.val_size < self.batch_size:
            raise ProfileError(f"val_size {self.val_size} leaves fewer than batch_size "
                               f"{self.batch_size} of the {self.train_size} training images")
        unknown = sorted(set(self.aa_attacks) - set(AA_ATTACKS))
        if unknown:
            raise ProfileError(f"aa_attacks: unknown {unknown}; AutoAttack's attacks are "
                               f"{list(AA_ATTACKS)}")
        for name in ("aa_size", "square_size", "audit_size"):
            if getattr(self, name) > self.test_size:
                raise ProfileError(f"{name} {getattr(self, name)} is larger than test_size "
                                   f"{self.test_size}")


# --- methods -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    """One row of Table 5: its loss spec, whether it trains on PGD examples, and the method
    whose trained network of the same seed teaches it (fed the same inputs)."""

    name: str
    label: str
    loss: Callable[[Params], dict[str, Any]]
    adversarial: bool
    teacher: Method | None = None
    #: Its row in the paper's Table 5 (:data:`kdlib.paper.TABLE5`), if it has one.
    paper_row: str | None = None


def akd_loss(cfg: Params) -> dict[str, Any]:
    return images.hinton_loss(cfg.akd_temperature, cfg.akd_alpha)


def tf_kd_self_loss(cfg: Params) -> dict[str, Any]:
    return images.hinton_loss(cfg.tf_self_temperature, cfg.tf_self_alpha)


STANDARD = Method("standard", "standard training (undefended)", images.cross_entropy_loss,
                  adversarial=False)
AT = Method("at", "AT student (PGD adversarial training)", images.cross_entropy_loss,
            adversarial=True, paper_row="at_student")
AKD = Method("akd", "student with AT teacher (AKD)", akd_loss, adversarial=True, teacher=AT,
             paper_row="student_at_teacher")
AT_TF_KD_REG_OFFICIAL = Method("at_tf_kd_reg_official", "AT + Tf-KD-reg (official form)",
                               images.tf_kd_reg_official_loss, adversarial=True,
                               paper_row="at_tf_kd_reg")
AT_TF_KD_REG = Method("at_tf_kd_reg", "AT + Tf-KD-reg (this build's form)",
                      images.tf_kd_reg_loss, adversarial=True)
AT_TF_KD_SELF = Method("at_tf_kd_self", "AT + Tf-KD-self", tf_kd_self_loss, adversarial=True,
                       teacher=AT, paper_row="at_tf_kd_self")
AT_LABEL_SMOOTHING = Method("at_label_smoothing", "AT + label smoothing (control)",
                            images.label_smoothing_loss, adversarial=True)
KD_FROM_AT = Method("kd_from_at", "clean-trained student of the AT teacher", akd_loss,
                    adversarial=False, teacher=AT)
#: The rows, each after the method it learns from.
METHODS = (STANDARD, AT, AKD, AT_TF_KD_REG_OFFICIAL, AT_TF_KD_REG, AT_TF_KD_SELF,
           AT_LABEL_SMOOTHING, KD_FROM_AT)
LABELS = {m.name: m.label for m in METHODS}


# --- data and networks ---------------------------------------------------------------------------

def load(cfg: Params) -> images.ImageSetup:
    """The chapter's data: the same subsets as Tables 3 and 4 for equal settings."""
    return images.load(cfg)


def split(cfg: Params, setup: images.ImageSetup
          ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(train, held_out)``: the last ``val_size`` training images are held out."""
    n = len(setup.y_train) - cfg.val_size
    x, y = setup.x_train, setup.y_train
    return (x[:n], y[:n]), (x[n:], y[n:])


def model_spec(cfg: Params) -> dict[str, Any]:
    if cfg.arch == "mlp":
        return {"arch": "mlp", "sizes": [784, cfg.width, cfg.width, 10]}
    if cfg.arch == "cnn":
        return {"arch": "cnn", "width": cfg.width, "normalize": cfg.dataset}
    return images.model_spec(cfg, "resnet18")


def build(cfg: Params) -> nn.Module:
    """An untrained network: ResNet18 at ``width``; (``cnn``) Madry et al.'s MNIST network
    at ``width`` (:class:`kdlib.models.SmallCNN`); or (``mlp``) 784-width-width-10."""
    if cfg.arch == "mlp":
        return models.MLP([784, cfg.width, cfg.width, 10])
    if cfg.arch == "cnn":
        return models.SmallCNN(cfg.width, normalize=(models.MNIST_MEAN, models.MNIST_STD))
    return images.build(cfg, "resnet18")


# --- specs ---------------------------------------------------------------------------------------

def threat_spec(cfg: Params) -> dict[str, Any]:
    spec = {"norm": "Linf", "eps": cfg.eps, "pgd_step": cfg.pgd_step,
            "pgd_steps": cfg.pgd_steps, "random_start": True, "attack_loss": "cross_entropy",
            "mode": "train"}
    return {**spec, "ramp_epochs": cfg.eps_ramp_epochs} if cfg.eps_ramp_epochs else spec


def objective_spec(cfg: Params, method: Method, seed: int) -> dict[str, Any]:
    """The loss of `method`, its inputs and its teacher's full spec."""
    spec = method.loss(cfg)
    if method.teacher is not None:
        spec = {**spec, "teacher": run_spec(cfg, method.teacher, seed)}
    inputs = ({"inputs": "PGD examples", "threat": threat_spec(cfg)} if method.adversarial
              else {"inputs": "clean images"})
    return {**spec, **inputs}


def stops_early(cfg: Params, method: Method) -> bool:
    """Early stopping applies to the adversarially trained methods only; the others train
    for the full schedule (on the same images, the held-out ones excluded)."""
    return cfg.early_stop and method.adversarial


def run_spec(cfg: Params, method: Method, seed: int) -> dict[str, Any]:
    """Everything that decides the trained network; its hash names the checkpoint."""
    return {"method": method.name, "model": model_spec(cfg), "data": images.data_spec(cfg),
            "recipe": images.recipe(cfg).as_dict(), "seed": seed,
            "objective": objective_spec(cfg, method, seed),
            "early_stop": ({"held_out": cfg.val_size, "metric": "PGD accuracy (training attack)"}
                           if stops_early(cfg, method) else None),
            "held_out": cfg.val_size}


def eval_spec(cfg: Params) -> dict[str, Any]:
    return {"precision": ("bf16 autocast on a CPU" if cfg.engine == "bf16" else "float32"),
            "pgd": {"eps": cfg.eps, "step": cfg.eval_pgd_step, "steps": cfg.eval_pgd_steps,
                    "random_start": True, "seed": 0},
            "autoattack": {"version": "custom" if cfg.aa_attacks else "standard",
                           "attacks": list(cfg.aa_attacks), "norm": "Linf", "eps": cfg.eps,
                           "images": cfg.aa_size, "seed": 0, "chunk": cfg.eval_batch},
            "square_only": {"images": cfg.square_size, "queries": 5000},
            "audit": {"images": cfg.audit_size, "steps": cfg.audit_steps,
                      "restarts": cfg.audit_restarts, "sweep": list(sweep(cfg)),
                      "transfer_from": "standard", "of": "adversarially trained rows"}}


def sweep(cfg: Params) -> tuple[float, ...]:
    """The ε values of the audit's accuracy curve, beside ε itself (up to 0.5)."""
    return tuple(e for e in (cfg.eps / 2, 2 * cfg.eps, 4 * cfg.eps, 0.5) if e <= 0.5)


def record_spec(cfg: Params, method: Method, seed: int) -> dict[str, Any]:
    """A record's spec: the trained network's and the evaluation's."""
    return {**run_spec(cfg, method, seed), "evaluation": eval_spec(cfg)}


def checkpoint(cfg: Params, method: Method, seed: int) -> Path:
    return checkpoints.checkpoint_path(method.name, run_spec(cfg, method, seed))


# --- training ------------------------------------------------------------------------------------

class EarlyStopping:
    """After each epoch: PGD accuracy on held-out images; keeps the best epoch's weights.

    The best weights are saved beside the resume file, so a resumed run keeps
    them; the epoch's accuracy goes into the training history.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 cfg: Params, path: Path):
        self.model, self.x, self.y, self.cfg, self.path = model, x, y, cfg, path

    def __call__(self, epoch: int) -> dict[str, float]:
        acc = attacks.robust_accuracy_pgd(self.model, self.x, self.y, self.cfg.eps,
                                          self.cfg.pgd_step, self.cfg.pgd_steps,
                                          self.cfg.eval_batch)
        best = self.best()
        if best is None or acc > best[1]:
            blob = {"epoch": epoch, "acc": acc, "state_dict": self.model.state_dict()}
            paths.save_atomic(self.path, lambda tmp: torch.save(blob, tmp))
        return {"held_out_pgd_acc": acc}

    def best(self) -> tuple[int, float] | None:
        if not self.path.is_file():
            return None
        blob = torch.load(self.path, map_location="cpu", weights_only=True)
        return int(blob["epoch"]), float(blob["acc"])

    def restore(self) -> int:
        """Load the best epoch's weights into the model; returns that epoch."""
        blob = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(blob["state_dict"])
        return int(blob["epoch"])


def trained(cfg: Params, method: Method, seed: int,
            progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a run, from the checkpoint cache or trained now (resumable)."""
    setup = load(cfg)
    (x, y), (xv, yv) = split(cfg, setup)
    spec = run_spec(cfg, method, seed)
    best_path = paths.companion(checkpoint(cfg, method, seed), "best")

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        teacher = (trained(cfg, method.teacher, seed, progress)[0]
                   if method.teacher is not None else None)
        stopper = (EarlyStopping(model, xv, yv, cfg, best_path) if stops_early(cfg, method)
                   else None)
        history = training.train(model, objectives.from_spec(spec["objective"], teacher), x, y,
                                 images.recipe(cfg), seed=seed, checkpoint=resume,
                                 desc=f"{method.name} seed {seed}", progress=progress,
                                 on_epoch=stopper)
        info: dict[str, Any] = {"history": history, "final_train_loss": history[-1]["loss"],
                                "epochs_trained": len(history), "data_source": setup.source}
        if stopper is not None:
            info["best_epoch"] = stopper.restore()
            best_path.unlink(missing_ok=True)
        return info

    return checkpoints.trained_model(
        method.name, spec, lambda: training.seeded(seed, lambda: build(cfg)), fit, setup.device)


# --- evaluation ----------------------------------------------------------------------------------

def bits(flags: torch.Tensor) -> str:
    """Per-image flags as a string of 0s and 1s, for the record (paired tests need them)."""
    return "".join("1" if f else "0" for f in flags.tolist())


def evaluate(cfg: Params, model: nn.Module, setup: images.ImageSetup, *,
             folder: Path | None = None, verbose: bool = True) -> dict[str, Any]:
    """Clean, PGD, AutoAttack and Square-only accuracy, with the per-image flags that the
    paired tests compare (on the AutoAttack subset). AutoAttack's finished chunks are kept
    in `folder` until the evaluation ends."""
    x, y, batch = setup.x_test, setup.y_test, cfg.eval_batch
    clean = training.predict(model, x, batch).argmax(1) == y
    pgd = attacks.robust_flags_pgd(model, x, y, cfg.eps, cfg.eval_pgd_step, cfg.eval_pgd_steps,
                                   batch)
    aa = attacks.autoattack_eval(model, x[:cfg.aa_size], y[:cfg.aa_size], cfg.eps,
                                 attacks=cfg.aa_attacks or None, batch_size=batch, chunk=batch,
                                 folder=folder and folder / "autoattack", verbose=verbose)
    sq = attacks.autoattack_eval(model, x[:cfg.square_size], y[:cfg.square_size], cfg.eps,
                                 square_only=True, batch_size=batch, chunk=batch,
                                 folder=folder and folder / "square", verbose=verbose)
    for what, result, n in (("AutoAttack", aa, cfg.aa_size), ("Square", sq, cfg.square_size)):
        if not len(result.clean) == len(result.robust) == len(result.x_adv) == n:
            raise RuntimeError(f"{what} returned {len(result.robust)} flags and "
                               f"{len(result.x_adv)} examples for {n} images")
    pgd_on_aa = pgd[:cfg.aa_size].cpu()
    pgd_on_square = float(pgd[:cfg.square_size].float().mean())
    kept, broke, p = robustness.mcnemar(pgd_on_aa, aa.robust)
    k = int(aa.robust.sum())
    return {"clean_acc": float(clean.float().mean()), "pgd_acc": float(pgd.float().mean()),
            "aa_acc": aa.robust_accuracy, "aa_clean_acc": aa.clean_accuracy,
            "aa_ci": list(robustness.binomial_ci(k, len(aa.robust))),
            "pgd_acc_on_aa_images": float(pgd_on_aa.float().mean()),
            "pgd_aa_gap": float(pgd_on_aa.float().mean()) - aa.robust_accuracy,
            "pgd_robust_aa_broken": kept, "aa_robust_pgd_broken": broke,
            "pgd_aa_mcnemar_p": p, "pgd_bits": bits(pgd_on_aa), "aa_bits": bits(aa.robust),
            "square_acc": sq.robust_accuracy, "pgd_acc_on_square_images": pgd_on_square,
            "pgd_square_gap": pgd_on_square - sq.robust_accuracy,
            "square_bits": bits(sq.robust),
            "aa_after_attack": aa.after_attack,
            "aa_flags": list(aa.flags) + list(sq.flags), "test_size": len(y),
            "aa_size": len(aa.robust), "square_size": len(sq.robust)}


def audit(cfg: Params, model: nn.Module, reference: nn.Module, setup: images.ImageSetup,
          evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """The robustness audit of an adversarially trained network, on the first
    ``audit_size`` test images, reusing the evaluation's PGD-20 and Square flags there."""
    n = cfg.audit_size
    x, y = setup.x_test[:n], setup.y_test[:n]
    pgd20 = attacks.robust_flags_pgd(model, x, y, cfg.eps, cfg.eval_pgd_step,
                                     cfg.eval_pgd_steps, cfg.eval_batch).cpu()
    square = torch.tensor([c == "1" for c in evaluation["square_bits"][:n]])
    checks = robustness.audit(model, x, y, cfg.eps, pgd20=pgd20, square=square,
                              reference=reference, sweep=sweep(cfg),
                              batch_size=cfg.eval_batch, strong_steps=cfg.audit_steps,
                              restarts=cfg.audit_restarts)
    return [dataclasses.asdict(c) for c in checks]


def evaluated(cfg: Params, model: nn.Module, device: torch.device) -> nn.Module:
    """The network as the evaluation and the attacks run it: under bf16 autocast when the
    profile's engine trains in bf16 on a CPU (AutoAttack's thousands of forward passes are
    most of the chapter's time there), else as it is."""
    bf16 = training.engine_for(device.type, images.recipe(cfg)).autocast
    return models.Autocast(model) if bf16 and device.type == "cpu" else model


def metrics(cfg: Params, method: Method, seed: int, *, progress: bool = True) -> dict[str, Any]:
    """Train (or load) the run's network and evaluate it; audit it if it was trained on
    PGD examples."""
    trained_model, info = trained(cfg, method, seed, progress)
    setup = load(cfg)
    model = evaluated(cfg, trained_model, setup.device)
    folder = paths.evaluation_dir(method.name, results.spec_hash(record_spec(cfg, method, seed)))
    out = {**evaluate(cfg, model, setup, folder=folder, verbose=progress), **info}
    if method.adversarial:
        reference = evaluated(cfg, trained(cfg, STANDARD, seed, progress)[0], setup.device)
        out["audit"] = audit(cfg, model, reference, setup, out)
    shutil.rmtree(folder, ignore_errors=True)  # the record now holds what the chunks held
    return out


def plan(cfg: Params) -> list[runs.Run]:
    """Every ``(method, seed)``, each after the run its teacher comes from."""
    device = str(training.resolve_device(cfg.device))
    if cfg.arch in ("mlp", "cnn"):
        m, family = models.count_cost(build(cfg), (1, 28, 28)).macs, cfg.arch
    else:
        m, family = images.macs(cfg, "resnet18"), "resnet"
    trained_images = (cfg.train_size - cfg.val_size) * cfg.epochs
    # early stopping: a PGD-k attack (k forward and backward passes) and a forward pass of the
    # held-out images after every epoch
    stopping = runs.forward_flops(m, cfg.val_size * cfg.epochs * (3 * cfg.pgd_steps + 1))
    clean = sum(v[0] for v in paper.TABLE5.values()) / len(paper.TABLE5)
    robust = sum(v[1] for v in paper.TABLE5.values()) / len(paper.TABLE5)
    autoattack = autoattack_forwards(clean, robust, cfg.aa_attacks)
    evaluation = runs.forward_flops(m, cfg.test_size * (cfg.eval_pgd_steps * 3 + 1)
                                    + cfg.aa_size * autoattack
                                    + cfg.square_size * robust * 5000)
    # the audit: PGD-20 at every ε of the sweep, PGD-50 unbounded, the stronger PGD with its
    # restarts, PGD-20 on the margin, PGD-20 on the reference, one gradient
    audit_steps = (20 * (len(sweep(cfg)) + 1) + 50 + cfg.audit_steps * cfg.audit_restarts
                   + 20 + 20 + 1)
    auditing = runs.forward_flops(m, cfg.audit_size * 3 * audit_steps)
    out = []
    for method in images.chosen(cfg, METHODS):
        flops = runs.train_flops(m, trained_images, teacher_macs=m if method.teacher else 0,
                                 attack_steps=cfg.pgd_steps if method.adversarial else 0)
        for seed in cfg.seeds:
            out.append(runs.Run(
                cfg.profile, NAME, method.name, record_spec(cfg, method, seed),
                functools.partial(metrics, cfg, method, seed), device=device, family=family,
                trains=checkpoint(cfg, method, seed).name,
                needs=tuple(checkpoint(cfg, other, seed).name for other in (
                    (method.teacher,) if method.teacher else ()) + (
                    (STANDARD,) if method.adversarial else ())),
                flops=flops + (stopping if stops_early(cfg, method) else 0.0),
                eval_flops=evaluation + (auditing if method.adversarial else 0.0)))
    return out


#: Each AutoAttack attack as pyautoattack 0.2.0 runs it in a custom selection (its defaults):
#: ``(passes, forward-pass equivalents per pass and image)``. A pass is a restart or a
#: target class of 100 iterations with a gradient (3 forward passes each); Square's one
#: pass is 5,000 queries (1 each). The standard version runs APGD-CE with one restart.
AA_COST = {"apgd-ce": (5, 300), "apgd-dlr": (5, 300), "apgd-t": (9, 300), "fab-t": (9, 300),
           "fab": (5, 300), "square": (1, 5000)}
AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


def autoattack_forwards(clean: float, robust: float, attacks: Sequence[str] = ()) -> float:
    """Forward-pass equivalents per test image of AutoAttack with `attacks` (estimate;
    empty: the standard version).

    The first pass of the first attack runs on the correctly classified points (fraction
    `clean`); every later pass runs on the points still robust, taken as the final robust
    fraction `robust`. The chapter's estimate takes the paper's Table 5 clean and
    AutoAttack accuracy (the mean of its rows).
    """
    names = tuple(attacks) or AA_STANDARD
    total = 0.0
    for i, name in enumerate(names):
        passes, per_pass = AA_COST[name]
        if not attacks and name == "apgd-ce":
            passes = 1
        total += (clean if i == 0 else robust) * per_pass + robust * (passes - 1) * per_pass
    return total


# --- tables and diagnostics ----------------------------------------------------------------------

def present(records: runs.Records) -> list[Method]:
    """The methods that have records, in table order."""
    return [m for m in METHODS if m.name in records]


def _cell(records: list[dict[str, Any]], key: str) -> str:
    return stats.summarize([r["metrics"][key] for r in records]).fmt()


def _flags(records: list[dict[str, Any]], key: str) -> torch.Tensor:
    """One method's per-image flags (``<key>_bits``), all seeds one after the other."""
    return torch.tensor([c == "1" for r in records for c in r["metrics"][f"{key}_bits"]])


def table5(records: runs.Records) -> pd.DataFrame:
    """Table 5: clean, PGD-20 and AutoAttack accuracy (%), the paper's beside ours, with the
    AutoAttack images pooled over seeds (95% Clopper-Pearson interval), and Welch's test of
    each row's AutoAttack accuracy against the AT student's, with the smallest difference
    the seeds could detect."""
    rows = []
    at = [r["metrics"]["aa_acc"] for r in records.get("at", [])]
    for method in present(records):
        recs = records[method.name]
        ref = paper.TABLE5.get(method.paper_row or "")
        aa = [r["metrics"]["aa_acc"] for r in recs]
        pooled = _flags(recs, "aa")
        lo, hi = robustness.binomial_ci(int(pooled.sum()), len(pooled))
        row = {"": method.label,
               "paper: clean": f"{100 * ref[0]:.2f}" if ref else "—",
               "ours: clean": _cell(recs, "clean_acc"),
               "ours: PGD-20": _cell(recs, "pgd_acc"),
               "paper: AutoAttack": f"{100 * ref[1]:.2f}" if ref else "—",
               "ours: AutoAttack": _cell(recs, "aa_acc"),
               "AutoAttack 95% CI (images)": f"[{100 * lo:.1f}, {100 * hi:.1f}] ({len(pooled)})",
               "Welch p vs AT": "—", "detectable (points)": "—", "runs": len(recs)}
        if method.name != "at" and at:
            d = verdicts.gain(aa, at, math.nan)
            row["Welch p vs AT"] = images.fmt_p(d.p)
            row["detectable (points)"] = "—" if math.isnan(d.detectable) else \
                f"{d.detectable:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("")


def masking(records: list[dict[str, Any]],
            reference: list[dict[str, Any]] | None = None) -> list[str]:
    """What the paired tests say about one method (its seeds pooled); empty: consistent.

    - PGD-20 keeps significantly more images than AutoAttack on the same images
      (McNemar): PGD overstates robustness;
    - a larger share of the PGD-robust images falls to AutoAttack than for the
      `reference` (plain AT; Fisher's exact test): gradients masked beyond AT's;
    - Square alone, without gradients, breaks significantly more images than PGD-20
      (McNemar): the gradients mislead PGD;
    - AutoAttack's own checks raised a flag;
    - a check of the robustness audit failed.
    """
    notes = []
    pgd, aa = _flags(records, "pgd"), _flags(records, "aa")
    kept, back, p = robustness.mcnemar(pgd, aa)
    if kept > back and p < robustness.ALPHA:
        notes.append(f"PGD-20 overstates robustness: {kept} images kept by PGD fall to "
                     f"AutoAttack, {back} the other way (McNemar p = {p:.2g})")
        if reference is not None and reference is not records:
            rp, ra = _flags(reference, "pgd"), _flags(reference, "aa")
            rk = int((rp & ~ra).sum())
            table = [[kept, int(pgd.sum()) - kept], [rk, int(rp.sum()) - rk]]
            fisher = float(_fisher(table))
            if kept / max(int(pgd.sum()), 1) > rk / max(int(rp.sum()), 1) \
                    and fisher < robustness.ALPHA:
                notes.append(f"more than for plain AT (Fisher p = {fisher:.2g})")
    sq = _flags(records, "square")
    on_square = torch.cat([torch.tensor([c == "1" for c in r["metrics"]["pgd_bits"]
                                         [:r["metrics"]["square_size"]]]) for r in records])
    k2, b2, p2 = robustness.mcnemar(on_square, sq)
    if k2 > b2 and p2 < robustness.ALPHA:
        notes.append(f"black-box Square beats PGD-20 (McNemar p = {p2:.2g})")
    if any(r["metrics"]["aa_flags"] for r in records):
        notes.append("AutoAttack raised flags")
    failed = sorted({c["name"] for r in records for c in r["metrics"].get("audit", [])
                     if not c["passed"]})
    if failed:
        notes.append(f"audit failed: {', '.join(failed)}")
    return notes


def _fisher(table: list[list[int]]) -> float:
    from scipy.stats import fisher_exact

    return fisher_exact(table).pvalue


def diagnostics(records: runs.Records) -> pd.DataFrame:
    """The paired gradient-masking tests per method, seeds pooled (accuracies in %)."""
    rows = []
    for method in present(records):
        recs = records[method.name]
        pgd, aa = _flags(recs, "pgd"), _flags(recs, "aa")
        kept, back, p = robustness.mcnemar(pgd, aa)
        flags = sorted({f for r in recs for f in r["metrics"]["aa_flags"]})
        notes = masking(recs, records.get("at"))
        rows.append({"": method.label,
                     "PGD-20 (AA images)": round(100 * float(pgd.float().mean()), 2),
                     "AutoAttack": round(100 * float(aa.float().mean()), 2),
                     "kept by PGD, broken by AA": kept, "the other way": back,
                     "McNemar p": images.fmt_p(p),
                     "Square only": round(100 * _mean(recs, "square_acc"), 2),
                     "AutoAttack flags": "; ".join(flags) or "none",
                     "verdict": "; ".join(notes) or "consistent"})
    return pd.DataFrame(rows).set_index("")


def _mean(records: list[dict[str, Any]], key: str) -> float:
    return sum(float(r["metrics"][key]) for r in records) / len(records)


def audit_table(records: runs.Records) -> pd.DataFrame:
    """Each check of the robustness audit for each adversarially trained method: how many
    of its seeds passed, and what was measured on the first seed."""
    rows = []
    for method in present(records):
        recs = [r for r in records[method.name] if "audit" in r["metrics"]]
        if not recs:
            continue
        for i, check in enumerate(recs[0]["metrics"]["audit"]):
            passed = sum(r["metrics"]["audit"][i]["passed"] for r in recs)
            rows.append({"method": method.label, "check": check["name"],
                         "passed": f"{passed} of {len(recs)} seeds",
                         "rule": check["rule"], "measured (first seed)": check["measured"]})
    return pd.DataFrame(rows).set_index(["method", "check"]) if rows else pd.DataFrame()


def warnings_for(records: runs.Records) -> list[str]:
    """One sentence per method whose robustness a paired test or the audit questions."""
    out = []
    for method in present(records):
        notes = masking(records[method.name], records.get("at"))
        if notes:
            out.append(f"{method.label}: {'; '.join(notes)}. Read its PGD accuracy as an "
                       f"upper bound, not as robustness.")
    return out


def paper_summary() -> str:
    """What the paper's Table 5 says, row by row against its AT student (from its numbers)."""
    at = paper.TABLE5["at_student"]
    parts = [f"{label}: clean {100 * (v[0] - at[0]):+.2f}, AutoAttack {100 * (v[1] - at[1]):+.2f}"
             for label, v in (("student with AT teacher", paper.TABLE5["student_at_teacher"]),
                              ("AT + Tf-KD-reg", paper.TABLE5["at_tf_kd_reg"]),
                              ("AT + Tf-KD-self", paper.TABLE5["at_tf_kd_self"]))]
    return ("Against its AT student, the paper's rows move by (points) " + "; ".join(parts)
            + ". It gives single numbers, without seeds or spread.")


def robustness_gain(records: runs.Records) -> float:
    """AutoAttack accuracy of ``at`` minus the undefended ``standard``'s, in points (mean)."""
    def mean(m: str) -> float:
        return 100 * sum(r["metrics"]["aa_acc"] for r in records[m]) / len(records[m])
    return mean("at") - mean("standard")


def network(cfg: Params) -> str:
    """The chapter's network, in words."""
    if cfg.arch == "resnet18":
        return "ResNet18" + ("" if cfg.width == 64 else f" at width {cfg.width} (standard: 64)")
    if cfg.arch == "cnn":
        return (f"Madry et al.'s CNN at width {cfg.width} ({cfg.width} and {2 * cfg.width} "
                f"channels, {32 * cfg.width} hidden units)")
    return f"an MLP 784-{cfg.width}-{cfg.width}-10"


def scale(cfg: Params) -> str:
    """The scale this chapter's records decide its claims at, in words."""
    net = network(cfg)
    paper = cfg.dataset == "cifar10" and cfg.arch == "resnet18" and cfg.width == 64
    where = "paper setting" if paper else f"stand-in (`{cfg.profile}`)"
    return (f"{where}: {images.DATA_NAMES[cfg.dataset]} {cfg.train_size:,} images, {net}, "
            f"L∞ ε = {cfg.eps:.3g}, {autoattack_name(cfg, short=True)} on {cfg.aa_size:,}, "
            f"{len(cfg.seeds)} seed(s)")


def autoattack_name(cfg: Params, short: bool = False) -> str:
    """The AutoAttack the profile runs, in words."""
    if not cfg.aa_attacks:
        return "AutoAttack" if short else "standard AutoAttack"
    names = " + ".join(AA_ATTACKS[a] for a in cfg.aa_attacks)
    return f"AutoAttack ({names})" if short else (
        f"AutoAttack's {names} (pyautoattack's custom defaults)")


def scale_note(cfg: Params) -> str:
    """A Markdown paragraph saying plainly what the page's runs used."""
    net = network(cfg)
    ramp = (f", ε grown over the first {cfg.eps_ramp_epochs} epochs" if cfg.eps_ramp_epochs
            else "")
    data = ("CIFAR-10" if cfg.dataset == "cifar10" else
            f"**{images.DATA_NAMES[cfg.dataset]}, not CIFAR-10** (a scaled replication that "
            f"runs offline on a CPU)")
    return (f"**Setting.** `{cfg.profile}` profile: {data}, {cfg.train_size} training images"
            f"{f' ({cfg.val_size} of them held out for early stopping)' if cfg.early_stop else ''}"
            f", {net}, {cfg.epochs} epochs, {len(cfg.seeds)} seed(s). Threat model L∞ ε = "
            f"{cfg.eps:.4g}; training attack PGD-{cfg.pgd_steps} with step {cfg.pgd_step:.4g}"
            f"{ramp}; "
            f"evaluation PGD-{cfg.eval_pgd_steps} (step {cfg.eval_pgd_step:.4g}) on "
            f"{cfg.test_size} test images, {autoattack_name(cfg)} on the first {cfg.aa_size}, "
            f"Square alone on the first {cfg.square_size}.")


def figure(records: runs.Records):
    """Clean, PGD, AutoAttack and Square-only accuracy of each method (mean over seeds)."""
    import matplotlib.pyplot as plt
    import numpy as np

    methods = present(records)
    bars = [("clean", "clean_acc"), ("PGD", "pgd_acc"), ("AutoAttack", "aa_acc"),
            ("Square only", "square_acc")]
    fig, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(bars)
    at = np.arange(len(methods))
    for i, (label, key) in enumerate(bars):
        means = [100 * np.mean([r["metrics"][key] for r in records[m.name]]) for m in methods]
        ax.bar(at + (i - (len(bars) - 1) / 2) * width, means, width, label=label)
    ax.set_xticks(at, [m.label.replace(" (", "\n(") for m in methods], fontsize=8,
                  rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=len(bars), loc="upper center", bbox_to_anchor=(0.5, 1.15), frameon=False)
    fig.tight_layout()
    return fig


def provenance(records: runs.Records) -> pd.DataFrame:
    return runs.provenance(records, {
        "best epoch": lambda r: r["metrics"].get("best_epoch", "—"),
        "AutoAttack (%)": lambda r: round(100 * r["metrics"]["aa_acc"], 2)})
