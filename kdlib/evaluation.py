"""How robust a trained network is: the evaluation behind Table 5, as one typed value.

An :class:`Evaluation` says everything that decides a robustness measurement, and
:func:`robust_metrics` runs exactly that on a trained network
(:func:`kdlib.networks.trained`):

- clean accuracy on the data's test images;
- PGD accuracy under the evaluation's :class:`kdlib.attacks.Threat` (PGD-20 in
  the book), with a seeded start, on every test image;
- AutoAttack (:func:`kdlib.attacks.autoattack_eval`) at the same ε on the first
  ``images`` test images: the standard version, or the attacks it names with
  pyautoattack's custom defaults; in chunks of ``batch`` images, each saved as it
  finishes (:func:`kdlib.paths.evaluation_dir`), so an interrupted evaluation resumes;
- Square alone (black-box, pyautoattack's 5,000 queries) on the first
  ``square_images``;
- for adversarially trained networks, the robustness audit
  (:func:`kdlib.robustness.audit`) on the first ``images`` of its :class:`Audit`, with
  transfer attacks from the reference network its audit names (an undefended one).

The per-image flags of PGD, AutoAttack and Square are kept in the record as strings of
0s and 1s, so that paired tests can compare them. With ``bf16_on_cpu`` every attack
runs the network under bf16 autocast on a CPU (AutoAttack's thousands of forward
passes are most of the time there); elsewhere in float32.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kdlib import attacks, flops, models, networks, paths, results, robustness, runs, training
from kdlib.attacks import Threat

#: AutoAttack's attacks, by pyautoattack's names.
AA_ATTACKS = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square",
              "apgd-dlr": "APGD-DLR", "fab": "FAB"}


@dataclass(frozen=True)
class AutoAttackRun:
    """AutoAttack on the first `images` test images: the standard version, or `attacks`
    (pyautoattack's names) with its custom defaults; pyautoattack seeded with `seed`.
    `cap` bounds every attack's iterations and queries (:func:`kdlib.attacks.capped`): the
    paper-shape check's, never a measurement's; None: pyautoattack's budgets."""

    images: int
    attacks: tuple[str, ...] = ()
    seed: int = 0
    cap: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.attacks) - set(AA_ATTACKS))
        if unknown:
            raise ValueError(f"unknown AutoAttack attacks {unknown}; known: {list(AA_ATTACKS)}")

    def spec(self) -> dict[str, Any]:
        out = {"version": "custom" if self.attacks else "standard",
               "attacks": list(self.attacks), "images": self.images, "seed": self.seed}
        return {**out, "cap": self.cap} if self.cap is not None else out


@dataclass(frozen=True)
class Audit:
    """The robustness audit on the first `images` test images: a stronger PGD of `steps`
    steps with `restarts` restarts, PGD-20 at every ε of `sweep`, and transfer attacks from
    `reference`, the training of an independently trained undefended network. `cap` bounds
    the audit's own PGD-20 and PGD-50 (:func:`kdlib.robustness.audit`), as
    :attr:`AutoAttackRun.cap`."""

    images: int
    steps: int
    restarts: int
    sweep: tuple[float, ...]
    reference: networks.Training
    cap: int | None = None

    def spec(self) -> dict[str, Any]:
        out = {"images": self.images, "steps": self.steps, "restarts": self.restarts,
               "sweep": list(self.sweep), "transfer_from": self.reference.spec()}
        return {**out, "cap": self.cap} if self.cap is not None else out

    def steps_per_image(self) -> int:
        """Gradient steps per audited image (:func:`kdlib.robustness.audit_steps`)."""
        return robustness.audit_steps(len(self.sweep), self.steps, self.restarts,
                                      cap=self.cap)


@dataclass(frozen=True)
class Evaluation:
    """Everything that decides a robustness measurement (see the module docstring)."""

    pgd: Threat
    autoattack: AutoAttackRun
    square_images: int
    batch: int
    bf16_on_cpu: bool = False
    audit: Audit | None = None
    pgd_seed: int = 0

    def spec(self) -> dict[str, Any]:
        out = {"precision": "bf16 autocast on a CPU" if self.bf16_on_cpu else "float32",
               "batch": self.batch, "pgd": {**self.pgd.spec(), "seed": self.pgd_seed},
               "autoattack": self.autoattack.spec(),
               "square_only": {"images": self.square_images}}
        if self.audit is not None:
            out["audit"] = self.audit.spec()
        return out


def record_spec(run: networks.Training, ev: Evaluation) -> dict[str, Any]:
    """A robustness record's spec: the trained network's and the evaluation's."""
    return {**run.spec(), "evaluation": ev.spec()}


def bits(flags: torch.Tensor) -> str:
    """Per-image flags as a string of 0s and 1s, for the record (paired tests need them)."""
    return "".join("1" if f else "0" for f in flags.tolist())


