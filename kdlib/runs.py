"""The one run abstraction: a chapter declares its runs once, everything else reads the list.

A chapter's ``plan(cfg) -> list[Run]`` names every run it needs: the record it
writes (profile, chapter folder, short name and full spec), how to compute its
metrics, which trained network it produces or loads, and what it costs. From
that single list

- :func:`run_all` executes what is missing and returns every record (a notebook);
- :func:`saved` reads the records already on disk without computing anything
  (another profile's committed records);
- :mod:`kdlib.tooling.jobs` spreads the missing runs over processes or SLURM;
- :mod:`kdlib.tooling.costs` prices their :class:`Work`;
- :func:`provenance` tables where each number came from.

A record is written only after its computation returns, so an interrupted run
leaves nothing half-written, and the next call resumes with the runs not done.
Trained networks keep their own every-epoch resume files (:mod:`kdlib.checkpoints`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kdlib import checkpoints, paths, results, training

#: Records of a chapter grouped by run name, in plan order, each list in seed order.
Records = dict[str, list[results.Record]]


@dataclass(frozen=True)
class Work:
    """What a run computes, in the counts the cost model prices (:mod:`kdlib.tooling.costs`).

    Training (counted once per trained network): a network of `macs` multiply-accumulates
    per image, trained on `trained_images` (epochs × images), `attack_steps` PGD steps per
    training image, a frozen teacher of `teacher_macs` run on every training batch, and
    `extra_train_macs` more multiply-accumulates (early stopping's held-out attacks, a
    teacher's logits computed once). Evaluation (counted for every run):
    `forwards` forward passes, AutoAttack with `autoattack` (pyautoattack's names; empty:
    the standard version) on `autoattack_images`, Square alone on `square_images`, their
    iterations and queries bounded by `attack_cap` (0: none; :func:`kdlib.attacks.capped`).
    `family` (``mlp``, ``cnn`` or ``resnet``) says which measured CPU speed applies.
    """

    macs: float
    trained_images: float = 0.0
    attack_steps: int = 0
    teacher_macs: float = 0.0
    extra_train_macs: float = 0.0
    forwards: float = 0.0
    autoattack: tuple[str, ...] = ()
    autoattack_images: int = 0
    square_images: int = 0
    attack_cap: int = 0
    family: str = "resnet"


@dataclass(frozen=True)
class Run:
    """One run of a chapter: its record and how to make it.

    `compute(progress=...)` returns the run's metrics (a JSON-able dict); it must
    be picklable (a :func:`functools.partial` of a module-level function) so that
    a worker process can call it. `device` is the profile's name for it (``auto``: CUDA
    when present, else the CPU), resolved when the run executes, so that a plan is the
    same on every machine. `trains` names the checkpoint of the network the
    run trains (runs that share it train it once), `needs` the checkpoints it
    loads (its teachers); `work` is what it computes, for the cost model. `reading` names
    the other reading of the paper's settings the run belongs to (:mod:`kdlib.readings`;
    None: the primary one): a chapter's records are complete without it.
    """

    profile: str
    chapter: str
    name: str
    spec: Mapping[str, Any]
    compute: Callable[..., Mapping[str, Any]]
    device: str = "cpu"
    trains: str | None = None
    needs: tuple[str, ...] = ()
    work: Work = Work(0.0)
    reading: str | None = None

    @property
    def spec_hash(self) -> str:
        return results.spec_hash(self.spec)

    @property
    def path(self) -> Path:
        return results.record_path(self.profile, self.chapter, self.name, self.spec)

    @property
    def done(self) -> bool:
        return self.path.is_file()

    @property
    def seed(self) -> int | None:
        return self.spec.get("seed")

    @property
    def label(self) -> str:
        return f"{self.chapter}/{self.name}-{self.spec_hash} (seed {self.seed})"

    def load(self) -> results.Record:
        return results.load_record(self.path)

    @property
    def lock_path(self) -> Path:
        """The lock a process holds while it makes this run (beside the checkpoints, out of
        the results folder)."""
        return (paths.checkpoints_dir() / "runs"
                / f"{self.profile}-{self.chapter}-{self.name}-{self.spec_hash}.lock")

    def execute(self, progress: bool = True) -> results.Record:
        """The run's record: read from disk, or computed now and then saved. The process
        that makes it holds :attr:`lock_path`, so two processes making one plan compute each
        run once: the second waits, then reads the first one's record."""
        if self.done:
            return self.load()
        results.check_clean(self.profile)
        with checkpoints.exclusive_lock(self.lock_path):
            if self.done:  # made by another process while this one waited
                return self.load()
            start = dt.datetime.now(dt.UTC)
            t0 = time.perf_counter()
            metrics = dict(self.compute(progress=progress))
            record = {
                "profile": self.profile, "chapter": self.chapter, "name": self.name,
                "spec": dict(self.spec), "spec_hash": self.spec_hash, "metrics": metrics,
                "wall_time_s": round(time.perf_counter() - t0, 3),
                "started_utc": start.isoformat(timespec="seconds"),
                "device": str(training.resolve_device(self.device)),
                "environment": results.environment(),
            }
            results.write_record(self.path, results.sealed(record))
        return self.load()  # as read from its file, identical to what a later call reads


