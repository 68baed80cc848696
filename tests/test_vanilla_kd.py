"""The MNIST runs of Table 1 end to end on a small real subset: caching and teacher reuse."""

import dataclasses

import pytest

from kdlib import attacks, networks, objectives, results, runs, training
from kdlib.chapters import mnist
from kdlib.chapters import vanilla_kd as chapter


@pytest.fixture(scope="module")
def cfg():
    return dataclasses.replace(chapter.Params(), profile="unit", train_size=512, device="cpu")


def by_name(plan):
    return {(r.name, r.seed): r for r in plan}


def test_runs_are_recorded_and_reused(cfg, monkeypatch):
    plan = by_name(chapter.plan(cfg))
    kd = plan[("student_kd", 0)].execute(progress=False)
    # distilling trained (and cached) the teacher it needed
    assert mnist.teacher(cfg, 0).checkpoint.is_file()
    assert 0.0 <= kd.metrics["test_acc"] <= 1.0
    assert kd.spec["objective"]["teacher"] == mnist.teacher(cfg, 0).spec()
    assert kd.spec["objective"]["teacher_logits"] == "computed once"

    # from now on nothing may train: every call must come from a record or checkpoint
    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(training, "train", no_training)
    teacher = plan[("teacher", 0)].execute(progress=False)  # weights from the checkpoint cache
    assert teacher.metrics["history"]  # the loss history travelled with the weights
    assert plan[("student_kd", 0)].execute() == kd
    assert runs.saved(list(plan.values())) is None  # the no-KD student is still missing


def test_students_differ_only_in_their_objective(cfg):
    plain = chapter.student(cfg, 1, None)
    kd = chapter.student(cfg, 1, objectives.HintonKD(4.0, 0.9))
    assert dataclasses.replace(kd, method=plain.method, objective=plain.objective) == plain
    assert kd.objective == networks.ObjectiveSpec(objectives.HintonKD(4.0, 0.9),
                                                  teacher=mnist.teacher(cfg, 1), teacher_once=True)
    assert results.spec_hash(plain.spec()) != results.spec_hash(kd.spec())


def test_the_plan_declares_every_run_once_with_its_teacher(cfg):
    cfg = dataclasses.replace(cfg, seeds=[0, 1], sweep_temperatures=[2.0, 8.0],
                              sweep_alphas=[0.5])
    plan = chapter.plan(cfg)
    assert [r.name for r in plan] == (["teacher"] * 2 + ["student", "student_kd"] * 2
                                      + ["student_kd_sweep"] * 2)
    assert len({r.path for r in plan}) == len(plan)
    teacher = {r.seed: r.trains for r in plan if r.name == "teacher"}
    assert all(r.needs == (teacher[r.seed],) for r in plan if "kd" in r.name)
    sweep = [r.spec["objective"] for r in plan if r.name == "student_kd_sweep"]
    assert [(k["temperature"], k["alpha"]) for k in sweep] == [(2.0, 0.5), (8.0, 0.5)]


def test_a_teacher_whose_logits_are_computed_once_is_priced_once_and_checked(cfg):
    kd = chapter.student(cfg, 0, objectives.HintonKD(4.0, 0.9))
    teacher = mnist.teacher(cfg, 0)
    work = kd.work()
    teacher_macs = networks.macs(teacher.network, (1, 28, 28))
    assert teacher_macs == 2 * 784 * 1200 // 2 + 1200 * 1200 + 1200 * 10  # Table 1's 2,392,800
    assert work.teacher_macs == 0 and work.extra_train_macs == teacher_macs * cfg.train_size
    per_batch = dataclasses.replace(kd, objective=dataclasses.replace(kd.objective,
                                                                      teacher_once=False))
    assert per_batch.work().teacher_macs == teacher_macs and not per_batch.work().extra_train_macs
    for bad in ({"teacher": None}, {"loss": objectives.CrossEntropy(), "teacher": None},
                {"loss": objectives.LabelSmoothing(0.1)},
                {"threat": attacks.Threat(0.1, 0.025, 3)}):
        with pytest.raises(ValueError):
            dataclasses.replace(kd.objective, **bad)
    with pytest.raises(ValueError, match="un-augmented"):
        dataclasses.replace(kd, recipe=dataclasses.replace(kd.recipe, jitter=1))
