"""Staleness follows the code that computes a chapter, and a verification re-makes records."""

import dataclasses
import json
import shutil
import subprocess

import pytest
import yaml

from kdlib import chapters, paths, results, runs, staleness
from kdlib.tooling import cli, verification


def test_the_computation_of_a_chapter_is_the_library_and_its_compute_functions():
    adversarial = staleness.computation_files("06_adversarial_tfkd")
    assert {"kdlib/losses.py", "kdlib/evaluation.py", "kdlib/networks.py",
            "kdlib/attacks.py"} <= set(adversarial)
    # the chapter's declaration (rows, labels, plan) and its page are not computation
    assert "kdlib/chapters/adversarial.py" not in adversarial
    assert not any(f.startswith("kdlib/pages/") for f in adversarial)
    omitted = staleness.computation_files("02_omitted_digit")
    assert "kdlib/digits.py" in omitted
    assert not any(f.startswith("kdlib/chapters/") for f in omitted)


def test_a_run_that_computes_outside_the_computation_modules_is_refused():
    ch = chapters.get("01_vanilla_kd")
    plan = [dataclasses.replace(r, compute=json.dumps) for r in ch.plan(ch.params())[:1]]
    with pytest.raises(ValueError, match="json"):
        staleness.computation_files("01_vanilla_kd", plan)


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A scratch clone of this checkout (with today's files committed), as the repository."""
    repo = tmp_path / "repo"
    git(paths.REPO, "worktree", "list")  # fails outside git
    subprocess.run(["git", "clone", "-q", "--shared", str(paths.REPO), str(repo)], check=True)
    for sub in ("kdlib", "profiles"):
        shutil.rmtree(repo / sub)
        shutil.copytree(paths.REPO / sub, repo / sub,
                        ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
        "-m", "today")
    monkeypatch.setattr(paths, "REPO", repo)
    return repo


def edit(repo, path, old, new):
    file = repo / path
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new, 1))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", f"edit {path}")


def test_editing_the_checkers_in_pyproject_stales_nothing_and_editing_the_build_does(clone):
    made = git(clone, "rev-parse", "HEAD")
    records = {"at": [results.Record({}, {}, profile="cpu", environment={"git_commit": made})]}
    edit(clone, "pyproject.toml", "line-length = 100", "line-length = 99")
    edit(clone, "pyproject.toml", 'name = "no chapter imports another"',
         'name = "chapters are independent"')
    assert staleness.stale_records(records, "04_teacher_free") == ()
    edit(clone, "pyproject.toml", 'dependencies = ["torch",', 'dependencies = ["torch>=2",')
    changed = git(clone, "rev-parse", "HEAD")
    assert staleness.last_change(staleness.computation_files("04_teacher_free")) == changed
    assert staleness.stale_records(records, "04_teacher_free") == (made,)
    # a later edit of a computation module is the last change again
    edit(clone, "kdlib/losses.py", "    ce = F.cross_entropy(student_logits, labels)\n",
         "    ce = F.cross_entropy(student_logits, labels)  # hard-label term\n")
    assert staleness.last_change(staleness.computation_files("04_teacher_free")) == git(
        clone, "rev-parse", "HEAD")


def test_editing_a_label_stales_nothing_and_editing_a_loss_does(clone):
    made = git(clone, "rev-parse", "HEAD")
    records = {"at": [results.Record({}, {}, profile="cpu", environment={"git_commit": made})]}
    assert staleness.stale_records(records, "06_adversarial_tfkd") == ()
    edit(clone, "kdlib/pages/table5.py", 'ax.set_ylabel("test accuracy (%)")',
         'ax.set_ylabel("accuracy on test images (%)")')
    edit(clone, "kdlib/chapters/adversarial.py", '"AT student (PGD adversarial training)"',
         '"AT student (adversarially trained)"')
    assert staleness.stale_records(records, "06_adversarial_tfkd") == ()
    edit(clone, "kdlib/losses.py", "    ce = F.cross_entropy(student_logits, labels)\n",
         "    ce = F.cross_entropy(student_logits, labels)  # hard-label term\n")
    assert staleness.stale_records(records, "06_adversarial_tfkd") == (made,)
    # a verification after the change makes the profile's records current again
    stamp = {"profile": "cpu", "commit": git(clone, "rev-parse", "HEAD"), "verified": True}
    (paths.results_dir() / "cpu").mkdir(parents=True)
    staleness.stamp_path("cpu").write_text(json.dumps(stamp))
    assert staleness.stale_records(records, "06_adversarial_tfkd") == ()
    # a failed verification does not
    staleness.stamp_path("cpu").write_text(json.dumps({**stamp, "verified": False}))
    assert staleness.stale_records(records, "06_adversarial_tfkd") == (made,)
    unknown = {"at": [results.Record({}, {}, profile="cpu", environment={"git_commit": "0" * 40})]}
    assert staleness.stale_records(unknown, "06_adversarial_tfkd") == ("0" * 40,)


