"""What a profile costs: FLOPs per chapter and run, in hours on one measured GPU.

Each run says what it computes (:class:`kdlib.runs.Work`): the network it trains
and on how many images, its PGD steps, its teacher, its evaluation and the
AutoAttack it runs. :mod:`kdlib.flops` prices that work in FLOPs (``train_flops``,
``eval_flops``, ``autoattack_forwards``); this module adds them up per chapter and
row and turns them into hours. A network that several runs share (a teacher, the
ResNet18 baseline of Tables 3 and 4) is counted once, for the first run that trains it.

Hours divide the FLOPs by one rate (:func:`kdlib.tooling.measured.gpu_rate`): the FLOP
rate of kdlib's ResNet18 CIFAR training in bf16 as ``python -m benchmarks.gpu`` measured it on a GPU
(``benchmarks/results/gpu.json``), or, where no such file is committed, the assumed
:data:`ASSUMED_IMAGES_PER_S` on one H100. Small MLPs reach far less of a GPU (kernel
launches dominate), but their rows take minutes either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kdlib import chapters, models, runs
from kdlib.flops import (  # noqa: F401  (the cost model's conventions, priced here)
    AA_COST,
    autoattack_forwards,
    eval_flops,
    forward_flops,
    to_compute,
    train_flops,
)
from kdlib.tooling import measured


@dataclass(frozen=True)
class Row:
    """The runs of one name in one chapter, and their compute."""

    chapter: str
    what: str
    runs: int
    flops: float
    note: str = ""
    family: str = "resnet"  # "mlp", "cnn" or "resnet": which measured CPU rate applies


def achieved_flops(images_per_s: float | None = None) -> float:
    """FLOP/s that ResNet18 CIFAR training at `images_per_s` (default: :func:`gpu_rate`'s)
    amounts to (3 forward passes per image, 2 FLOPs per multiply-accumulate)."""
    if images_per_s is None:
        images_per_s = measured.gpu_rate().images_per_s
    macs = models.count_cost(models.resnet18(), (3, 32, 32)).macs
    return images_per_s * 6 * macs


def rows(profile: str | Path = "paper") -> list[Row]:
    """One row per chapter and run name of `profile`, networks shared between runs counted
    once (:func:`kdlib.flops.to_compute`, as if nothing were saved)."""
    cfgs = chapters.load_profile(profile)
    plan = list(runs.unique(r for c, cfg in cfgs.items() for r in chapters.plan(c, cfg)))
    priced = to_compute(plan, saved=lambda checkpoint: False)
    first: dict[str, str] = {}  # checkpoint -> the chapter that trains it first
    grouped: dict[tuple[str, str], list[float]] = {}
    notes: dict[tuple[str, str], set[str]] = {}
    family: dict[tuple[str, str], str] = {}
    for run in plan:
        key = (run.chapter, run.name)
        if run.trains in first:
            notes.setdefault(key, set()).add(f"network trained by {first[run.trains]}")
        elif run.trains is not None:
            first[run.trains] = run.chapter
        grouped.setdefault(key, []).append(priced(run))
        family[key] = run.work.family
    return [Row(chapter, name, len(f), sum(f), "; ".join(sorted(notes.get((chapter, name), ()))),
                family[(chapter, name)])
            for (chapter, name), f in grouped.items()]


def _hours(flops: float, rate: float) -> str:
    h = flops / rate / 3600
    if h == 0:
        return "0"
    return "< 0.01" if h < 0.01 else f"{h:,.2f}" if h < 10 else f"{h:,.0f}"


def cost_markdown(profile: str | Path = "paper", *, chapters: set[str] | None = None,
                  cpu_rate: Callable[[Row], float | None] | None = None) -> str:
    """The cost table of `profile` (of `chapters` only, when given) in Markdown, with its
    assumption. `cpu_rate(row)` may give a measured FLOP/s for a row's family, which adds
    a column of hours at that rate."""
    gpu = measured.gpu_rate()
    rate = achieved_flops(gpu.images_per_s)
    table = [r for r in rows(profile) if chapters is None or r.chapter in chapters]
    head = f"| chapter | runs of | how many | PFLOP total | {gpu.gpu} hours |"
    sep = "|---|---|---|---|---|"
    if cpu_rate:
        head += " hours on the benchmark's CPU |"
        sep += "---|"
    lines = [head + " note |", sep + "---|"]
    for r in table:
        cells = [r.chapter, r.what, str(r.runs), f"{r.flops / 1e15:.3g}", _hours(r.flops, rate)]
        if cpu_rate:
            cpu = cpu_rate(r)
            cells.append(_hours(r.flops, cpu) if cpu else "—")
        lines.append("| " + " | ".join(cells + [r.note]) + " |")
    total = sum(r.flops for r in table)
    lines.append(f"| **total** | | | **{total / 1e15:.3g}** | **{_hours(total, rate)}** |"
                 + (" |" if cpu_rate else "") + " |")
    return "\n".join([
        *lines, "",
        f"Hours take one {gpu.gpu} sustaining, for every row, what kdlib's ResNet18 CIFAR "
        f"training in bf16 at {gpu.images_per_s:,.0f} images/s amounts to, "
        f"{rate / 1e12:.1f} TFLOP/s: {gpu.source}. At a more conservative 20 TFLOP/s "
        f"multiply the hours by {rate / 20e12:.1f}. FLOPs count 2 per multiply-accumulate "
        f"and 3 forward passes per "
        f"trained image, a teacher's forward pass where one is used, k + 1 such steps for "
        f"PGD-k training, and the evaluation (AutoAttack estimated at the paper's Table 5 "
        f"accuracies). A network shared between runs is counted once.", ""])


def show(profile: str | Path, chapter: str) -> None:
    """Display the cost table of `profile` for one chapter (a notebook cell)."""
    from IPython.display import Markdown, display

    display(Markdown(cost_markdown(profile, chapters={chapter})))
