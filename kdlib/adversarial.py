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
AutoAttack's own warnings are kept as its flags. The AutoAttack state is saved
as it goes (``cache/autoattack``), so an interrupted evaluation resumes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from kdlib import (
    attacks,
    checkpoints,
    cifar_kd,
    losses,
    models,
    paper,
    paths,
    results,
    stats,
    training,
)
from kdlib.config import AdversarialTfKD

CHAPTER = "06_adversarial_tfkd"
#: The runs, each after the run its teacher comes from.
METHODS = ("standard", "at", "akd", "at_tf_kd_reg", "at_tf_kd_self", "kd_from_at")
#: Method -> the method whose trained network (same seed) is its teacher.
TEACHER = {"akd": "at", "at_tf_kd_self": "at", "kd_from_at": "at"}
#: Methods trained on PGD examples.
ADVERSARIAL = ("at", "akd", "at_tf_kd_reg", "at_tf_kd_self")
LABELS = {"standard": "standard training (undefended)",
          "at": "AT student (PGD adversarial training)",
          "akd": "student with AT teacher (AKD)", "at_tf_kd_reg": "AT + Tf-KD-reg",
          "at_tf_kd_self": "AT + Tf-KD-self",
          "kd_from_at": "clean-trained student of the AT teacher"}
#: The paper's Table 5 row of each method.
PAPER_ROW = {"at": "at_student", "akd": "student_at_teacher", "at_tf_kd_reg": "at_tf_kd_reg",
             "at_tf_kd_self": "at_tf_kd_self"}
#: Networks are run in batches of this size for evaluation and attacks.
EVAL_BATCH = 500


# --- data and networks ---------------------------------------------------------------------------

def load(cfg: AdversarialTfKD) -> cifar_kd.ResNetSetup:
    """The chapter's data: the same subsets as Tables 3 and 4 for equal settings."""
    return cifar_kd.load(cfg)


def split(cfg: AdversarialTfKD, setup: cifar_kd.ResNetSetup
          ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(train, held_out)``: the last ``val_size`` training images are held out."""
    n = len(setup.y_train) - cfg.val_size
    x, y = setup.x_train, setup.y_train
    return (x[:n], y[:n]), (x[n:], y[n:])


def model_spec(cfg: AdversarialTfKD) -> dict[str, Any]:
    if cfg.arch == "mlp":
        return {"arch": "mlp", "sizes": [784, cfg.width, cfg.width, 10]}
    return cifar_kd.model_spec(cfg, "resnet18")


def build(cfg: AdversarialTfKD) -> nn.Module:
    """An untrained network: ResNet18 at ``width``, or (``mlp``) 784-width-width-10."""
    if cfg.arch == "mlp":
        return models.MLP([784, cfg.width, cfg.width, 10])
    return cifar_kd.build(cfg, "resnet18")


# --- specs ---------------------------------------------------------------------------------------

def threat_spec(cfg: AdversarialTfKD) -> dict[str, Any]:
    return {"norm": "Linf", "eps": cfg.eps, "pgd_step": cfg.pgd_step, "pgd_steps": cfg.pgd_steps,
            "random_start": True, "attack_loss": "cross_entropy", "mode": "train"}


def objective_spec(cfg: AdversarialTfKD, method: str, seed: int) -> dict[str, Any]:
    """The loss of `method`, its inputs and its teacher's full spec."""
    if method in ("standard", "at"):
        loss: dict[str, Any] = {"loss": "cross_entropy"}
    elif method == "at_tf_kd_reg":
        loss = {"loss": "tf_kd_reg", "reduction": "batchmean", "delta": cfg.tf_reg_delta,
                "temperature": cfg.tf_reg_temperature, "alpha": cfg.tf_reg_alpha,
                "soften_student": cfg.tf_reg_soften_student}
    else:
        t, a = kd_settings(cfg, method)
        loss = {"loss": "hinton_kd", "reduction": "batchmean", "temperature": t, "alpha": a,
                "teacher": run_spec(cfg, TEACHER[method], seed)}
    inputs = ({"inputs": "PGD examples", "threat": threat_spec(cfg)} if method in ADVERSARIAL
              else {"inputs": "clean images"})
    return {**loss, **inputs}


def kd_settings(cfg: AdversarialTfKD, method: str) -> tuple[float, float]:
    """``(T, α)`` of a method that learns from the AT teacher."""
    if method == "at_tf_kd_self":
        return cfg.tf_self_temperature, cfg.tf_self_alpha
    return cfg.akd_temperature, cfg.akd_alpha


def run_spec(cfg: AdversarialTfKD, method: str, seed: int) -> dict[str, Any]:
    """Everything that decides the trained network; its hash names the checkpoint."""
    _check(method)
    return {"method": method, "model": model_spec(cfg), "data": cifar_kd.data_spec(cfg),
            "recipe": cifar_kd.recipe(cfg).as_dict(), "seed": seed,
            "objective": objective_spec(cfg, method, seed),
            "early_stop": ({"held_out": cfg.val_size, "metric": "PGD accuracy (training attack)"}
                           if stops_early(cfg, method) else None),
            "held_out": cfg.val_size}


def stops_early(cfg: AdversarialTfKD, method: str) -> bool:
    """Early stopping applies to the adversarially trained methods only; the others train
    for the full schedule (on the same images, the held-out ones excluded)."""
    return cfg.early_stop and method in ADVERSARIAL


def eval_spec(cfg: AdversarialTfKD) -> dict[str, Any]:
    return {"pgd": {"eps": cfg.eps, "step": cfg.eval_pgd_step, "steps": cfg.eval_pgd_steps,
                    "random_start": True, "seed": 0},
            "autoattack": {"version": "standard", "norm": "Linf", "eps": cfg.eps,
                           "images": cfg.aa_size, "seed": 0},
            "square_only": {"images": cfg.square_size, "queries": 5000}}


def record_spec(cfg: AdversarialTfKD, method: str, seed: int) -> dict[str, Any]:
    """A record's spec: the trained network's and the evaluation's."""
    return {**run_spec(cfg, method, seed), "evaluation": eval_spec(cfg)}


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} for {CHAPTER}; known: {METHODS}")


