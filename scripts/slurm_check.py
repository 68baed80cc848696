"""Does the SLURM executor make the same records as the local one? (``make slurm-check``)

Runs every run of a profile (default ``smoke``) twice, in scratch result and checkpoint
folders under ``_build/slurm-check/``: with the local executor (``kdlib jobs PROFILE
--workers 2``), then as one SLURM array on the cluster that ``sinfo`` reaches (in CI the
one-node cluster of ``scripts/slurm_cluster.sh start``) with ``--executor slurm
--gpus-per-node 0 --cpus-per-task T``, T the torch threads the local workers used, so
that both compute with the same number of threads. It then compares the two sets of
records: the same files, the same specs and thread counts, and every metric identical
(:func:`kdlib.staleness.compare`, timings excepted). Exit status 0 when all are equal, 1 on
any difference or failure; the reason is printed.

Then a fault: one longer run (Table 1's teacher over several epochs, a profile written to
the scratch folder) is submitted to SLURM and its job cancelled (``scancel``) as soon as
its first epoch is saved; no record may exist then. Submitted again, it must resume from
the saved epoch and end in a record identical to the local executor's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def say(line: str) -> None:
    print(f"[slurm-check] {line}", flush=True)


def fail(reason: str) -> int:
    print(f"[slurm-check] FAILED: {reason}", file=sys.stderr, flush=True)
    return 1


def jobs(profile: str, root: Path, args: list[str], timeout_s: float) -> tuple[int, str]:
    """``python -m kdlib jobs PROFILE ARGS`` with results and checkpoints under `root`; its
    output is shown as it comes and returned."""
    env = {**os.environ, "KDLIB_RESULTS": str(root / "results"),
           "KDLIB_CHECKPOINTS": str(root / "models"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "kdlib", "jobs", profile, *args]
    say(f"$ KDLIB_RESULTS={root}/results KDLIB_CHECKPOINTS={root}/models "
        f"python -m kdlib jobs {profile} {' '.join(args)}")
    lines: list[str] = []
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until the process ends (or is killed at the deadline)
            print(f"    {line}", end="", flush=True)
            lines.append(line)
        rc = proc.wait()
    finally:
        timer.cancel()
    return (124 if killed.is_set() else rc), "".join(lines)


def records(root: Path, profile: str) -> dict[str, Any]:
    """Every record under `root`/results/PROFILE, by its path below that folder."""
    base = root / "results" / profile
    from kdlib import results

    return {str(p.relative_to(base)): results.Record.parse(json.loads(p.read_text()))
            for p in sorted(base.rglob("*.json"))}


def differences(local: dict[str, Any], slurm: dict[str, Any]) -> list[str]:
    """Where the SLURM records differ from the local ones (timings excepted)."""
    from kdlib import staleness

    out = [f"{name}: only the local executor wrote it" for name in sorted(set(local) - set(slurm))]
    out += [f"{name}: only SLURM wrote it" for name in sorted(set(slurm) - set(local))]
    for name in sorted(set(local) & set(slurm)):
        a, b = local[name], slurm[name]
        if a.spec != b.spec:
            out.append(f"{name}: the specs differ")
        ta, tb = a.environment["cpu_threads"], b.environment["cpu_threads"]
        if ta != tb:
            out.append(f"{name}: {ta} torch threads locally, {tb} in SLURM")
        missing = "missing in the re-run"
        both = [d.replace(missing, "missing in the SLURM record")
                for d in staleness.compare(a.metrics, b.metrics)]
        both += [d.replace(missing, "only in the SLURM record")
                 for d in staleness.compare(b.metrics, a.metrics) if d.endswith(missing)]
        out += [f"{name}: {d}" for d in both]
    return out


#: The run killed mid-training: Table 1's teacher at smoke size but over several epochs, so
#: that its job can be cancelled between its first saved epoch and its end.
KILL_PROFILE = """description: slurm-check's run killed mid-training (written by the check)
defaults: true
chapters:
  01_vanilla_kd:
    seeds: [0]
    train_size: 60000
    teacher_epochs: 4
    sweep_temperatures: []
    sweep_alphas: []
