"""``kdlib verify``: re-make a sample of a profile's committed records and compare every metric.

:func:`verify` re-makes :func:`kdlib.staleness.sample` (one record per chapter and record
name, its lowest seed) with today's code, in scratch folders, with as many threads per
worker as the records were made with, and compares every metric with the committed
record (:func:`kdlib.staleness.compare`; timings excepted).

Bit-identity with a committed record holds on the kind of CPU that made it. On another
kind (other vector or matrix units) the last bits of a float differ, and a training's
path with them, whatever the code. So where a re-made record differs, the same sample
is re-made a second time by *the records' own code*: the commit each record names,
checked out in a temporary git worktree and run through that commit's own
``kdlib.tooling.jobs``. If today's code and the records' code make identical records on
this CPU, the change between them is shown to be result-neutral, and the committed
numbers differ only by the CPU. The stamp (``results/<profile>/verified.json``) says
which comparison held (``identical_to_records``, ``identical_to_records_code``), on which
CPU; ``verified`` is true when either did. The second comparison is only for records made
on another kind of CPU (their ``cpu_isa`` differs from this machine's, or was not recorded):
a record made on this kind must re-run identically, since nothing else explains a
difference (a hand-edited metric, say). Only a verified stamp makes the profile's records
current again (:func:`kdlib.staleness.stale_records`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdlib import config, paths, results, runs, staleness
from kdlib.tooling import jobs


@dataclass(frozen=True)
class Checked:
    """One re-made record against the committed one (and against the records' code)."""

    record: str
    differences: tuple[str, ...]
    added: tuple[str, ...]  # metrics the re-run has and the record lacks (newer code)
    seconds: float
    code_commit: str | None = None  # the records' code, when it re-made the record too
    code_differences: tuple[str, ...] | None = None  # today's code against the records' code

    @property
    def identical(self) -> bool:
        return not self.differences

    @property
    def same_as_code(self) -> bool | None:
        return None if self.code_differences is None else not self.code_differences


@dataclass
class Report:
    """What :func:`verify` found, and the stamp it wrote."""

    profile: str
    checked: list[Checked] = field(default_factory=list)
    stamp: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.stamp.get("verified"))


@contextmanager
def scratch_results(prefix: str) -> Iterator[Path]:
    """Point ``KDLIB_RESULTS`` and ``KDLIB_CHECKPOINTS`` at a scratch folder for the block."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with paths.environment(KDLIB_RESULTS=str(scratch / "results"),
                               KDLIB_CHECKPOINTS=str(scratch / "cache" / "models")):
            yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remake(sample: Sequence[runs.Run], workers: int, threads: int,
           log: Callable[[str], None]) -> dict[str, results.Record | None]:
    """Re-make `sample` with today's code in scratch folders: label -> the new record."""
    with scratch_results("kdlib-verify-") as scratch:
        log(f"[verify] re-making {len(sample)} records with today's code, {workers} "
            f"worker(s), {threads} thread(s) each, in {scratch}")
        jobs.run_local(sample, workers, threads=threads, log=log)
        return {r.label: (r.load() if r.done else None) for r in sample}


#: Run inside a worktree of an older commit: re-make the runs with the given spec hashes
#: through that commit's own job runner and print where their records went.
DRIVER = """
import json, sys
from kdlib.tooling import jobs
profile, chapters, wanted, workers = json.loads(sys.argv[1])
wanted = {tuple(w) for w in wanted}
planned = [r for r in jobs.plan(profile, chapters) if (r.chapter, r.spec_hash) in wanted]
missing = sorted(wanted - {(r.chapter, r.spec_hash) for r in planned})
if missing:
    raise SystemExit(f"the code of this commit plans no run (chapter, hash) {missing}")
jobs.run_local(planned, workers)
print("RECORDS " + json.dumps([[r.chapter, r.spec_hash, str(r.path)] for r in planned]))
"""


