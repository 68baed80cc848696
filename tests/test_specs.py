"""Every setting of every typed value that describes a run reaches its record form.

A spec's hash names the record and the checkpoint, so a field that a ``spec()`` (or
``Recipe.as_dict()``) forgot could change what trains while the record keeps its name.
The values are collected from real plans (every record of the ``paper``, ``cpu`` and
``smoke`` profiles); each field of each is changed, one at a time, to another valid
value, and the record form must change with it.
"""

import dataclasses
import functools
import types
import typing

import pytest

from kdlib.tooling import jobs

#: Values a field may take in a perturbation besides those seen in the plans.
EXTRA = {bool: (True, False), int: (1, 2, 7), float: (0.25, 0.5, 3.0), str: ("x",)}


def record_form(value):
    return value.as_dict() if hasattr(value, "as_dict") else value.spec()


def described(value) -> bool:
    return dataclasses.is_dataclass(value) and (hasattr(value, "spec")
                                                or hasattr(value, "as_dict"))


def collect(value, into: dict) -> None:
    """Every described value reachable from `value`, by type."""
    if isinstance(value, functools.partial):
        for arg in (*value.args, *value.keywords.values()):
            collect(arg, into)
    elif described(value):
        into.setdefault(type(value), []).append(value)
        for f in dataclasses.fields(value):
            collect(getattr(value, f.name), into)


@pytest.fixture(scope="module")
def values() -> dict:
    found: dict = {}
    for profile in ("smoke", "cpu", "paper"):
        for run in jobs.plan(profile):
            collect(run.compute, found)
    return found


def candidates(cls, name: str, current, values: dict) -> list:
    """Other values field `name` of `cls` could hold: those seen in the plans for it, the
    described values of its type, its Literal choices and a few plain ones."""
    hint = typing.get_type_hints(cls)[name]
    seen = [getattr(v, name) for v in values.get(cls, [])]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = [a for a in (typing.get_args(hint) if union else (hint,)) if a is not type(None)]
    out = list(seen)
    for kind in kinds:
        if typing.get_origin(kind) is typing.Literal:
            out += list(typing.get_args(kind))
        elif typing.get_origin(kind) is tuple:
            out += [(0.5,), ("square",), ()]
        elif getattr(kind, "_is_protocol", False):  # objectives.Loss: any typed loss
            out += [v for vs in values.values() for v in vs if hasattr(v, "objective")]
        elif isinstance(kind, type):
            out += [v for t, vs in values.items() if issubclass(t, kind) for v in vs]
            out += list(EXTRA.get(kind, ()))
    if union and type(None) in typing.get_args(hint):
        out.append(None)
    if isinstance(current, str):
        out.append(current + "x")
    return [c for c in out if c != current and isinstance(c, bool) == isinstance(current, bool)]


def test_every_field_of_every_described_value_reaches_its_record_form(values):
    assert {t.__name__ for t in values} >= {
        "Training", "ResNet", "SmallCNN", "Data", "Recipe", "ObjectiveSpec", "Threat",
        "Evaluation", "AutoAttackRun", "Audit", "EarlyStop", "CrossEntropy", "LabelSmoothing",
        "HintonKD", "TfKdReg", "TfKdRegOfficial", "MLPNet", "BiasShift"}
    unreached = []
    for cls, instances in values.items():
        for f in dataclasses.fields(cls):
            changed_form = tried = False
            for value in instances:
                for other in candidates(cls, f.name, getattr(value, f.name), values):
                    try:
                        moved = dataclasses.replace(value, **{f.name: other})
                    except (ValueError, TypeError):
                        continue  # not a valid value of this field here
                    tried = True
                    changed_form = record_form(moved) != record_form(value)
                    if not changed_form:
                        unreached.append(f"{cls.__name__}.{f.name}: {getattr(value, f.name)!r}"
                                         f" → {other!r} leaves the spec unchanged")
                    break
                if tried:
                    break
            if not tried:
                unreached.append(f"{cls.__name__}.{f.name}: no other valid value to try")
    assert not unreached, "\n".join(unreached)


def test_the_check_catches_a_forgotten_field(values, monkeypatch):
    """The test above fails when a spec() drops a field (here the threat's step)."""
    from kdlib import attacks

    spec = attacks.Threat.spec
    monkeypatch.setattr(attacks.Threat, "spec",
                        lambda self: {k: v for k, v in spec(self).items() if k != "step"})
    with pytest.raises(AssertionError, match="Threat.step"):
        test_every_field_of_every_described_value_reaches_its_record_form(values)
