"""Claims: verdicts follow the records, and a claim without records is 'not run'."""

import dataclasses

import pytest
import yaml

from kdlib import chapters, claims, paths, results, verdicts
from kdlib.pages import findings
from kdlib.tooling import claims_page
from kdlib.verdicts import Decision


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
    (found,) = [f for f in findings.at(str(profile)) if f.claim.id == "T1"]
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
    found = findings.at(str(profile))
    assert {f.claim.id for f in found} == {c.id for c in findings.all_claims()}
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
               for c in findings.all_claims() if c.fixed_scale is None)
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
    (found,) = [f for f in findings.at(str(profile)) if f.claim.id == "T5 (self vs AT)"]
    d = found.decision
    assert d.paired and d.n == 3 and d.verdict == "inconclusive at this power"
    assert d.seeds_needed > 3
    assert d.hours_needed == pytest.approx(d.seeds_needed * 2 * 60 / 3600)
    (note,) = d.notes
    assert note.startswith("unstable training: `at_tf_kd_self` seed 0: loss rose")
    assert "without it: +0.55 (82.05 ± 0.78 (n = 2) vs 81.50 ± 0.71 (n = 2))" in note
    assert "Sensitivity: unstable training" in findings.sentence(found)
    assert "Deciding it would take" in findings.sentence(found)


def test_a_row_whose_every_run_is_unstable_keeps_its_verdict_and_says_so(profile):
    """Every seed of a row spiked (as tiny runs can): the verdict stands, and the note says
    that nothing is left to decide without them, instead of failing on an empty row."""
    spike = [{"epoch": 1, "loss": 3.5}, {"epoch": 2, "loss": 0.58}, {"epoch": 3, "loss": 6.5}]
    write_records(profile, "06_adversarial_tfkd",
                  {"at": [0.80, 0.81, 0.82], "at_tf_kd_self": [0.66, 0.70, 0.68]}, key="aa_acc",
                  histories={("at_tf_kd_self", s): spike for s in range(3)})
    (found,) = [f for f in findings.at(str(profile)) if f.claim.id == "T5 (self vs AT)"]
    (note,) = found.decision.notes
    assert note.startswith("unstable training: `at_tf_kd_self` seed 0: loss rose")
    assert note.endswith("; without it no run of a row is left")
    assert found.decision.verdict == "not reproduced" and found.decision.n == 3


def test_premises_measure_the_records():
    rec = lambda seed, **m: results.Record({"seed": seed}, m)  # noqa: E731
    records = {"r50": [rec(s, test_acc=0.88 + 0.001 * s, final_train_loss=0.3) for s in range(4)],
               "r18": [rec(s, test_acc=0.89 + 0.0012 * s, final_train_loss=0.05)
                       for s in range(4)]}
    weak = claims.at_least("r50", "r18", "test_acc", "R50 at least as accurate")
    text, met, measured = weak.check(records)
    diffs = [-1.0 - 0.02 * s for s in range(4)]
    assert met is False and text == "R50 at least as accurate"
    assert f"{sum(diffs) / len(diffs):+.2f} points" in measured
    assert claims.at_least("r18", "r50", "test_acc", "x").check(records)[1] is True
    assert claims.fits("r18", "fits").check(records)[1] is True
    assert claims.fits("r50", "fits").check(records)[1] is False
    assert "0.300" in claims.fits("r50", "fits").check(records)[2]
    assert claims.fits("none", "fits").check(records)[1] is None
    # a teacher trained apart from its row, where the records hold one, is the one measured
    apart = claims.fits("r50", "fits", trained_apart="r50_teacher")
    assert apart.check(records)[1] is False
    records["r50_teacher"] = [rec(s, final_train_loss=0.08 + 0.01 * s) for s in range(2)]
    _, met, measured = apart.check(records)
    assert met is True and "`r50_teacher` ends at a training cross-entropy of 0.085" in measured



# --- rules know their rows; pilot seeds; the verdict across readings ------------------------------


def _decision(p, verdict="reproduced", power=0.9):
    return Decision(verdict, "ours", "test", difference=1.0, p=p, power=power, claimed=1.0)


def _records(treated_gain):
    rec = lambda seed, v: results.Record({"seed": seed}, {"test_acc": v})  # noqa: E731
    base = [0.900, 0.910, 0.920, 0.905, 0.915, 0.908]
    return {"base": [rec(s, v) for s, v in enumerate(base)],
            "kd": [rec(s, v + treated_gain + 0.0005 * (-1) ** s) for s, v in enumerate(base)]}


def test_a_rule_knows_its_rows_and_shows_the_verdict_without_the_pilots_seeds():
    from types import SimpleNamespace

    from kdlib.claims import Claim

    rule = claims.gain("kd", "base", 1.0)
    claim = Claim("X", "ch", "kd beats base", "—", "gain", rule)
    assert claim.rows == ("kd", "base")
    records = _records(0.01)
    plain = claim.judge(records, SimpleNamespace(pilot_seeds=[]))
    assert not any("pilot" in n for n in plain.notes)
    d = claim.judge(records, SimpleNamespace(pilot_seeds=[0, 1, 2]))
    note = next(n for n in d.notes if "pilot" in n)
    again = verdicts.gain({s: records["kd"][s].metrics["test_acc"] for s in (3, 4, 5)},
                          {s: records["base"][s].metrics["test_acc"] for s in (3, 4, 5)},
                          1.0)
    assert note.startswith("seeds [0, 1, 2] were also run by the pilot")
    assert f"without it: {again.ours}, {again.verdict}" in note