@pytest.mark.parametrize("path, old, new", [
    ("requirements.txt", "torch==2.14.1", "torch==2.14.0"),
    ("pyproject.toml", 'requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
    ("kdlib/config.py", '"""', '"""Edited. '),
])
def test_a_pinned_package_the_build_or_the_parser_changed_stales_every_chapter(clone, path,
                                                                                old, new):
    made = git(clone, "rev-parse", "HEAD")
    records = {"row": [results.Record({}, {}, profile="cpu", environment={"git_commit": made})]}
    assert staleness.stale_records(records, "01_vanilla_kd") == ()
    edit(clone, path, old, new)
    for chapter in ("01_vanilla_kd", "04_teacher_free", "06_adversarial_tfkd"):
        assert staleness.stale_records(records, chapter) == (made,)


def test_compare_finds_every_difference_but_timings():
    old = {"acc": 0.5, "history": [{"loss": 1.0, "seconds": 3.0}], "nan": float("nan")}
    assert staleness.compare(old, {**old, "history": [{"loss": 1.0, "seconds": 9.0}]}) == []
    # where the data came from names a cache's state, not a computed number
    assert staleness.compare({**old, "data_source": "mnist"},
                          {**old, "data_source": "mnist (via local cache)"}) == []
    diff = staleness.compare(old, {**old, "history": [{"loss": 1.5, "seconds": 3.0}], "new": 1})
    assert diff == ["history.0.loss: recorded 1.0, re-run 1.5"]
    assert staleness.compare(old, {"acc": 0.5, "history": [], "nan": float("nan")}) == [
        "history: 1 items recorded, 0 re-run"]
    assert staleness.compare(old, {"history": old["history"], "nan": 1.0}) == [
        "acc: missing in the re-run", "nan: recorded nan, re-run 1.0"]



def test_a_record_made_under_another_torch_or_python_is_named_with_both_versions():
    now = results.code_environment()
    def made_under(**env):
        return results.Record({}, {}, environment=env)

    same = made_under(packages=dict(now["packages"]), python=now["python"])
    older = made_under(packages={**now["packages"], "torch": "2.0.0"}, python=now["python"])
    no_python = made_under(packages=dict(now["packages"]))
    assert staleness.other_environment({"a": [same, same]}) == []
    assert staleness.other_environment({"a": [same, older], "b": [older]}) == [
        f"2 records made under torch 2.0.0 (here {now['packages']['torch']})"]
    assert staleness.other_environment({"a": [no_python]}) == [
        f"1 record made under python not recorded (here {now['python']})"]
    # a package that only presents results (papermill) does not count
    shown = made_under(packages={**now["packages"], "papermill": "0.1"}, python=now["python"])
    assert staleness.other_environment({"a": [shown]}) == []

TINY = {"seeds": [0, 1], "device": "cpu", "engine": "fast", "trials": False, "dataset": "mnist",
        "train_size": 256, "batch_size": 128, "teacher_epochs": 1, "teacher_lr": 0.05,
        "teacher_weight_decay": 0.0001, "teacher_dropout": 0.3, "teacher_jitter": 1,
        "student_epochs": 1, "student_lr": 0.05, "temperature": 4.0, "alpha": 0.9,
        "sweep_temperatures": [], "sweep_alphas": []}


def test_verify_re_makes_one_record_per_name_and_stamps_the_profile(tmp_path, monkeypatch,
                                                                   one_thread, capsys):
    path = tmp_path / "verifytiny.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny", "chapters": {"01_vanilla_kd": TINY}}))
    monkeypatch.setattr(results, "check_clean", lambda p: None)
    cfg = chapters.load_profile(path)["01_vanilla_kd"]
    plan = chapters.plan("01_vanilla_kd", cfg)
    runs.run_all(plan, progress=False)
    drawn = staleness.sample(path)
    assert sorted(r.name for r in drawn) == ["student", "student_kd", "teacher"]
    assert {r.seed for r in drawn} <= {0, 1} and [r.path for r in staleness.sample(path)] == [
        r.path for r in drawn]  # one a row, drawn at random across the seeds, seeded
    assert {(r.name, r.seed) for r in staleness.sample(path, per_row=2, seed=5)} == {
        (n, s) for n in ("teacher", "student", "student_kd") for s in (0, 1)}
    seeds = {tuple(r.seed for r in staleness.sample(path, seed=k)) for k in range(12)}
    assert len(seeds) > 1  # the seed of the draw matters
    assert cli.main(["verify", str(path), "--workers", "2"]) == 0
    stamp = staleness.stamp("verifytiny")
    assert stamp["verified"] and stamp["identical_to_records"] and len(stamp["records"]) == 3
    assert len(stamp["reproduced"]) == 3 and stamp["code_neutral_only"] == []
    assert stamp["sample"] == {"per_row": 1, "seed": 0, "records": 6, "sealed": 6,
                               "made_on": {r.label: "this" for r in drawn}}
    assert stamp["commit"] == results.environment()["git_commit"] and stamp["threads"] == 1
    # a record whose metric was changed by hand is refused by its seal, named with the metric
    student = next(r for r in plan if r.name == "student" and r.seed == 0)
    record = student.load().json()
    record["metrics"]["test_acc"] += 0.01
    results.write_record(student.path, record)
    capsys.readouterr()
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(student.path) in err and "metric test_acc (changed)" in err
    # re-sealed by whoever edited it, a re-make on this kind of CPU that samples it catches it
    results.write_record(student.path, results.sealed(record))
    assert cli.main(["verify", str(path), "--per-row", "2"]) == 1
    stamp = staleness.stamp("verifytiny")
    assert not stamp["verified"] and not stamp["identical_to_records"]


