"""Chapter parameters and the YAML profiles that set them.

Each chapter notebook has a dataclass here listing its parameters, their
types and their allowed ranges. A profile (``profiles/*.yaml``) gives every
parameter of every chapter; :func:`load_profile` refuses unknown keys, missing
keys, wrong types and impossible values before anything is computed.

The dataclass defaults are the ``smoke`` settings, the same values the
notebooks' ``parameters`` cells hold (a test keeps the three in step).
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


def _ge(bound: float) -> dict:
    return {"ge": bound}


def _between(lo: float, hi: float) -> dict:
    return {"ge": lo, "le": hi}


@dataclass(frozen=True)
class Common:
    """Parameters every chapter has."""

    profile: str = "smoke"
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"ge": 0, "nonempty": True})
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class MnistTeacher(Common):
    """The MNIST data and teacher settings that Tables 1 and 2 share.

    Two chapters with equal values here share one trained teacher: its
    checkpoint is keyed by them (see :func:`kdlib.mnist_kd.teacher_spec`).
    """

    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    train_size: int = field(default=2000, metadata=_between(100, 60000))
    batch_size: int = field(default=128, metadata=_ge(1))
    teacher_epochs: int = field(default=1, metadata=_ge(1))
    teacher_lr: float = field(default=0.05, metadata={"gt": 0})
    teacher_weight_decay: float = field(default=0.0001, metadata=_ge(0))
    teacher_dropout: float = field(default=0.3, metadata=_between(0, 0.95))
    teacher_jitter: int = field(default=1, metadata=_between(0, 4))


@dataclass(frozen=True)
class VanillaKD(MnistTeacher):
    """Table 1: Hinton's distillation of a 1200-1200 MLP into a 400-unit MLP."""

    student_epochs: int = field(default=1, metadata=_ge(1))
    student_lr: float = field(default=0.05, metadata={"gt": 0})
    temperature: float = field(default=4.0, metadata={"gt": 0})
    alpha: float = field(default=0.9, metadata=_between(0, 1))
    sweep_temperatures: list[float] = field(default_factory=list, metadata={"gt": 0})
    sweep_alphas: list[float] = field(default_factory=list, metadata=_between(0, 1))


@dataclass(frozen=True)
class OmittedDigit(MnistTeacher):
    """Table 2: a student distilled on a transfer set that lacks one digit."""

    digits: list[int] = field(default_factory=lambda: [1, 2],
                              metadata={**_between(0, 9), "nonempty": True, "unique": True})
    student_epochs: int = field(default=1, metadata=_ge(1))
    student_lr: float = field(default=0.05, metadata={"gt": 0})
    #: Random shifts (pixels) of the transfer images; the teacher labels each shifted batch.
    student_jitter: int = field(default=2, metadata=_between(0, 4))
    temperature: float = field(default=10.0, metadata={"gt": 0})
    alpha: float = field(default=0.9, metadata=_between(0, 1))


@dataclass(frozen=True)
class ImageRuns(Common):
    """The data and training recipe of the ResNet chapters (Tables 3 to 5).

    ``dataset`` is ``cifar10`` for the paper's setting, or ``mnist`` for a
    scaled replication that runs offline on a CPU (a low-data subset, where
    regularisation shows, and networks of reduced ``width``).
    """

    dataset: Literal["mnist", "cifar10"] = "mnist"
    train_size: int = field(default=256, metadata=_between(64, 60000))
    test_size: int = field(default=500, metadata=_between(10, 10000))
    width: int = field(default=4, metadata=_ge(1))
    augment: Literal["crop_flip", "jitter", "none"] = "jitter"
    batch_size: int = field(default=64, metadata=_ge(1))
    epochs: int = field(default=1, metadata=_ge(1))
    lr: float = field(default=0.05, metadata={"gt": 0})
    weight_decay: float = field(default=0.0005, metadata=_ge(0))
    schedule: Literal["cosine", "step"] = "cosine"
    warmup_epochs: float = field(default=0.0, metadata=_ge(0))

    def __post_init__(self) -> None:
        if self.dataset == "mnist" and self.augment == "crop_flip":
            raise ProfileError("augment 'crop_flip' mirrors images left-right, which turns "
                               "digits into other shapes; use 'jitter' or 'none' for MNIST")
        if self.dataset == "cifar10" and self.train_size > 50000:
            raise ProfileError(f"train_size {self.train_size} is larger than CIFAR-10's "
                               "50000 training images")
        if self.batch_size > self.train_size:
            raise ProfileError(f"batch_size {self.batch_size} is larger than train_size "
                               f"{self.train_size}")


