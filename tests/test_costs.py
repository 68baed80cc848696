"""The cost model of a profile, the benchmark's report and the appendix page."""

import dataclasses
import json
import os

import pytest
import torch

from benchmarks import run as bench
from kdlib import chapters, models, runs
from kdlib import paper as paper_values
from kdlib.tooling import book, costs, measured

#: MNIST's test images, which every run of chapters 1 and 2 evaluates on.
MNIST_TEST = 10_000


def by_name(rows):
    return {(r.chapter, r.what): r for r in rows}


def test_training_flops_follow_the_stated_convention():
    paper = chapters.load_profile("paper")["01_vanilla_kd"]
    teacher = by_name(costs.rows("paper"))[("01_vanilla_kd", "teacher")]
    macs = models.count_cost(models.teacher_mlp(), (1, 28, 28)).macs
    assert teacher.runs == len(paper.seeds)
    train = 6 * macs * paper.train_size * paper.teacher_epochs
    test = 2 * macs * MNIST_TEST  # and each run evaluates it on the test images
    assert teacher.flops == len(paper.seeds) * (train + test)


def test_work_is_priced_by_hand():
    assert costs.eval_flops(runs.Work(10, trained_images=3)) == 0  # training is priced apart
    assert costs.eval_flops(runs.Work(10, forwards=3)) == 60
    assert costs.train_flops(runs.Work(10, forwards=3)) == 0
    assert costs.train_flops(runs.Work(10, trained_images=3, extra_train_macs=7)) == 180 + 14
    clean = sum(v[0] for v in paper_values.TABLE5.values()) / len(paper_values.TABLE5)
    robust = sum(v[1] for v in paper_values.TABLE5.values()) / len(paper_values.TABLE5)
    aa = runs.Work(10, autoattack=("apgd-ce", "apgd-t"), autoattack_images=4, square_images=3)
    assert costs.eval_flops(aa) == pytest.approx(20 * (
        4 * (clean * 300 + robust * 4 * 300 + robust * 9 * 300) + 3 * robust * 5000))
    standard = runs.Work(10, autoattack_images=1)
    assert costs.eval_flops(standard) == pytest.approx(
        20 * (clean * 300 + robust * 2700 + robust * 2700 + robust * 5000))


def test_a_shared_network_is_counted_once():
    rows = by_name(costs.rows("paper"))
    teacher = rows[("02_omitted_digit", "teacher")]
    seeds = chapters.load_profile("paper")["02_omitted_digit"].seeds
    macs = models.count_cost(models.teacher_mlp(), (1, 28, 28)).macs
    # chapter 1 trains the same checkpoints: chapter 2 pays only for evaluating them
    assert teacher.flops == len(seeds) * 2 * macs * MNIST_TEST
    assert "trained by 01_vanilla_kd" in teacher.note
    base3, base4 = rows[("03_reversed_kd", "baseline")], rows[("04_teacher_free", "baseline")]
    assert base3.flops > 1000 * base4.flops > 0  # chapter 4 pays only for evaluating it
    assert not any(r.chapter == "05_gradients" for r in rows.values())  # chapter 4's runs


def test_assumed_rate_and_autoattack_estimate():
    # 20,000 ResNet18 images/s at 6 x 0.555 GMAC each is about 67 TFLOP/s
    assert 60e12 < costs.achieved_flops(20_000) < 70e12
    assert costs.autoattack_forwards(1.0, 0.0) == 300
    assert costs.autoattack_forwards(1.0, 1.0) == 300 + 5400 + 5000
    # a custom selection keeps pyautoattack's defaults: APGD-CE with 5 restarts, 4 of them
    # on the points still robust, then APGD-T's 9 targets on those
    assert costs.autoattack_forwards(0.5, 0.25, ["apgd-ce", "apgd-t"]) == (
        0.5 * 300 + 0.25 * 4 * 300 + 0.25 * 9 * 300)


def test_paper_cost_table_covers_every_chapter():
    rows = costs.rows("paper")
    assert {r.chapter for r in rows} == set(chapters.names()) - {"05_gradients"}
    md = costs.cost_markdown("paper")
    assert "**total**" in md and "TFLOP/s" in md
    one = costs.cost_markdown("paper", chapters={"06_adversarial_tfkd"})
    assert "06_adversarial_tfkd" in one and "01_vanilla_kd" not in one


def test_benchmarks_page_is_written(tmp_path):
    (tmp_path / "book").mkdir()
    book.write_benchmarks_page(tmp_path)
    text = (tmp_path / "book" / "benchmarks.md").read_text()
    assert text.startswith("# Speed and cost") and "## What the paper profile costs" in text
    assert "## On a GPU" in text


