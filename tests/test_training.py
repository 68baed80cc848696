"""The training loop: determinism, resume, schedule and objectives."""

import dataclasses
from pathlib import Path

import pytest
import torch

from kdlib import models, objectives, training

#: Cross-entropy on the labels, the plain objective.
CE = objectives.CrossEntropy().objective()


def toy_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = (x.mean(dim=(1, 2, 3)) * 20).long() % 10
    return x, y


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


RECIPE = training.Recipe(epochs=3, batch_size=32, lr=0.05, jitter=1)


def trained(seed, recipe=RECIPE, **kw):
    torch.manual_seed(123)  # same initial weights whatever the seed under test
    model = models.MLP([784, 32, 10], dropout=0.2)
    x, y = toy_data()
    hist = training.train(model, CE, x, y, recipe, seed=seed,
                          progress=False, **kw)
    return model, hist


def test_same_seed_gives_identical_weights():
    a, ha = trained(0)
    b, hb = trained(0)
    assert torch.equal(weights(a), weights(b))
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]


def test_different_seed_gives_different_weights():
    assert not torch.equal(weights(trained(0)[0]), weights(trained(1)[0]))


class SimulatedInterruptError(Exception):
    pass


def interrupt_in_epoch(epoch: int, steps_per_epoch: int = 256 // 32):
    """An ``on_backward`` hook that stops training in the middle of `epoch` (from 1)."""
    def hook(step: int) -> None:
        if step == (epoch - 1) * steps_per_epoch + steps_per_epoch // 2:
            raise SimulatedInterruptError

    return hook


def interrupted(seed, checkpoint, recipe=RECIPE, epoch=2):
    with pytest.raises(SimulatedInterruptError):
        trained(seed, recipe=recipe, checkpoint=checkpoint, on_backward=interrupt_in_epoch(epoch))


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    full, hist_full = trained(0)
    ckpt = tmp_path / "resume.pt"
    interrupted(0, ckpt)  # in the middle of epoch 2: epoch 1 is saved
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed, hist = trained(0, checkpoint=ckpt)
    assert torch.equal(weights(full), weights(resumed))
    assert [h["loss"] for h in hist] == [h["loss"] for h in hist_full]


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path):
    ckpt = tmp_path / "resume.pt"
    interrupted(0, ckpt)
    other = training.Recipe(epochs=3, batch_size=32, lr=0.1, jitter=1)
    with pytest.raises(ValueError, match="another recipe"):
        trained(0, recipe=other, checkpoint=ckpt)


