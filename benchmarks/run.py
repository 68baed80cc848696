"""kdlib's training engine and PGD beside the textbook way, measured in one run.

``python -m benchmarks.run [--quick]`` writes ``benchmarks/results/latest.json``
and ``latest.md`` (the table the book's appendix shows, with the machine).

What is compared, on the same machine, model, optimiser and batch size:

- *training throughput* (images/s) of :func:`kdlib.training.train` on tensors
  resident on the device against a reference loop written as textbooks write
  it: a torchvision-style ``Dataset`` whose ``__getitem__`` turns one uint8
  image into a PIL image and applies ``ToTensor()`` (plus ``RandomCrop(32, 4)``
  and ``RandomHorizontalFlip()`` for CIFAR), a ``DataLoader`` (shuffle,
  ``num_workers=0``) and ``loss.item()`` every step. Two cases: the MNIST
  teacher MLP 784-1200-1200-10 and ResNet18 at CIFAR size, where kdlib crops
  and flips the whole batch on the device (``Recipe.crop_flip``);
- *PGD*: :func:`kdlib.attacks.pgd` against ``torchattacks.PGD`` (same model,
  batch, ε, step and number of steps);
- the *FLOP rate* of kdlib's MLP training as a fraction of the matmul peak
  measured in the same run.

Each case is warmed up, then timed `repeats` times, the two sides alternating
(ABBA) so that a drifting load hits both alike; the median is reported.
On CUDA kdlib trains in bf16 autocast with channels-last convolutions; on a CPU
it is timed in each of its engines (:func:`kdlib.training.engine_for`): the
default ``fast`` one (float32, fused SGD, cheap dropout masks), ``bf16`` where the
CPU has bf16 matrix units, and the textbook ``float32`` one. The reference loop
stays in float32, as textbooks write it. ``benchmarks/parity.py`` measures what
the engines do to accuracy.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import write_results
from kdlib import attacks, data, models, objectives, results, training

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Targets of the issue that asked for this benchmark (ratios; the last is a fraction).
TARGETS = {"mlp": 3.0, "resnet18": 1.2, "pgd": 1.0, "mlp_peak_fraction": 0.5}


@dataclass(frozen=True)
class Settings:
    """Step counts and sizes of one benchmark run."""

    batch_size: int = 128
    lr: float = 0.01
    mlp_warmup: int = 10
    mlp_steps: int = 100
    resnet_width: int = 64
    resnet_warmup: int = 1
    resnet_steps: int = 3
    pgd_batch: int = 1000
    pgd_steps: int = 40
    pgd_eps: float = 0.3
    pgd_step: float = 0.01
    repeats: int = 3
    matmul_n: int = 2048
    compile: bool = False
    cpu_bf16: bool = False  # also time the bf16 engine on a CPU; see `engines`
    reference_workers: int = 0  # the textbook loop's DataLoader workers


def default_settings(device: torch.device, quick: bool) -> Settings:
    """Counts that take about a minute (a few seconds with `quick`) on `device`."""
    if device.type == "cuda":
        s = Settings(mlp_warmup=50, mlp_steps=500, resnet_warmup=10, resnet_steps=50,
                     repeats=3, matmul_n=8192)
        return replace(s, mlp_steps=50, resnet_steps=5, repeats=1) if quick else s
    bf16 = training.cpu_has_bf16()
    if quick:
        return Settings(mlp_warmup=3, mlp_steps=10, resnet_warmup=1, resnet_steps=1,
                        pgd_batch=256, pgd_steps=10, repeats=1, cpu_bf16=bf16)
    return Settings(cpu_bf16=bf16)


# --- machine and timing --------------------------------------------------------------------------

def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"cpu": results.cpu_model(), "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_start": round(os.getloadavg()[0], 2)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall seconds of ``fn()``, with the device synchronised on both sides."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def alternate(r: int, *fns: Callable[[], Any]) -> None:
    """Run all, in reversed order on odd repeats `r` (ABBA), so drifting load hits all alike."""
    for fn in fns if r % 2 == 0 else fns[::-1]:
        fn()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n × n`` matmul (``2n³`` FLOPs) in `dtype`: the achievable peak."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=g).to(dtype)
    b = torch.randn(n, n, device=device, generator=g).to(dtype)
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


# --- data ----------------------------------------------------------------------------------------

def mnist_uint8(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`n` MNIST training images (uint8, N×1×28×28) and labels; random ones if MNIST is absent."""
    try:
        split = data.load_images("mnist", download=False, verbose=False).train
        return split.images[:n], split.labels[:n], "MNIST"
    except Exception:  # no data set here: the speed does not depend on the pixels
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8),
                torch.randint(0, 10, (n,), generator=g), "synthetic uint8 (MNIST absent)")


