"""What Tables 1 and 2 share: MNIST in memory, the 1200-1200 teacher, the 400-unit student.

Both chapters train their teacher from the same parameters
(:class:`MnistTeacher`); its checkpoint is keyed by :func:`teacher_spec`, so when
two profiles' sections agree on those settings the teacher is trained once and
loaded by the other chapter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from kdlib import checkpoints, data, models, objectives, paths, runs, training
from kdlib.config import Common, between, ge

#: Record and checkpoint name of the teacher.
TEACHER = "mnist-teacher"


@dataclass(frozen=True)
class MnistTeacher(Common):
    """The MNIST data and teacher settings that Tables 1 and 2 share."""

    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    train_size: int = field(default=2000, metadata=between(100, 60000))
    batch_size: int = field(default=128, metadata=ge(1))
    teacher_epochs: int = field(default=1, metadata=ge(1))
    teacher_lr: float = field(default=0.05, metadata={"gt": 0})
    teacher_weight_decay: float = field(default=0.0001, metadata=ge(0))
    teacher_dropout: float = field(default=0.3, metadata=between(0, 0.95))
    teacher_jitter: int = field(default=1, metadata=between(0, 4))
    #: Also run the recipes that were tried and set aside, so the page can disclose them.
    trials: bool = False


@dataclass(frozen=True)
class MnistSetup(data.OnDevice):
    """The chapter's tensors on its device, and where each training image came from."""

    #: Position of each training image in the data set's full training split (on the CPU).
    train_index: torch.Tensor


def load(cfg: MnistTeacher) -> MnistSetup:
    """The chapter's data set on its device, cut to ``train_size`` training images
    (loaded once per process for each setting)."""
    device = training.resolve_device(cfg.device)
    return _load(cfg.dataset, cfg.train_size, str(device), str(paths.data_dir()))


@functools.cache
def _load(dataset: str, train_size: int, device: str, root: str) -> MnistSetup:
    images = data.load_images(dataset, root=Path(root))
    index = data.subset_indices(len(images.train), train_size, seed=0)
    x, y = images.train.subset(index).to(device)
    xt, yt = images.test.to(device)
    return MnistSetup(x, y, xt, yt, images.source, torch.device(device), index)


def teacher_recipe(cfg: MnistTeacher) -> training.Recipe:
    return training.Recipe(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size,
                           lr=cfg.teacher_lr, weight_decay=cfg.teacher_weight_decay,
                           jitter=cfg.teacher_jitter, engine=training.engine_here(cfg.engine))


def student_recipe(cfg: MnistTeacher, epochs: int, lr: float, jitter: int = 0) -> training.Recipe:
    """The students' recipe: SGD with Nesterov momentum and a cosine schedule, no weight decay;
    the same for a student with and without KD, so that only the objective differs."""
    return training.Recipe(epochs=epochs, batch_size=cfg.batch_size, lr=lr, jitter=jitter,
                           engine=training.engine_here(cfg.engine))


def data_spec(cfg: MnistTeacher) -> dict[str, Any]:
    return {"dataset": cfg.dataset, "train_size": cfg.train_size, "subset_seed": 0}


#: Dropout of the teacher's input pixels (Hinton et al.'s 20%), in its spec and its network.
TEACHER_INPUT_DROPOUT = 0.2
#: The networks a spec's ``model`` names.
NETWORKS = {"mlp-1200-1200": models.teacher_mlp, "mlp-400": models.student_mlp}


def teacher_spec(cfg: MnistTeacher, seed: int) -> dict[str, Any]:
    return {"model": "mlp-1200-1200", "dropout": cfg.teacher_dropout,
            "input_dropout": TEACHER_INPUT_DROPOUT, "data": data_spec(cfg),
            "recipe": teacher_recipe(cfg).as_dict(), "seed": seed}


def teacher_checkpoint(cfg: MnistTeacher, seed: int) -> str:
    """The name of the teacher's checkpoint file, shared by every chapter that uses it."""
    return checkpoints.checkpoint_path(TEACHER, teacher_spec(cfg, seed)).name


def teacher(cfg: MnistTeacher, seed: int, setup: MnistSetup,
            progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """The trained teacher for `seed` and its loss history, from the checkpoint cache
    when a teacher with this exact spec was trained before (by either chapter)."""

    def fit(model: nn.Module, resume: Path) -> dict[str, Any]:
        history = training.train(model, objectives.CrossEntropy().objective(), setup.x_train,
                                 setup.y_train, teacher_recipe(cfg), seed=seed, checkpoint=resume,
                                 desc=f"teacher seed {seed}", progress=progress)
        return {"history": history}

    spec = teacher_spec(cfg, seed)
    network = NETWORKS[spec["model"]]
    model, info = checkpoints.trained_model(
        TEACHER, spec,
        lambda: training.seeded(seed, lambda: network(spec["dropout"], spec["input_dropout"])),
        fit, setup.device)
    return model, info["history"]


# --- costs --------------------------------------------------------------------------------------

@functools.cache
def macs(which: Literal["teacher", "student"]) -> int:
    """Multiply-accumulates per image of the teacher or the student MLP."""
    build = {"teacher": models.teacher_mlp, "student": models.student_mlp}[which]
    return models.count_cost(build(), (1, 28, 28)).macs


def teacher_work(cfg: MnistTeacher) -> runs.Work:
    """What training the teacher costs."""
    return runs.Work(macs("teacher"), trained_images=cfg.train_size * cfg.teacher_epochs,
                     forwards=10_000, family="mlp")
