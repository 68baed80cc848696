"""The paper-shape check: every paper code path kept, its cost bounded in FLOPs on any CPU."""

import dataclasses

import pytest

from kdlib import chapters, config, flops, paths, robustness, runs
from kdlib.evaluation import AutoAttackRun
from kdlib.tooling import shape

#: What the shape may change in a chapter: the amount of work (each chapter's `tiny`), the
#: seeds, and, for the ResNet chapters, the precision picked for the CPU at hand.
SHRUNK = {"seeds", "engine"}


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    path = shape.profile(tmp_path_factory.mktemp("shape"), engine="fast")
    return chapters.load_profile(path), chapters.load_profile("paper")


def test_the_plan_costs_at_most_the_stated_bound(shaped):
    cfgs, _ = shaped
    plan = runs.unique(r for c, cfg in cfgs.items() for r in chapters.plan(c, cfg))
    total = sum(flops.run_flops(r.work) for r in plan)
    assert 1e12 < total <= shape.FLOP_BOUND
    # at the planned rate every run fits in 4 minutes, the rest of the 5 being start-up
    assert shape.FLOP_BOUND / shape.PLANNED_RATE <= 240
    # the cap is what bounds chapter 6: uncapped, its AutoAttack alone costs more than all
    ch6 = [r for r in plan if r.chapter == "06_adversarial_tfkd"]
    uncapped = sum(flops.eval_flops(dataclasses.replace(r.work, attack_cap=0)) for r in ch6)
    assert uncapped > 10 * shape.FLOP_BOUND


def test_every_paper_code_path_is_kept(shaped):
    cfgs, paper = shaped
    assert cfgs.keys() == paper.keys()
    for chapter, cfg in cfgs.items():
        ours, theirs = config.as_dict(cfg), config.as_dict(paper[chapter])
        tiny = set(chapters.get(chapter).tiny)
        changed = {k for k in ours if ours[k] != theirs[k]} - {"profile"}
        assert changed <= tiny | SHRUNK, (chapter, changed - tiny - SHRUNK)
        # full width, the paper's data set, rows and losses: none is in any `tiny`
        assert not tiny & {"width", "dataset", "arch", "methods", "aa_attacks", "early_stop",
                           "eps", "augment", "schedule"}
        assert len(chapters.plan(chapter, cfg)) > 0
    ch6 = cfgs["06_adversarial_tfkd"]
    assert ch6.aa_attacks == [] and ch6.early_stop  # AutoAttack's standard version: all four
    assert ch6.aa_size >= 2 * ch6.eval_batch  # AutoAttack over two chunks: resume by chunk
    assert ch6.epochs >= 2 and ch6.attack_cap >= 1 and ch6.audit_restarts >= 2
    adversarial = [r for r in chapters.plan("06_adversarial_tfkd", ch6)
                   if r.spec["evaluation"].get("audit")]
    assert len(adversarial) == 6  # every adversarially trained row is audited
    assert {r.spec["evaluation"]["autoattack"]["cap"] for r in adversarial} == {1}
    for chapter in ("03_reversed_kd", "04_teacher_free"):
        assert cfgs[chapter].epochs >= 2 and cfgs[chapter].width == paper[chapter].width


def test_the_engine_is_the_faster_one_on_a_cpu(monkeypatch, tmp_path):
    monkeypatch.setattr(shape, "faster_engine", lambda batch: "bf16" if batch > 1 else "fast")
    monkeypatch.setattr(shape.torch.cuda, "is_available", lambda: False)
    cfgs = chapters.load_profile(shape.profile(tmp_path))
    assert cfgs["03_reversed_kd"].engine == "bf16"  # trains at batch 8
    assert cfgs["06_adversarial_tfkd"].engine == "fast"  # evaluates at batch 1
    assert cfgs["01_vanilla_kd"].engine == chapters.load_profile("paper")["01_vanilla_kd"].engine


def test_the_engine_choice_times_both_precisions():
    assert shape.faster_engine(1, repeats=1) in ("fast", "bf16")


def test_a_cap_bounds_autoattacks_estimate_by_hand():
    # standard version capped at 2 iterations: APGD-CE one restart (6), APGD-T and FAB-T
    # nine targets of 2 iterations (3 passes each), Square 2 queries
    assert flops.autoattack_forwards(1.0, 1.0, cap=2) == 6 + 54 + 54 + 2
    assert flops.autoattack_forwards(0.5, 0.25, ["apgd-ce"], cap=1) == 0.5 * 3 + 0.25 * 4 * 3
    assert flops.autoattack_forwards(1.0, 1.0, cap=10_000) == flops.autoattack_forwards(1.0, 1.0)
    assert flops.eval_flops(runs.Work(10, square_images=3, attack_cap=7)) == pytest.approx(
        20 * 3 * flops._paper_accuracies()[1] * 7)


def test_the_audits_steps_by_hand():
    # the sweep (ε and 3 more) and margin and transfer at PGD-20, PGD-50 unbounded, the
    # stronger PGD, and one gradient for the zero-gradient check
    assert robustness.audit_steps(3, 100, 5) == 20 * 4 + 50 + 500 + 20 + 20 + 1
    assert robustness.audit_steps(3, 1, 2, cap=1) == 4 + 1 + 2 + 1 + 1 + 1
    assert robustness.audit_steps(3, 1, 2, transfer=False, cap=5) == 20 + 5 + 2 + 5 + 1


def test_an_uncapped_evaluation_keeps_its_spec(monkeypatch):
    # the committed records' hashes do not change: no cap, no key
    monkeypatch.setenv("KDLIB_RESULTS", str(paths.REPO / "results"))
    assert "cap" not in AutoAttackRun(10).spec()
    assert AutoAttackRun(10, cap=3).spec()["cap"] == 3
    done = [r for r in chapters.plan("06_adversarial_tfkd",
                                     chapters.load_profile("cpu")["06_adversarial_tfkd"])
            if r.done]
    assert len(done) >= 8  # every committed record is still found by its hash
