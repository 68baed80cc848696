"""Pilot for chapter 6's cpu recipe: does training collapse to one class?

Run as ``python scripts/pilots/06_collapse_pilot.py LR WARMUP_EPOCHS SEEDS [EPOCHS]`` (for
example ``0.05 1.0 0,1,2 2``): the `cpu` profile's chapter-6 settings with that lr and
warm-up; AT in full for each seed (the teacher of AKD and Tf-KD-self, through
:func:`kdlib.networks.trained`), every other row for its first EPOCHS epochs through the
library's training loop, whose ``on_epoch`` hook prints the clean accuracy on 1,000 test
images after each epoch (about 10% means collapsed) and stops after EPOCHS. Checkpoints go
to a scratch folder, never the cache.

Log of the run that chose the cpu profile's lr 0.05 and one-epoch warm-up:
``results/pilots/06_collapse_pilot_lr0.05_warmup1.log`` (21 runs, none collapsed; 2
processes of one thread each, about 13 minutes on the 2-core machine, at commit f8d4035,
with the code of that commit; this script is the same pilot on today's library).
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

#: Rows trained for EPOCHS epochs; those with a teacher come last (AT teaches them).
SHORT = ("standard", "at_tf_kd_reg", "at_tf_kd_reg_ours", "at_label_smoothing", "akd",
         "at_tf_kd_self")


class StopTrainingError(Exception):
    """Raised after the last epoch the pilot looks at."""


def task(args: tuple[str, int, float, float, int]) -> str:
    name, seed, lr, warmup, epochs = args
    import torch

    torch.set_num_threads(1)
    from kdlib import chapters, networks, training
    from kdlib.chapters import adversarial as adv
    from kdlib.chapters import images

    cfg = chapters.load_profile("cpu")["06_adversarial_tfkd"]
    cfg = dataclasses.replace(cfg, lr=lr, warmup_epochs=warmup)
    run = images.training_for(cfg, adv.CHAPTER.method(name), seed)
    t0 = time.time()
    if name == "at":
        history = networks.trained(run, "cpu", progress=False)[1]["history"]
    else:
        setup = run.data.load("cpu")
        (x, y), _ = run.split(setup)
        teacher = (networks.trained(run.objective.teacher, "cpu", False)[0]
                   if run.objective.teacher else None)
        model = training.seeded(seed, run.network.build)
        xt, yt = setup.x_test[:1000], setup.y_test[:1000]
        history = []

        def on_epoch(epoch: int) -> dict[str, float]:
            history.append({"epoch": epoch, "clean": training.accuracy(model, xt, yt)})
            if epoch >= epochs:
                raise StopTrainingError
            return {}

        with contextlib.suppress(StopTrainingError):
            training.train(model, run.objective.build(teacher), x, y, run.recipe, seed=seed,
                           progress=False, on_epoch=on_epoch)
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
