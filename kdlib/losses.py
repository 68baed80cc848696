"""Distillation losses as pure functions of logits and labels.

Hinton et al. (2015): the student matches the teacher's softened
distribution, and the KL term is multiplied by ``T**2`` so that its gradients
keep the same scale as the hard-label term when ``T`` changes. The KL is
averaged over the batch (``reduction='batchmean'``), not over batch × classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's distribution softened at `temperature`: softmax(t / T)."""
    return F.softmax(teacher_logits / temperature, dim=-1)


def distillation_kl(student_logits: torch.Tensor, target_probs: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """``T² · KL(p ‖ softmax(s/T))``, averaged over the batch.

    `target_probs` is any target distribution ``p`` (a teacher's soft targets
    or a hand-made virtual teacher).
    """
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(log_q, target_probs, reduction="batchmean") * temperature**2


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              labels: torch.Tensor, temperature: float, alpha: float) -> dict[str, torch.Tensor]:
    """``(1-α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))``.

    Returns the total as ``"loss"`` beside its two parts, so a training log
    can show each.
    """
    ce = F.cross_entropy(student_logits, labels)
    kd = distillation_kl(student_logits, soft_targets(teacher_logits, temperature), temperature)
    return {"loss": (1 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}


def cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain hard-label training, in the same dict form as the KD losses."""
    ce = F.cross_entropy(student_logits, labels)
    return {"loss": ce, "ce": ce}
