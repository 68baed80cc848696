"""The benchmarks' committed results, read in one place for the book and the cost model.

``benchmarks/`` measures; nothing in :mod:`kdlib` imports it. Its results are files
under ``benchmarks/results/``: ``latest.json``/``latest.md`` (the CPU benchmark,
``python -m benchmarks.run``), ``parity.md`` (the engines' accuracy), ``gpu.json``/
``gpu.md`` and every run under ``gpu-runs/`` (``python -m benchmarks.gpu``). This module
reads them: the GPU rate the cost model prices hours at (:func:`gpu_rate`), the CPU
rates of the default engine (:func:`cpu_rates`) and the pages' Markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kdlib import paths

#: Where the benchmarks write their results.
RESULTS = paths.REPO / "benchmarks" / "results"
#: The throughput assumed where no GPU has measured it: ResNet18 CIFAR training images per
#: second, bf16, one H100 (the speed target set for kdlib's engine).
ASSUMED_IMAGES_PER_S = 20_000
#: What ``python -m benchmarks.gpu`` measured, when committed.
GPU_RESULTS = RESULTS / "gpu.json"


@dataclass(frozen=True)
class GpuRate:
    """ResNet18 CIFAR training images per second in bf16 on `gpu`; `source` says whether
    it was measured (by which command, where and when) or assumed."""

    images_per_s: float
    gpu: str
    measured: bool
    source: str


def gpu_rate(path: Path | None = None) -> GpuRate:
    """The measured rate from `path` (default :data:`GPU_RESULTS`) if it exists, else the
    assumed one. The measured rate is that of one full epoch of chapter 4's baseline in the
    paper setting (50,000 images through the chapter's code), where the file has it, else
    that of the short ResNet18 throughput case."""
    path = path or GPU_RESULTS
    if not path.is_file():
        return GpuRate(ASSUMED_IMAGES_PER_S, "H100", False,
                       "an assumption (the engine's speed target), not a measurement")
    res = json.loads(path.read_text())
    epoch = res["cases"].get("chapter4_epoch", {}).get("methods", {}).get("baseline")
    rate = epoch["images_per_s"] if epoch else res["cases"]["resnet18"]["kdlib_images_per_s"]
    what = ("one epoch of chapter 4's baseline in the paper setting" if epoch
            else "ResNet18 training at batch 128, width 64")
    gpu = res["machine"]["gpu"].removeprefix("NVIDIA ")
    return GpuRate(rate, gpu, True,
                   f"measured by `python -m benchmarks.gpu` on one {gpu} "
                   f"({res['created_utc'][:10]}, commit {(res['git_commit'] or '?')[:7]}; "
                   f"{what})")


def cpu_rates(path: Path | None = None) -> dict[str, float] | None:
    """FLOP/s of the default CPU engine per network family (``mlp``, ``resnet``) from the
    committed CPU benchmark (``latest.json``), or None when none is committed (or it ran with
    ``--quick``, or on a GPU)."""
    path = path or RESULTS / "latest.json"
    if not path.is_file():
        return None
    res = json.loads(path.read_text())
    cases = res["cases"]
    if res["machine"]["device"] != "cpu" or res.get("quick") \
            or "kdlib_float32" not in cases["mlp"]["engines"]:
        return None
    fast = "kdlib_fast" if "kdlib_fast" in cases["mlp"]["engines"] else "kdlib"
    return {"mlp": cases["mlp"][f"{fast}_gflops"] * 1e9,
            "resnet": cases["resnet18"][f"{fast}_gflops"] * 1e9}


def markdown(name: str, missing: str) -> str:
    """A committed Markdown result (``latest.md``, ``parity.md``, ``gpu.md``), or `missing`."""
    path = RESULTS / name
    return path.read_text() if path.is_file() else missing


def gpu_runs_table(folder: Path | None = None) -> str:
    """Every committed run of ``benchmarks.gpu`` (``gpu-runs/``), one row each, oldest first."""
    folder = folder or RESULTS / "gpu-runs"
    rows = []
    for path in sorted(folder.glob("*.json")):
        res = json.loads(path.read_text())
        c = res["cases"]
        ch4 = c.get("chapter4_epoch", {}).get("methods", {}).get("baseline")
        ch6 = c.get("chapter6_at_epoch")
        rows.append(f"| {res['created_utc'][:16].replace('T', ' ')} | "
                    f"{(res['git_commit'] or '?')[:7]} | {res['machine']['gpu']} | "
                    f"{c['resnet18']['kdlib_images_per_s']:,.0f} | "
                    f"{c['resnet18']['reference_images_per_s']:,.0f} | "
                    f"{c['resnet50']['kdlib_images_per_s']:,.0f} | "
                    + (f"{ch4['images_per_s']:,.0f}" if ch4 else "—") + " | "
                    + (f"{ch6['epoch_seconds']:.1f}" if ch6 else "—") + " |")
    if not rows:
        return "No run is committed under `benchmarks/results/gpu-runs/`."
    return "\n".join([
        "| run (UTC) | commit | GPU | ResNet18 kdlib, images/s | ResNet18 textbook | "
        "ResNet50 kdlib | chapter 4 epoch, images/s | chapter 6 AT epoch, s |",
        "|---|---|---|---|---|---|---|---|", *rows])
