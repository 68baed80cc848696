"""Result records: hashing, atomic writes, reuse, and the summaries over seeds."""

import math

import pytest

from kdlib import report, results, stats


def test_spec_hash_is_stable_and_sensitive():
    a = {"seed": 0, "recipe": {"lr": 0.1, "epochs": 3}}
    b = {"recipe": {"epochs": 3, "lr": 0.1}, "seed": 0}
    assert results.spec_hash(a) == results.spec_hash(b)
    assert results.spec_hash(a) != results.spec_hash({**a, "seed": 1})


def test_a_record_is_written_whole_and_read_back(tmp_path):
    spec = {"seed": 0}
    path = tmp_path / "deep" / f"rec-{results.spec_hash(spec)}.json"
    record = {"spec": spec, "metrics": {"b": 1, "a": [1.5, "x"]}}
    results.write_record(path, record)
    assert results.load_record(path) == results.Record(spec, {"a": [1.5, "x"], "b": 1})
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys
    assert path.read_text().index('"metrics"') < path.read_text().index('"spec"')
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_summary_by_hand():
    s = stats.summarize([0.98, 0.99, 1.00])
    assert s.mean == pytest.approx(0.99)
    assert s.std == pytest.approx(0.01)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, 2) = 4.3027
    assert s.ci_low == pytest.approx(0.99 - half) and s.ci_high == pytest.approx(0.99 + half)
    assert s.fmt() == "99.00 ± 1.00"
    assert stats.summarize([0.5]).fmt() == "50.00"


def test_welch_and_verdict():
    a, b = [0.987, 0.988, 0.9875], [0.980, 0.981, 0.9805]
    assert stats.welch_p(a, b) < 0.01
    assert "larger than the spread" in report.gain_sentence("KD", a, "no KD", b)
    assert "no gain" in report.gain_sentence("KD", b, "no KD", a)
    assert "single seed" in report.gain_sentence("KD", [0.9], "no KD", [0.8])
    assert math.isnan(stats.welch_p([1.0], [2.0, 3.0]))


def test_collapsed_runs_are_named_and_healthy_ones_are_not():
    from kdlib import report

    def rec(seed, acc):
        return results.Record({"seed": seed}, {"clean_acc": acc})

    records = {"at": [rec(0, 0.979), rec(1, 0.105)], "standard": [rec(0, 0.99)],
               "akd": [rec(0, 0.121)]}
    lines = report.collapsed(records, {"at": "AT"})
    assert lines == ["AT: training collapsed in 1 of 2 run(s) (seed 1; clean accuracy 10.5%, "
                     "chance is 10%)."]


def test_a_record_that_loaded_its_network_is_priced_at_its_training():
    """By hand: two epochs of 10 s and 12 s; made in 3 s from a saved network, or in 30 s."""
    from kdlib import claims

    history = [{"epoch": 1, "seconds": 10.0}, {"epoch": 2, "seconds": 12.0}]
    loaded = results.Record({"seed": 0}, {"history": history}, wall_time_s=3.0)
    trained = results.Record({"seed": 1}, {"history": history}, wall_time_s=30.0)
    evaluated = results.Record({"seed": 2}, {"test_acc": 0.9}, wall_time_s=5.0)
    assert (loaded.seconds_to_make, trained.seconds_to_make) == (22.0, 30.0)
    assert evaluated.seconds_to_make == 5.0
    assert results.Record({}, {}).seconds_to_make is None
    # 4 more seeds of a row at the mean of 22 s and 30 s: 4 * 26 s
    assert claims.hours({"row": [loaded, trained]}, ["row"], 4) == pytest.approx(4 * 26 / 3600)