def test_the_cost_model_takes_the_measured_gpu_rate(tmp_path, monkeypatch):
    res = {"created_utc": "2026-11-26T03:22:30+00:00", "git_commit": "915c38c2f0",
           "machine": {"gpu": "NVIDIA H200"},
           "cases": {"resnet18": {"kdlib_images_per_s": 10_000.0}}}
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(res))
    rate = measured.gpu_rate(path)
    assert (rate.images_per_s, rate.gpu, rate.measured) == (10_000.0, "H200", True)
    assert "915c38c" in rate.source and "2026-11-26" in rate.source
    # half the assumed images/s: twice the hours
    monkeypatch.setattr(measured, "GPU_RESULTS", path)
    assert costs.achieved_flops() == pytest.approx(costs.achieved_flops(20_000) / 2)
    md = costs.cost_markdown("paper", chapters={"01_vanilla_kd"})
    assert "| H200 hours |" in md and "10,000 images/s" in md and "measured by" in md
    missing = measured.gpu_rate(tmp_path / "absent.json")
    assert (missing.images_per_s, missing.measured) == (measured.ASSUMED_IMAGES_PER_S, False)
    assert "assumption" in missing.source


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_benchmark_runs_end_to_end_at_toy_size(one_thread, cpu_bf16):
    s = bench.Settings(mlp_warmup=1, mlp_steps=2, resnet_width=4, resnet_warmup=1,
                       resnet_steps=1, pgd_batch=64, pgd_steps=2, repeats=1, matmul_n=128,
                       batch_size=32, cpu_bf16=cpu_bf16)
    res = bench.run(s, torch.device("cpu"), quick=True, log=lambda _: None)
    assert set(res["ratios"]) >= set(bench.TARGETS)
    assert all(v > 0 for v in res["ratios"].values())
    assert ("mlp_fast" in res["ratios"]) == cpu_bf16
    assert {"mlp_float32", "resnet18_float32", "mlp_float32_peak_fraction"} <= set(res["ratios"])
    md = bench.render_markdown(res)
    assert "| measurement | kdlib | reference |" in md and "`num_workers=0`" in md
    assert md.count("default `fast` engine") >= 2
    assert md.count("textbook `float32` engine (for-loop SGD), images/s") == 2
    assert ("`bf16` engine, bf16 autocast, fused SGD" in md) == cpu_bf16


def test_gpu_benchmark_runs_at_toy_size_on_a_cpu(one_thread):
    """Every case of benchmarks.gpu through the chapters' code, tiny; the report renders."""
    from benchmarks import gpu

    env = {k: os.environ.get(k) for k in ("KDLIB_DATA", "KDLIB_CHECKPOINTS")}
    cpu = torch.device("cpu")
    s = bench.Settings(resnet_width=4, resnet_warmup=1, resnet_steps=1, repeats=1,
                       batch_size=16)
    cases = {"peak_bf16_tflops": 1.0,
             **{a: gpu.throughput(a, s, cpu) for a in ("resnet18", "resnet50")},
             "resnet18_compiled": {"error": "not run here"},
             "chapter4_epoch": gpu.chapter4_epoch(cpu, train=256, test=32, width=4),
             "chapter6_at_epoch": gpu.chapter6_at_epoch(cpu, train=1200, width=4)}
    assert set(cases["chapter4_epoch"]["methods"]) == {"baseline", "tf_kd_reg",
                                                       "tf_kd_self"}
    assert cases["chapter6_at_epoch"]["train_images"] == 200  # 1,000 held out
    res = {"created_utc": "now", "git_commit": "abc", "machine": {"gpu": "none",
           "torch": torch.__version__}, "settings": dataclasses.asdict(s), "cases": cases}
    md = gpu.render_markdown(res)
    assert "resnet50 (CIFAR form, width 4)" in md and "PGD-7 adversarial" in md
    assert {k: os.environ.get(k) for k in env} == env  # the scratch data folder is undone


def test_pgd_is_priced_as_the_attack_runs():
    """``flops.pgd_forwards`` counts what :func:`kdlib.attacks.robust_flags_pgd` does per
    image: a forward and a backward pass (two forwards' worth) per step, then one forward."""
    from kdlib import attacks, flops

    seen = {"forward": 0, "backward": 0}

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = models.student_mlp()

        def forward(self, x):
            seen["forward"] += len(x)
            seen["backward"] += len(x) * torch.is_grad_enabled()
            return self.net(x)

    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    for steps in (1, 4, 20):
        seen.update(forward=0, backward=0)
        attacks.robust_flags_pgd(Counting(), x, y, 0.1, 0.02, steps, batch_size=4)
        assert seen["forward"] + 2 * seen["backward"] == len(x) * flops.pgd_forwards(steps)


def test_a_run_is_priced_from_the_values_that_describe_it():
    """Chapter 6's work follows its training and evaluation values, not the profile's keys:
    change the evaluation's PGD steps and its forward passes move by 3 per step per image."""
    from kdlib import evaluation

    (run,) = [r for r in chapters.plan("06_adversarial_tfkd", chapters.load_profile("smoke")[
        "06_adversarial_tfkd"]) if r.name == "at"][:1]
    net, ev = run.compute.args[:2]
    more = dataclasses.replace(ev, pgd=dataclasses.replace(ev.pgd, steps=ev.pgd.steps + 5))
    gained = evaluation.robust_work(net, more).forwards - evaluation.robust_work(net, ev).forwards
    assert gained == net.data.test_size * 3 * 5
    assert evaluation.robust_work(net, ev) == run.work