# --- training ------------------------------------------------------------------------------------

def objective(cfg: AdversarialTfKD, method: str,
              teacher: nn.Module | None = None) -> training.Objective:
    """The training objective of `method` (the distilling ones need their trained `teacher`)."""
    _check(method)
    if method in ("standard", "at"):
        base = training.supervised()
    elif method == "at_tf_kd_reg":
        delta, t, a, soft = (cfg.tf_reg_delta, cfg.tf_reg_temperature, cfg.tf_reg_alpha,
                             cfg.tf_reg_soften_student)

        def base(model: nn.Module, x: torch.Tensor, y: training.Targets
                 ) -> dict[str, torch.Tensor]:
            return losses.tf_kd_reg(model(x).float(), y, delta, t, a, soften_student=soft)
    else:
        if teacher is None:
            raise ValueError(f"{method} needs its trained teacher")
        base = training.distillation(teacher, *kd_settings(cfg, method))
    if method not in ADVERSARIAL:
        return base
    return attacks.adversarial(base, cfg.eps, cfg.pgd_step, cfg.pgd_steps, mode="train")


class EarlyStopping:
    """After each epoch: PGD accuracy on held-out images; keeps the best epoch's weights.

    The best weights are saved beside the resume file, so a resumed run keeps
    them; the epoch's accuracy goes into the training history.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 cfg: AdversarialTfKD, path: Path):
        self.model, self.x, self.y, self.cfg, self.path = model, x, y, cfg, path

    def __call__(self, epoch: int) -> dict[str, float]:
        acc = attacks.robust_accuracy_pgd(self.model, self.x, self.y, self.cfg.eps,
                                          self.cfg.pgd_step, self.cfg.pgd_steps, EVAL_BATCH)
        best = self.best()
        if best is None or acc > best[1]:
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            torch.save({"epoch": epoch, "acc": acc, "state_dict": self.model.state_dict()}, tmp)
            tmp.replace(self.path)
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


def trained(cfg: AdversarialTfKD, method: str, seed: int,
            progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network of a run, from the checkpoint cache or trained now (resumable)."""
    setup = load(cfg)
    (x, y), (xv, yv) = split(cfg, setup)
    spec = run_spec(cfg, method, seed)

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        teacher = trained(cfg, TEACHER[method], seed, progress)[0] if method in TEACHER else None
        best_path = resume.with_name(resume.name.removesuffix(".resume.pt") + ".best.pt")
        stopper = (EarlyStopping(model, xv, yv, cfg, best_path) if stops_early(cfg, method)
                   else None)
        history = training.train(model, objective(cfg, method, teacher), x, y,
                                 cifar_kd.recipe(cfg), seed=seed, checkpoint=resume,
                                 desc=f"{method} seed {seed}", progress=progress,
                                 on_epoch=stopper)
        info: dict[str, Any] = {"history": history, "final_train_loss": history[-1]["loss"],
                                "epochs_trained": len(history), "data_source": setup.source}
        if stopper is not None:
            info["best_epoch"] = stopper.restore()
            best_path.unlink(missing_ok=True)
        return info

    return checkpoints.trained_model(
        method, spec, lambda: training.seeded(seed, lambda: build(cfg)), fit, setup.device)


