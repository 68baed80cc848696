"""Scale-out: a profile's independent runs as jobs for a process pool or SLURM.

There is no scheduler here. Each chapter module lists its runs with
``plan(cfg) -> list[kdlib.runs.Run]``; a run's ``compute`` is picklable (a
:func:`functools.partial` of a module-level function) and loads its own data,
so any process can execute it. This module collects the runs of a profile and
hands the unfinished ones to

- ``local``: :class:`concurrent.futures.ProcessPoolExecutor` with N workers,
  each pinned to one GPU through ``CUDA_VISIBLE_DEVICES`` (round-robin when
  there are more workers than GPUs), or to ``cores / N`` CPU threads;
- ``slurm``: `submitit <https://github.com/facebookincubator/submitit>`_'s
  ``AutoExecutor``, one SLURM job (one GPU, or CPUs only) per run, submitted as one array.

A job whose record exists is skipped before any worker starts: records are
named by the hash of the run's spec (:mod:`kdlib.results`). Runs that need the
same teacher share its checkpoint; its lock (:mod:`kdlib.checkpoints`) lets one
process train it while the others wait. Afterwards ``kdlib book PROFILE``
finds every record cached and only renders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from kdlib import chapters as registry
from kdlib import config, flops, paths, results, runs
from kdlib.runs import Run


@dataclass
class Outcome:
    """What :func:`run_local` or :func:`run_slurm` did: runs skipped as cached, runs
    executed, failures."""

    cached: list[Run] = field(default_factory=list)
    ran: list[Run] = field(default_factory=list)
    failed: list[tuple[Run, str]] = field(default_factory=list)

    def settle(self, run: Run, result: Callable[[], Any], note: Callable[[Any], str],
               log: Callable[[str], None]) -> None:
        """Wait for `result()` of `run` and file it under ran or failed. A failure is
        reported and kept; the other runs go on."""
        try:
            value = result()
        except Exception as err:
            self.failed.append((run, f"{type(err).__name__}: {err}"))
            log(f"[jobs] FAILED {run.label}: {type(err).__name__}: {err}")
        else:
            self.ran.append(run)
            log(f"[jobs] done {run.label}{note(value)}")


def plan(profile: str | Path, chapters: Sequence[str] | None = None) -> list[Run]:
    """The runs of `chapters` (default: all) of `profile`, each record once.

    Runs that train a network another run learns from come first, so that a pool
    starts training teachers before the students that need them; then seed by seed, so
    that a run stopped part-way leaves whole seeds of every method. Raises
    :class:`kdlib.config.ProfileError` for a chapter the profile lacks.
    """
    cfgs = registry.load_profile(profile)
    chosen = list(chapters) if chapters else list(cfgs)
    bad = [c for c in chosen if c not in cfgs]
    if bad:
        raise config.ProfileError(f"cannot plan {bad}: the profile has {sorted(cfgs)}")
    planned = runs.unique(r for c in chosen for r in registry.plan(c, cfgs[c]))
    needed = {n for r in planned for n in r.needs}
    first: dict[str, Run] = {}
    for r in planned:
        if r.trains in needed:
            first.setdefault(r.trains, r)
    # a second run of the same network (another chapter's record of it) waits for the first
    return sorted(planned, key=lambda r: (first.get(r.trains) is not r, r.seed or 0))


# --- local: one process per worker --------------------------------------------------------------

def _gpu_ids() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else all."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _init_worker(slots: Any, gpus: list[str], threads: int) -> None:
    """Pin this worker to one GPU (before CUDA starts) or to `threads` CPU threads, and have
    every training it runs print a line per finished epoch."""
    slot = slots.get()
    _print_epochs()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    else:
        import torch

        torch.set_num_threads(threads)


def _print_epochs() -> None:
    """Have every training of this worker print a line per finished epoch
    (:data:`kdlib.training.EPOCHS`), once however often it is called."""
    import logging
    import sys

    from kdlib import training

    if not training.EPOCHS.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[jobs pid %(process)d]   %(message)s"))
        training.EPOCHS.addHandler(handler)
        training.EPOCHS.setLevel(logging.INFO)
        training.EPOCHS.propagate = False


def _execute(run: Run) -> float:
    """Execute one run in a worker (its record is written there); return its wall seconds."""
    t0 = time.perf_counter()
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    print(f"[jobs pid {os.getpid()} gpu {gpu}] start {run.label}", flush=True)
    run.execute(progress=False)
    return time.perf_counter() - t0


def run_local(jobs: Sequence[Run], workers: int, *, gpus: list[str] | None = None,
              threads: int | None = None, log: Callable[[str], None] = print) -> Outcome:
    """Run the unfinished `jobs` on `workers` processes; see the module docstring.

    `gpus` (default: the visible ones) are shared round-robin; with none, each
    worker gets `threads` CPU threads (default ``cores // workers``). No worker starts
    when every job is cached.
    """
    out = Outcome(cached=[j for j in jobs if j.done])
    todo = [j for j in jobs if not j.done]
    if not todo:
        return out
    for profile in {j.profile for j in todo}:
        results.check_clean(profile)  # before any worker starts
    workers = max(1, min(workers, len(todo)))
    gpus = _gpu_ids() if gpus is None else gpus
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    ctx = get_context("spawn")  # CUDA cannot be forked; a fresh interpreter per worker
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(i)
    where = f"GPUs {gpus}" if gpus else f"CPU, {threads} threads each"
    log(f"[jobs] {len(todo)} runs on {workers} workers ({where}); {len(out.cached)} cached")
    progress = runs.Progress(todo, flops.to_compute(todo), log=log)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(slots, gpus, threads)) as pool:
        futures = {pool.submit(_execute, job): job for job in todo}
        for k, fut in enumerate(as_completed(futures), 1):
            job = futures[fut]
            out.settle(job, fut.result, lambda seconds, k=k, job=job: (
                f" ({k} of {len(todo)}) in {seconds:.0f} s"
                + progress.eta_after(job, seconds / workers)), log)
    return out


# --- SLURM through submitit ---------------------------------------------------------------------

def _execute_slurm(run: Run, repo: str, folders: dict[str, str], threads: int | None) -> float:
    """Execute one run in a SLURM job: in the submitter's checkout, with its data and result
    folders (``KDLIB_*``, on the shared file system) and, on a CPU job, `threads` torch
    threads (as many as a local worker of the same size, for bit-identical records)."""
    if str(paths.REPO) != repo:
        raise RuntimeError(f"the job imported kdlib from {paths.REPO}, not from the checkout "
                           f"{repo} that submitted it: run the job's Python "
                           f"(submitit uses the submitter's) with that checkout installed")
    os.environ.update(folders)
    _print_epochs()
    if threads:
        import torch

        torch.set_num_threads(threads)
    return _execute(run)


def run_slurm(jobs: Sequence[Run], *, folder: Path | None = None, partition: str | None = None,
              timeout_min: int = 240, gpus_per_node: int = 1, cpus_per_task: int = 8,
              cluster: str | None = None, log: Callable[[str], None] = print) -> Outcome:
    """Submit the unfinished `jobs` as one SLURM array and wait for them.

    Each job asks for `gpus_per_node` GPUs (0: none, a CPU job) and `cpus_per_task` CPUs;
    a CPU job runs torch on `cpus_per_task` threads. Needs ``pip install submitit`` and the
    checkout (with ``results/``, ``cache/`` and ``data/``) on a file system the nodes
    share, at the same path: the jobs run this Python and import this checkout's kdlib, and
    use the folders ``KDLIB_RESULTS``, ``KDLIB_CHECKPOINTS`` and ``KDLIB_DATA`` name here
    (set them before submitting to move them). `cluster` is submitit's: None picks SLURM
    when ``sbatch`` exists, ``"local"`` and ``"debug"`` run on this machine (for trying it
    out). Logs and pickles go to `folder` (default ``_build/jobs/submitit``); the array's
    job ids are logged when it is submitted.
    """
    try:
        import submitit
    except ImportError as err:
        raise RuntimeError("the slurm executor needs submitit: pip install submitit==1.5.4") \
            from err
    out = Outcome(cached=[j for j in jobs if j.done])
    todo = [j for j in jobs if not j.done]
    if not todo:
        return out
    for profile in {j.profile for j in todo}:
        results.check_clean(profile)
    folder = folder or paths.REPO / "_build" / "jobs" / "submitit"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    params: dict[str, Any] = {"timeout_min": timeout_min, "cpus_per_task": cpus_per_task,
                              "name": "kdlib"}
    if gpus_per_node:  # 0: a CPU job, no GPU request at all
        params["gpus_per_node"] = gpus_per_node
    if partition:
        params["slurm_partition"] = partition
    executor.update_parameters(**params)
    folders = {"KDLIB_RESULTS": str(paths.results_dir()),
               "KDLIB_CHECKPOINTS": str(paths.checkpoints_dir()),
               "KDLIB_DATA": str(paths.data_dir())}
    threads = None if gpus_per_node else cpus_per_task
    with executor.batch():
        handles = [executor.submit(_execute_slurm, job, str(paths.REPO), folders, threads)
                   for job in todo]
    where = f"{gpus_per_node} GPU(s)" if gpus_per_node else f"CPU, {threads} threads"
    log(f"[jobs] submitted {len(todo)} runs ({executor.cluster}, {where} each); "
        f"{len(out.cached)} cached; logs in {folder}")
    log(f"[jobs] job ids: {' '.join(h.job_id for h in handles)}")
    for job, handle in zip(todo, handles, strict=True):
        out.settle(job, handle.result, lambda _, h=handle: f" (job {h.job_id})", log)
    return out
