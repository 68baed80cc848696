"""The book's chapters: one module per chapter, and this registry of them.

Each chapter module declares ``NAME``, its parameters (``Params``, a frozen
dataclass), ``plan(cfg) -> list[kdlib.runs.Run]`` and the tables and figures its
notebook shows. What several chapters share lives in modules below them that
are not chapters: :mod:`~kdlib.chapters.mnist` (Tables 1 and 2) and
:mod:`~kdlib.chapters.images` (Tables 3 to 5). No chapter imports another.

Chapter ``05_gradients`` (Figure 2) is a second view of Table 4's runs, so it
has the module, parameters and plan of ``04_teacher_free``: the paper draws
both from one section.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from kdlib import config, runs

#: Chapter (notebook name) -> the module that declares it.
REGISTRY: dict[str, str] = {
    "01_vanilla_kd": "kdlib.chapters.vanilla_kd",
    "02_omitted_digit": "kdlib.chapters.omitted_digit",
    "03_reversed_kd": "kdlib.chapters.reversed_kd",
    "04_teacher_free": "kdlib.chapters.teacher_free",
    "05_gradients": "kdlib.chapters.teacher_free",
    "06_adversarial_tfkd": "kdlib.chapters.adversarial",
}


def module(chapter: str) -> ModuleType:
    """The module of `chapter`; a :class:`kdlib.config.ProfileError` names the known ones."""
    if chapter not in REGISTRY:
        raise config.ProfileError(f"unknown chapter {chapter!r}; known: {sorted(REGISTRY)}")
    return importlib.import_module(REGISTRY[chapter])


def params_class(chapter: str) -> type[config.Common]:
    return module(chapter).Params


def validate(chapter: str, params: Mapping[str, Any], *, complete: bool = True,
             where: str = "parameters") -> config.Common:
    """`params` as `chapter`'s parameter dataclass; see :func:`kdlib.config.validate`."""
    return config.validate(params_class(chapter), params, complete=complete, where=where,
                           name=chapter)


#: Names IPython puts in a notebook's namespace, which are not parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters(chapter: str, namespace: Mapping[str, Any]) -> config.Common:
    """Validate a notebook's parameters, read from its global namespace.

    Call it first thing after the parameters cell. A value papermill injected that the
    chapter does not know (a misspelt ``-p temperture 3``) stops the notebook here, before
    any compute; a list given as text (``-p seeds "[0, 1]"``, which papermill passes as a
    string) is read as YAML, or refused with the syntax that works.
    """
    fields = {f.name: f for f in dataclasses.fields(params_class(chapter))}
    unknown = sorted(k for k, v in namespace.items()
                     if not k.startswith("_") and k not in fields and k not in _IPYTHON_NAMES
                     and not isinstance(v, ModuleType) and not callable(v))
    if unknown:
        raise config.ProfileError(
            f"notebook parameters [{chapter}]: unknown parameter(s) {unknown}; known: "
            f"{', '.join(fields)}. Check the spelling of papermill's -p/-y/-f values.")
    params = {n: namespace[n] for n in fields if n in namespace}
    for name, value in params.items():
        if isinstance(value, str) and "list" in str(fields[name].type):
            params[name] = _as_list(name, value)
    return validate(chapter, params, where="notebook parameters")


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
    path, raw = config.read_profile(name_or_path)
    return {chapter: validate(chapter, params, where=str(path))
            for chapter, params in raw.items()}


def plan(chapter: str, cfg: config.Common) -> list[runs.Run]:
    """The runs of `chapter` under `cfg` (see :class:`kdlib.runs.Run`)."""
    return module(chapter).plan(cfg)


def committed(chapter: str, profile: str) -> tuple[config.Common | None, runs.Records | None]:
    """`chapter`'s parameters under another `profile` (such as the committed ``paper`` or
    ``cpu``) and its records there, or None for what the repository does not have. Nothing
    is computed: a page shows these beside its own runs."""
    try:
        cfg = load_profile(profile).get(chapter)
    except config.ProfileError:
        return None, None
    if cfg is None:
        return None, None
    return cfg, runs.saved(plan(chapter, cfg))
