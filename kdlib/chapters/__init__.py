"""The book's chapters, each declared once as a :class:`Chapter`, and the registry of them.

A chapter module (``vanilla_kd``, ``omitted_digit``, ``reversed_kd``,
``teacher_free``, ``adversarial``) declares what its records are: its
parameters (``Params``, a frozen dataclass), its rows and ``plan(cfg) ->
list[kdlib.runs.Run]``, and exports them as one :class:`Chapter` value. What
several chapters share lives in modules below them that declare no chapter:
:mod:`~kdlib.chapters.mnist` (Tables 1 and 2) and :mod:`~kdlib.chapters.images`
(Tables 3 to 5). No chapter imports another.

Everything else is derived from these values: the registry (:data:`CHAPTERS`,
found by looking for :class:`Chapter` values in the modules of this package), the
book's table of contents, the paper-shape run, the cost table, the jobs and the
claims page. What a page shows (tables, figures, prose, the claims it decides)
lives apart, in :mod:`kdlib.pages`, so editing it never touches a record.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from kdlib import config, readings, runs


@dataclass(frozen=True)
class Chapter:
    """One chapter of the book, declared once.

    `name` is its notebook, its record folder and its page; `params` the dataclass of
    its parameters; `methods` its table rows (for the chapters that have
    :class:`kdlib.chapters.images.Method` rows); `plan(cfg)` every run its records come
    from. `page` names the module of its page, checked where it is loaded
    (:func:`kdlib.pages.findings.page`: it must show this chapter and declare its claims).
    `tiny` are the settings that shrink only the amount of work, for the paper-shape run
    (:mod:`kdlib.tooling.shape`). `records_of` names the chapter whose records it
    shows, when it has none of its own (Figure 2 reads Table 4's runs).
    """

    name: str
    title: str
    params: type[config.Common]
    plan: Callable[[Any], list[runs.Run]]
    page: str
    methods: tuple[Any, ...] = ()
    tiny: Mapping[str, Any] = field(default_factory=dict)
    records_of: str | None = None
    #: Other readings of the settings the paper leaves open (:mod:`kdlib.readings`).
    readings: tuple[readings.Reading, ...] = ()

    @property
    def record_chapter(self) -> str:
        """The folder its records are in (its own, or that of `records_of`)."""
        return self.records_of or self.name

    def method(self, name: str) -> Any:
        """The row called `name`."""
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no row {name!r}; its rows: "
                       f"{[m.name for m in self.methods]}")


@functools.cache
def _registry() -> dict[str, Chapter]:
    found: dict[str, Chapter] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Chapter) and value.name not in found:
                found[value.name] = value
    return dict(sorted(found.items()))


def all_chapters() -> list[Chapter]:
    """Every chapter, in book order (by name)."""
    return list(_registry().values())


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Chapter:
    """The chapter called `name`; a :class:`kdlib.config.ProfileError` names the known ones."""
    chapters = _registry()
    if name not in chapters:
        raise config.ProfileError(f"unknown chapter {name!r}; known: {sorted(chapters)}")
    return chapters[name]


def params_class(name: str) -> type[config.Common]:
    return get(name).params


def validate(name: str, params: Mapping[str, Any], *, complete: bool = True,
             where: str = "parameters") -> config.Common:
    """`params` as chapter `name`'s parameter dataclass; see :func:`kdlib.config.validate`."""
    return config.validate(params_class(name), params, complete=complete, where=where,
                           name=name)


#: Names IPython puts in a notebook's namespace, which are not parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters(name: str, namespace: Mapping[str, Any]) -> config.Common:
    """Validate a notebook's parameters, read from its global namespace.

    Call it first thing after the parameters cell. A value papermill injected that the
    chapter does not know (a misspelt ``-p temperture 3``) stops the notebook here, before
    any compute; a list given as text (``-p seeds "[0, 1]"``, which papermill passes as a
    string) is read as YAML, or refused with the syntax that works.
    """
    fields = {f.name: f for f in dataclasses.fields(params_class(name))}
    unknown = sorted(k for k, v in namespace.items()
                     if not k.startswith("_") and k not in fields and k not in _IPYTHON_NAMES
                     and not isinstance(v, ModuleType) and not callable(v))
    if unknown:
        raise config.ProfileError(
            f"notebook parameters [{name}]: unknown parameter(s) {unknown}; known: "
            f"{', '.join(fields)}. Check the spelling of papermill's -p/-y/-f values.")
    params = {n: namespace[n] for n in fields if n in namespace}
    for key, value in params.items():
        if isinstance(value, str) and "list" in str(fields[key].type):
            params[key] = _as_list(key, value)
    return validate(name, params, where="notebook parameters")


def _as_list(name: str, text: str) -> Any:
    """A list parameter that arrived as text: ``"[0, 1]"`` is read as YAML."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, list):
        raise config.ProfileError(
            f"notebook parameters: {name}: expected a list, got the text {text!r}. With "
            f"papermill give lists as YAML: -y '{name}: [0, 1, 2]' or -p {name} '[0, 1, 2]'.")
    return value


def load_profile(name_or_path: str | Path) -> dict[str, config.Common]:
    """Read and validate a whole profile: ``{chapter: parameters}``."""
    prof = config.read(name_or_path)
    return {chapter: validate(chapter, params, where=str(prof.path), complete=not prof.defaults)
            for chapter, params in prof.chapters.items()}


def plan(name: str, cfg: config.Common) -> list[runs.Run]:
    """The runs of chapter `name` under `cfg` (see :class:`kdlib.runs.Run`), and those of
    the readings `cfg` names (:func:`kdlib.readings.runs_of`)."""
    ch = get(name)
    out = ch.plan(cfg)
    for reading in readings.declared(ch.readings, cfg.readings):
        out += readings.runs_of(reading, cfg, ch.plan)
    return out


def committed(name: str, profile: str) -> tuple[config.Common | None, runs.Records | None]:
    """Chapter `name`'s parameters under another `profile` (such as the committed ``paper`` or
    ``cpu``) and its records there, or None for what the repository does not have. Nothing
    is computed: a page shows these beside its own runs."""
    try:
        cfg = load_profile(profile).get(name)
    except config.ProfileError:
        return None, None
    if cfg is None:
        return None, None
    return cfg, runs.saved(plan(name, cfg))


def plans(cfgs: Mapping[str, config.Common],
          chosen: Sequence[str] | None = None) -> list[runs.Run]:
    """The runs of `chosen` chapters (default: all of `cfgs`), each record once."""
    return runs.unique(r for c in (chosen or list(cfgs)) for r in plan(c, cfgs[c]))
