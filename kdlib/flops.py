"""What a run's work costs in floating-point operations: the conventions of the cost model.

A run says what it computes (:class:`kdlib.runs.Work`); these functions price it in
FLOPs: 2 per multiply-accumulate, 3 forward passes per trained image, k + 1 such steps
for PGD-k adversarial training, a teacher's forward pass, and AutoAttack's passes
estimated from its attacks' budgets. :mod:`kdlib.tooling.costs` turns FLOPs into hours
at measured rates; :func:`kdlib.runs.run_all` into an estimate of the time left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kdlib import paper, paths
from kdlib.runs import Run, Work


def forward_flops(macs: float, images: float) -> float:
    """FLOPs of forward passes over `images`: 2 per multiply-accumulate (biases ignored)."""
    return 2 * macs * images


def pgd_forwards(steps: int) -> int:
    """Forward-pass equivalents per image of PGD with `steps` steps and the prediction after
    it (:func:`kdlib.attacks.robust_flags_pgd`): each step a forward and a backward pass to the
    input (3 forwards), then one forward."""
    return 3 * steps + 1


def train_flops(work: Work) -> float:
    """FLOPs of a run's training: 3 forward passes per trained image (the backward pass is
    about twice the forward), k + 1 such steps for PGD-k adversarial training (each attack
    step is a forward and a backward pass to the input), a frozen teacher's forward pass,
    and the run's extra multiply-accumulates (early stopping, logits computed once)."""
    per_image = 3 * work.macs * (work.attack_steps + 1) + work.teacher_macs
    return forward_flops(per_image, work.trained_images) + 2 * work.extra_train_macs


#: Each AutoAttack attack as pyautoattack 0.2.0 runs it in a custom selection (its defaults):
#: ``(passes, iterations per pass, forward-pass equivalents per iteration and image)``. A
#: pass is a restart or a target class of 100 iterations with a gradient (3 forward passes
#: each); Square's one pass is 5,000 queries (1 each). The standard version runs APGD-CE
#: with one restart. A cap (:func:`kdlib.attacks.capped`) bounds the iterations per pass.
AA_COST = {"apgd-ce": (5, 100, 3), "apgd-dlr": (5, 100, 3), "apgd-t": (9, 100, 3),
           "fab-t": (9, 100, 3), "fab": (5, 100, 3), "square": (1, 5000, 1)}
AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


def per_pass(name: str, cap: int | None = None) -> float:
    """Forward-pass equivalents per image of one pass of AutoAttack's attack `name`, its
    iterations bounded by `cap` (None or 0: no bound)."""
    _, iterations, forwards = AA_COST[name]
    return forwards * (min(iterations, cap) if cap else iterations)


def autoattack_forwards(clean: float, robust: float, attacks: Sequence[str] = (),
                        cap: int | None = None) -> float:
    """Forward-pass equivalents per test image of AutoAttack with `attacks` (estimate;
    empty: the standard version), each attack's iterations bounded by `cap`.

    The first pass of the first attack runs on the correctly classified points (fraction
    `clean`); every later pass runs on the points still robust, taken as the final robust
    fraction `robust`.
    """
    names = tuple(attacks) or AA_STANDARD
    total = 0.0
    for i, name in enumerate(names):
        passes = 1 if not attacks and name == "apgd-ce" else AA_COST[name][0]
        cost = per_pass(name, cap)
        total += (clean if i == 0 else robust) * cost + robust * (passes - 1) * cost
    return total


def _paper_accuracies() -> tuple[float, float]:
    """The mean clean and AutoAttack accuracy of the paper's Table 5: what the estimate of
    AutoAttack's cost assumes."""
    rows = paper.TABLE5.values()
    return (sum(v[0] for v in rows) / len(rows), sum(v[1] for v in rows) / len(rows))


def eval_flops(work: Work) -> float:
    """FLOPs of a run's evaluation: its forward passes, AutoAttack and Square alone (bounded by
    the work's ``attack_cap``), at the paper's Table 5 accuracies."""
    clean, robust = _paper_accuracies()
    cap = work.attack_cap
    passes = (work.forwards
              + work.autoattack_images * autoattack_forwards(clean, robust, work.autoattack,
                                                             cap)
              + work.square_images * robust * per_pass("square", cap))
    return forward_flops(work.macs, passes)




def run_flops(work: Work) -> float:
    """FLOPs of training and evaluating one run (a shared network counted in full)."""
    return train_flops(work) + eval_flops(work)


def to_compute(plan: Sequence[Run], saved: Callable[[str], bool] | None = None
               ) -> Callable[[Run], float]:
    """The FLOPs each run of `plan` computes when the plan runs now: its evaluation, and its
    training only where neither saved weights (`saved(checkpoint)`; default: a file in the
    checkpoint folder) nor an earlier run of `plan` provide its network."""
    if saved is None:
        folder = paths.checkpoints_dir()
        saved = lambda name: (folder / name).is_file()  # noqa: E731
    provided: set[str] = set()
    priced: dict[Path, float] = {}
    for run in plan:
        trains = run.trains is None or not (run.trains in provided or saved(run.trains))
        if run.trains is not None:
            provided.add(run.trains)
        priced[run.path] = eval_flops(run.work) + (train_flops(run.work) if trains else 0.0)
    return lambda run: priced[run.path]
