"""The design pairs: runs of one seed share their initial weights, batch order, augmentation
and PGD start noise, so a paired test on per-seed differences is the right analysis. If a
change breaks that (a method that draws its own random numbers, a seed that depends on the
method), these tests fail."""

import dataclasses
import hashlib

import pytest
import torch

from kdlib import attacks, chapters, networks, training
from kdlib.chapters import adversarial, images, teacher_free

pytestmark = pytest.mark.usefixtures("one_thread")


def digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


class Tape:
    """What one training drew: the initial weights, each batch as the model first saw it,
    and the random state at each PGD start."""

    def __init__(self):
        self.weights = ""
        self.batches: list[str] = []
        self.pgd_starts: list[str] = []


def record(run: networks.Training, monkeypatch) -> Tape:
    """Train `run` for its recipe and tape what it drew (its teacher is trained first)."""
    tape = Tape()
    teacher = (networks.trained(run.objective.teacher, "cpu", progress=False)[0]
               if run.objective.teacher else None)
    real_pgd = attacks.pgd

    def pgd(model, x, y, *args, **kwargs):
        if kwargs.get("generator") is None:  # training's PGD draws from the global stream
            tape.pgd_starts.append(digest(torch.get_rng_state()))
        return real_pgd(model, x, y, *args, **kwargs)

    objective = run.objective.build(teacher)

    def taped(model, x, y):
        tape.batches.append(digest(x))  # the batch the loop drew, augmented, before any attack
        return objective(model, x, y)

    if isinstance(objective, training.EpochObjective):
        taped.start_epoch = objective.start_epoch
    setup = run.data.load("cpu")
    (x, y), _ = run.split(setup)
    model = training.seeded(run.seed, run.network.build)
    tape.weights = digest(torch.cat([p.flatten() for p in model.state_dict().values()
                                     if p.is_floating_point()]))
    with monkeypatch.context() as m:
        m.setattr(attacks, "pgd", pgd)
        training.train(model, taped, x, y, run.recipe, seed=run.seed, progress=False)
    return tape


@pytest.fixture
def clean_cfg():
    cfg = chapters.load_profile("smoke")["04_teacher_free"]
    return dataclasses.replace(cfg, train_size=128, batch_size=32, epochs=2, width=2)


@pytest.fixture
def robust_cfg():
    cfg = chapters.load_profile("smoke")["06_adversarial_tfkd"]
    return dataclasses.replace(cfg, train_size=160, val_size=32, batch_size=32, epochs=2,
                               width=8, early_stop=True, pgd_steps=2)


def test_clean_rows_of_one_seed_share_weights_batches_and_augmentation(clean_cfg, monkeypatch):
    rows = (images.BASELINE, teacher_free.TF_KD_REG, teacher_free.TF_KD_SELF,
            teacher_free.LABEL_SMOOTHING)
    tapes = [record(images.training_for(clean_cfg, m, 3), monkeypatch) for m in rows]
    assert len(tapes[0].batches) == 2 * (128 // 32)
    for tape in tapes[1:]:
        assert tape.weights == tapes[0].weights
        assert tape.batches == tapes[0].batches  # same order, same jitter
    other_seed = record(images.training_for(clean_cfg, images.BASELINE, 4), monkeypatch)
    assert other_seed.weights != tapes[0].weights and other_seed.batches != tapes[0].batches


def test_adversarial_rows_of_one_seed_share_weights_batches_and_pgd_noise(robust_cfg,
                                                                          monkeypatch):
    rows = (adversarial.AT, adversarial.AKD, adversarial.AT_TF_KD_REG,
            adversarial.AT_TF_KD_SELF, adversarial.AT_LABEL_SMOOTHING)
    tapes = [record(images.training_for(robust_cfg, m, 5), monkeypatch) for m in rows]
    steps = 2 * ((160 - 32) // 32)
    assert len(tapes[0].pgd_starts) == steps and len(set(tapes[0].pgd_starts)) == steps
    for tape in tapes[1:]:
        assert tape.weights == tapes[0].weights
        assert tape.batches == tapes[0].batches  # same order of clean batches
        assert tape.pgd_starts == tapes[0].pgd_starts  # the same random starts, in order
    # the clean rows see the same clean batches as the adversarial rows are drawn from
    clean = record(images.training_for(robust_cfg, adversarial.STANDARD, 5), monkeypatch)
    assert clean.weights == tapes[0].weights and len(clean.batches) == steps
    other_seed = record(images.training_for(robust_cfg, adversarial.AT, 6), monkeypatch)
    assert other_seed.pgd_starts != tapes[0].pgd_starts
