"""Result records: one JSON file per run, written atomically, reused by hash.

A run is named by its chapter, a short name (``teacher``, ``student_kd``) and
a *spec*: a JSON-able dict of everything that determines its outcome (data,
model, recipe, seed, loss settings, the specs of the models it learns from).
The spec's hash names the record, so re-running a chapter skips every run
that is already done and an interrupted chapter resumes where it stopped.

Each record also carries what a reader needs to trust it: the profile, the
wall time, the git commit, package versions and the device.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Callable, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from kdlib import paths

PACKAGES = ("torch", "torchvision", "numpy", "kdlib", "papermill", "jupyter-book",
            "pyautoattack")


def spec_hash(spec: Mapping[str, Any]) -> str:
    """12 hex digits of the sha256 of the spec's canonical JSON."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


@cache
def environment() -> dict[str, Any]:
    """Git commit, package versions and machine: the provenance of a record."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(paths.REPO), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "packages": versions,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def record_path(profile: str, chapter: str, name: str, spec: Mapping[str, Any]) -> Path:
    return paths.results_dir() / profile / chapter / f"{name}-{spec_hash(spec)}.json"


def load_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def cached_run(profile: str, chapter: str, name: str, spec: Mapping[str, Any],
               compute: Callable[[], Mapping[str, Any]], *, device: str = "cpu") -> dict[str, Any]:
    """Return the record of this run, computing and saving it only if it is missing.

    `compute` returns the run's metrics (a JSON-able dict). The record is
    written only after `compute` returns, so an interrupted run leaves no
    partial record behind.
    """
    path = record_path(profile, chapter, name, spec)
    if path.is_file():
        return load_record(path)
    start = dt.datetime.now(dt.UTC)
    t0 = dt.datetime.now().timestamp()
    metrics = dict(compute())
    record = {
        "profile": profile, "chapter": chapter, "name": name, "spec": dict(spec),
        "spec_hash": spec_hash(spec), "metrics": metrics,
        "wall_time_s": round(dt.datetime.now().timestamp() - t0, 3),
        "started_utc": start.isoformat(timespec="seconds"), "device": device,
        "environment": environment(),
    }
    write_json_atomic(path, record)
    return load_record(path)  # the JSON form, identical to what a later call reads


def records(profile: str, chapter: str) -> list[dict[str, Any]]:
    """Every record saved for `chapter` under `profile`, in file-name order."""
    folder = paths.results_dir() / profile / chapter
    return [load_record(p) for p in sorted(folder.glob("*.json"))]