def group(records: Iterable[results.Record]) -> Records:
    """Records grouped by run name, in the order given."""
    out: Records = {}
    for r in records:
        out.setdefault(r.name, []).append(r)
    return out


class Progress:
    """One line per run of a plan, for a person to read: its place (run k of n), its name,
    whether it was recorded already, how long it took, and the time left, estimated from
    the FLOPs still to compute (`flops(run)`, :func:`kdlib.flops.to_compute`) at the rate
    the runs computed so far reached, kept apart per network family (``Work.family``): a
    small CNN under AutoAttack computes far fewer FLOPs a second than a ResNet's training,
    so a family none of whose runs has finished is priced at the rate of all runs so far."""

    def __init__(self, plan: Sequence[Run], flops: Callable[[Run], float] | None = None,
                 log: Callable[[str], None] = print):
        self.plan, self.log = list(plan), log
        self.flops = flops or (lambda run: 0.0)
        self.todo = [r for r in self.plan if not r.done]
        self.pending = list(self.todo)  # the runs not finished yet
        self.measured: dict[str, tuple[float, float]] = {}  # family -> (FLOPs, seconds) so far

    def start(self, k: int, run: Run) -> None:
        where = f"run {k} of {len(self.plan)}: {run.label}"
        self.log(f"{where}: recorded" if run.done else f"{where}: computing{self.eta()}")

    def finish(self, run: Run, seconds: float) -> None:
        self.log(f"  done in {seconds:.0f} s{self.eta_after(run, seconds)}")

    def eta_after(self, run: Run, seconds: float) -> str:
        """Count `run` as done in `seconds` (of this process's time) and return the estimate
        of the time left, for a runner that reports its own lines."""
        family, flops = run.work.family, self.flops(run)
        done, spent = self.measured.get(family, (0.0, 0.0))
        self.measured[family] = (done + flops, spent + seconds)
        self.pending = [r for r in self.pending if r.path != run.path]
        return self.eta(after=True)

    def seconds_left(self) -> float | None:
        """The estimated seconds still to compute, or None before any rate is measured."""
        flops = sum(f for f, _ in self.measured.values())
        seconds = sum(s for _, s in self.measured.values())
        if not flops or not seconds:
            return None
        overall = flops / seconds
        total = 0.0
        for run in self.pending:
            done, spent = self.measured.get(run.work.family, (0.0, 0.0))
            total += self.flops(run) / (done / spent if done and spent else overall)
        return total

    def eta(self, after: bool = False) -> str:
        seconds = self.seconds_left()
        if not seconds:
            return ""
        minutes = seconds / 60
        left = "under a minute" if minutes < 1 else f"about {minutes:.0f} min"
        return f"; {left} left{' in this plan' if after else ''}"


def run_all(plan: Sequence[Run], progress: bool = True,
            flops: Callable[[Run], float] | None = None) -> Records:
    """Every record of `plan`, computing the missing ones in plan order. With `progress`,
    one line per run (:class:`Progress`) and each training's progress bar."""
    report = Progress(plan, flops) if progress else None
    if report is not None and report.todo:
        report.log(f"{len(plan)} runs: {len(plan) - len(report.todo)} already recorded, "
                   f"{len(report.todo)} to compute")
    out = []
    for k, run in enumerate(plan, 1):
        computed = not run.done
        if report is not None:
            report.start(k, run)
        t0 = time.perf_counter()
        out.append(run.execute(progress))
        if report is not None and computed:
            report.finish(run, time.perf_counter() - t0)
    return group(out)


def saved(plan: Sequence[Run]) -> Records | None:
    """The records of `plan` already on disk, or None if a run of the primary reading is
    missing (computes nothing); the records of other readings are included where made."""
    if not all(r.done for r in plan if r.reading is None):
        return None
    return group(r.load() for r in plan if r.done)


def unique(plan: Iterable[Run]) -> list[Run]:
    """`plan` without repeats of the same record (two chapters may plan the same run)."""
    seen: dict[Path, Run] = {}
    for r in plan:
        seen.setdefault(r.path, r)
    return list(seen.values())


def provenance(records: Records,
               columns: Mapping[str, Callable[[results.Record], Any]] | None = None
               ) -> pd.DataFrame:
    """One row per record: run, seed, record file, the chapter's `columns`, wall time,
    commit and device."""
    rows = []
    for recs in records.values():
        for r in recs:
            commit = (r.commit or "")[:10]
            rows.append({"run": r.name, "seed": r.seed,
                         "record": f"{r.name}-{r.spec_hash}.json",
                         **{k: f(r) for k, f in (columns or {}).items()},
                         "wall time (s)": round(r.wall_time_s or 0.0, 1),
                         "commit": commit + (" (modified)" if r.environment.get("git_dirty")
                                             else ""),
                         "device": r.device})
    return pd.DataFrame(rows)
