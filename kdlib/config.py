"""Parameter sets and the YAML profiles that set them: the generic machinery.

Each chapter declares its parameters as a frozen dataclass (``Params`` in its
module under :mod:`kdlib.chapters`), built from :class:`Common` and the shared
groups beside it; a field's ``metadata`` gives its allowed range
(:func:`ge`, :func:`between`). :func:`validate` turns a plain mapping into that
dataclass or raises :class:`ProfileError` naming every bad key: unknown,
missing, of the wrong type or out of range, before anything is computed.

A profile (``profiles/<name>.yaml``) has a ``description``, an optional
``shared`` section whose YAML anchors (``&name``) hold blocks that several
chapters merge in (``<<: *name``), and a ``chapters`` mapping. The profile's
name is its file name: :func:`read_profile` gives it to every chapter as the
``profile`` parameter, so it is written once.

Each parameter has one default, in its dataclass. The ``smoke`` profile is all
defaults (``defaults: true``); a notebook's ``parameters`` cell, papermill's
contract, is written from the dataclass (``python -m kdlib sync-notebooks``) and a
test checks that it still agrees.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kdlib import paths


class ProfileError(ValueError):
    """A profile or parameter set that cannot be run."""


def ge(bound: float) -> dict:
    """Field metadata: the value (each item of a list) must be at least `bound`."""
    return {"ge": bound}


def between(lo: float, hi: float) -> dict:
    """Field metadata: the value must lie in ``[lo, hi]``."""
    return {"ge": lo, "le": hi}


@dataclass(frozen=True)
class Common:
    """Parameters every chapter has."""

    profile: str = "smoke"
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"ge": 0, "nonempty": True})
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: How the training arithmetic runs (:func:`kdlib.training.engine_for`); ``auto``: bf16
    #: where the CPU has bf16 matrix units, else fast (:func:`kdlib.training.engine_here`).
    engine: Literal["float32", "fast", "bf16", "auto"] = "fast"
    #: The other readings of the paper's open settings to run beside the primary one (names
    #: of the chapter's :class:`kdlib.readings.Reading` s), on `reading_seeds`; optional keys.
    readings: list[str] = field(default_factory=list,
                                metadata={"unique": True, "optional": True})
    reading_seeds: list[int] = field(default_factory=list,
                                     metadata={"ge": 0, "unique": True, "optional": True})
    #: Seeds a pilot of the same recipe ran (their results were seen before the seeds were
    #: chosen): no reading may use them, and each verdict is shown without them too.
    pilot_seeds: list[int] = field(default_factory=list,
                                   metadata={"ge": 0, "unique": True, "optional": True})

    def __post_init__(self) -> None:
        if self.readings and not self.reading_seeds:
            raise ProfileError("readings: name the reading_seeds they run on")
        if set(self.reading_seeds) - set(self.seeds):
            raise ProfileError(f"reading_seeds {self.reading_seeds} must be among seeds "
                               f"{self.seeds}: each reading is paired with the primary rows")
        if reused := sorted(set(self.reading_seeds) & set(self.pilot_seeds)):
            raise ProfileError(f"reading_seeds reuse the pilot's seeds {reused}, whose "
                               "results were seen before the readings were registered")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is float:  # YAML writes 1 for 1.0; accept ints but never bools
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint)


def _bounds_error(value: Any, meta: Mapping[str, Any]) -> str | None:
    items = value if isinstance(value, list) else [value]
    if meta.get("nonempty") and not items:
        return "must not be empty"
    if meta.get("unique") and len(set(items)) != len(items):
        return f"must not repeat a value, got {value!r}"
    for v in items:
        if isinstance(v, str):
            continue
        if "ge" in meta and v < meta["ge"]:
            return f"must be >= {meta['ge']}, got {v!r}"
        if "gt" in meta and v <= meta["gt"]:
            return f"must be > {meta['gt']}, got {v!r}"
        if "le" in meta and v > meta["le"]:
            return f"must be <= {meta['le']}, got {v!r}"
    return None




def validate(cls: type[Common], params: Mapping[str, Any], *, complete: bool = True,
             where: str = "parameters", name: str = "") -> Common:
    """Check `params` against the dataclass `cls` and return an instance of it.

    Raises :class:`ProfileError` naming every bad key: unknown, missing (when
    `complete`), of the wrong type, or out of range; then the checks across keys
    of ``cls.__post_init__``. `name` (the chapter) prefixes the message.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems = [f"unknown key {k!r}" for k in params if k not in fields]
    if complete:
        problems += [f"missing key {k!r}" for k, f in fields.items()
                     if k not in params and not f.metadata.get("optional")]
    for key, value in params.items():
        if key not in fields:
            continue
        if not _type_ok(value, hints[key]):
            problems.append(f"{key}: expected {_describe(hints[key])}, got {value!r}")
            continue
        if (msg := _bounds_error(value, fields[key].metadata)) is not None:
            problems.append(f"{key}: {msg}")
    head = f"{where} [{name}]" if name else where
    if problems:
        raise ProfileError(f"{head}: " + "; ".join(problems)
                           + f". Known keys: {', '.join(fields)}.")
    try:
        return cls(**params)
    except ProfileError as err:  # a check across several keys (__post_init__)
        raise ProfileError(f"{head}: {err}") from None


