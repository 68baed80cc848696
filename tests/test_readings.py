"""Readings of the paper's open settings: which runs they add, and the records a claim sees."""

import dataclasses

import pytest

from kdlib import chapters, readings, results
from kdlib.config import ProfileError


def _cfg(**changes):
    base = chapters.validate("04_teacher_free", {"profile": "smoke", "seeds": [0, 1, 2]},
                             complete=False)
    return dataclasses.replace(base, **changes)


def test_a_reading_adds_only_the_runs_it_changes_on_its_seeds():
    cfg = _cfg(readings=["alpha-cifar100", "smoothing-others"], reading_seeds=[1, 2])
    primary = chapters.plan("04_teacher_free", _cfg())
    planned = chapters.plan("04_teacher_free", cfg)
    added = planned[len(primary):]
    assert [r.path for r in planned[:len(primary)]] == [r.path for r in primary]
    assert sorted((r.name, r.seed) for r in added) == [
        ("label_smoothing@smoothing-others", 1), ("label_smoothing@smoothing-others", 2),
        ("tf_kd_self@alpha-cifar100", 1), ("tf_kd_self@alpha-cifar100", 2)]
    self_run = next(r for r in added if r.name == "tf_kd_self@alpha-cifar100")
    assert self_run.spec["objective"]["alpha"] == 0.905
    # the teacher of the reading's run is the primary baseline of the same seed
    base = next(r for r in primary if r.name == "baseline" and r.seed == self_run.seed)
    assert self_run.needs == (base.trains,)


def test_a_teacher_trained_to_fit_is_a_run_of_its_own_before_its_student():
    cfg = _cfg(readings=["self-teacher-fit"], reading_seeds=[1])
    primary = chapters.plan("04_teacher_free", _cfg())
    added = chapters.plan("04_teacher_free", cfg)[len(primary):]
    assert [(r.name, r.seed) for r in added] == [
        ("tf_kd_self_teacher@self-teacher-fit", 1), ("tf_kd_self@self-teacher-fit", 1)]
    teacher, student = added
    base = next(r for r in primary if r.name == "baseline" and r.seed == 1)
    # the teacher is the baseline's training at the reading's epochs; the student keeps its own
    assert teacher.spec["recipe"]["epochs"] == 96
    assert {**teacher.spec, "recipe": base.spec["recipe"]} == base.spec
    assert student.spec["recipe"] == base.spec["recipe"]
    assert student.spec["objective"]["teacher"] == teacher.spec
    assert student.needs == (teacher.trains,) != (base.trains,)
    # the primary reading plans no teacher apart from the baseline row
    assert not any(r.name.startswith("tf_kd_self_teacher") for r in primary)


def test_readings_are_checked_before_any_compute():
    with pytest.raises(ProfileError, match="unknown"):
        chapters.plan("04_teacher_free", _cfg(readings=["nonsense"], reading_seeds=[0]))
    with pytest.raises(ProfileError, match="reading_seeds"):
        chapters.validate("04_teacher_free", {"profile": "smoke", "seeds": [0, 1],
                                              "readings": ["alpha-cifar100"]}, complete=False)
    with pytest.raises(ProfileError, match="among seeds"):
        chapters.validate("04_teacher_free", {"profile": "smoke", "seeds": [0, 1],
                                              "readings": ["alpha-cifar100"],
                                              "reading_seeds": [2]}, complete=False)
    with pytest.raises(ProfileError, match="pilot"):
        chapters.validate("04_teacher_free", {"profile": "smoke", "seeds": [0, 1, 2],
                                              "readings": ["alpha-cifar100"],
                                              "reading_seeds": [1, 2], "pilot_seeds": [0, 1]},
                          complete=False)


def test_substitute_swaps_a_row_for_its_reading_on_the_reading_seeds():
    rec = lambda seed, v: results.Record({"seed": seed}, {"test_acc": v})  # noqa: E731
    records = {"baseline": [rec(s, 0.5) for s in range(3)],
               "tf_kd_self": [rec(s, 0.6) for s in range(3)],
               "tf_kd_self@alpha-cifar100": [rec(s, 0.7) for s in (1, 2)]}
    seen = readings.substitute(records, "alpha-cifar100", [1, 2])
    assert sorted(seen) == ["baseline", "tf_kd_self"]
    assert [r.metrics["test_acc"] for r in seen["tf_kd_self"]] == [0.7, 0.7]
    assert [r.spec["seed"] for r in seen["baseline"]] == [1, 2]
    assert readings.rows_changed(records, "alpha-cifar100") == {"tf_kd_self"}
    assert sorted(readings.primary(records)) == ["baseline", "tf_kd_self"]
    # a row only a reading has (a teacher it trains apart) is seen under its own name
    records["tf_kd_self_teacher@alpha-cifar100"] = [rec(s, 0.9) for s in (0, 1, 2)]
    seen = readings.substitute(records, "alpha-cifar100", [1, 2])
    assert list(seen) == ["baseline", "tf_kd_self", "tf_kd_self_teacher"]
    assert [r.spec["seed"] for r in seen["tf_kd_self_teacher"]] == [1, 2]
    assert "tf_kd_self_teacher" not in readings.substitute(records, "other", [1, 2])


def test_the_rows_a_reading_changes_depend_on_the_profile():
    # the final-epoch reading changes the adversarially trained rows of a profile that stops
    # early (the `cpu` recipe) and nothing where every row already ends at its final epoch
    from kdlib.chapters import adversarial
    from kdlib.pages import findings

    def cfg(early_stop):
        return chapters.validate("06_adversarial_tfkd", {
            "profile": "smoke", "seeds": [0], "early_stop": early_stop, "val_size": 8,
            "methods": ["standard", "at", "at_tf_kd_reg"]}, complete=False)

    stopping = findings.rows_changed("06_adversarial_tfkd", adversarial.FINAL_EPOCH, cfg(True))
    assert stopping == {"at", "at_tf_kd_reg"}
    assert findings.rows_changed("06_adversarial_tfkd", adversarial.FINAL_EPOCH,
                               cfg(False)) == frozenset()