def test_training_lowers_the_loss():
    _, hist = trained(0, recipe=training.Recipe(epochs=8, batch_size=32, lr=0.05))
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_lr_schedules():
    r = training.Recipe(epochs=10, warmup_epochs=1, schedule="cosine")
    f = [training.lr_factor(r, s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[-1] < 0.01 and all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    step = training.Recipe(epochs=10, schedule="step", milestones=(0.5,), gamma=0.1)
    assert training.lr_factor(step, 10, 100, 10) == 1.0
    assert training.lr_factor(step, 60, 100, 10) == pytest.approx(0.1)


def test_distillation_objective_uses_frozen_teacher():
    teacher = models.MLP([784, 16, 10])
    before = weights(teacher).clone()
    student = models.MLP([784, 8, 10])
    x, y = toy_data(64)
    training.train(student, objectives.HintonKD(4.0, 0.9).objective(teacher), x, y,
                   training.Recipe(epochs=1, batch_size=32), seed=0, progress=False)
    assert torch.equal(before, weights(teacher))  # the teacher never changes


def test_accuracy_and_predict_restore_train_mode():
    model = models.MLP([784, 10], dropout=0.5).train()
    x, y = toy_data(50)
    acc = training.accuracy(model, x, y)
    assert 0.0 <= acc <= 1.0 and model.training
    assert training.predict(model, x, batch_size=7).shape == (50, 10)


def test_batch_larger_than_data_is_an_error():
    with pytest.raises(ValueError, match="larger than"):
        trained(0, recipe=training.Recipe(epochs=1, batch_size=10_000))


def test_precomputed_teacher_logits_give_the_same_training():
    torch.manual_seed(5)
    teacher = models.MLP([784, 16, 10])
    x, y = toy_data(128)
    recipe = training.Recipe(epochs=2, batch_size=32)
    a = training.seeded(0, lambda: models.MLP([784, 8, 10]))
    b = training.seeded(0, lambda: models.MLP([784, 8, 10]))
    ha = training.train(a, objectives.HintonKD(4.0, 0.7).objective(teacher), x, y, recipe, seed=0,
                        progress=False)
    targets = {"labels": y, "teacher_logits": training.predict(teacher, x)}
    hb = training.train(b, objectives.HintonKD(4.0, 0.7).from_logits(), x, targets, recipe,
                        seed=0, progress=False)
    torch.testing.assert_close(weights(a), weights(b), atol=1e-5, rtol=1e-4)
    assert ha[-1]["kd"] == pytest.approx(hb[-1]["kd"], rel=1e-4)


def test_compile_appears_in_the_spec_only_when_set():
    assert "compile" not in training.Recipe(epochs=1).as_dict()
    assert training.Recipe(epochs=1, compile=True).as_dict()["compile"] is True
    assert training.Recipe(epochs=1).as_dict()["engine"] == "fast"  # the default engine


def watching(seen: list, dropouts: set, layouts: list | None = None):
    """A supervised objective that records the logits' dtype, the dropout modules in use
    and whether the batch is channels-last."""

    def objective(model, x, y):
        logits = model(x)
        seen.append(logits.dtype)
        dropouts.update(type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout))
        if layouts is not None:
            layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        return {"loss": torch.nn.functional.cross_entropy(logits.float(), y)}

    return objective


def run_engine(recipe, dropout, objective=None):
    torch.manual_seed(123)
    model = models.MLP([784, 32, 10], dropout=dropout)
    x, y = toy_data()
    training.train(model, objective or CE, x, y, recipe, seed=0,
                   progress=False)
    return weights(model)


def test_each_engine_means_what_it_says_on_each_device():
    fp32, fast, bf16 = (dataclasses.replace(RECIPE, engine=e) for e in ("float32", "fast", "bf16"))
    E = training.Engine
    assert training.engine_for("cpu", fp32) == E(False, False, False, False, False)
    assert training.engine_for("cpu", fast) == E(False, False, True, True, False)
    assert training.engine_for("cpu", bf16) == E(True, True, True, True, False)
    assert training.engine_for("cuda", fp32) == E(False, True, True, False, False)
    assert training.engine_for("cuda", fast) == E(True, True, True, False, False)


def test_float32_engine_is_the_textbook_loop():
    seen, dropouts = [], set()
    fp32 = dataclasses.replace(RECIPE, engine="float32")
    run_engine(fp32, 0.2, watching(seen, dropouts))
    assert set(seen) == {torch.float32} and dropouts == {torch.nn.Dropout}


def test_cpu_fast_engine_is_deterministic_float32_and_close_to_the_textbook_loop():
    fast = dataclasses.replace(RECIPE, engine="fast")
    assert torch.equal(run_engine(fast, 0.2), run_engine(fast, 0.2))  # seeded: bit-equal
    seen, dropouts = [], set()
    run_engine(fast, 0.2, watching(seen, dropouts))
    assert set(seen) == {torch.float32} and dropouts == {models.MaskDropout}
    # without dropout only the fused SGD differs from the default loop: in the last bits
    fp32 = dataclasses.replace(RECIPE, engine="float32")
    assert torch.allclose(run_engine(fast, 0.0), run_engine(fp32, 0.0), atol=1e-4)


def test_bf16_engine_trains_in_bf16_with_float32_weights():
    bf16 = training.Recipe(epochs=8, batch_size=32, lr=0.05, engine="bf16")
    seen, dropouts = [], set()
    torch.manual_seed(123)
    model = models.MLP([784, 32, 10], dropout=0.2)
    x, y = toy_data()
    hist = training.train(model, watching(seen, dropouts), x, y, bf16, seed=0, progress=False)
    assert set(seen) == {torch.bfloat16}  # matrix products in bf16 under autocast
    assert dropouts == {models.MaskDropout}  # the cheap masks while training...
    assert {type(m) for m in model.net} >= {torch.nn.Dropout}  # ...and the model as it was
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert hist[-1]["loss"] < hist[0]["loss"]


def test_the_cuda_engine_runs_its_branch_on_a_cpu(tmp_path):
    """What the loop does on a GPU, executed here: bf16 autocast, channels-last batches and
    weights, fused SGD, and a resume that continues bit for bit."""
    cuda = training.engine_for("cuda", RECIPE)
    x, y = torch.rand(64, 3, 8, 8), torch.randint(0, 10, (64,))
    recipe = training.Recipe(epochs=2, batch_size=16, lr=0.05, crop_flip=True)

    def net():
        torch.manual_seed(0)
        return models.resnet18(width=2, normalize=((0.5,) * 3, (0.25,) * 3))

    seen, layouts = [], []
    model = net()
    training.train(model, watching(seen, set(), layouts), x, y, recipe, seed=0,
                   progress=False, engine=cuda)
    assert set(seen) == {torch.bfloat16} and all(layouts)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # interrupted after epoch 1 and resumed: the same weights as the run straight through
    ckpt = tmp_path / "resume.pt"
    resumed = net()
    with pytest.raises(SimulatedInterruptError):
        training.train(resumed, CE, x, y, recipe, seed=1, progress=False,
                       engine=cuda, checkpoint=ckpt, on_backward=interrupt_in_epoch(2, 4))
    training.train(resumed, CE, x, y, recipe, seed=1, progress=False,
                   engine=cuda, checkpoint=ckpt)
    whole = net()
    training.train(whole, CE, x, y, recipe, seed=1, progress=False,
                   engine=cuda)
    assert torch.equal(weights(resumed), weights(whole))


def test_auto_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch):
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: False)
    for units, engine in ((True, "bf16"), (False, "fast")):
        monkeypatch.setattr(training, "cpu_has_bf16", lambda units=units: units)
        assert training.engine_here("auto") == engine
        assert [training.engine_here(e) for e in ("float32", "fast", "bf16")] == \
            ["float32", "fast", "bf16"]
    monkeypatch.setattr(training.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    assert training.engine_here("auto") == "fast"  # bf16 autocast on a GPU already


def test_a_onednn_limit_below_bf16_withholds_the_units(monkeypatch):
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if " avx512_bf16" not in flags and " amx_bf16" not in flags:
        pytest.skip("this CPU has no bf16 matrix units")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert training.cpu_has_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # AMX hidden, AVX-512 BF16 kept
    assert training.cpu_has_bf16()
    for lower in ("AVX2", "AVX512_CORE", "avx512_core_vnni"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", lower)
        assert not training.cpu_has_bf16()


def test_a_spec_names_the_engine_that_ran_never_auto():
    from kdlib import chapters

    cfgs = chapters.load_profile("quick")
    assert cfgs["03_reversed_kd"].engine == "auto"
    for chapter in ("03_reversed_kd", "04_teacher_free"):
        for run in chapters.plan(chapter, cfgs[chapter]):
            assert run.spec["recipe"]["engine"] == training.engine_here("auto")


def test_a_loaded_network_is_measured_in_the_layout_its_training_used():
    """``as_trained`` gives a loaded (plain-layout) network the layout ``train`` leaves, so a
    run measured from its checkpoint matches one measured right after training."""
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    for engine, conv in (("bf16", True), ("float32", False), ("fast", False)):
        recipe = training.Recipe(epochs=1, batch_size=32, lr=0.1, engine=engine)
        net = training.seeded(0, lambda: models.SmallCNN(4))
        training.train(net, CE, x, y, recipe, seed=0, progress=False)
        stored = training.seeded(0, lambda: models.SmallCNN(4))
        stored.load_state_dict(net.state_dict())
        assert stored.features[3].weight.is_contiguous()
        training.as_trained(stored, recipe)
        for a, b in zip(net.parameters(), stored.parameters(), strict=True):
            assert a.stride() == b.stride()
        assert stored.features[3].weight.is_contiguous(memory_format=torch.channels_last) == conv
    mlp = models.student_mlp()
    training.as_trained(mlp, training.Recipe(epochs=1, batch_size=32, lr=0.1, engine="bf16"))
    assert all(p.is_contiguous() for p in mlp.parameters())
