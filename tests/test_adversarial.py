"""Table 5's methods: what each objective trains on, AKD's loss by hand, early stopping,
the run specs, the gradient-masking verdict, and one run end to end."""

import dataclasses
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import (
    chapters,
    config,
    evaluation,
    losses,
    networks,
    objectives,
    paths,
    results,
    runs,
    training,
)
from kdlib.attacks import Threat
from kdlib.chapters import adversarial as adv
from kdlib.chapters import images
from kdlib.pages import table5 as page
from kdlib.tooling import jobs

pytestmark = pytest.mark.usefixtures("one_thread")


def smoke(**changes) -> adv.Params:
    return dataclasses.replace(chapters.load_profile("smoke")["06_adversarial_tfkd"], **changes)


def objective(cfg, method, teacher=None):
    return images.training_for(cfg, method, 0).objective.build(teacher)


def run_spec(cfg, method, seed):
    return images.training_for(cfg, method, seed).spec()


def record_spec(cfg, method, seed):
    return evaluation.record_spec(images.training_for(cfg, method, seed),
                                  adv.evaluation(cfg, method, seed))


class Recorder(nn.Module):
    """A linear classifier on 28×28 images that keeps every input it is called with."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(784, 10)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.fc(x.flatten(1))


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_standard_training_sees_the_clean_batch_and_at_sees_pgd_examples():
    cfg = smoke(eps=0.1)
    x, y = batch()
    student = Recorder()
    objective(cfg, adv.STANDARD)(student, x, y)
    assert len(student.seen) == 1 and torch.equal(student.seen[0], x)

    student = Recorder()
    out = objective(cfg, adv.AT)(student, x, y)
    assert len(student.seen) == cfg.pgd_steps + 1  # 7 attack steps, then the loss
    x_adv = student.seen[-1]
    assert not torch.equal(x_adv, x)
    assert (x_adv - x).abs().max() <= cfg.eps + 1e-6 and 0 <= x_adv.min() <= x_adv.max() <= 1
    assert out["loss"].item() == pytest.approx(F.cross_entropy(student.fc(x_adv.flatten(1)), y)
                                               .item(), abs=1e-6)


def test_akd_teacher_sees_the_students_pgd_example_and_the_loss_is_hintons():
    cfg = smoke(eps=0.1, akd_temperature=1.0, akd_alpha=0.9)
    x, y = batch()
    student, teacher = Recorder(0), Recorder(1)
    out = objective(cfg, adv.AKD, teacher)(student, x, y)
    x_adv = student.seen[-1]
    assert len(teacher.seen) == 1 and torch.equal(teacher.seen[0], x_adv)
    s, t = student.fc(x_adv.flatten(1)), teacher.fc(x_adv.flatten(1))
    expected = losses.hinton_kd(s, t, y, 1.0, 0.9)["loss"]
    assert out["loss"].item() == pytest.approx(expected.item(), abs=1e-6)


def test_akd_at_t1_is_cross_entropy_against_the_mixed_target_up_to_a_constant():
    # (1-α)·CE(s, y) + α·KL(p_t || p_s) = CE(s, (1-α)·onehot + α·p_t) - α·H(p_t), by hand
    s, t, y, a = [1.0, -0.5, 0.2], [0.3, 0.9, -1.0], 1, 0.7
    ps = [math.exp(v) / sum(math.exp(w) for w in s) for v in s]
    pt = [math.exp(v) / sum(math.exp(w) for w in t) for v in t]
    mixed = [(1 - a) * (i == y) + a * pt[i] for i in range(3)]
    ce_mixed = -sum(m * math.log(p) for m, p in zip(mixed, ps, strict=True))
    entropy = -sum(p * math.log(p) for p in pt)
    out = losses.hinton_kd(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), 1.0, a)
    assert out["loss"].item() == pytest.approx(ce_mixed - a * entropy, abs=1e-6)


def test_clean_student_of_the_at_teacher_trains_on_clean_images():
    x, y = batch()
    student, teacher = Recorder(0), Recorder(1)
    objective(smoke(), adv.KD_FROM_AT, teacher)(student, x, y)
    assert torch.equal(student.seen[-1], x) and torch.equal(teacher.seen[-1], x)


def test_distilling_methods_need_their_teacher_and_malformed_objectives_are_refused():
    with pytest.raises(ValueError, match="needs its trained teacher"):
        objective(smoke(), adv.AT_TF_KD_SELF)
    with pytest.raises(ValueError, match="needs its trained teacher"):
        objective(smoke(), adv.KD_FROM_AT)
    # a loss that distils must name the training of its teacher, and one that does not
    # must not
    at = images.training_for(smoke(), adv.AT, 0)
    with pytest.raises(ValueError, match="HintonKD needs teacher"):
        networks.ObjectiveSpec(objectives.HintonKD(1.0, 0.9))
    with pytest.raises(ValueError, match="CrossEntropy takes no teacher"):
        networks.ObjectiveSpec(objectives.CrossEntropy(), teacher=at)
    with pytest.raises(ValueError, match="unknown AutoAttack attacks"):
        evaluation.AutoAttackRun(10, ("apgd-ce", "trades"))
    with pytest.raises(ValueError, match="early stopping needs held-out images and a threat"):
        dataclasses.replace(images.training_for(smoke(), adv.STANDARD, 0),
                            held_out=64, early_stop=networks.EarlyStop(64))


def test_specs_name_what_decides_each_network():
    cfg = smoke()
    akd = run_spec(cfg, adv.AKD, 0)
    assert akd["objective"]["teacher"] == run_spec(cfg, adv.AT, 0)
    assert akd["objective"]["threat"] == {"eps": cfg.eps, "step": cfg.pgd_step,
                                          "steps": cfg.pgd_steps, "mode": "train",
                                          "ramp_epochs": cfg.eps_ramp_epochs}
    assert akd["objective"]["inputs"] == "PGD examples"
    assert (akd["objective"]["loss"], akd["objective"]["temperature"],
            akd["objective"]["alpha"]) == ("hinton_kd", cfg.akd_temperature, cfg.akd_alpha)
    standard = run_spec(cfg, adv.STANDARD, 0)["objective"]
    assert standard == {"loss": "cross_entropy", "inputs": "clean images"}  # no threat
    wider = smoke(eps=0.2)
    assert run_spec(wider, adv.STANDARD, 0) == run_spec(cfg, adv.STANDARD, 0)
    assert record_spec(wider, adv.STANDARD, 0) != record_spec(cfg, adv.STANDARD, 0)
    assert run_spec(wider, adv.AT, 0) != run_spec(cfg, adv.AT, 0)
    assert run_spec(cfg, adv.AT_TF_KD_SELF, 0)["objective"]["temperature"] == \
        cfg.tf_self_temperature
    assert cfg.threat() == Threat(cfg.eps, cfg.pgd_step, cfg.pgd_steps, mode="train",
                                  ramp_epochs=cfg.eps_ramp_epochs)
    assert adv.evaluation(cfg, adv.AT, 0).pgd == Threat(cfg.eps, cfg.eval_pgd_step,
                                                        cfg.eval_pgd_steps)
    # the evaluation: PGD in eval mode at full ε with a seeded start, and, for an
    # adversarially trained row, the audit naming its reference's full training spec
    ev = record_spec(cfg, adv.AT, 0)["evaluation"]
    assert ev["pgd"] == {"eps": cfg.eps, "step": cfg.eval_pgd_step, "steps": cfg.eval_pgd_steps,
                         "mode": "eval", "ramp_epochs": 0, "seed": 0}
    assert ev["autoattack"] == {"version": "standard", "attacks": [], "images": cfg.aa_size,
                                "seed": 0}
    assert ev["square_only"] == {"images": cfg.square_size} and ev["batch"] == cfg.eval_batch
    assert ev["audit"] == {"images": cfg.audit_size, "steps": cfg.audit_steps,
                           "restarts": cfg.audit_restarts, "sweep": list(adv.sweep(cfg)),
                           "transfer_from": run_spec(cfg, adv.STANDARD, 0)}
    assert "audit" not in record_spec(cfg, adv.STANDARD, 0)["evaluation"]
    assert "audit" not in record_spec(cfg, adv.KD_FROM_AT, 0)["evaluation"]
    # optional parts appear only when used
    assert not {"held_out", "early_stop", "gradients"} & set(run_spec(cfg, adv.AT, 0))
    stopping = smoke(train_size=256, val_size=64, early_stop=True)
    assert run_spec(stopping, adv.AT, 0)["early_stop"] == {"batch": stopping.eval_batch}
    assert run_spec(stopping, adv.AT, 0)["held_out"] == 64
    assert "early_stop" not in run_spec(stopping, adv.STANDARD, 0)  # clean rows: final weights
    assert run_spec(stopping, adv.STANDARD, 0)["held_out"] == 64  # but never see those images


def test_held_out_images_are_split_off_the_end():
    cfg = smoke(train_size=256, val_size=64, early_stop=True)
    setup = images.data(cfg).load("cpu")
    (x, y), (xv, yv) = images.training_for(cfg, adv.AT, 0).split(setup)
    assert len(x) == 192 and len(xv) == 64
    assert torch.equal(torch.cat([x, xv]), setup.x_train)


@pytest.mark.parametrize("changes, message", [
    ({"early_stop": True, "val_size": 0}, "early_stop needs held-out images"),
    ({"aa_size": 600}, "aa_size 600 is larger than test_size"),
    ({"val_size": 250}, "leaves fewer than batch_size"),
    ({"eps": 0.0}, "eps: must be > 0"),
    ({"arch": "vit"}, "arch: expected one of"),
    ({"aa_attacks": ["apgd-ce", "pgd"]}, "aa_attacks: unknown ['pgd']"),
])
def test_bad_parameters_are_refused(changes, message):
    params = {**config.as_dict(smoke()), **changes}
    with pytest.raises(config.ProfileError, match=re.escape(message)):
        chapters.validate("06_adversarial_tfkd", params)


def test_mlp_is_refused_on_cifar():
    with pytest.raises(config.ProfileError, match="arch 'mlp' is for MNIST"):
        smoke(dataset="cifar10", augment="crop_flip")


def test_early_stopping_keeps_the_best_epoch(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    accs = iter([0.5, 0.8, 0.6])
    stopper = training.EarlyStopping(model, lambda m: next(accs), tmp_path / "best.pt",
                                     key="held_out_pgd_acc")
    assert stopper.best() is None
    weights = {}
    for epoch in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(epoch)
        weights[epoch] = model.weight.clone()
        assert "held_out_pgd_acc" in stopper(epoch)
    assert stopper.best() == (2, 0.8)
    assert stopper.restore() == 2 and torch.equal(model.weight, weights[2])


def rec(pgd: str, aa: str, square: str = "", flags=(), audit=()):
    """A record with per-image flags (as the evaluation writes them)."""
    return results.Record({}, {"pgd_bits": pgd, "aa_bits": aa, "square_bits": square or pgd,
                               "square_size": len(square or pgd), "aa_flags": list(flags),
                               "audit": list(audit)})


def test_masking_is_decided_by_paired_tests_on_constructed_records():
    honest = rec("1" * 60 + "0" * 40, "1" * 58 + "0" * 42)  # 2 discordant: no evidence
    assert page.masking([honest]) == []
    # 12 images kept by PGD and broken by AutoAttack, none the other way: p = 2 / 2**12
    leaky = rec("1" * 60 + "0" * 40, "1" * 48 + "0" * 52)
    (note,) = page.masking([leaky])
    assert "12 images kept by PGD fall to AutoAttack, 0 the other way" in note
    assert "McNemar p = 0.00049" in note
    # against plain AT with the same leak, it is not "more than for plain AT" ...
    assert page.masking([leaky], [leaky]) == [note]
    # ... against an AT that kept its PGD-robust images, it is (Fisher's exact test)
    notes = page.masking([leaky], [honest])
    assert len(notes) == 2 and notes[1].startswith("more than for plain AT (Fisher p =")
    square = rec("1" * 30, "1" * 30, square="1" * 10 + "0" * 20)  # Square breaks 20 PGD kept
    assert page.masking([square]) == ["black-box Square beats PGD-20 (McNemar p = 1.9e-06)"]
    assert page.masking([rec("1", "1", flags=["zero gradient"])]) == ["AutoAttack raised flags"]
    failed = rec("1", "1", audit=[{"name": "sweep", "passed": False}])
    assert page.masking([failed]) == ["audit failed: sweep"]
    records = {"standard": [honest], "at": [honest], "at_tf_kd_reg_ours": [leaky]}
    lines = page.warnings_for(records)
    assert [line.split(":")[0] for line in lines] == ["AT + Tf-KD-reg (this build's form)"]


def test_one_run_end_to_end_is_recorded_and_then_reused(monkeypatch):
    cfg = smoke(early_stop=True, val_size=64, epochs=2, aa_size=10, square_size=10)
    (at,) = [r for r in adv.plan(cfg) if r.name == "at"]
    record = at.execute(progress=False)
    m = record.metrics
    assert {"clean_acc", "pgd_acc", "aa_acc", "square_acc", "pgd_aa_gap", "aa_flags",
            "aa_after_attack", "aa_ci", "pgd_bits", "aa_bits", "audit"} <= set(m)
    assert m["aa_ci"][0] <= m["aa_acc"] <= m["aa_ci"][1]
    assert {c["name"] for c in m["audit"]} == {"sweep", "stronger PGD", "margin loss",
                                               "transfer", "black box", "zero gradients"}
    assert m["aa_acc"] <= m["aa_clean_acc"] and m["best_epoch"] in (1, 2)
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert all("held_out_pgd_acc" in h for h in m["history"])
    assert not paths.evaluation_dir("at", at.spec_hash).exists()  # chunks gone with the record
    monkeypatch.setattr(networks, "trained", lambda *a, **k: pytest.fail("retrained"))
    assert at.execute(progress=False) == record


def test_the_chapter_is_a_job_plan():
    cfg = smoke()
    planned = jobs.plan("smoke", ["06_adversarial_tfkd"])
    # the networks others learn from or are audited against go first
    assert [j.name for j in planned][:2] == ["standard", "at"]
    assert sorted((j.name, j.spec_hash) for j in planned) == sorted(
        (m.name, results.spec_hash(record_spec(cfg, m, s)))
        for m in adv.METHODS for s in cfg.seeds)
    assert all(j.path == results.record_path("smoke", adv.NAME, j.name, j.spec)
               for j in planned)
    assert runs.saved(planned) is None


def test_autoattack_and_square_run_at_the_evaluations_epsilon(monkeypatch):
    """The ε of every AutoAttack call is the threat's, never its step or another value."""
    import types

    from kdlib import attacks, evaluation

    seen = []

    def fake(model, x, y, eps, **kw):
        seen.append((eps, kw.get("square_only", False), kw.get("cap")))
        n = len(x)
        return attacks.AutoAttackResult(torch.ones(n, dtype=torch.bool),
                                        torch.ones(n, dtype=torch.bool), x, ("apgd-ce",), eps,
                                        "Linf")

    monkeypatch.setattr(attacks, "autoattack_eval", fake)
    ev = evaluation.Evaluation(attacks.Threat(0.3, 0.01, 1), evaluation.AutoAttackRun(4, cap=2),
                               square_images=2, batch=4)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 10))
    setup = types.SimpleNamespace(x_test=torch.rand(6, 1, 2, 2), y_test=torch.arange(6))
    out = evaluation.evaluate(ev, model, setup, verbose=False)
    assert seen == [(0.3, False, 2), (0.3, True, 2)]
    assert out["aa_size"] == 4 and out["square_size"] == 2