# --- evaluation ----------------------------------------------------------------------------------

def autoattack_state(cfg: AdversarialTfKD, method: str, seed: int, what: str) -> Path:
    """Where an evaluation's AutoAttack progress is saved, for resuming."""
    name = f"{method}-{results.spec_hash(record_spec(cfg, method, seed))}-{what}.state"
    return paths.checkpoints_dir().parent / "autoattack" / name


def evaluate(cfg: AdversarialTfKD, model: nn.Module, setup: cifar_kd.ResNetSetup, *,
             states: tuple[Path, Path] | None = None, verbose: bool = True,
             budget: dict[str, int] | None = None) -> dict[str, Any]:
    """Clean, PGD, AutoAttack and Square-only accuracy, with the per-image flags that
    the diagnostics compare (on the AutoAttack subset). `budget` (``iterations``,
    ``square_queries``) shrinks AutoAttack for tests only."""
    x, y = setup.x_test, setup.y_test
    clean = training.predict(model, x, EVAL_BATCH).argmax(1) == y
    pgd = attacks.robust_flags_pgd(model, x, y, cfg.eps, cfg.eval_pgd_step, cfg.eval_pgd_steps,
                                   EVAL_BATCH)
    aa = attacks.autoattack_eval(model, x[:cfg.aa_size], y[:cfg.aa_size], cfg.eps,
                                 batch_size=EVAL_BATCH, state_path=states and states[0],
                                 verbose=verbose, **(budget or {}))
    sq = attacks.autoattack_eval(model, x[:cfg.square_size], y[:cfg.square_size], cfg.eps,
                                 square_only=True, batch_size=EVAL_BATCH,
                                 state_path=states and states[1], verbose=verbose,
                                 **({"square_queries": budget["square_queries"]}
                                    if budget else {}))
    pgd_on_aa = pgd[:cfg.aa_size].cpu()
    pgd_on_square = float(pgd[:cfg.square_size].float().mean())
    return {"clean_acc": float(clean.float().mean()), "pgd_acc": float(pgd.float().mean()),
            "aa_acc": aa.robust_accuracy, "aa_clean_acc": aa.clean_accuracy,
            "pgd_acc_on_aa_images": float(pgd_on_aa.float().mean()),
            "pgd_aa_gap": float(pgd_on_aa.float().mean()) - aa.robust_accuracy,
            "pgd_robust_aa_broken": int((pgd_on_aa & ~aa.robust).sum()),
            "square_acc": sq.robust_accuracy, "pgd_acc_on_square_images": pgd_on_square,
            "pgd_square_gap": pgd_on_square - sq.robust_accuracy,
            "aa_after_attack": aa.after_attack,
            "aa_flags": list(aa.flags) + list(sq.flags), "test_size": len(y),
            "aa_size": len(aa.robust), "square_size": len(sq.robust)}


def run(cfg: AdversarialTfKD, method: str, seed: int, *, progress: bool = True,
        budget: dict[str, int] | None = None) -> dict[str, Any]:
    """The record of one run: from disk, or trained (or loaded) and evaluated, then saved."""
    _check(method)
    setup = load(cfg)

    def compute() -> dict[str, Any]:
        model, info = trained(cfg, method, seed, progress)
        states = (autoattack_state(cfg, method, seed, "aa"),
                  autoattack_state(cfg, method, seed, "square"))
        metrics = evaluate(cfg, model, setup, states=states, verbose=progress, budget=budget)
        for s in states:
            s.unlink(missing_ok=True)
            s.with_name(s.name + ".meta.json").unlink(missing_ok=True)
        return {**metrics, **info}

    return results.cached_run(cfg.profile, CHAPTER, method, record_spec(cfg, method, seed),
                              compute, device=str(setup.device))


def runs_of(cfg: AdversarialTfKD) -> list[tuple[str, int]]:
    """Every ``(method, seed)``, each after the run its teacher comes from."""
    return [(m, s) for m in METHODS for s in cfg.seeds]


