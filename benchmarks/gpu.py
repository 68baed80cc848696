"""kdlib's engine on a GPU: CIFAR-size ResNet training beside a textbook loop, and one
epoch of chapter 4's paper setting, measured in one run.

``python -m benchmarks.gpu`` (on a machine with CUDA) writes ``benchmarks/results/gpu.json``
and ``gpu.md``, and keeps a copy of the JSON under ``gpu-runs/``
(:func:`kdlib.tooling.measured.gpu_runs_table` lists them all: lent GPU machines differ,
so every run stays visible). The cost model
(:mod:`kdlib.tooling.costs`) takes its GPU throughput from ``gpu.json``.

- *Throughput*: ResNet18 and ResNet50 in their CIFAR form at full width (64), batch 128,
  trained by :func:`kdlib.training.train` (bf16 autocast, channels-last, fused SGD,
  crop and flip on the device, data resident there) against the textbook loop of
  :func:`benchmarks.run.reference_train` (torchvision ``Dataset`` of PIL images,
  ``RandomCrop(32, 4)``, ``RandomHorizontalFlip()``, ``ToTensor()``, a ``DataLoader``
  with ``num_workers`` as in the widely copied ``kuangliu/pytorch-cifar`` (2), float32,
  ``loss.item()`` every step), alternating (ABBA), median of the repeats.
- *Chapter 4, one epoch*: the `paper` profile's ``04_teacher_free`` settings with
  ``epochs: 1``, run through the chapters' own :func:`kdlib.networks.trained`
  (gradient log, checkpoints and the 10,000-image test evaluation included) on a
  CIFAR-10 folder of random images in the genuine pickle format (50,000 + 10,000):
  the baseline, Tf-KD-reg (official form) and Tf-KD-self (whose teacher is that
  baseline, loaded from the checkpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from benchmarks import write_results
from benchmarks.run import (
    RESULTS_DIR,
    Settings,
    cifar_uint8,
    compare_training,
    machine,
    matmul_peak,
)
from kdlib import chapters, models, networks, paths, results, training
from kdlib.chapters import adversarial, images, teacher_free
from kdlib.tooling import costs, shape

#: Chapter 4's rows timed for one epoch, in an order where each teacher comes first.
CH4_METHODS = (images.BASELINE, teacher_free.TF_KD_REG, teacher_free.TF_KD_SELF)


def throughput(arch: str, settings: Settings, device: torch.device) -> dict[str, Any]:
    """kdlib (bf16) against the textbook loop on a CIFAR-form `arch` at full width."""
    n = max(settings.resnet_warmup, settings.resnet_steps) * settings.batch_size
    x, y, source = cifar_uint8(n)
    factory = {"resnet18": models.resnet18, "resnet50": models.resnet50}[arch]
    model = training.seeded(0, lambda: factory(
        width=settings.resnet_width, normalize=(models.CIFAR10_MEAN, models.CIFAR10_STD)))
    out = compare_training(model, x, y, True, settings.resnet_warmup, settings.resnet_steps,
                           settings, device)
    macs = models.count_cost(model, (3, 32, 32)).macs
    return {"model": f"{arch} (CIFAR form, width {settings.resnet_width})", "data": source,
            "macs_per_image": macs, "kdlib_tflops": out["kdlib_images_per_s"] * 6 * macs / 1e12,
            **out}


@contextlib.contextmanager
def synthetic_cifar(train: int, test: int) -> Iterator[None]:
    """Within the block, kdlib reads CIFAR-10 from a scratch folder of random images in the
    genuine pickle format, and keeps its checkpoints beside it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shape.write_random_cifar10(root / "data", train, test)
        with paths.environment(KDLIB_DATA=str(root / "data"),
                               KDLIB_CHECKPOINTS=str(root / "ckpt")):
            yield


def _timed_training(device: torch.device, fit: Any) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    info = fit()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, info


