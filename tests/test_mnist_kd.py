"""The MNIST runs end to end on a small real subset: caching and teacher reuse."""

import dataclasses

import pytest

from kdlib import checkpoints, config, mnist_kd, results


@pytest.fixture(scope="module")
def cfg():
    return dataclasses.replace(config.VanillaKD(), profile="unit", train_size=512, device="cpu")


def test_runs_are_recorded_and_reused(cfg, monkeypatch):
    setup = mnist_kd.load(cfg)
    kd = mnist_kd.student(cfg, 0, setup, 4.0, 0.9, progress=False)
    # distilling trained (and cached) the teacher it needed
    assert checkpoints.checkpoint_path("mnist-teacher", mnist_kd.teacher_spec(cfg, 0)).is_file()
    assert 0.0 <= kd["metrics"]["test_acc"] <= 1.0
    assert kd["spec"]["kd"]["teacher"] == mnist_kd.teacher_spec(cfg, 0)

    # from now on nothing may train: every call must come from a record or checkpoint
    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(mnist_kd.training, "train", no_training)
    teacher = mnist_kd.teacher_record(cfg, 0, setup)  # weights from the checkpoint cache
    assert teacher["metrics"]["history"]  # the loss history travelled with the weights
    assert mnist_kd.student(cfg, 0, setup, 4.0, 0.9) == kd
    assert mnist_kd.saved_records(cfg) is None  # the no-KD student is still missing


def test_student_specs_differ_only_in_the_kd_term(cfg):
    plain, kd = mnist_kd.student_spec(cfg, 1), mnist_kd.student_spec(cfg, 1, 4.0, 0.9)
    assert {k: v for k, v in kd.items() if k != "kd"} == plain
    assert results.spec_hash(plain) != results.spec_hash(kd)
