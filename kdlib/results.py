"""Result records: one JSON file per run, named by the hash of the run's spec.

A *spec* is a JSON-able dict of everything that determines a run's outcome
(data, model, recipe, seed, loss settings, the specs of the models it learns
from); :func:`spec_hash` names the record and the checkpoint after it, so equal
runs share both and changed runs never collide. :class:`kdlib.runs.Run` writes
the records; this module reads and writes the files, and parses each file once into a
:class:`Record`, the one form every reader (pages, claims, verification) uses.

Each record also carries what a reader needs to trust it: the profile, the
wall time, the git commit, package versions and the device.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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


#: The files whose changes can change a result: a record made while any of them differs
#: from the commit is made by a "modified tree".
CODE = ("kdlib", "notebooks", "profiles", "requirements.txt", "pyproject.toml")


def git(*args: str) -> str | None:
    """Output of a git command in the checkout, or None without git or outside one."""
    try:
        out = subprocess.run(["git", "-C", str(paths.REPO), *args], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """:func:`code_environment` and the CPU threads torch uses now (read at every call: a
    process may change them between runs)."""
    return {**code_environment(), "cpu_threads": torch.get_num_threads()}


@cache
def code_environment() -> dict[str, Any]:
    """Git commit, package versions and machine: the provenance of a record.

    ``git_dirty`` says whether the code (:data:`CODE`, untracked files included) differs
    from the commit; if so, ``git_diff_sha256`` identifies the difference (a hash of
    ``git diff HEAD`` and of the untracked files' names and contents).
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    status = git("status", "--porcelain", "--untracked-files=all", "--", *CODE)
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "git_diff_sha256": diff_hash() if status else None,
        "packages": versions,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_isa": cpu_isa(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _cpuinfo() -> str:
    """``/proc/cpuinfo``, or nothing where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` of ``/proc/cpuinfo`` (None where there is none)."""
    for line in _cpuinfo().splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1]
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform says."""
    model = _cpuinfo_field("model name")
    return model.strip() if model is not None else platform.processor() or platform.machine()


def cpu_isa() -> str:
    """What decides a float's last bits on this CPU: the kernel set torch dispatches to
    (``AVX2``, ``AVX512``...) and a short hash of the CPU's feature flags. Virtual machines
    often show one model name for different processors; these tell them apart."""
    flags = " ".join(sorted((_cpuinfo_field("flags") or "").split()))
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{capability} flags-{hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def machine_line() -> str:
    """One line naming this machine's CPU for a log: its model, kernel set (:func:`cpu_isa`),
    bf16 matrix units, cores, and oneDNN's ISA limit where one is set (which can hide them)."""
    flags = _cpuinfo()
    units = ("AMX" if " amx_bf16" in flags else "AVX-512 BF16 (no AMX)"
             if " avx512_bf16" in flags else "none")
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA")
    if limit and units != "none":
        units += (f"; oneDNN limited to {limit}"
                  + (", AMX withheld" if "AMX" not in limit.upper() and units == "AMX" else ""))
    return f"CPU {cpu_model()}; cpu_isa {cpu_isa()}; bf16 units: {units}; {os.cpu_count()} cores"


def diff_hash() -> str:
    """sha256 of the uncommitted changes to the code: ``git diff HEAD`` and untracked files."""
    h = hashlib.sha256((git("diff", "HEAD", "--", *CODE) or "").encode())
    for name in sorted((git("ls-files", "--others", "--exclude-standard", "--", *CODE)
                        or "").splitlines()):
        h.update(name.encode())
        h.update((paths.REPO / name).read_bytes())
    return h.hexdigest()


class DirtyTreeError(RuntimeError):
    """A committed profile's run was asked for from a modified tree."""


def check_clean(profile: str) -> None:
    """Refuse to record a run of a committed profile (``committed: true`` in its YAML) from a
    modified tree: its record must name the commit whose code made it."""
    from kdlib.config import is_committed

    if is_committed(profile) and environment()["git_dirty"]:
        raise DirtyTreeError(
            f"refusing to write `{profile}` records from a modified tree: these records are "
            f"committed and must name the code that made them. Commit (or stash) the changes "
            f"to {', '.join(CODE)} first, or run under another profile name.")


def record_path(profile: str, chapter: str, name: str, spec: Mapping[str, Any]) -> Path:
    return paths.record_file(profile, chapter, name, spec_hash(spec))


class DamagedRecordError(RuntimeError):
    """A record file that cannot be trusted: it does not parse, its spec does not hash to
    the name of its file, or a metric no longer matches its seal. The message names the
    file (and the metric) and the command that re-makes it."""


def seal(metrics: Mapping[str, Any]) -> dict[str, str]:
    """A record's seal: a short sha256 of each metric's canonical JSON. A seal shows that no
    metric changed after it was made, not how the metric was computed (a re-make on the
    same kind of CPU shows that: :mod:`kdlib.tooling.verification`)."""
    return {k: hashlib.sha256(json.dumps(v, sort_keys=True, separators=(",", ":"))
                              .encode()).hexdigest()[:16] for k, v in metrics.items()}


