"""Are committed records still what today's code computes? Staleness, and verification.

A record names the commit whose code made it. It is **current** when no code that
computes its chapter's records has changed since that commit, or since a
**verification** of its profile: ``python -m kdlib verify PROFILE``
(:mod:`kdlib.tooling.verification`) re-runs :func:`sample` of the profile's records
with today's code, in scratch folders, compares every metric (:func:`compare`) with the
records and, on another CPU, with what the records' own code makes there; when the code
makes the same numbers it stamps the profile as verified at today's commit
(``results/<profile>/verified.json``). A refactor is thereby shown to be
result-neutral by evidence, not assumed.

The code that computes a chapter's records (:func:`computation_files`) is the
library's computation (:data:`COMPUTATION`), the environment and configuration that every
run depends on (:data:`INPUTS`: the pinned package versions, the package's build and
the profile parser; an edit of pyproject.toml's checker tables, :data:`CHECKERS`, is none of
these); every function a run calls (``Run.compute``) lives in those
modules, or :func:`computation_files` refuses the chapter. A
chapter's declaration (its rows, labels, plan) is not among them: what it changes
shows in the specs, whose hashes name the records. Nor is a page
(:mod:`kdlib.pages`): editing a table, a figure or a sentence makes nothing stale.

Bit-identity of re-run metrics holds on the same kind of CPU with the same number
of threads (the record's ``cpu_threads``); another instruction set (AVX-512 or AMX
bf16 against AVX2) can change the last bits of a float, and through them a
training's path. A failed verification on another CPU says that, not that the code
changed: the stamp records the CPU it ran on.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kdlib import chapters, paths, results, runs

#: The library modules that compute results (the rest bookkeep or present them).
COMPUTATION = ("data", "models", "losses", "objectives", "training", "attacks", "robustness",
               "gradients", "checkpoints", "networks", "evaluation", "digits")
#: Files outside the computation modules that can change every result: the pinned packages
#: (torch's version changes the last bits of a float), the build, and the profiles' parser.
INPUTS = ("requirements.txt", "pyproject.toml", "kdlib/config.py")
#: The tables of pyproject.toml that configure the checkers (lint, tests, mutation testing,
#: import contracts): an edit of them changes no computed number, so it makes nothing stale.
CHECKERS = ("ruff", "pytest", "mutmut", "importlinter")
#: Metric keys not compared: timings, which differ between runs, and where the data came
#: from, which names the state of a cache ("(via local cache)"), not a computed number.
NOT_COMPARED = {"seconds", "data_source"}
STAMP = "verified.json"


# --- which code computes a chapter -------------------------------------------------------------

def computation_files(chapter: str, plan: Sequence[runs.Run] | None = None) -> list[str]:
    """The files whose code computes `chapter`'s records (see the module docstring)."""
    if plan is None:
        ch = chapters.get(chapter)
        plan = ch.plan(ch.params())
    modules = {getattr(r.compute, "func", r.compute).__module__ for r in plan}
    outside = sorted(m for m in modules if m.removeprefix("kdlib.") not in COMPUTATION)
    if outside:
        raise ValueError(f"{chapter}'s runs compute in {outside}; a record's computation "
                         f"lives in the library's computation modules ({COMPUTATION})")
    return sorted({f"kdlib/{m}.py" for m in COMPUTATION} | set(INPUTS))


def last_change(files: Iterable[str]) -> str | None:
    """The last commit that changed any of `files` (None outside git); an edit of
    pyproject.toml counts only where it changes more than the checkers' tables."""
    files = list(files)
    others = [f for f in files if f != "pyproject.toml"]
    found = []
    if others:
        found.append(results.git("log", "-1", "--format=%H", "--", *others))
    if "pyproject.toml" in files:
        found.append(_build_change(results.git("rev-parse", "HEAD")))
    found = [c for c in found if c]
    if len(found) == 2 and at_or_after(found[0], found[1]):
        return found[0]
    return found[-1] if found else None


