"""What each training engine does to accuracy: the same runs, several seeds, side by side.

The speed benchmark (``benchmarks/run.py``) says how fast each engine of
:func:`kdlib.training.engine_for` trains; this one says whether the faster ones
learn as well. Two cases, each trained from the same seeds with every engine:

- ``mlp``: the MNIST teacher MLP (784-1200-1200-10, dropout 0.3, input dropout 0.2,
  1-pixel jitter) on a 20,000-image subset, where the fast engine's cheaper dropout
  masks matter;
- ``resnet``: ResNet18 at width 8 on 2,000 MNIST images with 2-pixel jitter, the
  ``quick`` profile's Table 4 baseline.

For each engine it reports the test accuracy (mean ± std over seeds), Welch's
p-value against the textbook ``float32`` engine, and the seconds per run. An engine
is *within seed noise* when that p-value is at least 0.05; the smallest difference
the seeds could have detected (:func:`kdlib.stats.detectable_difference`) says how
much that means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks import write_results
from kdlib import data, models, objectives, results, stats, training

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _mlp_case() -> tuple[Callable[[], nn.Module], training.Recipe, str, int]:
    recipe = training.Recipe(epochs=4, batch_size=128, lr=0.1, weight_decay=1e-4, jitter=1)
    return lambda: models.teacher_mlp(0.3, 0.2), recipe, "mnist", 20_000


def _resnet_case() -> tuple[Callable[[], nn.Module], training.Recipe, str, int]:
    recipe = training.Recipe(epochs=10, batch_size=128, lr=0.1, momentum=0.9, nesterov=False,
                             weight_decay=5e-4, warmup_epochs=1.0, jitter=2)
    norm = (models.MNIST_MEAN, models.MNIST_STD)
    return (lambda: models.resnet18(in_channels=1, width=8, normalize=norm), recipe, "mnist",
            2_000)


CASES = {"mlp": _mlp_case, "resnet": _resnet_case}


def accuracy_run(case: str, engine: training.EngineName, seed: int) -> dict[str, float]:
    """Train one case with one engine from one seed; its test accuracy and wall seconds."""
    build, recipe, dataset, size = CASES[case]()
    images = data.load_images(dataset, verbose=False)
    train = images.train.subset(data.subset_indices(len(images.train), size, seed=0))
    x, y = train.to("cpu")
    xt, yt = images.test.to("cpu")
    recipe = training.Recipe(**{**recipe.__dict__, "engine": engine})
    model = training.seeded(seed, build)
    t0 = time.perf_counter()
    training.train(model, objectives.CrossEntropy().objective(), x, y, recipe, seed=seed,
                   progress=False)
    seconds = time.perf_counter() - t0
    return {"test_acc": training.accuracy(model, xt, yt), "seconds": seconds}


def run(engines: list[str], seeds: list[int], cases: list[str],
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every case × engine × seed, seeds outermost so that a drifting load hits all engines."""
    out: dict[str, Any] = {"created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "git_commit": results.environment()["git_commit"],
                           "threads": torch.get_num_threads(),
                           "cpu_has_bf16": training.cpu_has_bf16(), "seeds": seeds,
                           "engines": engines, "runs": {}}
    for case in cases:
        for seed in seeds:
            for engine in engines:
                r = accuracy_run(case, engine, seed)
                out["runs"].setdefault(case, {}).setdefault(engine, []).append(r)
                log(f"[parity] {case} {engine} seed {seed}: {100 * r['test_acc']:.2f}% "
                    f"in {r['seconds']:.0f} s")
    return out


def table(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per case and engine: accuracy over seeds, Welch p against float32, speed."""
    rows = []
    for case, by_engine in res["runs"].items():
        ref = [r["test_acc"] for r in by_engine["float32"]]
        for engine, recs in by_engine.items():
            acc = [r["test_acc"] for r in recs]
            s = stats.summarize(acc)
            p = stats.welch_p(acc, ref) if engine != "float32" else float("nan")
            rows.append({"case": case, "engine": engine, "seeds": s.n,
                         "test_acc": s.fmt(), "welch_p": p,
                         "detectable": 100 * stats.detectable_difference(
                             max(s.std, stats.summarize(ref).std), s.n),
                         "seconds": sum(r["seconds"] for r in recs) / len(recs)})
    return rows


def render_markdown(res: dict[str, Any]) -> str:
    rows = table(res)
    lines = ["| case | engine | seeds | test accuracy (%) | Welch p vs float32 | "
             "detectable difference (points) | seconds per run |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "—" if r["engine"] == "float32" else f"{r['welch_p']:.3g}"
        lines.append(f"| {r['case']} | `{r['engine']}` | {r['seeds']} | {r['test_acc']} | {p} |"
                     f" {r['detectable']:.2f} | {r['seconds']:.1f} |")
    return "\n".join([
        f"Measured {res['created_utc']} by `python -m benchmarks.parity` at commit "
        f"`{(res['git_commit'] or '?')[:10]}`, {res['threads']} CPU threads "
        f"(bf16 matrix units: {'yes' if res['cpu_has_bf16'] else 'no'}).", "", *lines, "",
        "The `mlp` case is the MNIST teacher MLP (dropout 0.3, input dropout 0.2, 1-pixel "
        "jitter) trained 4 epochs on 20,000 MNIST images; `resnet` is ResNet18 at width 8 "
        "trained 10 epochs on 2,000 MNIST images with 2-pixel jitter. Both are tested on "
        "MNIST's 10,000 test images. Every engine starts from the same weights and sees the "
        "same batches for a seed; the p-value is Welch's two-sided test against `float32`, "
        "and the detectable difference is the smallest gap that test would find with 80% "
        "power at the larger of the two spreads.", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="seeds per engine (default 5)")
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for parity.json/.md")
    args = p.parse_args(argv)
    engines = ["float32", "fast"] + (["bf16"] if training.cpu_has_bf16() else [])
    res = run(engines, list(range(args.seeds)), args.cases)
    write_results(args.out, "parity", res, render_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
