"""Result records: hashing, atomic writes, reuse, and the summaries over seeds."""

import json
import math

import pytest

from kdlib import report, results, stats


def test_spec_hash_is_stable_and_sensitive():
    a = {"seed": 0, "recipe": {"lr": 0.1, "epochs": 3}}
    b = {"recipe": {"epochs": 3, "lr": 0.1}, "seed": 0}
    assert results.spec_hash(a) == results.spec_hash(b)
    assert results.spec_hash(a) != results.spec_hash({**a, "seed": 1})


def test_cached_run_computes_once_and_records_provenance():
    calls = []

    def compute():
        calls.append(1)
        return {"test_acc": 0.5}

    spec = {"seed": 0}
    first = results.cached_run("unit", "ch", "run", spec, compute)
    second = results.cached_run("unit", "ch", "run", spec, compute)
    assert calls == [1] and first == second
    path = results.record_path("unit", "ch", "run", spec)
    rec = json.loads(path.read_text())
    assert rec["metrics"] == {"test_acc": 0.5} and rec["spec"] == spec
    for key in ("profile", "wall_time_s", "device", "spec_hash"):
        assert key in rec
    assert {"git_commit", "packages", "python"} <= set(rec["environment"])
    assert rec["environment"]["packages"]["torch"]


def test_failed_run_leaves_no_record():
    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        results.cached_run("unit", "ch", "run", {"seed": 9}, boom)
    assert not results.record_path("unit", "ch", "run", {"seed": 9}).exists()
    assert results.records("unit", "ch") == []


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