def without_checkers(pyproject: str | None) -> dict[str, Any] | None:
    """pyproject.toml's text parsed, without the checkers' tables (:data:`CHECKERS`)."""
    if pyproject is None:
        return None
    data = tomllib.loads(pyproject)
    tool = {k: v for k, v in data.get("tool", {}).items() if k not in CHECKERS}
    return {**data, "tool": tool}


@functools.lru_cache(maxsize=4)
def _build_change(head: str | None) -> str | None:
    """The last commit before `head` that changed pyproject.toml beyond its checkers'
    tables."""
    for commit in (results.git("log", "--format=%H", head or "HEAD", "--", "pyproject.toml")
                   or "").split():
        if (without_checkers(results.git("show", f"{commit}:pyproject.toml"))
                != without_checkers(results.git("show", f"{commit}^:pyproject.toml"))):
            return commit
    return None


def at_or_after(commit: str | None, change: str | None) -> bool:
    """Whether `commit` is `change` or one of its descendants (both full hashes)."""
    if not commit or not change:
        return False
    if commit == change:
        return True
    return results.git("merge-base", "--is-ancestor", change, commit) is not None


#: The packages whose version can change a computed number (the others only present them).
COMPUTING_PACKAGES = ("torch", "torchvision", "numpy", "pyautoattack")


def other_environment(records: runs.Records) -> list[str]:
    """How the environments that made `records` differ from this one, one line per package
    version (of :data:`COMPUTING_PACKAGES`) or Python version, with the number of records made
    under it: a number made under another torch may differ in its last bits, and the
    staleness of :func:`stale_records` sees only the pinned versions, not the installed ones.
    Empty when every record was made under today's versions."""
    def versions(env: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: (env.get("packages") or {}).get(k) for k in COMPUTING_PACKAGES},
                "python": env.get("python")}

    today = versions(results.code_environment())
    counts: dict[str, int] = {}
    for recs in records.values():
        for r in recs:
            for key, made in versions(r.environment).items():
                if made != today[key]:
                    line = f"{key} {made or 'not recorded'} (here {today[key]})"
                    counts[line] = counts.get(line, 0) + 1
    return [f"{n} record{'s' if n != 1 else ''} made under {line}"
            for line, n in sorted(counts.items())]


# --- the verification stamp ---------------------------------------------------------------------

def stamp_path(profile: str) -> Path:
    return paths.results_dir() / profile / STAMP


def stamp(profile: str) -> dict[str, Any] | None:
    """The profile's verification stamp, or None."""
    path = stamp_path(profile)
    return json.loads(path.read_text()) if path.is_file() else None


def stale_records(records: runs.Records, chapter: str,
                  plan: Sequence[runs.Run] | None = None) -> tuple[str, ...]:
    """The commits of `records` whose chapter's computation has changed since they were made
    and since their profile was last verified (empty: every record is current)."""
    change = last_change(computation_files(chapter, plan))
    if change is None:
        return ()
    verified: dict[str, str | None] = {}
    out = []
    for commit, profile in sorted({(r.commit, r.profile)
                                   for rs in records.values() for r in rs}, key=str):
        if profile not in verified:
            s = stamp(profile)
            verified[profile] = s["commit"] if s and s.get("verified") else None
        if not (at_or_after(commit, change) or at_or_after(verified[profile], change)):
            out.append(commit or "unknown")
    return tuple(dict.fromkeys(out))


# --- re-running a sample ------------------------------------------------------------------------

