"""Pilot for chapter 6's cpu recipe: does training collapse to one class?

Run as ``python results/pilots/06_collapse_pilot.py LR WARMUP_EPOCHS SEEDS [EPOCHS]`` (for
example ``0.05 1.0 0,1,2 2``): the `cpu` profile's chapter-6 settings with that lr and
warm-up; AT in full for each seed (the teacher of AKD and Tf-KD-self), every other method
for its first EPOCHS epochs, printing the clean accuracy on 1,000 test images after each
epoch (about 10% means collapsed). Checkpoints go to a scratch folder, never the cache.

Log of the run that chose the cpu profile's lr 0.05 and one-epoch warm-up:
``06_collapse_pilot_lr0.05_warmup1.log`` (21 runs, none collapsed; 2 processes of one
thread each, about 13 minutes on the 2-core machine, at commit f8d4035).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time

#: Methods trained for EPOCHS epochs; those with a teacher come last (AT teaches them).
SHORT = ("standard", "at_tf_kd_reg_official", "at_tf_kd_reg", "at_label_smoothing", "akd",
         "at_tf_kd_self")


class StopTrainingError(Exception):
    """Raised after the last epoch the pilot looks at."""


def task(args: tuple[str, int, float, float, int]) -> str:
    name, seed, lr, warmup, epochs = args
    import torch

    torch.set_num_threads(1)
    from kdlib import chapters, objectives, training
    from kdlib.chapters import adversarial as adv
    from kdlib.chapters import images

    cfg = chapters.load_profile("cpu")["06_adversarial_tfkd"]
    cfg = dataclasses.replace(cfg, lr=lr, warmup_epochs=warmup)
    method = {m.name: m for m in adv.METHODS}[name]
    t0 = time.time()
    if name == "at":
        history = adv.trained(cfg, method, seed, progress=False)[1]["history"]
    else:
        setup = adv.load(cfg)
        (x, y), _ = adv.split(cfg, setup)
        spec = adv.run_spec(cfg, method, seed)
        teacher = adv.trained(cfg, method.teacher, seed, False)[0] if method.teacher else None
        model = training.seeded(seed, lambda: adv.build(cfg))
        xt, yt = setup.x_test[:1000], setup.y_test[:1000]
        history = []

        def on_epoch(epoch: int) -> dict[str, float]:
            history.append({"epoch": epoch, "clean": training.accuracy(model, xt, yt)})
            if epoch >= epochs:
                raise StopTrainingError
            return {}

        with contextlib.suppress(StopTrainingError):
            training.train(model, objectives.from_spec(spec["objective"], teacher), x, y,
                           images.recipe(cfg), seed=seed, progress=False, on_epoch=on_epoch)
    out = f"{name} s{seed} {time.time() - t0:.0f}s " + json.dumps(history)
    print(out, flush=True)
    return out


def main() -> None:
    lr, warmup = float(sys.argv[1]), float(sys.argv[2])
    seeds = [int(s) for s in sys.argv[3].split(",")]
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    os.environ.setdefault("KDLIB_CHECKPOINTS", tempfile.mkdtemp(prefix="pilot06-"))
    tasks = [("at", s, lr, warmup, epochs) for s in seeds]
    tasks += [(n, s, lr, warmup, epochs) for n in SHORT for s in seeds]
    with mp.get_context("spawn").Pool(2) as pool:
        print("\n".join(pool.imap(task, tasks)))


if __name__ == "__main__":
    main()
