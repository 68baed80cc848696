"""Scale-out: a profile's runs on a pool of worker processes, skipped once recorded."""

import re

import pytest
import yaml

from kdlib import chapters, config, digits, paths, runs, training
from kdlib.chapters import adversarial, images, mnist, omitted_digit, reversed_kd, teacher_free
from kdlib.chapters import vanilla_kd as vanilla
from kdlib.evaluation import record_spec
from kdlib.tooling import cli, jobs

TINY = {"seeds": [0], "device": "cpu", "engine": "fast", "trials": False, "dataset": "mnist",
        "train_size": 256, "batch_size": 128, "teacher_epochs": 1, "teacher_lr": 0.05,
        "teacher_weight_decay": 0.0001, "teacher_dropout": 0.3, "teacher_jitter": 1,
        "student_epochs": 1, "student_lr": 0.05, "temperature": 4.0, "alpha": 0.9,
        "sweep_temperatures": [], "sweep_alphas": []}


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "tinyjobs.yaml"
    path.write_text(yaml.safe_dump({"description": "two runs", "chapters":
                                    {"01_vanilla_kd": TINY}}))
    return path


def test_plan_lists_every_run_of_the_chapters_teachers_first():
    cfgs = chapters.load_profile("paper")
    planned = jobs.plan("paper", ["01_vanilla_kd", "02_omitted_digit"])
    # one teacher per seed first; chapter 2's records of the same networks wait for them
    assert [(j.name, j.seed) for j in planned[:3]] == [("teacher", s) for s in (0, 1, 2)]
    assert sum(j.name == "teacher" for j in planned) == 6
    assert {j.name for j in planned if j.chapter == "01_vanilla_kd"} == {
        "teacher", "student", "student_kd", "student_kd_sweep", "teacher_trial"}
    v, od = cfgs["01_vanilla_kd"], cfgs["02_omitted_digit"]
    assert v.trials and od.trials  # the paper profile also runs the disclosed trial recipes
    assert len(planned) == (3 * len(v.seeds) + len(v.sweep_temperatures) * len(v.sweep_alphas)
                            + 1 + len(od.seeds) * (1 + 3 * len(od.digits)))
    # both chapters' teacher runs name the same checkpoint spec
    teachers = [j for j in planned if j.name == "teacher" and j.spec["seed"] == 0]
    assert teachers[0].spec == teachers[1].spec
    assert all(j.spec == mnist.teacher(v, j.spec["seed"]).spec() for j in teachers)
    od_students = [j for j in planned if j.chapter == "02_omitted_digit" and j.name != "teacher"]
    assert od_students[0].spec == digits.record_spec(
        omitted_digit.student(od, 0, od.digits[0], kd=False), digits.BiasShift())


def test_every_chapter_has_a_plan_and_figure_2_reads_table_4s_runs():
    cfgs = chapters.load_profile("paper")
    assert [r.path for r in chapters.plan("05_gradients", cfgs["05_gradients"])] == [
        r.path for r in chapters.plan("04_teacher_free", cfgs["04_teacher_free"])]
    planned = [r for c in ("03_reversed_kd", "04_teacher_free", "06_adversarial_tfkd")
               for r in chapters.plan(c, cfgs[c])]
    by = {c: [(j.name, j.spec) for j in planned if j.chapter == c]
          for c in ("03_reversed_kd", "04_teacher_free", "06_adversarial_tfkd")}
    for c, module in (("03_reversed_kd", reversed_kd), ("04_teacher_free", teacher_free)):
        assert by[c] == [(m.name, images.training_for(cfgs[c], m, s).spec())
                         for m in module.METHODS for s in cfgs[c].seeds]
    # one ResNet18 baseline per seed serves both chapters: the same checkpoint
    assert by["03_reversed_kd"][0][1] == by["04_teacher_free"][0][1]
    adv = cfgs["06_adversarial_tfkd"]
    assert by["06_adversarial_tfkd"] == [
        (m.name, record_spec(images.training_for(adv, m, s), adversarial.evaluation(adv, m, s)))
        for m in adversarial.METHODS for s in adv.seeds]


def committed_profiles() -> list[str]:
    return [p.stem for p in sorted((paths.REPO / "profiles").glob("*.yaml"))
            if config.read(p).committed]