"""


def submit_and_kill(profile: Path, root: Path, threads: int, timeout_s: float) -> str | None:
    """Submit `profile`'s runs to SLURM, cancel the array once a training has saved an epoch
    (its ``.resume.pt`` beside the checkpoint), and return why that failed (None: killed
    mid-run, no record written)."""
    env = {**os.environ, "KDLIB_RESULTS": str(root / "results"),
           "KDLIB_CHECKPOINTS": str(root / "models"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "kdlib", "jobs", str(profile), "--executor", "slurm",
           "--gpus-per-node", "0", "--cpus-per-task", str(threads), "--timeout-min", "10"]
    say(f"$ python -m kdlib jobs {profile.name} --executor slurm ... (to be cancelled)")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    ids: list[str] = []
    for line in proc.stdout:  # the submission's log, up to the job ids
        print(f"    {line}", end="", flush=True)
        if line.startswith("[jobs] job ids: "):
            ids = line.split(": ", 1)[1].split()
            break
    if not ids:
        proc.kill()
        return "the submission logged no job ids"
    deadline = time.monotonic() + timeout_s
    while not any((root / "models").rglob("*.resume.pt")):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            subprocess.run(["scancel", *sorted({j.split("_")[0] for j in ids})], check=False)
            return "no epoch was saved before the job ended or the time ran out"
        time.sleep(0.2)
    subprocess.run(["scancel", *sorted({j.split("_")[0] for j in ids})], check=False)
    proc.kill()
    proc.wait()
    while subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.5)  # until SLURM has ended the job
    (resume,) = (root / "models").rglob("*.resume.pt")
    stem = resume.name.removesuffix(".resume.pt")
    if resume.with_name(f"{stem}.pt").exists():
        return f"the cancelled training saved its final weights: {stem}.pt"
    made = list((root / "results").rglob(f"*-{stem.rsplit('-', 1)[1]}.json"))
    if made:
        return f"the cancelled run wrote a record: {made[0]}"
    say(f"cancelled SLURM job {' '.join(ids)} after {stem} saved an epoch; no record or "
        f"final weights of it")
    return None


def killed_mid_run(scratch: Path, workers: int, threads: int, timeout_s: float) -> str | None:
    """The fault check (module docstring): why it failed, or None."""
    profile = scratch / "killed.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(KILL_PROFILE)
    local_root, slurm_root = scratch / "killed-local", scratch / "killed-slurm"
    rc, _ = jobs(str(profile), local_root, ["--workers", str(workers)], timeout_s)
    if rc:
        return f"the local executor failed on the killed run's profile (exit status {rc})"
    why = submit_and_kill(profile, slurm_root, threads, timeout_s)
    if why:
        return why
    resumed = [p.name for p in (slurm_root / "models").rglob("*.resume.pt")]
    rc, out = jobs(str(profile), slurm_root,
                   ["--executor", "slurm", "--gpus-per-node", "0", "--cpus-per-task",
                    str(threads), "--timeout-min", "10"], timeout_s)
    if rc:
        return f"the resubmitted job failed (exit status {rc})"
    local, slurm = records(local_root, "killed"), records(slurm_root, "killed")
    diffs = differences(local, slurm)
    if diffs or not local:
        return (f"{len(diffs)} difference(s) after the resume: " + "; ".join(diffs[:5])
                if diffs else "no record")
    say(f"resumed from {', '.join(resumed)}: {len(slurm)} record(s) identical to the local "
        f"executor's")
    return None


def slurm_reachable() -> str | None:
    """Why no SLURM cluster can take jobs, or None when ``sinfo`` lists a node that can."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "sbatch/sinfo not found: start the cluster (scripts/slurm_cluster.sh start)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                             timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 30 s"
    states = out.stdout.split()
    if out.returncode or not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"no node can take jobs (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--timeout-min", type=int, default=10,
                        help="each executor's time limit for the whole profile")
    parser.add_argument("--scratch", type=Path, default=REPO / "_build" / "slurm-check",
                        help="scratch folder, on a file system the SLURM nodes share")
    args = parser.parse_args()
    t0 = time.monotonic()
    reason = slurm_reachable()
    if reason:
        return fail(reason)
    shutil.rmtree(args.scratch, ignore_errors=True)
    local_root, slurm_root = args.scratch / "local", args.scratch / "slurm"
    timeout_s = 60.0 * args.timeout_min

    rc, _ = jobs(args.profile, local_root, ["--workers", str(args.workers)], timeout_s)
    if rc:
        return fail(f"the local executor failed (exit status {rc})")
    local = records(local_root, args.profile)
    if not local:
        return fail(f"the local executor wrote no record of {args.profile}")
    threads = sorted({r.environment["cpu_threads"] for r in local.values()})
    if len(threads) != 1:
        return fail(f"the local workers used different thread counts: {threads}")

    rc, out = jobs(args.profile, slurm_root,
                   ["--executor", "slurm", "--gpus-per-node", "0", "--cpus-per-task",
                    str(threads[0]), "--timeout-min", str(args.timeout_min)], timeout_s)
    ids = re.findall(r"^\[jobs\] job ids: (.*)$", out, re.M)
    job_ids = ids[0].split() if ids else []
    if rc == 124 and job_ids:
        array = sorted({j.split("_")[0] for j in job_ids})
        subprocess.run(["squeue"], check=False)
        subprocess.run(["scancel", *array], check=False)  # the jobs this check submitted
        return fail(f"the SLURM jobs did not finish in {args.timeout_min} min "
                    f"(cancelled array {' '.join(array)}; logs in _build/jobs/submitit/)")
    if rc:
        return fail(f"the SLURM executor failed (exit status {rc}); logs in "
                    f"_build/jobs/submitit/")
    if not re.search(r"^\[jobs\] submitted \d+ runs \(slurm,", out, re.M):
        return fail("the jobs did not go to SLURM (submitit chose another executor: is "
                    "sbatch on the PATH?)")
    if len(job_ids) != len(local) or not all(re.fullmatch(r"\d+_\d+", j) for j in job_ids):
        return fail(f"expected {len(local)} SLURM array jobs, the log names {job_ids}")
    slurm = records(slurm_root, args.profile)

    diffs = differences(local, slurm)
    arrays = sorted({j.split("_")[0] for j in job_ids})
    say(f"{len(local)} local records, {len(slurm)} SLURM records; SLURM array "
        f"{', '.join(arrays)}: job ids {job_ids[0]} .. {job_ids[-1]} ({len(job_ids)} jobs); "
        f"{threads[0]} torch thread(s) per run")
    for line in diffs[:40]:
        print(f"    {line}", file=sys.stderr)
    if diffs:
        return fail(f"{len(diffs)} difference(s) between the SLURM and the local records")
    say(f"records equal to the local executor's: {len(slurm)} of {len(local)}, every metric "
        f"identical (timings excepted), in {time.monotonic() - t0:.0f} s")
    why = killed_mid_run(args.scratch, args.workers, threads[0], timeout_s)
    if why:
        return fail(f"a job killed mid-run: {why}")
    say(f"done in {time.monotonic() - t0:.0f} s")
    shutil.rmtree(args.scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