def test_a_damaged_record_is_named_with_the_command_that_re_makes_it(tmp_path):
    path = paths.record_file("cpu", "04_teacher_free", "baseline", "0123456789ab")
    path.parent.mkdir(parents=True)
    path.write_text('{"spec": {"seed": 0}, "metr')
    with pytest.raises(results.DamagedRecordError, match="not valid JSON") as err:
        results.load_record(path)
    assert str(path) in str(err.value)
    assert "python -m kdlib jobs cpu --chapters 04_teacher_free" in str(err.value)
    path.write_text(json.dumps({"spec": {"seed": 0}, "metrics": {}}))
    with pytest.raises(results.DamagedRecordError, match="hashes to"):
        results.load_record(path)
    good = paths.record_file("cpu", "04_teacher_free", "baseline",
                             results.spec_hash({"seed": 0}))
    good.write_text(json.dumps({"spec": {"seed": 0}, "metrics": {"test_acc": 1.0}}))
    assert results.load_record(good).metrics == {"test_acc": 1.0}
    good.write_text(json.dumps({"spec": {"seed": 0}, "metrics": {}, "metrix": {}}))
    with pytest.raises(results.DamagedRecordError, match=r"unknown fields \['metrix'\]"):
        results.load_record(good)


def test_on_another_cpu_the_records_own_code_re_makes_the_sample(tmp_path, monkeypatch,
                                                                  one_thread):
    """A record made on another kind of CPU differs in its last bits whatever the code: the
    verification then re-makes it with the code of the commit it names, in a worktree, and
    verifies when today's code makes the same numbers here. (Here the records are today's,
    relabelled as made at HEAD on another CPU, with one metric moved as that CPU would.)"""
    head = results.environment()["git_commit"]
    path = tmp_path / "othercpu.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny", "chapters": {"01_vanilla_kd": TINY}}))
    monkeypatch.setattr(results, "check_clean", lambda p: None)
    plan = [r for r in chapters.plan("01_vanilla_kd", chapters.load_profile(path)["01_vanilla_kd"])
            if r.name == "student"]
    runs.run_all(plan, progress=False)
    for run in plan:
        record = run.load().json()
        record["environment"] = {**record["environment"], "git_commit": head, "git_dirty": False,
                                 "cpu_isa": "AVX2 flags-0123456789ab"}
        record["metrics"]["test_acc"] += 1e-7  # another CPU's last bits
        results.write_record(run.path, results.sealed(record))  # as that machine wrote it
    report = verification.verify(path, workers=2)
    (checked,) = report.checked
    assert not checked.identical and checked.code_commit == head
    assert checked.same_as_code, checked.code_differences
    assert report.verified and report.stamp["identical_to_records"] is False
    assert report.stamp["identical_to_records_code"] is True
    assert report.stamp["records"][0]["records_code"] == head
    assert "test_acc" in report.stamp["records"][0]["differences"][0]


