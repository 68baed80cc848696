"""Tables 3-4, Figure 2: isolated runs, reuse of trained baselines, resume, data paths."""

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib import chapters, config, data, losses, networks, paths, results, runs, training
from kdlib.chapters import images
from kdlib.chapters import reversed_kd as ch3
from kdlib.chapters import teacher_free as ch4
from kdlib.pages import figure2 as grad_page
from kdlib.pages import image_pages as images_page
from kdlib.pages import table4 as tf_page

PROFILES = ["smoke", "quick", "paper"]
TINY = {"profile": "unit", "device": "cpu", "train_size": 128, "test_size": 64, "width": 2,
        "batch_size": 32, "epochs": 2, "grad_every": 3}
REAL_TRAIN = training.train  # before any test patches it


@pytest.fixture
def tf_cfg():
    return dataclasses.replace(ch4.Params(), **TINY)


@pytest.fixture
def re_cfg():
    return dataclasses.replace(ch3.Params(), **TINY)


class Counter:
    """Wraps training.train and counts the trainings, by their progress label."""

    def __init__(self, monkeypatch):
        self.calls: list[str] = []

        def counted(*args, **kwargs):
            self.calls.append(kwargs["desc"])
            return REAL_TRAIN(*args, **kwargs)

        monkeypatch.setattr(images.training, "train", counted)


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def checkpoint(cfg, method, seed):
    return images.training_for(cfg, method, seed).checkpoint


def trained(cfg, method, seed):
    return networks.trained(images.training_for(cfg, method, seed), "cpu", progress=False)


def run(module, cfg, method, seed=0, progress=False):
    """The record of one planned run of a chapter (computed if missing)."""
    (found,) = [r for r in module.plan(cfg) if (r.name, r.seed) == (method, seed)]
    return found.execute(progress=progress)


# --- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROFILES)
def test_gradient_chapter_has_exactly_table_4s_settings(name):
    profile = chapters.load_profile(name)
    assert config.as_dict(profile["05_gradients"]) == config.as_dict(profile["04_teacher_free"])
    # so chapter 5 looks for exactly the records chapter 4 writes
    assert [r.path for r in chapters.plan("05_gradients", profile["05_gradients"])] == \
        [r.path for r in ch4.plan(profile["04_teacher_free"])]


@pytest.mark.parametrize("name", PROFILES)
def test_chapters_3_and_4_share_the_resnet18_baseline(name):
    profile = chapters.load_profile(name)
    for seed in profile["03_reversed_kd"].seeds:
        assert checkpoint(profile["03_reversed_kd"], images.BASELINE, seed) == \
            checkpoint(profile["04_teacher_free"], images.BASELINE, seed)
        assert checkpoint(profile["03_reversed_kd"], ch3.STUDENT_BASELINE, seed) == \
            checkpoint(profile["04_teacher_free"], images.BASELINE, seed)


@pytest.mark.parametrize("changes, message", [
    ({"augment": "crop_flip"}, "mirrors images left-right"),
    ({"batch_size": 512}, "batch_size 512 is larger than train_size"),
    ({"dataset": "cifar10", "augment": "crop_flip", "train_size": 60000}, "50000"),
    ({"dataset": "svhn"}, "dataset: expected one of"),
])
def test_impossible_settings_are_refused(changes, message):
    params = {**config.as_dict(ch4.Params()), **changes}
    with pytest.raises(config.ProfileError, match=message):
        chapters.validate("04_teacher_free", params)


def test_paper_profile_is_cifar10_at_full_width():
    for chapter in ("03_reversed_kd", "04_teacher_free"):
        cfg = chapters.load_profile("paper")[chapter]
        assert (cfg.dataset, cfg.width, cfg.augment, len(cfg.seeds)) == ("cifar10", 64,
                                                                         "crop_flip", 3)
        assert images.recipe(cfg).crop_flip and images.recipe(cfg).jitter == 0


def test_official_alpha_conversion_keeps_the_loss_up_to_scale():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10) * 3, torch.randint(0, 10, (8,))
    T, alpha, mult = 6.0, 0.95, 50.0
    # the official code: nn.KLDivLoss() (reduction 'mean', over batch x classes) * T^2 * mult
    kl_mean = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum") / s.numel()
    official = (1 - alpha) * F.cross_entropy(s, y) + alpha * kl_mean * T * T * mult
    ours_alpha = images_page.batchmean_alpha(alpha, 10, mult)
    ours = losses.hinton_kd(s, t, y, T, ours_alpha)["loss"]
    scale = 1 - alpha + alpha * mult / 10
    assert official.item() == pytest.approx(scale * ours.item(), rel=1e-5)
    assert images_page.batchmean_alpha(0.6, 10) == pytest.approx(0.06 / 0.46)