def chapter4_epoch(device: torch.device, train: int = 50_000, test: int = 10_000,
                   **overrides: Any) -> dict[str, Any]:
    """Seconds of one epoch of each of :data:`CH4_METHODS` in the paper setting, through
    the chapter's code, on random CIFAR-shaped images (`overrides` as in
    :func:`chapter6_at_epoch`)."""
    cfg = chapters.load_profile("paper")["04_teacher_free"]
    cfg = dataclasses.replace(cfg, epochs=1, seeds=[0], device=device.type,
                              train_size=train, test_size=test, **overrides)
    rows = {}
    with synthetic_cifar(train, test):
        for method in CH4_METHODS:
            run = images.training_for(cfg, method, 0)
            seconds, info = _timed_training(
                device, lambda r=run: networks.accuracy_metrics(r, device.type, progress=False))
            epoch = info["history"][0]["seconds"]
            rows[method.name] = {"seconds_with_evaluation": seconds, "epoch_seconds": epoch,
                                 "images_per_s": train / epoch}
    return {"train_images": train, "test_images": test, "batch_size": cfg.batch_size,
            "width": cfg.width, "engine": cfg.engine, "grad_every": cfg.grad_every,
            "methods": rows}


def chapter6_at_epoch(device: torch.device, train: int = 50_000, **overrides: Any
                      ) -> dict[str, Any]:
    """One epoch of chapter 6's PGD adversarial training in the paper setting (ResNet18,
    PGD-7, early stopping's PGD on the held-out images), through the chapter's code, on
    random CIFAR-shaped images; with the FLOP rate that the cost model's count implies.
    `overrides` change the paper's settings (a test shrinks the network)."""
    cfg = chapters.load_profile("paper")["06_adversarial_tfkd"]
    cfg = dataclasses.replace(cfg, epochs=1, seeds=[0], device=device.type, train_size=train,
                              test_size=1000, aa_size=10, square_size=10, audit_size=10,
                              **overrides)
    run = images.training_for(cfg, adversarial.AT, 0)
    with synthetic_cifar(train, 1000):
        seconds, info = _timed_training(
            device, lambda: networks.trained(run, device.type, progress=False)[1])
    epoch = info["history"][0]["seconds"]
    # the epoch's own time excludes early stopping's held-out attacks (priced as extra)
    flops = costs.train_flops(dataclasses.replace(run.work(), extra_train_macs=0.0))
    return {"train_images": train - cfg.val_size, "held_out": cfg.val_size,
            "pgd_steps": cfg.pgd_steps, "epoch_seconds": epoch,
            "seconds_with_early_stopping": seconds,
            "images_per_s": (train - cfg.val_size) / epoch, "tflops": flops / epoch / 1e12}