@dataclass(frozen=True)
class ResNetRuns(ImageRuns):
    """The runs that Tables 3 and 4 and Figure 2 share: :class:`ImageRuns` and how often
    gradients are recorded. Runs with equal values here share trained baselines (see
    :mod:`kdlib.cifar_kd`)."""

    grad_every: int = field(default=1, metadata=_ge(1))


@dataclass(frozen=True)
class TfKdLosses:
    """The settings of the two teacher-free losses (Table 4's, reused by Table 5)."""

    tf_reg_delta: float = field(default=0.9, metadata=_between(0, 1))
    tf_reg_temperature: float = field(default=20.0, metadata={"gt": 0})
    tf_reg_alpha: float = field(default=0.1, metadata=_between(0, 1))
    tf_reg_soften_student: bool = True
    tf_self_temperature: float = field(default=6.0, metadata={"gt": 0})
    tf_self_alpha: float = field(default=0.99, metadata=_between(0, 1))


@dataclass(frozen=True)
class ReversedKD(ResNetRuns):
    """Table 3: a trained ResNet18 teaches a ResNet50 (Re-KD), in Hinton's loss form."""

    re_kd_temperature: float = field(default=20.0, metadata={"gt": 0})
    re_kd_alpha: float = field(default=0.13, metadata=_between(0, 1))


@dataclass(frozen=True)
class TeacherFree(TfKdLosses, ResNetRuns):
    """Table 4: ResNet18 with a virtual teacher (Tf-KD-reg) or a trained copy of itself
    (Tf-KD-self) as the teacher."""


@dataclass(frozen=True)
class GradientStats(TeacherFree):
    """Figure 2: the gradients recorded during Table 4's runs.

    It has exactly Table 4's parameters, and a profile must give both
    chapters the same values (a test checks it), so this chapter finds
    Table 4's records instead of training anything.
    """


@dataclass(frozen=True)
class AdversarialTfKD(TfKdLosses, ImageRuns):
    """Table 5: PGD adversarial training, alone and with distillation, under AutoAttack.

    It takes Table 4's data, recipe and Tf-KD losses, and adds the
    network, the threat model (L∞ ``eps``, PGD ``pgd_steps`` steps of
    ``pgd_step`` for training, ``eval_pgd_steps`` of ``eval_pgd_step`` for the
    PGD evaluation), the AKD loss, optional early stopping on held-out robust
    accuracy, and how many test images AutoAttack and Square-only see.
    """

    arch: Literal["resnet18", "mlp"] = "mlp"
    eps: float = field(default=0.1, metadata={"gt": 0, "le": 1})
    pgd_step: float = field(default=0.025, metadata={"gt": 0, "le": 1})
    pgd_steps: int = field(default=7, metadata=_ge(1))
    eval_pgd_step: float = field(default=0.025, metadata={"gt": 0, "le": 1})
    eval_pgd_steps: int = field(default=20, metadata=_ge(1))
    akd_temperature: float = field(default=1.0, metadata={"gt": 0})
    akd_alpha: float = field(default=0.9, metadata=_between(0, 1))
    early_stop: bool = False
    val_size: int = field(default=0, metadata=_ge(0))
    aa_size: int = field(default=20, metadata=_ge(1))
    square_size: int = field(default=20, metadata=_ge(1))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch == "mlp" and self.dataset != "mnist":
            raise ProfileError("arch 'mlp' is for MNIST; use 'resnet18' for CIFAR-10")
        if self.early_stop and self.val_size == 0:
            raise ProfileError("early_stop needs held-out images: set val_size > 0")
        if self.val_size and self.train_size - self.val_size < self.batch_size:
            raise ProfileError(f"val_size {self.val_size} leaves fewer than batch_size "
                               f"{self.batch_size} of the {self.train_size} training images")
        for name in ("aa_size", "square_size"):
            if getattr(self, name) > self.test_size:
                raise ProfileError(f"{name} {getattr(self, name)} is larger than test_size "
                                   f"{self.test_size}")


