"""Table 5: PGD adversarial training, alone and with distillation, under AutoAttack.

**Rows** (record names; the first four are the paper's):

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
- ``at_tf_kd_reg`` and ``at_tf_kd_reg_ours``: adversarial training with the
  Tf-KD-reg loss (the official form, the paper's row, and this build's) on the PGD
  examples.
- ``at_tf_kd_self``: adversarial training with Tf-KD-self's loss (Hinton's, at
  Table 4's ``tf_self_*`` settings) and the ``at`` network as teacher, fed the
  same PGD examples. It differs from ``akd`` only in ``T`` and ``α``.
- ``at_label_smoothing``: the label-smoothing control, adversarially trained.
- ``standard`` (beyond the paper): the undefended network, cross-entropy on
  clean images, the reference that adversarial training must beat.
- ``kd_from_at`` (beyond the paper): a student trained on *clean* images only,
  distilled from the ``at`` teacher with AKD's ``T`` and ``α``: how much
  robustness distillation alone carries over.

PGD examples for training are crafted against the labels' cross-entropy with the
network in train mode (as Rice et al. do), ``pgd_steps`` steps of ``pgd_step``
from a uniform random start, inside the L∞ ball of ``eps`` and the [0, 1] box.

**Early stopping** (``early_stop``). The last ``val_size`` training images are
never trained on, by any row. After every epoch of an adversarially trained row,
its PGD accuracy on them (the training attack) is measured, and the weights of
the best epoch are kept, which guards against robust overfitting (Rice et al.,
2020). The clean-trained rows are evaluated at their final weights.

**Evaluation** (:mod:`kdlib.evaluation`): clean accuracy, PGD-``eval_pgd_steps``
accuracy, AutoAttack on the first ``aa_size`` test images, Square alone on the
first ``square_size``, and, for the adversarially trained rows, the robustness
audit on the first ``audit_size`` with transfer attacks from the ``standard``
network of the same seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from kdlib import networks, objectives, runs, training
from kdlib.attacks import Threat
from kdlib.chapters import Chapter, images
from kdlib.chapters.images import Method
from kdlib.config import ProfileError, between, ge
from kdlib.evaluation import (
    AA_ATTACKS,
    Audit,
    AutoAttackRun,
    Evaluation,
    record_spec,
    robust_metrics,
    robust_work,
)
from kdlib.readings import Reading

NAME = "06_adversarial_tfkd"


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
    #: Bounds every attack of the evaluation (AutoAttack's iterations, Square's queries, the
    #: audit's own PGD-20 and PGD-50) at this many steps; 0: none. Only the paper-shape check
    #: sets it, so that its cost does not depend on the CPU: a capped attack is weaker, and
    #: no profile that measures anything uses one.
    attack_cap: int = field(default=0, metadata=ge(0))

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

    def network(self, arch: str | None) -> networks.Network:
        """Every row trains the chapter's network: a ResNet18 at ``width``; (``cnn``)
        Madry et al.'s MNIST network at ``width``; or (``mlp``) 784-width-width-10."""
        if self.arch == "mlp":
            return networks.MLPNet((784, self.width, self.width, 10))
        if self.arch == "cnn":
            return networks.SmallCNN(self.width, self.dataset)
        return super().network("resnet18")

    def threat(self) -> Threat:
        """The training threat: PGD-``pgd_steps`` in train mode, ε ramped over
        ``eps_ramp_epochs``."""
        return Threat(self.eps, self.pgd_step, self.pgd_steps, mode="train",
                      ramp_epochs=self.eps_ramp_epochs)

    def training_options(self, method: Method) -> dict[str, Any]:
        """Every row holds out the last ``val_size`` images; adversarially trained rows stop
        early on them when ``early_stop`` is set."""
        stop = networks.EarlyStop(self.eval_batch) if self.early_stop and method.adversarial \
            else None
        return {"held_out": self.val_size, "early_stop": stop}


# --- rows ----------------------------------------------------------------------------------------

def akd(cfg: Params) -> objectives.Loss:
    return objectives.HintonKD(cfg.akd_temperature, cfg.akd_alpha)


AT = Method("at", "AT student (PGD adversarial training)", images.cross_entropy,
            adversarial=True, paper="at_student")
STANDARD = Method("standard", "standard training (undefended)", images.cross_entropy,
                  versus=AT)
AKD = Method("akd", "student with AT teacher (AKD)", akd, adversarial=True, teacher=AT,
             paper="student_at_teacher", versus=AT)
AT_TF_KD_REG = Method("at_tf_kd_reg", "AT + Tf-KD-reg (official form)",
                      images.tf_kd_reg_official, adversarial=True, paper="at_tf_kd_reg",
                      versus=AT)
AT_TF_KD_REG_OURS = Method("at_tf_kd_reg_ours", "AT + Tf-KD-reg (this build's form)",
                           images.tf_kd_reg, adversarial=True, versus=AT)