def cifar_uint8(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`n` CIFAR-10 training images (uint8, N×3×32×32); random ones of that shape if absent."""
    try:
        split = data.load_cifar10(download=False, verbose=False).train
        return split.images[:n], split.labels[:n], "CIFAR-10"
    except Exception:
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                torch.randint(0, 10, (n,), generator=g),
                "synthetic uint8 3×32×32 (CIFAR-10 absent)")


# --- the reference: a textbook loop --------------------------------------------------------------

class TextbookDataset(torch.utils.data.Dataset):
    """As torchvision's MNIST/CIFAR10 datasets: one PIL image per item, then `transform`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        # torchvision keeps MNIST as (N, 28, 28) and CIFAR-10 as (N, 32, 32, 3) arrays
        arr = images.numpy()
        self.images = arr[:, 0] if arr.shape[1] == 1 else np.ascontiguousarray(
            arr.transpose(0, 2, 3, 1))
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def textbook_transform(crop_flip: bool) -> Callable:
    from torchvision import transforms

    if not crop_flip:
        return transforms.ToTensor()
    return transforms.Compose([transforms.RandomCrop(32, padding=4),
                               transforms.RandomHorizontalFlip(), transforms.ToTensor()])


def reference_train(model: nn.Module, dataset: TextbookDataset, settings: Settings,
                    device: torch.device) -> list[float]:
    """One pass of the textbook loop over `dataset`; returns the logged losses."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=settings.batch_size, shuffle=True,
                                         num_workers=settings.reference_workers,
                                         drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    model.train()
    logged = []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logged.append(loss.item())  # as textbooks do: one host sync per step
    return logged


# --- the engines, side by side -------------------------------------------------------------------

def kdlib_recipe(settings: Settings, crop_flip: bool,
                 engine: training.EngineName = "fast") -> training.Recipe:
    """The reference's optimiser (SGD, momentum 0.9, Nesterov, wd 5e-4) at a constant lr."""
    return training.Recipe(epochs=1, batch_size=settings.batch_size, lr=settings.lr,
                           momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="constant",
                           crop_flip=crop_flip, compile=settings.compile, engine=engine)


def engines(settings: Settings, crop_flip: bool,
            device: torch.device) -> dict[str, training.Recipe]:
    """The kdlib recipes to time, the fastest first (``kdlib``). On a CPU: ``bf16`` where the
    CPU has bf16 matrix units, then the default ``fast`` engine (``kdlib_fast`` when it is
    not the fastest) and the textbook ``float32`` one (``kdlib_float32``)."""
    if device.type == "cuda":
        return {"kdlib": kdlib_recipe(settings, crop_flip)}
    out = {"kdlib": kdlib_recipe(settings, crop_flip, "bf16" if settings.cpu_bf16 else "fast")}
    if settings.cpu_bf16:
        out["kdlib_fast"] = kdlib_recipe(settings, crop_flip, "fast")
    out["kdlib_float32"] = kdlib_recipe(settings, crop_flip, "float32")
    return out


def compare_training(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     crop_flip: bool, warmup: int, steps: int, settings: Settings,
                     device: torch.device) -> dict[str, Any]:
    """Images/s of each kdlib engine (:func:`engines`) and of the textbook loop, each on its
    own copy of `model`, in one alternation. Keys ``<engine>_images_per_s``,
    ``<engine>_ms_per_step``, ``<engine>_seconds`` and ``<engine>_ratio`` (over the
    reference); ``ratio`` is ``kdlib_ratio``."""
    bs = settings.batch_size
    recipes = engines(settings, crop_flip, device)
    nets = {k: copy.deepcopy(model).to(device) for k in [*recipes, "reference"]}
    x, y = data.Split(images, labels).to(device)  # resident on the device, floats in [0, 1]
    transform = textbook_transform(crop_flip)

    def kd_run(name: str, n_steps: int, seed: int) -> None:
        training.train(nets[name], objectives.CrossEntropy().objective(), x[:n_steps * bs],
                       y[:n_steps * bs], recipes[name], seed=seed, progress=False)

    def ref_run(n_steps: int) -> None:
        reference_train(nets["reference"], TextbookDataset(
            images[:n_steps * bs], labels[:n_steps * bs], transform), settings, device)

    for name in recipes:
        kd_run(name, warmup, 0)
    ref_run(warmup)
    times: dict[str, list[float]] = {k: [] for k in nets}
    for r in range(settings.repeats):
        runs = [lambda k=k, r=r: times[k].append(timed(lambda: kd_run(k, steps, r + 1), device))
                for k in recipes]
        alternate(r, *runs, lambda: times["reference"].append(timed(lambda: ref_run(steps),
                                                                     device)))
    out: dict[str, Any] = {"steps": steps, "warmup_steps": warmup, "batch_size": bs,
                           "engines": list(recipes), "reference_precision": "float32"}
    for k, v in times.items():
        rate = steps * bs / statistics.median(v)
        out.update({f"{k}_seconds": v, f"{k}_images_per_s": rate,
                    f"{k}_ms_per_step": 1000 * bs / rate})
    for k, recipe in recipes.items():
        eng = training.engine_for(device.type, recipe)
        out[f"{k}_ratio"] = out[f"{k}_images_per_s"] / out["reference_images_per_s"]
        out[f"{k}_precision"] = ("bf16 autocast" if eng.autocast else "float32") + (
            ", fused SGD" if eng.fused_sgd else "")
    out["ratio"] = out["kdlib_ratio"]
    return out


def _with_flops(out: dict[str, Any], macs: int) -> dict[str, Any]:
    """Adds ``<engine>_gflops``: training FLOPs (6 per multiply-accumulate) per second."""
    return {**out, "macs_per_image": macs, "train_flops_per_image": 6 * macs,
            **{f"{k}_gflops": out[f"{k}_images_per_s"] * 6 * macs / 1e9
               for k in out["engines"]}}


def bench_mlp(settings: Settings, device: torch.device) -> dict[str, Any]:
    """The MNIST teacher (dropout 0.3, input dropout 0.2); no jitter on either side."""
    n = max(settings.mlp_warmup, settings.mlp_steps) * settings.batch_size
    images, labels, source = mnist_uint8(n)
    model = training.seeded(0, lambda: models.teacher_mlp(0.3, 0.2))
    out = compare_training(model, images, labels, False, settings.mlp_warmup,
                           settings.mlp_steps, settings, device)
    return {"model": "MLP 784-1200-1200-10", "data": source,
            **_with_flops(out, models.count_cost(model, (1, 28, 28)).macs)}


def bench_resnet(settings: Settings, device: torch.device) -> dict[str, Any]:
    """CIFAR ResNet18 with crop and flip: on the device (kdlib) or per PIL image (reference)."""
    n = max(settings.resnet_warmup, settings.resnet_steps) * settings.batch_size
    images, labels, source = cifar_uint8(n)
    model = training.seeded(0, lambda: models.resnet18(
        width=settings.resnet_width, normalize=(models.CIFAR10_MEAN, models.CIFAR10_STD)))
    out = compare_training(model, images, labels, True, settings.resnet_warmup,
                           settings.resnet_steps, settings, device)
    return {"model": f"ResNet18 (CIFAR form, width {settings.resnet_width})", "data": source,
            **_with_flops(out, models.count_cost(model, (3, 32, 32)).macs)}


def bench_pgd(settings: Settings, device: torch.device) -> dict[str, Any]:
    """kdlib's PGD and torchattacks.PGD on the student MLP, same batch and budget."""
    import torchattacks

    images, labels, source = mnist_uint8(settings.pgd_batch)
    x, y = data.Split(images, labels).to(device)
    model = training.seeded(0, models.student_mlp).to(device).eval()
    eps, step, steps = settings.pgd_eps, settings.pgd_step, settings.pgd_steps
    oracle = torchattacks.PGD(model, eps=eps, alpha=step, steps=steps, random_start=True)

    def ours() -> torch.Tensor:
        return attacks.pgd(model, x, y, eps, step, steps)

    def theirs() -> torch.Tensor:
        return oracle(x, y)

    ours(), theirs()
    ours_t: list[float] = []
    theirs_t: list[float] = []
    for r in range(max(5, settings.repeats)):
        alternate(r, lambda: ours_t.append(timed(ours, device)),
                  lambda: theirs_t.append(timed(theirs, device)))
    ours_s, theirs_s = statistics.median(ours_t), statistics.median(theirs_t)
    return {"model": "MLP 784-400-10", "data": source, "batch": len(x), "eps": eps,
            "step": step, "steps": steps, "kdlib_seconds": ours_t,
            "torchattacks_seconds": theirs_t, "kdlib_ms": 1000 * ours_s,
            "torchattacks_ms": 1000 * theirs_s, "ratio": theirs_s / ours_s}


def bench_peak(settings: Settings, device: torch.device) -> dict[str, Any]:
    """The matmul peak in float32, and in bf16 where kdlib trains in it (CUDA, or a CPU
    with bf16 matrix units)."""
    n = settings.matmul_n
    out = {"n": n, "fp32_gflops": matmul_peak(device, torch.float32, n)}
    if device.type == "cuda" or settings.cpu_bf16:
        out["bf16_gflops"] = matmul_peak(device, torch.bfloat16, n)
    return out


# --- report --------------------------------------------------------------------------------------

def summarise(cases: dict[str, Any], device: torch.device) -> dict[str, float]:
    """The four ratios of the issue's targets, and the others the report shows.

    On a CPU the FLOP-rate target is kdlib's default (``fast``, float32) engine against the
    float32 peak; the textbook float32 engine against the same peak, and the bf16 engine
    against the bf16 peak, are reported beside it. On CUDA kdlib trains in bf16, against
    the bf16 peak.
    """
    mlp, rn, peak = cases["mlp"], cases["resnet18"], cases["peak"]
    cuda = device.type == "cuda"
    bf16 = cuda or "kdlib_fast" in mlp["engines"]
    fast = default_engine(mlp)
    out = {"mlp": mlp["ratio"], "resnet18": rn["ratio"], "pgd": cases["pgd"]["ratio"],
           "mlp_peak_fraction": (mlp["kdlib_gflops"] / peak["bf16_gflops"] if cuda
                                 else mlp[f"{fast}_gflops"] / peak["fp32_gflops"]),
           "resnet18_peak_fraction": rn["kdlib_gflops"]
           / peak["bf16_gflops" if bf16 else "fp32_gflops"]}
    if not cuda:
        out.update(mlp_float32=mlp["kdlib_float32_ratio"],
                   resnet18_float32=rn["kdlib_float32_ratio"],
                   mlp_float32_peak_fraction=mlp["kdlib_float32_gflops"] / peak["fp32_gflops"])
    if "kdlib_fast" in mlp["engines"]:
        out.update(mlp_fast=mlp["kdlib_fast_ratio"], resnet18_fast=rn["kdlib_fast_ratio"],
                   mlp_bf16_peak_fraction=mlp["kdlib_gflops"] / peak["bf16_gflops"])
    return out


def default_engine(case: dict[str, Any]) -> str:
    """The key of the engine the chapters train with (``fast``) in a case's results."""
    return "kdlib_fast" if "kdlib_fast" in case["engines"] else "kdlib"


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


#: How the report names each engine after the model, on a CPU.
_CPU_LABELS = {"kdlib_fast": "default `fast` engine (float32, fused SGD)",
               "kdlib_float32": "textbook `float32` engine (for-loop SGD)"}


def render_markdown(res: dict[str, Any]) -> str:
    """The table and notes the book's appendix shows."""
    m, c, r, s = res["machine"], res["cases"], res["ratios"], res["settings"]
    mlp, rn, pgd, peak = c["mlp"], c["resnet18"], c["pgd"], c["peak"]
    cuda = m["device"].startswith("cuda")
    cpu_bf16 = "mlp_fast" in r
    fast = default_engine(mlp)

    def met(key: str) -> str:
        return "yes" if r[key] >= TARGETS[key] else "**no**"

    def label(engine: str) -> str:
        if engine == "kdlib":
            name = "" if cuda else ("`bf16` engine, " if cpu_bf16 else "default `fast` engine, ")
            return f"{name}{mlp['kdlib_precision']}"
        return _CPU_LABELS[engine]

    def train_rows(engine: str, targets: bool) -> list[str]:
        return [f"| {case['model']} training, {label(engine)}, images/s | "
                f"{_num(case[f'{engine}_images_per_s'])} | "
                f"{_num(case['reference_images_per_s'])} | {case[f'{engine}_ratio']:.2f}× | "
                + (f"≥ {TARGETS[key]:g}× | {met(key)} |" if targets else "— | — |")
                for key, case in (("mlp", mlp), ("resnet18", rn))]

    busy = m["load_average_start"] > 0.25 * m["logical_cores"]
    rows = train_rows("kdlib", True)
    for engine in mlp["engines"][1:]:
        rows += train_rows(engine, False)
    rows.append(f"| PGD-{pgd['steps']} on the {pgd['model']}, batch {pgd['batch']}, ms | "
                f"{_num(pgd['kdlib_ms'])} | {_num(pgd['torchattacks_ms'])} (torchattacks) | "
                f"{r['pgd']:.2f}× | ≥ {TARGETS['pgd']:g}× | {met('pgd')} |")
    if cuda:
        rows.append(f"| MLP training FLOP rate vs bf16 matmul peak, GFLOP/s | "
                    f"{_num(mlp['kdlib_gflops'])} | {_num(peak['bf16_gflops'])} (peak) | "
                    f"{100 * r['mlp_peak_fraction']:.0f}% | "
                    f"≥ {100 * TARGETS['mlp_peak_fraction']:.0f}% | {met('mlp_peak_fraction')} |")
    else:
        rows += [
            f"| MLP training, default `fast` engine, FLOP rate vs fp32 matmul peak, GFLOP/s | "
            f"{_num(mlp[f'{fast}_gflops'])} | {_num(peak['fp32_gflops'])} (peak) | "
            f"{100 * r['mlp_peak_fraction']:.0f}% | ≥ {100 * TARGETS['mlp_peak_fraction']:.0f}%"
            f" | {met('mlp_peak_fraction')} |",
            f"| MLP training, `float32` engine, FLOP rate vs fp32 matmul peak, GFLOP/s | "
            f"{_num(mlp['kdlib_float32_gflops'])} | {_num(peak['fp32_gflops'])} (peak) | "
            f"{100 * r['mlp_float32_peak_fraction']:.0f}% | — | — |"]
    if cpu_bf16:
        rows.append(f"| MLP training in bf16 vs bf16 matmul peak, GFLOP/s | "
                    f"{_num(mlp['kdlib_gflops'])} | {_num(peak['bf16_gflops'])} (peak) | "
                    f"{100 * r['mlp_bf16_peak_fraction']:.0f}% | — | — |")
    notes = [
        f"Reference loop: a torchvision-style `Dataset` (one PIL image per item, then "
        f"`ToTensor()`; for ResNet18 also `RandomCrop(32, padding=4)` and "
        f"`RandomHorizontalFlip()`), a `DataLoader` with shuffle, batch {s['batch_size']} and "
        f"**`num_workers={s.get('reference_workers', 0)}`**, and `loss.item()` every step, "
        f"in float32. Same model, SGD "
        f"(momentum 0.9, Nesterov, weight decay 5e-4) and batch on both sides; kdlib trains on "
        f"tensors resident on the device and crops and flips whole batches there. "
        f"MLP: dropout as in the teacher (rate 0.3, input 0.2), no jitter on either side.",
        *([] if cuda else [
            "kdlib's default CPU engine (`Recipe(engine=\"fast\")`, which the chapters train "
            "with) takes fused SGD steps and draws dropout masks from 16-bit integers "
            "(`kdlib.models.MaskDropout`) instead of `bernoulli_`; `engine=\"bf16\"` adds "
            "bf16 autocast and channels-last convolutions, for CPUs that multiply bf16 "
            "matrices in hardware (AMX / AVX-512 "
            f"BF16{', as this one does' if cpu_bf16 else '; this one does not'}); "
            "`engine=\"float32\"` is the textbook optimiser loop and dropout. Every engine "
            "is timed in the same alternation; `benchmarks/parity.py` measures their "
            "accuracy. The FLOP-rate target is float32 training against the float32 peak."]),
        f"Data: MNIST case on {mlp['data']}; ResNet18 case on {rn['data']}.",
        f"Steps timed: MLP {mlp['steps']} after {mlp['warmup_steps']} warm-up, "
        f"ResNet18 {rn['steps']} after {rn['warmup_steps']}; median of {s['repeats']} "
        f"repeats, the engines alternating (ABBA). PGD: ε = {pgd['eps']}, step "
        f"{pgd['step']}, random start, median of {len(pgd['kdlib_seconds'])}; ratio = "
        f"torchattacks time / kdlib time.",
        f"FLOPs: a training step costs 3 × the forward pass and a forward pass 2 FLOPs per "
        f"multiply-accumulate: {mlp['train_flops_per_image'] / 1e6:.1f} MFLOP per image for "
        f"the MLP (the first layer's input gradient, which is never computed, is counted, so "
        f"this slightly overstates the work), {rn['train_flops_per_image'] / 1e9:.2f} GFLOP "
        f"for ResNet18 ({100 * r['resnet18_peak_fraction']:.0f}% of the peak in its "
        f"precision). Peak: best of 5 {peak['n']}×{peak['n']} matmuls in this run.",
    ]
    if not cuda:
        per_step = "; ".join(
            f"{label(e)}: MLP {mlp[f'{e}_ms_per_step']:.1f} ms, ResNet18 "
            f"{rn[f'{e}_ms_per_step']:.0f} ms" for e in mlp["engines"])
        notes.append(
            f"Per step — reference: MLP {mlp['reference_ms_per_step']:.1f} ms, ResNet18 "
            f"{rn['reference_ms_per_step']:.0f} ms; {per_step}. In float32 a CPU step is "
            f"mostly arithmetic, and the reference loses only the time of its per-image "
            f"loading, so an engine gains several times only by doing the arithmetic faster "
            f"(bf16 matrix units, or a GPU).")
    if res["quick"]:
        notes.append("**`--quick` run: tiny step counts, a smoke check of the benchmark, "
                     "not a measurement.**")
    if busy:
        notes.append(f"**The machine was busy** (load average {m['load_average_start']} on "
                     f"{m['logical_cores']} cores at the start): treat these numbers as rough.")
    gpu = f", {m['gpu']}" if m["gpu"] else ""
    return "\n".join([
        f"Measured {res['created_utc']} by `python -m benchmarks.run"
        f"{' --quick' if res['quick'] else ''}` at commit `{(res['git_commit'] or '?')[:10]}`.",
        "",
        "| machine | |", "|---|---|",
        f"| CPU | {m['cpu']}, {m['logical_cores']} logical cores |",
        f"| torch | {m['torch']}, {m['threads']} threads |",
        f"| device | {m['device']}{gpu} |",
        f"| load average at start | {m['load_average_start']} |",
        "",
        "| measurement | kdlib | reference | ratio | target | met |",
        "|---|---|---|---|---|---|",
        *rows, "", *[f"- {n}" for n in notes], ""])


def run(settings: Settings, device: torch.device, quick: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measurement, in one process; returns the JSON-able result."""
    res: dict[str, Any] = {"created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "git_commit": results.environment()["git_commit"], "quick": quick,
                           "machine": machine(device), "settings": asdict(settings),
                           "targets": TARGETS, "cases": {}}
    for name, fn in (("peak", bench_peak), ("mlp", bench_mlp), ("pgd", bench_pgd),
                     ("resnet18", bench_resnet)):
        log(f"[bench] {name} ...")
        t0 = time.perf_counter()
        res["cases"][name] = fn(settings, device)
        log(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s")
    res["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    res["ratios"] = summarise(res["cases"], device)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny step counts (a smoke check)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for latest.json/.md")
    p.add_argument("--compile", action="store_true", help="torch.compile kdlib's models")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cpu-fp32", action="store_true",
                   help="on a CPU, leave the bf16 engine out")
    for field in ("mlp_steps", "resnet_steps", "pgd_steps", "pgd_batch", "repeats",
                  "resnet_width", "matmul_n"):
        p.add_argument(f"--{field.replace('_', '-')}", type=int, dest=field)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = training.resolve_device(args.device)
    settings = default_settings(device, args.quick)
    overrides = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__
                 and v not in (None, False)}
    settings = replace(settings, **overrides)
    if args.cpu_fp32:
        settings = replace(settings, cpu_bf16=False)
    res = run(settings, device, args.quick)
    write_results(args.out, "latest", res, render_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