def plan(cfg: AdversarialTfKD) -> list[tuple[str, dict[str, Any], Callable[[], dict[str, Any]]]]:
    """The chapter's runs as :mod:`kdlib.jobs` expects them (picklable calls)."""
    return [(m, record_spec(cfg, m, s), functools.partial(run, cfg, m, s, progress=False))
            for m, s in runs_of(cfg)]


def run_all(cfg: AdversarialTfKD, progress: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every run, as ``{method: [record per seed]}``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for method, seed in runs_of(cfg):
        out.setdefault(method, []).append(run(cfg, method, seed, progress=progress))
    return out


# --- tables and diagnostics ----------------------------------------------------------------------

def _cell(records: list[dict[str, Any]], key: str) -> str:
    return stats.summarize([r["metrics"][key] for r in records]).fmt()


def table5(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Table 5: clean, PGD and AutoAttack accuracy (%), the paper's beside ours."""
    rows = []
    for method in METHODS:
        if method not in runs:
            continue
        recs = runs[method]
        ref = paper.TABLE5.get(PAPER_ROW.get(method, ""))
        rows.append({"": LABELS[method],
                     "paper: clean": f"{100 * ref[0]:.2f}" if ref else "—",
                     "ours: clean": _cell(recs, "clean_acc"),
                     "ours: PGD": _cell(recs, "pgd_acc"),
                     "paper: AutoAttack": f"{100 * ref[1]:.2f}" if ref else "—",
                     "ours: AutoAttack": _cell(recs, "aa_acc"),
                     "runs": len(recs)})
    return pd.DataFrame(rows).set_index("")


#: A gap in accuracy (as a fraction) beyond which the diagnostics speak up: 2 points.
MASKING_GAP = 0.02


def _mean(records: list[dict[str, Any]], key: str) -> float:
    return sum(float(r["metrics"][key]) for r in records) / len(records)


def diagnostics(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Gradient-masking checks per method, means over seeds (accuracies in %)."""
    rows = []
    for method in METHODS:
        if method not in runs:
            continue
        recs = runs[method]
        flags = sorted({f for r in recs for f in r["metrics"]["aa_flags"]})
        rows.append({"": LABELS[method],
                     "PGD (AA images)": round(100 * _mean(recs, "pgd_acc_on_aa_images"), 2),
                     "AutoAttack": round(100 * _mean(recs, "aa_acc"), 2),
                     "PGD − AA (points)": round(100 * _mean(recs, "pgd_aa_gap"), 2),
                     "PGD (Square images)": round(100 * _mean(recs, "pgd_acc_on_square_images"),
                                                  2),
                     "Square only": round(100 * _mean(recs, "square_acc"), 2),
                     "images PGD kept, AA broke": round(_mean(recs, "pgd_robust_aa_broken"), 1),
                     "AutoAttack flags": "; ".join(flags) or "none",
                     "verdict": masking_verdict(recs, runs.get("at"))})
    return pd.DataFrame(rows).set_index("")


def masking_verdict(records: list[dict[str, Any]],
                    reference: list[dict[str, Any]] | None = None) -> str:
    """What the diagnostics say about one method (means over its seeds).

    - PGD accuracy more than :data:`MASKING_GAP` above AutoAttack's on the same
      images: PGD overstates robustness;
    - that gap larger than the `reference`'s (plain AT) by more than
      :data:`MASKING_GAP`: the method masks gradients beyond what AT does;
    - Square alone, which uses no gradients, below PGD on the same images: the
      gradients mislead PGD;
    - any warning of AutoAttack's own checks.
    """
    notes = []
    gap = _mean(records, "pgd_aa_gap")
    if gap > MASKING_GAP:
        notes.append(f"PGD overstates robustness by {100 * gap:.1f} points")
        if reference is not None and reference is not records \
                and gap - _mean(reference, "pgd_aa_gap") > MASKING_GAP:
            notes.append("more than for plain AT")
    if _mean(records, "pgd_square_gap") > MASKING_GAP:
        notes.append("black-box Square beats PGD")
    if any(r["metrics"]["aa_flags"] for r in records):
        notes.append("AutoAttack raised flags")
    return "; ".join(notes) or "consistent"


def warnings_for(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One sentence per method whose PGD robustness does not survive AutoAttack."""
    out = []
    for method in METHODS:
        if method not in runs or _mean(runs[method], "pgd_aa_gap") <= MASKING_GAP:
            continue
        recs = runs[method]
        out.append(f"{LABELS[method]}: PGD-based robustness does not survive AutoAttack: "
                   f"{masking_verdict(recs, runs.get('at'))} (PGD − AutoAttack = "
                   f"{100 * _mean(recs, 'pgd_aa_gap'):+.2f} points on the same images). Read "
                   f"its PGD accuracy as an upper bound, not as robustness.")
    return out


def robustness_gain(runs: dict[str, list[dict[str, Any]]]) -> float:
    """AutoAttack accuracy of ``at`` minus the undefended ``standard``'s, in points (mean)."""
    def mean(m: str) -> float:
        return 100 * sum(r["metrics"]["aa_acc"] for r in runs[m]) / len(runs[m])
    return mean("at") - mean("standard")


def history_frame(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Per-epoch training loss (and held-out PGD accuracy with early stopping), long form."""
    rows = []
    for method, recs in runs.items():
        for r in recs:
            for h in r["metrics"]["history"]:
                rows.append({"method": method, "seed": r["spec"]["seed"], "epoch": h["epoch"],
                             "loss": h["loss"],
                             "held_out_pgd_acc": h.get("held_out_pgd_acc", math.nan)})
    return pd.DataFrame(rows)


def scale_note(cfg: AdversarialTfKD) -> str:
    """A Markdown paragraph saying plainly what the page's runs used."""
    net = ("ResNet18" + ("" if cfg.width == 64 else f" at width {cfg.width} (standard: 64)")
           if cfg.arch == "resnet18" else f"an MLP 784-{cfg.width}-{cfg.width}-10")
    data = ("CIFAR-10" if cfg.dataset == "cifar10" else
            "**MNIST, not CIFAR-10** (a scaled replication that runs offline on a CPU)")
    return (f"**Setting.** `{cfg.profile}` profile: {data}, {cfg.train_size} training images"
            f"{f' ({cfg.val_size} of them held out for early stopping)' if cfg.early_stop else ''}"
            f", {net}, {cfg.epochs} epochs, {len(cfg.seeds)} seed(s). Threat model L∞ ε = "
            f"{cfg.eps:.4g}; training attack PGD-{cfg.pgd_steps} with step {cfg.pgd_step:.4g}; "
            f"evaluation PGD-{cfg.eval_pgd_steps} (step {cfg.eval_pgd_step:.4g}) on "
            f"{cfg.test_size} test images, standard AutoAttack on the first {cfg.aa_size}, "
            f"Square alone on the first {cfg.square_size}.")


def saved_records(cfg: AdversarialTfKD) -> dict[str, list[dict[str, Any]]] | None:
    """The chapter's records already on disk, or None if any is missing (nothing is run)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for method, seed in runs_of(cfg):
        path = results.record_path(cfg.profile, CHAPTER, method, record_spec(cfg, method, seed))
        if not path.is_file():
            return None
        out.setdefault(method, []).append(results.load_record(path))
    return out


def figure(runs: dict[str, list[dict[str, Any]]]):
    """Clean, PGD, AutoAttack and Square-only accuracy of each method (mean over seeds)."""
    import matplotlib.pyplot as plt
    import numpy as np

    methods = [m for m in METHODS if m in runs]
    bars = [("clean", "clean_acc"), ("PGD", "pgd_acc"), ("AutoAttack", "aa_acc"),
            ("Square only", "square_acc")]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(bars)
    at = np.arange(len(methods))
    for i, (label, key) in enumerate(bars):
        means = [100 * np.mean([r["metrics"][key] for r in runs[m]]) for m in methods]
        ax.bar(at + (i - (len(bars) - 1) / 2) * width, means, width, label=label)
    ax.set_xticks(at, [LABELS[m].replace(" (", "\n(") for m in methods], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=len(bars), loc="upper center", bbox_to_anchor=(0.5, 1.15), frameon=False)
    fig.tight_layout()
    return fig


def provenance(runs: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """One row per record: run, seed, record file, epochs kept, wall time, commit, device."""
    return pd.DataFrame([{"run": r["name"], "seed": r["spec"]["seed"],
                          "record": f"{r['name']}-{r['spec_hash']}.json",
                          "best epoch": r["metrics"].get("best_epoch", "—"),
                          "wall time (s)": r["wall_time_s"],
                          "commit": (r["environment"]["git_commit"] or "")[:10],
                          "device": r["device"]} for rs in runs.values() for r in rs])