def test_plan_puts_teachers_first_and_its_runs_pickle():
    cfg = dataclasses.replace(ch3.Params(), seeds=[0, 1])
    plan = ch3.plan(cfg)
    order = [(r.name, r.seed) for r in plan]
    assert order[:2] == [("baseline", 0), ("baseline", 1)] and len(order) == 8
    trained = [r.trains for r in plan]
    for i, r in enumerate(plan):
        assert all(n in trained[:i] for n in r.needs)  # every teacher is planned before
    methods = {m.name: m for m in ch3.METHODS}
    assert all(r.spec == images.training_for(cfg, methods[r.name], r.seed).spec() for r in plan)
    re_kd = [r for r in plan if r.name == "re_kd"][-1]
    copy = pickle.loads(pickle.dumps(re_kd))
    assert (copy.compute.func, copy.compute.args) == (  # the device as the profile names it
        networks.accuracy_metrics, (images.training_for(cfg, ch3.RE_KD, 1), cfg.device))
    assert copy.path == re_kd.path


# --- Figure 1 ------------------------------------------------------------------------------------

def test_figure_1_formula_and_kdlib_agree():
    curve = tf_page.virtual_teacher_curve(0.9, 10, range(1, 21))
    assert len(curve) == 20
    for part in ("correct", "incorrect"):
        diff = (curve[f"{part} (formula)"] - curve[f"{part} (kdlib)"]).abs().max()
        assert diff < 1e-6
    assert curve.loc[1.0, "correct (formula)"] == pytest.approx(0.2128, abs=5e-5)
    assert curve.loc[20.0, "correct (formula)"] == pytest.approx(0.1041, abs=5e-5)
    total = curve["correct (formula)"] + 9 * curve["incorrect (formula)"]
    assert np.allclose(total, 1.0)


# --- runs ----------------------------------------------------------------------------------------

def test_teachers_are_reused_not_retrained(tf_cfg, re_cfg, monkeypatch):
    base = run(ch4, tf_cfg, "baseline")
    g = base.metrics["gradients"]
    assert g["samples"] == 3 and len(g["layer"]) == len(g["mean_abs_grad"]) == 21  # 8 steps
    assert [s["stage"] for s in g["stage_means"]] == ["stem", "layer1", "layer2", "layer3",
                                                      "layer4", "fc"]

    counter = Counter(monkeypatch)
    self_kd = run(ch4, tf_cfg, "tf_kd_self")
    re_kd = run(ch3, re_cfg, "re_kd")
    assert counter.calls == ["tf_kd_self seed 0", "re_kd seed 0"]  # students only
    assert self_kd.spec["objective"]["teacher"] == base.spec
    assert re_kd.spec["objective"]["teacher"] == base.spec
    # chapter 3's baseline record comes from the same checkpoint, with the same numbers
    base3 = run(ch3, re_cfg, "baseline")
    assert counter.calls == ["tf_kd_self seed 0", "re_kd seed 0"]
    assert base3.spec == base.spec and base3.metrics == base.metrics
    assert base3.chapter == "03_reversed_kd" and base.chapter == "04_teacher_free"
    # records are reused too: nothing trains, nothing is evaluated again
    assert run(ch4, tf_cfg, "tf_kd_self") == self_kd and len(counter.calls) == 2


def test_gradient_chapter_reads_table_4s_records(tf_cfg, monkeypatch):
    records = runs.run_all(ch4.plan(tf_cfg), progress=False)
    grad_cfg = chapters.validate("05_gradients", config.as_dict(tf_cfg))
    assert runs.saved(chapters.plan("05_gradients", grad_cfg)) == records

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(images.training, "train", no_training)
    assert runs.run_all(chapters.plan("05_gradients", grad_cfg)) == records
    frame = grad_page.gradient_frame(records)
    table = grad_page.gradient_table(frame)
    assert list(table.index) == [grad_page.LABELS[m] for m in grad_page.GRADIENT_METHODS]
    assert table.loc[grad_page.LABELS["baseline"], "ratio to baseline"] == "1.00"
    assert len(grad_page.gradient_sentences(frame)) == len(ch4.METHODS) - 1


class SimulatedInterruptError(Exception):
    pass


