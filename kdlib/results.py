"""Result records: one JSON file per run, named by the hash of the run's spec.

A *spec* is a JSON-able dict of everything that determines a run's outcome
(data, model, recipe, seed, loss settings, the specs of the models it learns
from); :func:`spec_hash` names the record and the checkpoint after it, so equal
runs share both and changed runs never collide. :class:`kdlib.runs.Run` writes
the records; this module reads and writes the files.

Each record also carries what a reader needs to trust it: the profile, the
wall time, the git commit, package versions and the device.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping
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
    return paths.record_file(profile, chapter, name, spec_hash(spec))


def load_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Save a record as indented, key-sorted JSON, atomically."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    paths.save_atomic(path, lambda tmp: tmp.write_text(text))