def test_the_committed_profiles_are_the_ones_with_records():
    assert {"paper", "cpu", "cpu-first-recipe"} <= set(committed_profiles())
    assert not config.read("smoke").committed and not config.read("quick").committed


@pytest.mark.parametrize("profile", committed_profiles())
def test_every_committed_profile_holds_exactly_what_it_plans(monkeypatch, profile):
    """Changing the code must not change a single spec unnoticed: each chapter folder under
    results/<profile>/ of a committed profile (``committed: true``) holds every run its
    profile plans for it, found by its hash, and nothing else, so a page never shows a
    profile with a seed or a row missing. (The paper profile's CIFAR-10 chapters need a GPU:
    they have no folder yet.)"""
    monkeypatch.delenv("KDLIB_RESULTS")
    root = (paths.REPO / "results" / profile).resolve()
    present = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    assert present, (f"the committed profile {profile} has no records: make them from a clean "
                     f"tree (python -m kdlib jobs {profile}) and commit results/{profile}/")
    for chapter in present:
        committed = set((root / chapter).glob("*.json"))
        planned = {r.path.resolve() for r in jobs.plan(profile, [chapter])}
        assert committed == planned, (chapter, sorted(p.name for p in committed ^ planned))


def test_jobs_dedupe_train_each_teacher_once_first_then_go_seed_by_seed():
    planned = jobs.plan("paper", ["03_reversed_kd", "04_teacher_free", "05_gradients"])
    assert len({r.path for r in planned}) == len(planned) == 27  # 05 adds nothing
    needed = {n for r in planned for n in r.needs}
    assert len(needed) == 3  # the baseline ResNet18 of each seed teaches Tf-KD-self
    # both chapters record that network; one run per seed trains it first, the other waits
    assert sum(r.trains in needed for r in planned) == 6
    lead, rest = planned[:len(needed)], planned[len(needed):]
    assert {r.trains for r in lead} == needed
    assert [r.seed for r in lead] == [0, 1, 2]
    assert [r.seed for r in rest] == sorted(r.seed for r in rest)


def test_unknown_chapter_is_refused(profile):
    with pytest.raises(config.ProfileError, match="cannot plan"):
        jobs.plan(profile, ["02_omitted_digit"])


def test_two_workers_record_both_runs_then_the_cache_skips_them(profile, monkeypatch, capfd):
    two = [j for j in jobs.plan(profile) if j.name in ("teacher", "student")]
    assert len(two) == 2 and not any(j.done for j in two)
    out = jobs.run_local(two, workers=2, gpus=[])
    assert not out.failed, out.failed
    assert len(out.ran) == 2 and all(j.path.is_file() for j in two)
    # each worker prints one line per finished epoch of each training it runs
    printed = capfd.readouterr().out
    assert re.search(r"\[jobs pid \d+\]   .*teacher.*: epoch 1/1, loss \d\.\d{4}, \d+ s", printed)

    def no_pool(*a, **k):
        raise AssertionError("a worker was started for a cached run")

    monkeypatch.setattr(jobs, "ProcessPoolExecutor", no_pool)
    again = jobs.run_local(two, workers=2, gpus=[])
    assert len(again.cached) == 2 and not again.ran and not again.failed

    # the notebook's own call finds the record: nothing trains
    monkeypatch.setattr(training, "train", no_pool)
    cfg = chapters.load_profile(profile)["01_vanilla_kd"]
    assert runs.run_all(vanilla.plan(cfg)[:2])["student"][0].spec == two[1].spec


def test_cli_dry_run_lists_without_running(profile, capsys):
    assert cli.main(["jobs", str(profile), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 runs, 3 to run" in out and "01_vanilla_kd/teacher-" in out


def test_a_plan_is_the_same_on_every_machine(monkeypatch):
    """A plan names each run's device as its profile does; the device is resolved when the
    run executes (its record names the one it ran on), so a GPU changes no plan."""
    import torch

    before = [(r.label, r.device, r.work, r.trains, r.needs) for r in jobs.plan("paper")]
    assert {d for _, d, *_ in before} == {"auto"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [(r.label, r.device, r.work, r.trains, r.needs) for r in jobs.plan("paper")] == before
