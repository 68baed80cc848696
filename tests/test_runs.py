"""The run abstraction: a record is computed once, written whole, and found by its hash."""

import functools
import json

import pytest

from kdlib import results, runs
from kdlib.tooling import costs


def metrics(calls, value, *, progress=True):
    calls.append(progress)
    return {"test_acc": value}


def boom(*, progress=True):
    raise KeyboardInterrupt


def make(name="run", seed=0, compute=None, chapter="ch"):
    calls = []
    compute = compute or functools.partial(metrics, calls, 0.5)
    return runs.Run("unit", chapter, name, {"seed": seed}, compute), calls


def test_a_run_computes_once_and_records_provenance():
    run, calls = make()
    first, second = run.execute(), run.execute()
    assert calls == [True] and first == second
    rec = json.loads(run.path.read_text())
    assert run.path.name == f"run-{run.spec_hash}.json"
    assert rec["metrics"] == {"test_acc": 0.5} and rec["spec"] == {"seed": 0}
    for key in ("profile", "wall_time_s", "device", "spec_hash", "started_utc"):
        assert key in rec
    assert {"git_commit", "git_dirty", "packages", "python"} <= set(rec["environment"])
    assert rec["environment"]["packages"]["torch"]
    assert first == results.Record.parse(rec)  # what a reader gets is the file, parsed


def test_an_interrupted_run_leaves_no_record_and_the_others_stay():
    done, _ = make("done")
    broken, _ = make("broken", compute=boom)
    with pytest.raises(KeyboardInterrupt):
        runs.run_all([done, broken], progress=False)
    assert done.done and not broken.done
    assert runs.saved([done, broken]) is None
    assert runs.saved([done]) == {"done": [done.load()]}


def test_records_are_grouped_by_name_in_plan_order():
    plan = [make("b", 0)[0], make("a", 0)[0], make("b", 1)[0]]
    records = runs.run_all(plan, progress=False)
    assert list(records) == ["b", "a"]
    assert [r.spec["seed"] for r in records["b"]] == [0, 1]
    table = runs.provenance(records, {"acc": lambda r: r.metrics["test_acc"]})
    assert list(table["run"]) == ["b", "b", "a"] and list(table["acc"]) == [0.5] * 3
    assert table["record"][0] == f"b-{plan[0].spec_hash}.json"


def test_unique_keeps_the_first_of_equal_records():
    a, b, c = make("x")[0], make("x")[0], make("y")[0]
    out = runs.unique([a, b, c])
    assert len(out) == 2 and out[0] is a and out[1] is c


def test_cost_conventions_by_hand():
    assert costs.forward_flops(10, 3) == 60
    assert costs.train_flops(runs.Work(10, trained_images=3)) == 180  # 3 forward passes/image
    assert costs.train_flops(runs.Work(10, trained_images=3, teacher_macs=5)) == 180 + 30
    assert costs.train_flops(runs.Work(10, trained_images=3, attack_steps=7)) == 8 * 180


def test_a_committed_profile_is_refused_from_a_modified_tree(monkeypatch):
    dirty = {**runs.results.environment(), "git_dirty": True, "git_diff_sha256": "ab" * 32}
    monkeypatch.setattr(runs.results, "environment", lambda: dirty)
    calls = []
    paper = runs.Run("paper", "ch", "run", {"seed": 0},
                     functools.partial(metrics, calls, 0.5))
    with pytest.raises(runs.results.DirtyTreeError, match="modified tree"):
        paper.execute()
    assert calls == [] and not paper.done  # refused before any compute
    other, _ = make()  # another profile's record is written, with the diff's hash
    rec = other.execute()
    assert rec.environment["git_dirty"] and rec.environment["git_diff_sha256"] == "ab" * 32


def test_the_time_left_is_priced_per_network_family():
    """Two CNN runs of 1e9 FLOPs each and one ResNet run of 8e9: once a CNN took 10 s
    (1e8 FLOP/s), the other CNN and the ResNet (no rate of its own yet) are priced at
    that rate, 10 + 80 s; once the ResNet took 20 s (4e8 FLOP/s) the CNN left is priced
    at the CNN's own rate (10 s), not the mean of both (9e9 FLOPs in 30 s)."""
    def run(name, family, macs):
        return runs.Run("unit", "ch", name, {"n": name}, None, work=runs.Work(macs, family=family))

    cnn1, cnn2, resnet = run("a", "cnn", 1e9), run("b", "cnn", 1e9), run("c", "resnet", 8e9)
    lines = []
    progress = runs.Progress([cnn1, cnn2, resnet], lambda r: r.work.macs, log=lines.append)
    assert progress.seconds_left() is None and progress.eta() == ""
    progress.eta_after(cnn1, 10.0)
    assert progress.seconds_left() == pytest.approx(90.0)
    assert progress.eta_after(resnet, 20.0) == "; under a minute left in this plan"
    assert progress.seconds_left() == pytest.approx(10.0)
    progress.eta_after(cnn2, 10.0)
    assert progress.seconds_left() == 0.0 and progress.eta() == ""
    big = runs.Progress([run("d", "mlp", 6e11), run("e", "mlp", 6e11)], lambda r: r.work.macs)
    assert big.eta_after(big.todo[0], 60.0) == "; about 1 min left in this plan"