def sample(profile: str | Path, per_row: int = 1, seed: int = 0) -> list[runs.Run]:
    """The runs a verification re-makes: for every chapter of `profile` and every record name,
    `per_row` of its committed records drawn at random (seeded by `seed`) across its seeds
    and specs."""
    import random

    cfgs = chapters.load_profile(profile)
    rows: dict[tuple[str, str], list[runs.Run]] = {}
    for chapter, cfg in cfgs.items():
        if chapters.get(chapter).records_of:
            continue
        for run in chapters.plan(chapter, cfg):
            if run.done:
                rows.setdefault((run.chapter, run.name), []).append(run)
    rng = random.Random(seed)
    out = []
    for key in sorted(rows):
        done = list(runs.unique(rows[key]))
        out += sorted(rng.sample(done, min(per_row, len(done))),
                      key=lambda r: (r.seed or 0, r.spec_hash))
    return out


def committed_records(profile: str | Path) -> dict[Path, results.Record]:
    """Every committed record of `profile`, by file, each read once, so that a damaged or
    edited one is refused by name (:func:`kdlib.results.load_record`)."""
    name = Path(str(profile)).stem
    return {path: results.load_record(path)
            for path in sorted((paths.results_dir() / name).glob("*/*.json"))}


def compare(old: Any, new: Any, where: str = "") -> list[str]:
    """Where two metric trees differ (:data:`NOT_COMPARED` excluded): one line per
    difference."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new)):
            if key in NOT_COMPARED:
                continue
            if key not in new:
                out.append(f"{where}{key}: missing in the re-run")
            elif key in old:
                out += compare(old[key], new[key], f"{where}{key}.")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where.rstrip('.')}: {len(old)} items recorded, {len(new)} re-run"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in compare(a, b, f"{where}{i}.")]
    if old != new and not (old != old and new != new):  # NaN equals NaN here
        return [f"{where.rstrip('.')}: recorded {old!r}, re-run {new!r}"]
    return []


# --- records made twice -------------------------------------------------------------------------

def twins(profiles: Sequence[str]) -> list[dict[str, Any]]:
    """Committed records made twice: the same chapter and spec (their file name, which holds
    the spec's hash) in two of `profiles`, on one named kind of CPU with the same number of
    threads, where training is deterministic. One entry per pair: the two profiles, the
    record's folder and file, the two commits that made it and every metric that differs
    (:func:`compare`; empty when the second re-made the first bit for bit). An edited metric
    in either record is refused when it is read (its seal), and one edited with its seal shows
    here as a difference."""
    seen: dict[tuple[str, str, str, Any], tuple[str, results.Record]] = {}
    out = []
    for profile in profiles:
        for path, record in committed_records(profile).items():
            env = record.environment
            if not env.get("cpu_isa"):
                continue
            key = (path.parent.name, path.name, env["cpu_isa"], env.get("cpu_threads"))
            if key not in seen:
                seen[key] = (profile, record)
                continue
            first, old = seen[key]
            out.append({"profiles": (first, profile), "chapter": key[0], "record": key[1],
                        "commits": (old.commit, env.get("git_commit")),
                        "differences": compare(old.metrics, record.metrics)})
    return out


def twins_table(pairs: Sequence[dict[str, Any]]) -> str:
    """:func:`twins` in Markdown: per pair of profiles and chapter, how many records the second
    re-made and how many of them bit for bit, with the first differing metrics."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for t in pairs:
        groups.setdefault((*t["profiles"], t["chapter"]), []).append(t)
    if not groups:
        return "No committed record was made twice on one kind of CPU in this checkout."
    lines = ["| made first in | re-made in | chapter | records | identical | where they differ |",
             "|---|---|---|---|---|---|"]
    for (first, second, chapter), ts in sorted(groups.items()):
        same = sum(not t["differences"] for t in ts)
        diff = "; ".join(f"`{t['record']}`: {t['differences'][0]}" + (
            f" (+{len(t['differences']) - 1} more)" if len(t["differences"]) > 1 else "")
            for t in ts if t["differences"]) or "—"
        lines.append(f"| `{first}` | `{second}` | {chapter} | {len(ts)} | {same} | {diff} |")
    return "\n".join(lines)