def remake_with(commit: str, profile: str, wanted: set[tuple[str, str]], workers: int,
                log: Callable[[str], None], fallback: Path | None = None
                ) -> dict[tuple[str, str], results.Record]:
    """Re-make the runs `wanted` ((chapter, old spec hash) pairs: two chapters can hold a run
    of the same spec, a shared teacher, with different metrics) of `profile` as it was at
    `commit` (or as the file `fallback` says, when that commit has no such profile), with
    that commit's code, in a temporary worktree and scratch folders: (chapter, hash) ->
    record."""
    tree = Path(tempfile.mkdtemp(prefix=f"kdlib-verify-{commit[:7]}-"))
    subprocess.run(["git", "-C", str(paths.REPO), "worktree", "add", "--detach", "--force",
                    str(tree), commit], check=True, capture_output=True)
    try:
        with scratch_results("kdlib-verify-old-"):
            env = {**os.environ, "PYTHONPATH": str(tree), "KDLIB_DATA": str(paths.data_dir())}
            there = tree / "profiles" / f"{profile}.yaml"
            source = str(there if there.is_file() or fallback is None else fallback)
            arg = json.dumps([source, sorted({c for c, _ in wanted}), sorted(wanted), workers])
            log(f"[verify] re-making {len(wanted)} records with the code of {commit[:7]} "
                f"(profile {profile} as it was there)")
            done = subprocess.run([sys.executable, "-c", DRIVER, arg], cwd=tree, env=env,
                                  capture_output=True, text=True)
            for line in done.stdout.splitlines():
                if not line.startswith("RECORDS "):
                    log(f"[verify {commit[:7]}] {line}")
            if done.returncode != 0:
                raise RuntimeError(f"the code of {commit[:7]} failed: {done.stderr[-2000:]}")
            where = json.loads(done.stdout.splitlines()[-1].removeprefix("RECORDS "))
            return {(c, h): results.Record.parse(json.loads(Path(p).read_text()))
                    for c, h, p in where if Path(p).is_file()}
    finally:
        subprocess.run(["git", "-C", str(paths.REPO), "worktree", "remove", "--force",
                        str(tree)], capture_output=True)


class TreeChangedError(RuntimeError):
    """The checkout changed while a verification ran: its stamp could name no one commit."""


def _tree() -> tuple[str | None, str | None]:
    """HEAD and the hash of the code's uncommitted changes (None: none), read now."""
    status = results.git("status", "--porcelain", "--untracked-files=all", "--", *results.CODE)
    return results.git("rev-parse", "HEAD"), results.diff_hash() if status else None


def verify(profile: str | Path, *, workers: int = 1, against_code: bool = True,
           per_row: int = 1, seed: int = 0, log: Callable[[str], None] = print) -> Report:
    """Re-make a sample of `profile`'s committed records and compare; write the stamp (see
    the module docstring). Every committed record is read first, so an edited one is refused
    by name (its seal). Needs a clean tree, left alone while it runs: the stamp names the
    commit checked out when it finishes, and none is written if that changed."""
    name = config.profile_path(profile).stem
    results.check_clean(name)
    start = _tree()
    every = staleness.committed_records(profile)
    sample = staleness.sample(profile, per_row, seed)
    if not sample:
        raise config.ProfileError(f"profile {name!r} has no committed records to verify")
    committed = {r.label: r.load() for r in sample}
    threads = max(rec.environment.get("cpu_threads") or 1 for rec in committed.values())
    remade = remake(sample, workers, threads, log)
    report = Report(name)
    for run in sample:
        old, new = committed[run.label], remade[run.label]
        label = f"{run.chapter}/{run.path.name}"
        if new is None:
            report.checked.append(Checked(label, ("the re-run failed",), (), 0.0))
            continue
        report.checked.append(Checked(
            label, tuple(staleness.compare(old.metrics, new.metrics)),
            tuple(sorted(set(new.metrics) - set(old.metrics))), new.wall_time_s))
    if against_code and not all(c.identical for c in report.checked):
        report.checked = _against_code(sample, committed, remade, report.checked, threads,
                                       log, config.profile_path(profile))
    end = _tree()
    if end != start:
        raise TreeChangedError(
            f"the checkout changed while the verification ran (HEAD {str(start[0])[:7]}"
            f"{' with uncommitted changes' if start[1] else ''} -> {str(end[0])[:7]}"
            f"{' with uncommitted changes' if end[1] else ''}): no stamp written. Run it "
            f"again on a tree left alone.")
    sealed = sum(record.seal is not None for record in every.values())
    report.stamp = _stamp(report, threads, workers, commit=end[0],
                          sample={"per_row": per_row, "seed": seed, "records": len(every),
                                  "sealed": sealed, "made_on": _kinds(committed)})
    report.stamp["replicated"] = replicated(name)
    results.write_record(staleness.stamp_path(name), report.stamp)
    return report


