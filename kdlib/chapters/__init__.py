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


def parameters(chapter: str, namespace: Mapping[str, Any]) -> config.Common:
    """Validate a notebook's parameters, read from its global namespace."""
    names = [f.name for f in dataclasses.fields(params_class(chapter))]
    return validate(chapter, {n: namespace[n] for n in names if n in namespace},
                    where="notebook parameters")


def load_profile(name_or_path: str | Path) -> dict[str, config.Common]:
    """Read and validate a whole profile: ``{chapter: parameters}``."""
    path, raw = config.read_profile(name_or_path)
    return {chapter: validate(chapter, params, where=str(path))
            for chapter, params in raw.items()}


def plan(chapter: str, cfg: config.Common) -> list[runs.Run]:
    """The runs of `chapter` under `cfg` (see :class:`kdlib.runs.Run`)."""
    return module(chapter).plan(cfg)