AT_TF_KD_SELF = Method("at_tf_kd_self", "AT + Tf-KD-self", images.tf_kd_self,
                       adversarial=True, teacher=AT, paper="at_tf_kd_self", versus=AT)
AT_LABEL_SMOOTHING = Method("at_label_smoothing", "AT + label smoothing (control)",
                            images.label_smoothing, adversarial=True, versus=AT)
KD_FROM_AT = Method("kd_from_at", "clean-trained student of the AT teacher", akd, teacher=AT,
                    versus=AT)
#: The rows, each after the row it learns from.
METHODS = (STANDARD, AT, AKD, AT_TF_KD_REG, AT_TF_KD_REG_OURS, AT_TF_KD_SELF,
           AT_LABEL_SMOOTHING, KD_FROM_AT)


def sweep(cfg: Params) -> tuple[float, ...]:
    """The ε values of the audit's accuracy curve, beside ε itself (up to 0.5)."""
    return tuple(e for e in (cfg.eps / 2, 2 * cfg.eps, 4 * cfg.eps, 0.5) if e <= 0.5)


def evaluation(cfg: Params, method: Method, seed: int) -> Evaluation:
    """How a row's network is evaluated; adversarially trained rows are also audited, with
    transfer attacks from the ``standard`` network of the same seed."""
    cap = cfg.attack_cap or None
    audit = (Audit(cfg.audit_size, cfg.audit_steps, cfg.audit_restarts, sweep(cfg),
                   images.training_for(cfg, STANDARD, seed), cap=cap)
             if method.adversarial else None)
    return Evaluation(Threat(cfg.eps, cfg.eval_pgd_step, cfg.eval_pgd_steps),
                      AutoAttackRun(cfg.aa_size, tuple(cfg.aa_attacks), cap=cap),
                      cfg.square_size, cfg.eval_batch,
                      bf16_on_cpu=training.engine_here(cfg.engine) == "bf16", audit=audit)


def plan(cfg: Params) -> list[runs.Run]:
    """Every ``(row, seed)``, each after the run its teacher comes from. A run trains (or
    loads) its network and evaluates it (:func:`kdlib.evaluation.robust_metrics`)."""
    device = cfg.device  # resolved where the run executes: a plan is the same on any machine
    out = []
    for method in images.chosen(cfg, METHODS):
        for seed in cfg.seeds:
            run = images.training_for(cfg, method, seed)
            ev = evaluation(cfg, method, seed)
            out.append(networks.planned(
                cfg.profile, NAME, method.name, run,
                functools.partial(robust_metrics, run, ev, device), robust_work(run, ev), device,
                spec=record_spec(run, ev), needs=[ev.audit.reference] if ev.audit else []))
    return out


#: AT rows evaluated at their best held-out epoch or at the last one.
FINAL_EPOCH = Reading(
    "final-epoch", "which epoch of an adversarially trained row is evaluated",
    "the best held-out PGD epoch (early stopping, as in the official code's best checkpoint)",
    "the final epoch: distillation's published gains in adversarial training come mostly "
    "from less robust overfitting, which early stopping removes",
    {"early_stop": False})
#: AKD's and AT + Tf-KD-self's temperature and weights.
PUBLISHED_SELF_TEACHER = Reading(
    "self-teacher-published", "the temperature and weights of AKD and AT + Tf-KD-self",
    "AKD at T = 1, α = 0.9 (no source); AT + Tf-KD-self at Table 4's T = 6, α′ = 0.99",
    "both at T = 2 with weight 0.3 on the labels, the closest published recipe "
    "(Chen et al., ICLR 2021: adversarial training with a self-teacher)",
    {"akd_temperature": 2.0, "akd_alpha": 0.7, "tf_self_temperature": 2.0,
     "tf_self_alpha": 0.7})

#: Chapter 6, declared: its parameters, rows and runs.
CHAPTER = Chapter(
    name=NAME, title="Adversarially trained teacher-free distillation (Table 5)",
    params=Params, methods=METHODS, plan=plan, page="kdlib.pages.table5",
    readings=(FINAL_EPOCH, PUBLISHED_SELF_TEACHER, images.SELF_ALPHA_CIFAR100,
              images.MULTIPLIER_100, images.SMOOTHING_OTHERS),
    # paper-shape: full-width networks, every attack and the audit, AutoAttack over two chunks
    # and early stopping over two epochs, each attack capped at one step: the check's cost is
    # bounded in FLOPs (kdlib.tooling.shape.FLOP_BOUND), not by the CPU's matrix units
    tiny={"train_size": 16, "val_size": 8, "test_size": 8, "batch_size": 4, "epochs": 2,
          "pgd_steps": 1, "eval_pgd_steps": 1, "aa_size": 2, "square_size": 1, "eval_batch": 1,
          "audit_size": 2, "audit_steps": 1, "audit_restarts": 2, "attack_cap": 1})