def replicated(profile: str) -> list[dict[str, Any]]:
    """The claims of `profile` that a replication profile decided again on another kind of
    CPU, or that `profile` replicates (:data:`kdlib.tooling.claims_page.REPLICATIONS`): a
    check of the claims where the records themselves cannot be re-made bit for bit here."""
    from kdlib.pages import findings, verdict_tables
    from kdlib.tooling import claims_page

    pairs = {rep: orig for rep, orig in claims_page.REPLICATIONS.items()
             if profile in (rep, orig) and all((paths.profiles_dir() / f"{n}.yaml").is_file()
                                               for n in (rep, orig))}
    found = [f for p in sorted({*pairs, *pairs.values()}) for f in findings.at(p)]
    return verdict_tables.replications(found, pairs)


def _kind(record: results.Record) -> str:
    """Which kind of CPU made `record`, against this machine's: this, another or unknown."""
    isa = record.environment.get("cpu_isa")
    return "unknown" if isa is None else "this" if isa == results.cpu_isa() else "another"


def _kinds(committed: dict[str, results.Record]) -> dict[str, str]:
    return {label: _kind(rec) for label, rec in committed.items()}


def _against_code(sample: Sequence[runs.Run], committed: dict[str, results.Record],
                  remade: dict[str, results.Record | None], checked: list[Checked],
                  threads: int, log: Callable[[str], None], fallback: Path) -> list[Checked]:
    """Re-make the differing records with their own code and compare with today's re-runs."""
    groups: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (commit, profile) -> runs
    old_hash = {}
    for run, c in zip(sample, checked, strict=True):
        if c.identical or remade[run.label] is None:
            continue
        rec = committed[run.label]
        commit = rec.commit
        if not commit or rec.environment.get("git_dirty"):
            continue  # no clean code to re-make it with
        if rec.environment.get("cpu_isa") == results.cpu_isa():
            log(f"[verify] {run.chapter}/{run.path.name} was made on this kind of CPU: it "
                "must re-run identically, and the records' code cannot excuse it")
            continue
        old_hash[run.label] = (rec.migrated_from or {}).get("spec_hash", rec.spec_hash)
        groups.setdefault((commit, rec.profile), set()).add((run.chapter,
                                                                old_hash[run.label]))
    made: dict[tuple[str, str, str], results.Record] = {}
    old_workers = max(1, (os.cpu_count() or 1) // threads)  # that code gives cores // workers
    for (commit, profile), wanted in groups.items():
        for (chapter, h), rec in remake_with(commit, profile, wanted, old_workers, log,
                                             fallback).items():
            made[(commit, chapter, h)] = rec
    out = []
    for run, c in zip(sample, checked, strict=True):
        commit = committed[run.label].commit
        theirs = made.get((commit, run.chapter, old_hash.get(run.label, "")))
        if theirs is None:
            out.append(c)
            continue
        diff = tuple(staleness.compare(theirs.metrics, remade[run.label].metrics))
        out.append(Checked(c.record, c.differences, c.added, c.seconds, commit, diff))
    return out


def _stamp(report: Report, threads: int, workers: int, *, commit: str | None,
           sample: dict[str, Any]) -> dict[str, Any]:
    """The stamp: what was checked, how, on which CPU. `reproduced` lists the records re-made
    bit for bit here (their committed numbers checked); `code_neutral_only` those made on
    another or an unknown kind of CPU that today's code and their own make identically here
    (the code shown result-neutral, their committed numbers not checked)."""
    to_records = all(c.identical for c in report.checked)
    to_code = all(c.same_as_code for c in report.checked if not c.identical) and all(
        c.identical or c.same_as_code is not None for c in report.checked)
    return {"profile": report.profile, "commit": commit,
            "verified_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu": results.cpu_model(), "cpu_isa": results.cpu_isa(),
            "threads": threads, "workers": workers, "sample": sample,
            "reproduced": [c.record for c in report.checked if c.identical],
            "code_neutral_only": [c.record for c in report.checked
                                  if not c.identical and c.same_as_code],
            "identical_to_records": to_records,
            "identical_to_records_code": None if to_records else to_code,
            "verified": to_records or to_code,
            "records": [{"record": c.record, "identical": c.identical,
                         "differences": list(c.differences[:20]),
                         "metrics_added": list(c.added), "wall_time_s": c.seconds,
                         "records_code": c.code_commit,
                         "identical_to_records_code": c.same_as_code,
                         "differences_to_records_code": list((c.code_differences or ())[:20])}
                        for c in report.checked]}