def as_dict(cfg: Common) -> dict[str, Any]:
    """Plain-dict form of a parameter set, for records and papermill."""
    return dataclasses.asdict(cfg)


def profile_path(name_or_path: str | Path) -> Path:
    """Resolve a profile name (``quick``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ProfileError(f"profile file {p} does not exist")
        return p
    candidate = paths.profiles_dir() / f"{name_or_path}.yaml"
    if not candidate.is_file():
        names = sorted(f.stem for f in paths.profiles_dir().glob("*.yaml"))
        raise ProfileError(f"unknown profile {name_or_path!r}; available: {names}, "
                           "or give a path to a .yaml file")
    return candidate


#: The top-level keys of a profile file: the first two are optional flags.
PROFILE_KEYS = ("description", "committed", "defaults", "pilot", "family", "shared",
                "chapters")
#: The multiplicity families a profile may declare (:func:`kdlib.verdicts.holm`): every claim
#: the profile decides, the claims of each chapter, or each claim alone (no adjustment).
FAMILIES = ("profile", "chapter", "claim")


@dataclass(frozen=True)
class ProfileFile:
    """A profile as its file says it: the chapters' raw parameters (anchors merged, each with
    ``profile`` set to the file's stem), nothing validated against a chapter yet.

    ``committed: true`` says its records are committed to the repository, so they must be
    made from a clean tree (:func:`kdlib.results.check_clean`). ``defaults: true`` lets a
    chapter's section leave out parameters, which then take the one default each has, in
    its dataclass (the ``smoke`` profile is all defaults); without it every parameter must
    be written out, so that no default can change a committed profile unseen.
    ``pilot: true`` marks a pilot that chose a recipe: the methods page shows it, the
    chapter pages do not. ``family`` declares the multiplicity family of its claims
    (:data:`FAMILIES`; default ``profile``), whose p-values Holm's method adjusts.
    """

    path: Path
    description: str
    committed: bool
    defaults: bool
    pilot: bool
    chapters: dict[str, dict[str, Any]]
    family: str = "profile"


def read(name_or_path: str | Path) -> ProfileFile:
    """Read a profile file (see :class:`ProfileFile`); :class:`ProfileError` if malformed."""
    path = profile_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict) or set(raw) - set(PROFILE_KEYS) \
            or not isinstance(raw.get("chapters"), dict) \
            or not all(isinstance(raw.get(k, False), bool)
                       for k in ("committed", "defaults", "pilot")) \
            or raw.get("family", "profile") not in FAMILIES:
        raise ProfileError(f"{path}: expected top-level keys 'description', 'committed' "
                           f"(optional, true or false: are its records committed?), "
                           f"'defaults' (optional, true or false: may sections leave out "
                           f"parameters?), 'pilot' (optional, true or false), 'family' "
                           f"(optional, one of {', '.join(FAMILIES)}), 'shared' "
                           f"(optional: blocks to merge) and "
                           f"'chapters' (a mapping of chapter name to parameters)")
    out = {}
    for chapter, params in raw["chapters"].items():
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ProfileError(f"{path} [{chapter}]: parameters must be a mapping")
        if "profile" in params:
            raise ProfileError(f"{path} [{chapter}]: 'profile' is the file's name "
                               f"({path.stem!r}); do not set it in the file")
        out[chapter] = {"profile": path.stem, **params}
    return ProfileFile(path, str(raw.get("description", "")).strip(),
                       raw.get("committed", False), raw.get("defaults", False),
                       raw.get("pilot", False), out, raw.get("family", "profile"))


def is_committed(name: str) -> bool:
    """Whether ``profiles/<name>.yaml`` says ``committed: true``. A profile that is not a
    file of ``profiles/`` (a scratch path) is not committed."""
    path = paths.profiles_dir() / f"{name}.yaml"
    return path.is_file() and read(path).committed