#: Chapter notebook name -> its parameter class.
CHAPTERS: dict[str, type[Common]] = {
    "01_vanilla_kd": VanillaKD,
    "02_omitted_digit": OmittedDigit,
    "03_reversed_kd": ReversedKD,
    "04_teacher_free": TeacherFree,
    "05_gradients": GradientStats,
    "06_adversarial_tfkd": AdversarialTfKD,
}


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


def validate(chapter: str, params: Mapping[str, Any], *, complete: bool = True,
             where: str = "parameters") -> Common:
    """Check `params` for `chapter` and return them as its dataclass.

    Raises :class:`ProfileError` naming every bad key: unknown, missing (when
    `complete`), of the wrong type, or out of range.
    """
    if chapter not in CHAPTERS:
        raise ProfileError(f"{where}: unknown chapter {chapter!r}; known: {sorted(CHAPTERS)}")
    cls = CHAPTERS[chapter]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems = [f"unknown key {k!r}" for k in params if k not in fields]
    if complete:
        problems += [f"missing key {k!r}" for k in fields if k not in params]
    for name, value in params.items():
        if name not in fields:
            continue
        if not _type_ok(value, hints[name]):
            problems.append(f"{name}: expected {_describe(hints[name])}, got {value!r}")
            continue
        if (msg := _bounds_error(value, fields[name].metadata)) is not None:
            problems.append(f"{name}: {msg}")
    if problems:
        known = ", ".join(fields)
        raise ProfileError(f"{where} [{chapter}]: " + "; ".join(problems)
                           + f". Known keys: {known}.")
    try:
        return cls(**params)
    except ProfileError as err:  # a check across several keys (__post_init__)
        raise ProfileError(f"{where} [{chapter}]: {err}") from None


def from_namespace(chapter: str, namespace: Mapping[str, Any]) -> Common:
    """Validate a notebook's parameters, read from its global namespace."""
    names = [f.name for f in dataclasses.fields(CHAPTERS[chapter])]
    return validate(chapter, {n: namespace[n] for n in names if n in namespace},
                    where="notebook parameters")


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


def load_profile(name_or_path: str | Path) -> dict[str, Common]:
    """Read and validate a whole profile: ``{chapter: parameters}``.

    A profile has a ``description`` and a ``chapters`` mapping; every chapter
    must list every one of its parameters, and ``profile`` must equal the
    file's stem so that pages and records name the profile that made them.
    """
    path = profile_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict) or set(raw) - {"description", "chapters"} \
            or not isinstance(raw.get("chapters"), dict):
        raise ProfileError(f"{path}: expected top-level keys 'description' and 'chapters' "
                           f"(a mapping of chapter name to parameters)")
    out = {}
    for chapter, params in raw["chapters"].items():
        if not isinstance(params, dict):
            raise ProfileError(f"{path} [{chapter}]: parameters must be a mapping")
        cfg = validate(chapter, params, where=str(path))
        if cfg.profile != path.stem:
            raise ProfileError(f"{path} [{chapter}]: profile is {cfg.profile!r}, "
                               f"but the file is named {path.stem!r}")
        out[chapter] = cfg
    return out


def as_dict(cfg: Common) -> dict[str, Any]:
    """Plain-dict form of a parameter set, for records and papermill."""
    return dataclasses.asdict(cfg)