def test_the_verdict_across_readings_says_robust_or_what_it_depends_on():
    from kdlib.pages.findings import Finding, UnderReading
    from kdlib.readings import Reading

    claim = claims.Claim("X", "ch", "s", "p", "t", claims.gain("kd", "base", 1.0))
    r1 = Reading("one", "the first setting", "a", "b", {})
    r2 = Reading("two", "the second setting", "a", "b", {})
    rep, inc = _decision(0.001), _decision(0.3, "inconclusive at this power")
    same = Finding(claim, "cpu", "s", rep, readings=(UnderReading(r1, True, rep),
                                                     UnderReading(r2, True, rep)))
    assert same.across_readings == "same unadjusted verdict under all 3 readings"
    differs = Finding(claim, "cpu", "s", rep, readings=(UnderReading(r1, True, rep),
                                                        UnderReading(r2, True, inc)))
    assert differs.across_readings == ("depends on the second setting (two: inconclusive at "
                                       "this power)")
    missing = Finding(claim, "cpu", "s", rep, readings=(UnderReading(r1, True, rep),
                                                        UnderReading(r2, False, None)))
    assert missing.across_readings == ("same unadjusted verdict under all 2 readings (1 "
                                       "declared reading not run at this scale)")
    assert Finding(claim, "cpu", "s", rep).across_readings == ""
    # a claim not run at a scale is robust to nothing there, whatever its readings say
    unrun = verdicts.not_run()
    assert Finding(claim, "cpu", "s", unrun, readings=(
        UnderReading(r1, True, unrun), UnderReading(r2, True, unrun))).across_readings == ""


def test_a_claim_says_when_its_pairs_cross_kinds_of_cpu():
    from types import SimpleNamespace

    def on(records, cpu):
        return {name: [dataclasses.replace(r, environment={"cpu": cpu(r.seed)}) for r in rs]
                for name, rs in records.items()}

    intel = "Intel(R) Xeon(R) Processor"
    records = on(_records(0.01), lambda seed: intel)
    records["kd"] = on(records, lambda seed: intel if seed < 4 else "AMD EPYC")["kd"]
    d = claims.gain("kd", "base", 1.0)(records, SimpleNamespace(pilot_seeds=[]))
    assert ("pairs across kinds of CPU: within seeds [4, 5] the runs compared were made on "
            "AMD EPYC and on Intel(R) Xeon(R) Processor") in d.notes
    records = on(records, lambda seed: intel)
    assert not any("kinds of CPU" in n for n in
                   claims.gain("kd", "base", 1.0)(records, SimpleNamespace()).notes)


def test_the_tables_show_premise_size_family_and_readings():
    from kdlib.pages import verdict_tables
    from kdlib.pages.findings import Finding, UnderReading
    from kdlib.readings import Reading

    claim = claims.Claim("T9", "ch", "kd beats base", "1 → 2", "gain", claims.gain("kd", "base",
                                                                                 0.17))
    big = Decision("reproduced", "+1.58", "t", difference=1.58, ci=(1.23, 1.93), claimed=0.17,
                   p=1e-4, paired=True, n=6, exact_p=0.03125, holm_p=9e-4)
    failed = verdicts.premise_not_met(big, [("the teacher is weaker", False, "-1.32 points")])
    r = Reading("alt", "an open setting", "a", "b", {})
    f = Finding(claim, "cpu", "stand-in", failed,
                readings=(UnderReading(r, True, big), UnderReading(r, False, None)))
    table = verdict_tables.claims_table([f])
    assert "not met: the teacher is weaker (-1.32 points)" in table
    assert "premise not met at this scale* (the test alone: reproduced)" in table
    numbers = verdict_tables.numbers_table([f])
    assert "9.3× the paper's effect" in numbers and "| 0.0009 |" in numbers
    curve = verdict_tables.readings_table([f])
    assert curve.count("**T9**") == 3 and "not run at this scale" in curve
    # beside each reading's verdict: its size against the paper's and the power it had for it
    assert "**reproduced**; 9.3× the paper's effect (95% CI 7.2× to 11.4×" in curve
    within = dataclasses.replace(big, verdict="not reproduced", difference=0.30, ci=(-0.01, 0.61),
                                 claimed=0.44, p=0.053, power=0.846)
    curve = verdict_tables.readings_table([Finding(claim, "cpu", "stand-in", failed,
                                                   readings=(UnderReading(r, True, within),))])
    assert ("not reproduced**; too wide to tell the size: the 95% interval (-0.0× to 1.4× the "
            "paper's effect) holds both the paper's effect and none; power for the paper's "
            "effect 85% (at the observed spread)") in curve
    plain = Finding(claim, "cpu", "stand-in", big)
    assert "**reproduced in direction, 9.3× the paper's effect**" in \
        verdict_tables.claims_table([plain])
    assert verdict_tables.readings_table([plain]) == ""