def test_no_stamp_when_the_tree_changes_during_the_verification(tmp_path, monkeypatch,
                                                                one_thread):
    path = tmp_path / "verifytiny.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny", "chapters": {"01_vanilla_kd": {
        **TINY, "seeds": [0]}}}))
    monkeypatch.setattr(results, "check_clean", lambda p: None)
    runs.run_all(chapters.plan("01_vanilla_kd", chapters.load_profile(path)["01_vanilla_kd"]),
                 progress=False)
    trees = iter([("a" * 40, None), ("b" * 40, None)])  # a commit made while it ran
    monkeypatch.setattr(verification, "_tree", lambda: next(trees))
    with pytest.raises(verification.TreeChangedError, match="aaaaaaa -> bbbbbbb"):
        verification.verify(path)
    assert staleness.stamp("verifytiny") is None
    trees = iter([("a" * 40, None), ("a" * 40, "d1ff")])  # an edit left uncommitted
    with pytest.raises(verification.TreeChangedError, match="with uncommitted changes"):
        verification.verify(path)
    trees = iter([("c" * 40, None)] * 2)
    assert verification.verify(path).stamp["commit"] == "c" * 40  # the commit at the end


@pytest.mark.parametrize("kind", ["this", "another"])
def test_an_edited_metric_of_a_committed_record_is_refused_by_name(tmp_path, monkeypatch,
                                                                   capsys, kind):
    """The tamper check CI runs: one metric of a committed `cpu` record edited in a scratch
    copy, the record made on this machine's kind of CPU or on another: verify refuses it
    before any compute, naming the record and the metric."""
    scratch = tmp_path / "results"
    shutil.copytree(paths.REPO / "results" / "cpu", scratch / "cpu")
    monkeypatch.setenv("KDLIB_RESULTS", str(scratch))
    monkeypatch.setattr(results, "check_clean", lambda p: None)
    monkeypatch.setattr(runs.Run, "execute", lambda *a, **k: pytest.fail("computed"))
    target = sorted((scratch / "cpu" / "04_teacher_free").glob("tf_kd_reg-*.json"))[0]
    record = json.loads(target.read_text())
    record["environment"]["cpu_isa"] = (results.cpu_isa() if kind == "this"
                                        else "AVX2 flags-0123456789ab")
    record["metrics"]["test_acc"] = round(record["metrics"]["test_acc"] + 0.004, 4)
    target.write_text(json.dumps(record, indent=2, sort_keys=True))
    assert cli.main(["verify", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"damaged record {target}: metric test_acc (changed)" in err
    assert "python -m kdlib jobs cpu --chapters 04_teacher_free" in err


def test_the_stamp_lists_the_claims_a_replication_decided_again(tmp_path, monkeypatch):
    from kdlib import claims
    from kdlib.pages import findings
    from kdlib.pages.findings import Finding
    from kdlib.tooling import claims_page
    from kdlib.verdicts import Decision

    for name in ("orig", "rep"):
        (tmp_path / f"{name}.yaml").write_text("chapters: {}\n")
    monkeypatch.setattr(paths, "profiles_dir", lambda: tmp_path)
    monkeypatch.setattr(claims_page, "REPLICATIONS", {"rep": "orig", "gone": "orig"})
    claim = claims.Claim("T9", "ch", "kd beats base", "1 → 2", "gain",
                         claims.gain("kd", "base", 0.17))
    decided = {"orig": Decision("reproduced", "", "", difference=0.69, ci=(0.31, 1.08), n=12),
               "rep": Decision("inconclusive at this power", "", "", difference=0.2,
                               ci=(-0.2, 0.6), n=8)}
    monkeypatch.setattr(findings, "at", lambda p: [Finding(claim, p, "s", decided[p])])
    rows = verification.replicated("orig")
    assert rows == [{"claim": "T9", "original_profile": "orig", "original_verdict": "reproduced",
                     "original_effect": 0.69, "original_ci": [0.31, 1.08], "original_n": 12,
                     "replication_profile": "rep",
                     "replication_verdict": "inconclusive at this power",
                     "replication_effect": 0.2, "replication_ci": [-0.2, 0.6],
                     "replication_n": 8, "verdict_replicates": False,
                     "effect_inside_original_ci": False}]
    assert verification.replicated("rep") == rows
    assert verification.replicated("other") == []


def test_records_made_twice_on_one_kind_of_cpu_are_compared_metric_by_metric():
    """Two profiles that hold a record of one spec, made on one named kind of CPU with the
    same threads, are paired and compared (timings aside); records of another thread count
    or of no named CPU are not paired; a number edited and sealed again shows by name."""
    spec = {"seed": 0}
    env = {"cpu_isa": "AVX512 flags-0123", "cpu_threads": 1, "git_commit": "a"}

    def put(profile: str, metrics: dict, **changes) -> None:
        path = paths.record_file(profile, "04_teacher_free", "baseline", results.spec_hash(spec))
        path.parent.mkdir(parents=True, exist_ok=True)
        results.write_record(path, results.sealed(
            {"spec": spec, "metrics": metrics, "environment": {**env, **changes}}))

    put("p1", {"test_acc": 0.5, "seconds": 1.0})
    put("p2", {"test_acc": 0.5, "seconds": 2.0}, git_commit="b")
    put("p3", {"test_acc": 0.51, "seconds": 1.0}, git_commit="c")
    put("p4", {"test_acc": 0.9}, cpu_threads=2)
    put("p5", {"test_acc": 0.9}, cpu_isa=None)
    found = staleness.twins(["p1", "p2", "p3", "p4", "p5"])
    assert [(t["profiles"], t["commits"], t["differences"]) for t in found] == [
        (("p1", "p2"), ("a", "b"), []),
        (("p1", "p3"), ("a", "c"), ["test_acc: recorded 0.5, re-run 0.51"])]
    table = staleness.twins_table(found).splitlines()
    name = f"baseline-{results.spec_hash(spec)}.json"
    assert table[2:] == [
        "| `p1` | `p2` | 04_teacher_free | 1 | 1 | — |",
        f"| `p1` | `p3` | 04_teacher_free | 1 | 0 | `{name}`: test_acc: recorded 0.5, re-run "
        "0.51 |"]
    assert staleness.twins([]) == [] and "No committed record" in staleness.twins_table([])


def test_every_committed_record_made_twice_on_one_kind_of_cpu_is_identical(monkeypatch):
    """The committed numbers themselves, checked where a profile re-made another's runs on
    the same kind of CPU (the methods page's table): not one metric differs."""
    from kdlib import pages

    monkeypatch.delenv("KDLIB_RESULTS")
    found = staleness.twins(pages.committed_profiles() + pages.committed_profiles(pilots=True))
    assert len(found) >= 24
    assert {t["profiles"] for t in found} >= {("cpu", "cpu-amd")}
    assert [t for t in found if t["differences"]] == []
