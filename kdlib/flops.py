"""What a run's work costs in floating-point operations: the conventions of the cost model.

A run says what it computes (:class:`kdlib.runs.Work`); these functions price it in
FLOPs: 2 per multiply-accumulate, 3 forward passes per trained image, k + 1 such steps
for PGD-k adversarial training, a teacher's forward pass, and AutoAttack's passes
estimated from its attacks' budgets. :mod:`kdlib.tooling.costs` turns FLOPs into hours
at measured rates; :func:`kdlib.runs.run_all` into an estimate of the time left.
"""

from __future__ import annotations

from collections.abc import Sequence

from kdlib import paper
from kdlib.runs import Work


def forward_flops(macs: float, images: float) -> float:
    """FLOPs of forward passes over `images`: 2 per multiply-accumulate (biases ignored)."""
    return 2 * macs * images


def train_flops(work: Work) -> float:
    """FLOPs of a run's training: 3 forward passes per trained image (the backward pass is
    about twice the forward), k + 1 such steps for PGD-k adversarial training (each attack
    step is a forward and a backward pass to the input), a frozen teacher's forward pass,
    and the run's extra multiply-accumulates (early stopping, logits computed once)."""
    per_image = 3 * work.macs * (work.attack_steps + 1) + work.teacher_macs
    return forward_flops(per_image, work.trained_images) + 2 * work.extra_train_macs


#: Each AutoAttack attack as pyautoattack 0.2.0 runs it in a custom selection (its defaults):
#: ``(passes, forward-pass equivalents per pass and image)``. A pass is a restart or a
#: target class of 100 iterations with a gradient (3 forward passes each); Square's one
#: pass is 5,000 queries (1 each). The standard version runs APGD-CE with one restart.
AA_COST = {"apgd-ce": (5, 300), "apgd-dlr": (5, 300), "apgd-t": (9, 300), "fab-t": (9, 300),
           "fab": (5, 300), "square": (1, 5000)}
AA_STANDARD = ("apgd-ce", "apgd-t", "fab-t", "square")


def autoattack_forwards(clean: float, robust: float, attacks: Sequence[str] = ()) -> float:
    """Forward-pass equivalents per test image of AutoAttack with `attacks` (estimate;
    empty: the standard version).

    The first pass of the first attack runs on the correctly classified points (fraction
    `clean`); every later pass runs on the points still robust, taken as the final robust
    fraction `robust`.
    """
    names = tuple(attacks) or AA_STANDARD
    total = 0.0
    for i, name in enumerate(names):
        passes, per_pass = AA_COST[name]
        if not attacks and name == "apgd-ce":
            passes = 1
        total += (clean if i == 0 else robust) * per_pass + robust * (passes - 1) * per_pass
    return total


def _paper_accuracies() -> tuple[float, float]:
    """The mean clean and AutoAttack accuracy of the paper's Table 5: what the estimate of
    AutoAttack's cost assumes."""
    rows = paper.TABLE5.values()
    return (sum(v[0] for v in rows) / len(rows), sum(v[1] for v in rows) / len(rows))


def eval_flops(work: Work) -> float:
    """FLOPs of a run's evaluation: its forward passes, AutoAttack and Square alone, at the
    paper's Table 5 accuracies."""
    clean, robust = _paper_accuracies()
    passes = (work.forwards
              + work.autoattack_images * autoattack_forwards(clean, robust, work.autoattack)
              + work.square_images * robust * AA_COST["square"][1])
    return forward_flops(work.macs, passes)




def run_flops(work: Work) -> float:
    """FLOPs of training and evaluating one run (a shared network counted in full)."""
    return train_flops(work) + eval_flops(work)