def as_evaluated(ev: Evaluation, model: nn.Module, device: torch.device) -> nn.Module:
    """The network as the attacks run it: under bf16 autocast with ``bf16_on_cpu`` on a CPU."""
    return models.Autocast(model) if ev.bf16_on_cpu and device.type == "cpu" else model


def evaluate(ev: Evaluation, model: nn.Module, setup: Any, *, folder=None,
             verbose: bool = True) -> dict[str, Any]:
    """Clean, PGD, AutoAttack and Square-only accuracy, with the per-image flags the paired
    tests compare (on the AutoAttack images). AutoAttack's finished chunks are kept in
    `folder` until the evaluation ends."""
    x, y, batch, eps = setup.x_test, setup.y_test, ev.batch, ev.pgd.eps
    clean = training.predict(model, x, batch).argmax(1) == y
    pgd = ev.pgd.flags(model, x, y, batch, seed=ev.pgd_seed)
    aa_n, sq_n = ev.autoattack.images, ev.square_images
    aa = attacks.autoattack_eval(model, x[:aa_n], y[:aa_n], eps,
                                 attacks=list(ev.autoattack.attacks) or None, batch_size=batch,
                                 chunk=batch, seed=ev.autoattack.seed,
                                 folder=folder and folder / "autoattack", verbose=verbose,
                                 cap=ev.autoattack.cap)
    sq = attacks.autoattack_eval(model, x[:sq_n], y[:sq_n], eps, square_only=True,
                                 batch_size=batch, chunk=batch, seed=ev.autoattack.seed,
                                 folder=folder and folder / "square", verbose=verbose,
                                 cap=ev.autoattack.cap)
    for what, result, n in (("AutoAttack", aa, aa_n), ("Square", sq, sq_n)):
        if not len(result.clean) == len(result.robust) == len(result.x_adv) == n:
            raise RuntimeError(f"{what} returned {len(result.robust)} flags and "
                               f"{len(result.x_adv)} examples for {n} images")
    pgd_on_aa = pgd[:aa_n].cpu()
    pgd_on_square = float(pgd[:sq_n].float().mean())
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


def audit(ev: Evaluation, model: nn.Module, reference: nn.Module, setup: Any,
          measured: dict[str, Any]) -> list[dict[str, Any]]:
    """The robustness audit of `ev` on `model`, reusing the evaluation's Square flags
    (`measured`) on its images."""
    spec = ev.audit
    if spec is None:
        raise ValueError("this evaluation has no audit")
    x, y = setup.x_test[:spec.images], setup.y_test[:spec.images]
    pgd20 = ev.pgd.flags(model, x, y, ev.batch, seed=ev.pgd_seed).cpu()
    square = torch.tensor([c == "1" for c in measured["square_bits"][:spec.images]])
    checks = robustness.audit(model, x, y, ev.pgd.eps, pgd20=pgd20, square=square,
                              reference=reference, sweep=spec.sweep, batch_size=ev.batch,
                              strong_steps=spec.steps, restarts=spec.restarts, cap=spec.cap)
    return [dataclasses.asdict(c) for c in checks]


def robust_work(run: networks.Training, ev: Evaluation) -> runs.Work:
    """What :func:`robust_metrics` computes: `run`'s training, PGD on every test image,
    AutoAttack, Square alone and the audit, as `ev` sets them."""
    audit = 0 if ev.audit is None else ev.audit.images * 3 * ev.audit.steps_per_image()
    return dataclasses.replace(
        run.work(), forwards=run.data.test_size * flops.pgd_forwards(ev.pgd.steps) + audit,
        autoattack=ev.autoattack.attacks, autoattack_images=ev.autoattack.images,
        square_images=ev.square_images, attack_cap=ev.autoattack.cap or 0)


def robust_metrics(run: networks.Training, ev: Evaluation, device: torch.device | str, *,
                   progress: bool = True) -> dict[str, Any]:
    """A robustness record's metrics: train (or load) `run`'s network, evaluate it under
    `ev`, audit it when `ev` has an audit; with what its training recorded."""
    trained, info = networks.trained(run, device, progress)
    training.as_trained(trained, run.recipe)
    setup = run.data.load(device)
    model = as_evaluated(ev, trained, setup.device)
    folder = paths.evaluation_dir(run.method, results.spec_hash(record_spec(run, ev)))
    out = {**evaluate(ev, model, setup, folder=folder, verbose=progress), **info}
    if ev.audit is not None:
        reference = networks.trained(ev.audit.reference, device, progress)[0]
        out["audit"] = audit(ev, model, as_evaluated(ev, reference, setup.device), setup, out)
    shutil.rmtree(folder, ignore_errors=True)  # the record now holds what the chunks held
    return out