def test_the_replication_table_compares_each_claim_with_its_original():
    from kdlib.pages import verdict_tables
    from kdlib.pages.findings import Finding

    claim = claims.Claim("T9", "ch", "kd beats base", "1 → 2", "gain", claims.gain("kd", "base",
                                                                                 0.17))
    other = claims.Claim("T8", "ch", "kd2 beats base", "1 → 2", "gain",
                         claims.gain("kd2", "base", 0.17))
    original = Decision("reproduced", "+0.69", "t", difference=0.69, ci=(0.31, 1.08), n=12)
    same = Decision("reproduced", "+0.5", "t", difference=0.5, ci=(0.1, 0.9), n=8)
    outside = Decision("inconclusive at this power", "+0.2", "t", difference=0.2,
                       ci=(-0.2, 0.6), n=8)
    found = [Finding(claim, "cpu", "s", original), Finding(other, "cpu", "s", original),
             Finding(claim, "cpu-amd", "s", same), Finding(other, "cpu-amd", "s", outside),
             Finding(claim, "quick", "s", same)]
    table = verdict_tables.replication_table(found, {"cpu-amd": "cpu"})
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, T9 and T8 (quick replicates nothing)
    assert lines[2].endswith("| yes | yes |") and "`cpu`: **reproduced**, +0.69 [+0.31, +1.08]" \
        ", n = 12" in lines[2] and "`cpu-amd`: **reproduced**, +0.50 [+0.10, +0.90], n = 8" \
        in lines[2]
    # 0.2 lies below the original's interval [0.31, 1.08], and the verdict changed
    assert lines[3].startswith("| **T8** |") and lines[3].endswith("| **no** | **no** |")
    # a claim not run at either profile has no line; nothing to compare: no table
    gone = [Finding(claim, "cpu", "s", original), Finding(claim, "cpu-amd", "s",
                                                          verdicts.not_run())]
    assert verdict_tables.replication_table(gone, {"cpu-amd": "cpu"}) == ""
    # the original's interval bounds count as inside
    edge = Decision("reproduced", "+0.31", "t", difference=0.31, ci=(0.0, 0.6), n=8)
    assert verdict_tables.replication_table(
        [Finding(claim, "cpu", "s", original), Finding(claim, "cpu-amd", "s", edge)],
        {"cpu-amd": "cpu"}).endswith("| yes | yes |")


def _gradient_records(gradients, key="gradients"):
    """Two seeds of the baseline and Tf-KD-reg (official) records with `gradients` as each
    record's `key` metric."""
    return {name: [results.Record({"seed": seed}, {key: gradients, "history": []}, profile="p",
                                  chapter="04_teacher_free", name=name,
                                  spec_hash=f"{name[:4]}{seed}") for seed in (0, 1)]
            for name in ("baseline", "tf_kd_reg")}


def test_a_metric_read_but_missing_is_an_error_naming_the_record_not_a_verdict():
    from kdlib.pages import figure2 as gradients

    (f2,) = [c for c in gradients.CLAIMS if c.id == "F2 (reg)"]
    # the profile sampled no gradients: the claim is not run, and says why
    none = f2.decide(_gradient_records(None), None)
    assert none.verdict == "not run at this scale" and "no gradient samples" in none.test
    # a renamed metric is a bug: an error that names the record and what it has
    renamed = _gradient_records({}, key="grads")
    with pytest.raises(results.MissingMetricError,
                       match=r"results/p/04_teacher_free/base.*0\.json \(seed 0\) has no "
                             r"metric 'gradients'; it has \['grads', 'history'\]"):
        f2.decide(renamed, None)
    with pytest.raises(results.MissingMetricError, match="no metric 'test_acc'"):
        claims.gain("tf_kd_reg", "baseline", 0.41)(renamed, None)
    # a gradient record that breaks the measure in any other way propagates too
    with pytest.raises(KeyError):
        f2.decide(_gradient_records({"layer": []}), None)


def test_two_rows_that_are_one_computation_are_named_as_such():
    """Under a reading that gives two methods the same settings (AKD and AT + Tf-KD-self at
    the published self-teacher recipe), the claim says it compares a method with itself."""
    from types import SimpleNamespace

    def rows(specs):
        return {name: [results.Record({"seed": s, "method": name, **spec(s)}, {"test_acc": 0.8})
                       for s in (0, 1, 2)] for name, spec in specs.items()}

    same = rows({"akd": lambda s: {"T": 2}, "self": lambda s: {"T": 2}})
    d = claims.gain("self", "akd", 0.01)(same, SimpleNamespace())
    assert ("`self` and `akd` are one computation here: on seeds [0, 1, 2] their specs differ "
            "only in the row's name, so the test compares a method with itself") in d.notes
    other = rows({"akd": lambda s: {"T": 2}, "self": lambda s: {"T": 2 if s < 2 else 6}})
    d = claims.gain("self", "akd", 0.01)(other, SimpleNamespace())
    assert not any("one computation" in n for n in d.notes)
