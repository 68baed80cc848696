"""Claims: verdicts follow the records, and a claim without records is 'not run'."""

import pytest
import yaml

from kdlib import chapters, pages, paths, results
from kdlib.tooling import claims_page


@pytest.fixture
def profile(tmp_path):
    """The smoke profile with three seeds, as a file of its own."""
    raw = yaml.safe_load((paths.profiles_dir() / "smoke.yaml").read_text())
    assert raw["defaults"] is True  # every parameter at its default
    for params in raw["chapters"].values():
        params["seeds"] = [0, 1, 2]
    path = tmp_path / "threeseeds.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def write_records(profile, chapter, accuracy, key="test_acc", histories=None):
    """A record for every run of `chapter`, with `accuracy[name]` per seed as `key`, and
    `histories[(name, seed)]` as its training history."""
    cfg = chapters.load_profile(profile)[chapter]
    for run in chapters.plan(chapter, cfg):
        acc = accuracy.get(run.name, [0.5, 0.5, 0.5])[run.seed]
        history = (histories or {}).get((run.name, run.seed), [])
        results.write_record(run.path, {
            "profile": run.profile, "chapter": run.chapter, "name": run.name,
            "spec": dict(run.spec), "spec_hash": run.spec_hash,
            "metrics": {key: acc, "history": history}, "wall_time_s": 60.0,
            "device": "cpu", "environment": results.environment()})


def t1(profile):
    (found,) = [f for f in pages.findings(str(profile)) if f.claim.id == "T1"]
    return found


def test_a_verdict_follows_the_records(profile):
    assert t1(profile).decision.verdict == "not run at this scale"  # no records yet
    write_records(profile, "01_vanilla_kd", {"student": [0.9800, 0.9805, 0.9810],
                                             "student_kd": [0.9870, 0.9875, 0.9873]})
    found = t1(profile)
    assert found.decision.verdict == "reproduced"
    assert found.decision.difference == pytest.approx(0.6767, abs=1e-3)
    assert found.scale.startswith("stand-in (`threeseeds`)")
    # the same runs, with the distilled student's accuracy lowered: the verdict turns
    write_records(profile, "01_vanilla_kd", {"student": [0.9800, 0.9805, 0.9810],
                                             "student_kd": [0.9700, 0.9705, 0.9702]})
    assert t1(profile).decision.verdict == "not reproduced"
    # no difference, and seeds too noisy to see one of the paper's +0.67: inconclusive
    write_records(profile, "01_vanilla_kd", {"student": [0.97, 0.99, 0.98],
                                             "student_kd": [0.99, 0.97, 0.98]})
    assert t1(profile).decision.verdict == "inconclusive at this power"


def test_claims_without_records_are_not_run_at_this_scale(profile):
    found = pages.findings(str(profile))
    assert {f.claim.id for f in found} == {c.id for c in pages.all_claims()}
    for f in found:
        if f.claim.fixed_scale is None:
            assert f.decision.verdict == "not run at this scale", f.claim.id
    (fig1,) = [f for f in found if f.claim.id == "F1"]
    assert fig1.decision.verdict == "reproduced" and fig1.scale.startswith("analytic")


def test_the_paper_setting_always_has_a_row(tmp_path, profile, monkeypatch):
    write_records(profile, "01_vanilla_kd", {})
    monkeypatch.setattr(claims_page, "scales", lambda build: ["paper", str(profile)])
    found = claims_page.all_findings(str(profile))
    assert all(any(f.claim.id == c.id and f.profile == "paper" for f in found)
               for c in pages.all_claims() if c.fixed_scale is None)
    (site := tmp_path / "site" / "book").mkdir(parents=True)
    claims_page.write(tmp_path / "site", str(profile))
    page = (site / "claims.md").read_text()
    assert page.startswith("# Claims at a glance") and "| **T1** |" in page
    assert "paper setting" in page and "not run at this scale" in page


def test_an_unstable_run_is_named_with_the_verdict_without_it(profile):
    """AT + Tf-KD-self's seed 0 spikes (loss ×11 at epoch 3, as in the cpu stand-in): it stays
    in the verdict, and the decision adds the verdict without it."""
    spike = [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "loss": 0.58}, {"epoch": 3, "loss": 6.5}]
    write_records(profile, "06_adversarial_tfkd",
                  {"at": [0.80, 0.81, 0.82], "at_tf_kd_self": [0.66, 0.815, 0.826]},
                  key="aa_acc", histories={("at_tf_kd_self", 0): spike})
    (found,) = [f for f in pages.findings(str(profile)) if f.claim.id == "T5 (self vs AT)"]
    d = found.decision
    assert d.paired and d.n == 3 and d.verdict == "inconclusive at this power"
    assert d.seeds_needed > 3
    assert d.hours_needed == pytest.approx(d.seeds_needed * 2 * 60 / 3600)
    (note,) = d.notes
    assert note.startswith("unstable training: `at_tf_kd_self` seed 0: loss rose")
    assert "without it: +0.55 (82.05 ± 0.78 (n = 2) vs 81.50 ± 0.71 (n = 2))" in note
    assert "Sensitivity: unstable training" in pages.sentence(found)
    assert "Deciding it would take" in pages.sentence(found)


def test_a_row_whose_every_run_is_unstable_keeps_its_verdict_and_says_so(profile):
    """Every seed of a row spiked (as tiny runs can): the verdict stands, and the note says
    that nothing is left to decide without them, instead of failing on an empty row."""
    spike = [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "loss": 0.58}, {"epoch": 3, "loss": 6.5}]
    write_records(profile, "06_adversarial_tfkd",
                  {"at": [0.80, 0.81, 0.82], "at_tf_kd_self": [0.66, 0.70, 0.68]}, key="aa_acc",
                  histories={("at_tf_kd_self", s): spike for s in range(3)})
    (found,) = [f for f in pages.findings(str(profile)) if f.claim.id == "T5 (self vs AT)"]
    (note,) = found.decision.notes
    assert note.startswith("unstable training: `at_tf_kd_self` seed 0: loss rose")
    assert note.endswith("; without it no run of a row is left")
    assert found.decision.verdict == "not reproduced" and found.decision.n == 3