def test_the_time_left_counts_no_training_that_saved_or_shared_weights_provide():
    """A run whose network is saved already only evaluates, and so does a second run that
    trains the weights an earlier run of the plan trains (a shared teacher): by hand, a
    network of 10 MACs trained on 3 images is 180 FLOPs, one test forward 20."""
    from kdlib import flops

    work = runs.Work(10, trained_images=3, forwards=1)
    plan = [runs.Run("unit", "ch", n, {"n": n}, None, trains=w, work=work)
            for n, w in (("fresh", "a.pt"), ("shares", "a.pt"), ("saved", "b.pt"),
                         ("evaluates", None))]
    priced = flops.to_compute(plan, saved=lambda name: name == "b.pt")
    assert [priced(r) for r in plan] == [200.0, 20.0, 20.0, 200.0]
    assert flops.run_flops(work) == 200.0  # the network's whole price, for the cost table
    # one saved run finished in 1 s must not make the training left look instantaneous
    progress = runs.Progress(plan[1:3], priced)
    progress.eta_after(plan[2], 1.0)
    assert progress.seconds_left() == pytest.approx(1.0)


def test_nothing_is_left_once_every_run_finished_whatever_the_rounding():
    """FLOPs that do not add up exactly in floating point (0.1 + 0.2 - 0.1 - 0.2 != 0) still
    leave no time once the last run is done."""
    plan = [runs.Run("unit", "ch", n, {"n": n}, None, work=runs.Work(f, family="cnn"))
            for n, f in (("a", 0.1), ("b", 0.2))]
    progress = runs.Progress(plan, lambda r: r.work.macs)
    progress.eta_after(plan[0], 1.0)
    assert progress.eta_after(plan[1], 1.0) == "" and progress.seconds_left() == 0.0


def test_a_damaged_record_in_a_row_is_refused_not_skipped_or_remade():
    from kdlib import results

    plan = [make("row", seed)[0] for seed in (0, 1, 2)]
    runs.run_all(plan, progress=False)
    plan[1].path.write_text('{"spec": {"seed": 1}, "metr')  # a half-written record
    for read in (lambda: runs.run_all(plan, progress=False), lambda: runs.saved(plan)):
        with pytest.raises(results.DamagedRecordError, match="not valid JSON") as err:
            read()
        assert str(plan[1].path) in str(err.value)
    assert plan[1].path.read_text() == '{"spec": {"seed": 1}, "metr'  # nothing re-made over it


def slow_metrics(log, value, *, progress=True):
    """A run that takes a moment and says, in `log`, that it was computed."""
    import time

    with open(log, "a") as f:
        f.write("computed\n")
    time.sleep(0.3)
    return {"test_acc": value}


def make_plan(log):
    return [runs.Run("unit", "ch", "row", {"seed": s}, functools.partial(slow_metrics, log, s))
            for s in range(3)]


def run_plan(log):
    runs.run_all(make_plan(log), progress=False)


def test_two_processes_on_one_plan_make_each_run_once(tmp_path):
    import multiprocessing

    log = tmp_path / "computed.log"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=run_plan, args=(log,)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert log.read_text().count("computed") == 3  # each run once, not twice
    plan = make_plan(log)
    assert [r.load().metrics["test_acc"] for r in plan] == [0, 1, 2]
    folder = plan[0].path.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(r.path.name for r in plan)


def test_a_write_that_fails_half_way_leaves_no_record_and_says_why(monkeypatch):
    import errno
    from pathlib import Path

    from kdlib import results

    def half_then_full(self, text, *args, **kwargs):
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    run, calls = make()
    write_text = Path.write_text
    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(results.RecordWriteError, match="No space left on device") as err:
        run.execute(progress=False)
    assert str(run.path) in str(err.value) and "nothing was recorded" in str(err.value)
    monkeypatch.setattr(Path, "write_text", write_text)  # the space is free again
    assert not run.done and list(run.path.parent.iterdir()) == []  # no part, no temporary
    assert run.execute(progress=False).metrics == {"test_acc": 0.5}  # the rerun records it
    assert calls == [False, False]