def sealed(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` in its JSON form, with the seal of its metrics (:func:`seal`)."""
    out = json.loads(json.dumps(record, default=str))
    out["seal"] = seal(out["metrics"])
    return out


def seal_breaks(record: Record) -> list[str]:
    """The metrics of `record` that no longer match its seal (none when it has no seal)."""
    want = record.seal
    if want is None:
        return []
    got = seal(record.metrics)
    return [f"{k} ({'removed' if k not in got else 'added' if k not in want else 'changed'})"
            for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]


def remake_command(path: Path) -> str:
    """The shell command that deletes the record at `path` and re-makes it."""
    profile, chapter = path.parent.parent.name, path.parent.name
    return f"rm {path} && python -m kdlib jobs {profile} --chapters {chapter}"


class MissingMetricError(LookupError):
    """A record lacks a metric its reader asks for: a renamed or never-written metric is a
    bug to fix, never a verdict."""


@dataclass(frozen=True)
class Record:
    """One run's record, parsed once from its file: what ran (`spec`), what it measured
    (`metrics`), where and by which code (`environment`), and how long it took. Readers use
    these attributes; :meth:`metric` names the record when a metric is missing."""

    spec: Mapping[str, Any]
    metrics: Mapping[str, Any]
    profile: str = "?"
    chapter: str = "?"
    name: str = "?"
    spec_hash: str = "?"
    environment: Mapping[str, Any] = field(default_factory=dict)
    wall_time_s: float | None = None
    started_utc: str | None = None
    device: str | None = None
    seal: Mapping[str, str] | None = None
    #: where scripts/migrate_specs.py carried the record from (its old spec hash and commit)
    migrated_from: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, data: Any) -> Record:
        """The record of `data` (a record file's JSON); ValueError says what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) \
                or not isinstance(data.get("metrics"), dict):
            raise ValueError("not a record (no spec or metrics)")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"not a record (unknown fields {sorted(unknown)})")
        return cls(**data)

    def json(self) -> dict[str, Any]:
        """The record's JSON form, as its file holds it."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @property
    def seed(self) -> int | None:
        return self.spec.get("seed")

    @property
    def seconds_to_make(self) -> float | None:
        """The seconds the run takes when nothing is saved: its wall time, or its training's
        (the per-epoch seconds of its ``history``) where that is longer, as for a record that
        loaded its network from the checkpoint of an equal training."""
        history = self.metrics.get("history")
        trained = (sum(row.get("seconds", 0.0) for row in history)
                   if isinstance(history, list) else 0.0)
        if self.wall_time_s is None:
            return trained or None
        return max(self.wall_time_s, trained)

    @property
    def commit(self) -> str | None:
        """The git commit of the code that made the record."""
        return self.environment.get("git_commit")

    @property
    def cpu(self) -> str:
        """The kind of CPU that made the record: its model (``unknown`` where not recorded)."""
        return self.environment.get("cpu") or "unknown"

    @property
    def file(self) -> Path:
        """Where the record lies (:func:`kdlib.paths.record_file`)."""
        return paths.record_file(self.profile, self.chapter, self.name, self.spec_hash)

    def metric(self, key: str) -> Any:
        """Metric `key`; a :class:`MissingMetricError` names the record's file, its seed and
        the metrics it has when the key is missing."""
        if key not in self.metrics:
            raise MissingMetricError(f"record {self.file} (seed {self.seed}) has no metric "
                                     f"{key!r}; it has {sorted(self.metrics)}")
        return self.metrics[key]


def load_record(path: Path) -> Record:
    """The record at `path`, refused with :class:`DamagedRecordError` when it does not parse
    as a record, its spec does not hash to the hash in its file name, or a metric does not
    match the record's seal (:func:`seal_breaks`)."""
    try:
        record = Record.parse(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        problem = f"not valid JSON ({err})"
    except ValueError as err:
        problem = str(err)
    else:
        name_hash = path.stem.rpartition("-")[2]
        if spec_hash(record.spec) != name_hash:
            problem = (f"its spec hashes to {spec_hash(record.spec)}, not to the "
                       f"{name_hash} of its name")
        elif broken := seal_breaks(record):
            problem = (f"metric {', '.join(broken)} no longer matches the seal made when the "
                       f"record was written: edited since")
        else:
            return record
    raise DamagedRecordError(f"damaged record {path}: {problem}. Re-make it with: "
                             f"{remake_command(path)}")


class RecordWriteError(OSError):
    """A record could not be written (a full disk, a read-only folder); none was left."""


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Save a record as indented, key-sorted JSON, atomically."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    try:
        paths.save_atomic(path, lambda tmp: tmp.write_text(text))
    except OSError as err:
        raise RecordWriteError(f"could not write the record {path}: {err.strerror or err}; "
                               f"nothing was recorded (no partial file is left). Free the "
                               f"space or fix the folder, then run the same command again: "
                               f"the runs already recorded are skipped") from err