def run(settings: Settings, device: torch.device, commit: str | None = None) -> dict[str, Any]:
    """Every measurement, in one process; returns the JSON-able result. `commit`, when given,
    names the code (a copied tree's git folder may be older than its files)."""
    res: dict[str, Any] = {"created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "git_commit": commit or results.environment()["git_commit"],
                           "machine": machine(device), "settings": dataclasses.asdict(settings),
                           "cases": {}}
    res["cases"]["peak_bf16_tflops"] = matmul_peak(device, torch.bfloat16, 8192) / 1e3
    for arch in ("resnet18", "resnet50"):
        t0 = time.perf_counter()
        res["cases"][arch] = throughput(arch, settings, device)
        print(f"[gpu] {arch} done in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    try:  # torch.compile is optional in kdlib; its speed-up is reported, not relied on
        res["cases"]["resnet18_compiled"] = throughput(
            "resnet18", dataclasses.replace(settings, compile=True), device)
    except Exception as err:  # noqa: BLE001 - a failed compile is a result too
        res["cases"]["resnet18_compiled"] = {"error": f"{type(err).__name__}: {err}"[:500]}
    print(f"[gpu] resnet18 compiled done in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    res["cases"]["chapter4_epoch"] = chapter4_epoch(device)
    print(f"[gpu] chapter 4 epochs done in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    res["cases"]["chapter6_at_epoch"] = chapter6_at_epoch(device)
    print(f"[gpu] chapter 6 AT epoch done in {time.perf_counter() - t0:.1f} s", flush=True)
    return res


def render_markdown(res: dict[str, Any]) -> str:
    """The tables the book's appendix shows."""
    m, c, s = res["machine"], res["cases"], res["settings"]
    rows = [f"| {c[a]['model']} training, images/s | {c[a]['kdlib_images_per_s']:,.0f} | "
            f"{c[a]['reference_images_per_s']:,.0f} | {c[a]['kdlib_ratio']:.2f}× | "
            f"{c[a]['kdlib_tflops']:.1f} |" for a in ("resnet18", "resnet50")]
    comp = c.get("resnet18_compiled", {})
    if "kdlib_ratio" in comp:
        rows.append(f"| resnet18 with `torch.compile`, images/s | "
                    f"{comp['kdlib_images_per_s']:,.0f} | {comp['reference_images_per_s']:,.0f}"
                    f" | {comp['kdlib_ratio']:.2f}× | {comp['kdlib_tflops']:.1f} |")
    else:
        rows.append(f"| resnet18 with `torch.compile` | {comp.get('error', 'not run')} | | | |")
    ch4, ch6 = c["chapter4_epoch"], c["chapter6_at_epoch"]
    epoch_rows = [f"| {name} | {r['epoch_seconds']:.1f} | {r['images_per_s']:,.0f} | "
                  f"{r['seconds_with_evaluation']:.1f} |" for name, r in ch4["methods"].items()]
    return "\n".join([
        f"Measured {res['created_utc']} by `python -m benchmarks.gpu` at commit "
        f"`{(res['git_commit'] or '?')[:10]}` on {m['gpu']} (torch {m['torch']}).", "",
        "| measurement | kdlib (bf16) | textbook loop (float32) | ratio | kdlib TFLOP/s |",
        "|---|---|---|---|---|", *rows, "",
        f"bf16 matmul peak in the same run: {c['peak_bf16_tflops']:.0f} TFLOP/s "
        f"(8192³, best of 5). Batch {s['batch_size']}; {s['resnet_steps']} steps timed after "
        f"{s['resnet_warmup']} warm-up, median of {s['repeats']} repeats, alternating. "
        f"Textbook loop: PIL `Dataset` with `RandomCrop(32, 4)`, `RandomHorizontalFlip()`, "
        f"`ToTensor()`, `DataLoader(num_workers={s['reference_workers']})`, float32, "
        f"`loss.item()` each step. TFLOP/s count 6 FLOPs per multiply-accumulate per image.", "",
        f"Chapter 4 in the `paper` setting (width {ch4['width']}, batch {ch4['batch_size']}, "
        f"engine `{ch4['engine']}`, gradient log every {ch4['grad_every']} steps), one epoch "
        f"of {ch4['train_images']:,} random CIFAR-shaped images through the chapter's code:", "",
        "| run | epoch seconds | images/s | seconds with the test evaluation |",
        "|---|---|---|---|", *epoch_rows, "",
        f"Chapter 6 in the `paper` setting: one epoch of PGD-{ch6['pgd_steps']} adversarial "
        f"training of ResNet18 on {ch6['train_images']:,} random CIFAR-shaped images took "
        f"{ch6['epoch_seconds']:.1f} s ({ch6['images_per_s']:,.0f} images/s, "
        f"{ch6['tflops']:.1f} TFLOP/s as the cost model counts them), "
        f"{ch6['seconds_with_early_stopping']:.1f} s with early stopping's PGD on "
        f"{ch6['held_out']:,} held-out images.", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for gpu.json/.md")
    p.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    p.add_argument("--commit", help="the code's commit (a copied tree's git folder may be older)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu needs a CUDA GPU; on a CPU use `python -m benchmarks.run`")
    device = torch.device("cuda")
    settings = Settings(resnet_width=64, resnet_warmup=10, resnet_steps=args.steps, repeats=3,
                        reference_workers=2)
    res = run(settings, device, args.commit)
    write_results(args.out, "gpu", res, render_markdown(res))
    stamp = res["created_utc"][:16].replace(":", "").replace("-", "")
    results.write_record(args.out / "gpu-runs" / f"{stamp}.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