def test_interrupted_run_resumes_to_identical_weights(tf_cfg, tmp_path, monkeypatch):
    method = ch4.TF_KD_SELF
    run(ch4, tf_cfg, "baseline")
    steps_per_epoch = tf_cfg.train_size // tf_cfg.batch_size

    def interrupted(*args, on_backward, **kwargs):
        def hook(step):
            on_backward(step)
            if step == steps_per_epoch + 1:  # in the middle of the second epoch
                raise SimulatedInterruptError

        return REAL_TRAIN(*args, on_backward=hook, **kwargs)

    monkeypatch.setattr(images.training, "train", interrupted)
    with pytest.raises(SimulatedInterruptError):
        run(ch4, tf_cfg, method.name)
    ckpt = checkpoint(tf_cfg, method, 0)
    resume = paths.companion(ckpt, "resume")
    assert resume.is_file() and not ckpt.is_file()
    assert paths.companion(ckpt, "grads").is_file()
    assert torch.load(resume, weights_only=False)["epoch"] == 1
    assert not results.record_path("unit", "04_teacher_free", method.name,
                                   images.training_for(tf_cfg, method, 0).spec()).is_file()

    counter = Counter(monkeypatch)  # the real loop again, counted
    resumed = run(ch4, tf_cfg, method.name)
    assert counter.calls == [f"{method.name} seed 0"] and not resume.exists()
    assert not paths.companion(ckpt, "grads").exists()  # the gradient sums went with it
    weights = state(trained(tf_cfg, method, 0)[0])

    # the same run, uninterrupted, in fresh folders
    monkeypatch.setenv("KDLIB_RESULTS", str(tmp_path / "r2"))
    monkeypatch.setenv("KDLIB_CHECKPOINTS", str(tmp_path / "m2"))
    whole = run(ch4, tf_cfg, method.name)
    assert counter.calls == [f"{method.name} seed 0", "baseline seed 0", f"{method.name} seed 0"]
    reference = state(trained(tf_cfg, method, 0)[0])
    assert reference.keys() == weights.keys()
    assert all(torch.equal(reference[k], weights[k]) for k in reference)
    for key in ("test_acc", "gradients", "final_train_loss"):
        assert resumed.metrics[key] == whole.metrics[key], key
    assert [h["loss"] for h in resumed.metrics["history"]] == \
        [h["loss"] for h in whole.metrics["history"]]


# --- CIFAR-10 ------------------------------------------------------------------------------------

def test_cifar10_without_data_fails_clearly_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "empty"))

    def offline(root):
        raise OSError("no network")

    def no_training(*a, **k):
        raise AssertionError("trained without data")

    monkeypatch.setattr(data, "_cifar10_torchvision", offline)
    monkeypatch.setattr(images.training, "train", no_training)
    cfg = dataclasses.replace(chapters.load_profile("paper")["04_teacher_free"], profile="unit")
    for method in ("baseline", "tf_kd_self"):
        with pytest.raises(data.DatasetUnavailableError, match="CIFAR-10 could not be loaded"):
            run(ch4, cfg, method)
    with pytest.raises(data.DatasetUnavailableError, match=data.CIFAR10_FOLDER):
        images.data(cfg).load("cpu")


def write_cifar(root, per_batch=20, test=16):
    """A tiny CIFAR-10 folder in the genuine python-pickle format."""
    folder = root / data.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else per_batch
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    # a stand-in: the MD5 of each of its files, as write_cifar10_folder gives one
    (folder / data.STAND_IN_MANIFEST).write_text(json.dumps(
        {name: data.md5(folder / name) for name in names}))


def test_cifar10_runs_with_crop_flip_and_the_teacher_sees_the_augmented_batch(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    write_cifar(tmp_path / "data")
    cfg = dataclasses.replace(ch4.Params(), profile="unit", device="cpu",
                              dataset="cifar10", augment="crop_flip", train_size=100,
                              test_size=16, width=2, batch_size=20, epochs=1)
    setup = images.data(cfg).load("cpu")
    assert setup.x_train.shape == (100, 3, 32, 32) and len(setup.y_test) == 16
    record = run(ch4, cfg, "tf_kd_self")
    assert record.spec["recipe"]["crop_flip"] and record.metrics["test_size"] == 16

    seen = {"teacher": [], "student": []}
    teacher = cfg.network("resnet18").build()
    student = cfg.network("resnet18").build()
    for name, net in (("teacher", teacher), ("student", student)):
        net.register_forward_pre_hook(lambda m, inp, name=name: seen[name].append(inp[0].clone()))
    objective = images.training_for(cfg, ch4.TF_KD_SELF, 0).objective.build(teacher)
    training.train(student, objective, setup.x_train, setup.y_train, images.recipe(cfg), seed=0,
                   progress=False)
    assert len(seen["student"]) == len(seen["teacher"]) == 5
    assert all(torch.equal(a, b) for a, b in zip(seen["teacher"], seen["student"], strict=True))
    originals = {bytes(x.numpy().tobytes()) for x in setup.x_train}
    assert any(bytes(x.numpy().tobytes()) not in originals for x in seen["student"][0])
