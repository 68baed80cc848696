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


def smoothed_labels(labels: torch.Tensor, num_classes: int, epsilon: float,
                    form: str = "uniform") -> torch.Tensor:
    """Label smoothing's targets. ``uniform`` (Szegedy et al. 2016): ``(1-ε)·onehot(y) + ε/K``,
    so the true class keeps ``1-ε+ε/K``; ``others`` (the official Tf-KD code): the true class
    gets ``1-ε`` and each of the K-1 others ``ε/(K-1)``."""
    onehot = F.one_hot(labels, num_classes).float()
    if form == "others":
        return (1 - epsilon) * onehot + epsilon / (num_classes - 1) * (1 - onehot)
    if form != "uniform":
        raise ValueError(f"label smoothing form must be 'uniform' or 'others', not {form!r}")
    return (1 - epsilon) * onehot + epsilon / num_classes


def label_smoothing(student_logits: torch.Tensor, labels: torch.Tensor,
                    epsilon: float, form: str = "uniform") -> dict[str, torch.Tensor]:
    """Cross-entropy against the smoothed labels (:func:`smoothed_labels`), and the plain
    cross-entropy beside it for the training log."""
    target = smoothed_labels(labels, student_logits.shape[-1], epsilon, form)
    loss = -(target * F.log_softmax(student_logits, dim=-1)).sum(-1).mean()
    return {"loss": loss, "ce": F.cross_entropy(student_logits, labels)}


# --- teacher-free KD (Yuan et al. 2019, "Revisiting Knowledge Distillation via Label
# Smoothing Regularization") -------------------------------------------------------------------

def virtual_teacher(labels: torch.Tensor, num_classes: int, delta: float, temperature: float,
                    log_space: bool = False) -> torch.Tensor:
    """Tf-KD-reg's hand-made teacher for each label, softened at `temperature`.

    The raw teacher puts ``δ`` on the correct class and ``(1-δ)/(K-1)`` on
    every other. By default it is softened as ``softmax(p / T)`` applied to
    those *probabilities*, as the paper's Figure 1 and the official code
    (``my_loss_function.py``) do; at δ=0.9, K=10 the correct class keeps
    0.2128 at T=1 and 0.1041 at T=20, close to uniform. ``log_space=True``
    softens ``softmax(log p / T)`` instead, which returns ``p`` itself at T=1
    (an ablation; see the book's *Methods and deviations* page).
    """
    p = torch.full((len(labels), num_classes), (1 - delta) / (num_classes - 1),
                   device=labels.device)
    p.scatter_(1, labels[:, None], delta)
    return F.softmax((p.log() if log_space else p) / temperature, dim=-1)


def tf_kd_reg(student_logits: torch.Tensor, labels: torch.Tensor, delta: float,
              temperature: float, alpha: float, *, log_space: bool = False,
              soften_student: bool = True) -> dict[str, torch.Tensor]:
    """Tf-KD-reg: ``(1-α)·CE(s, y) + α·T²·KL(virtual teacher ‖ softmax(s/T))``.

    The KL is :func:`distillation_kl` (``batchmean``), as in :func:`hinton_kd`.
    The official code differs in two ways: it compares the teacher with the
    *unsoftened* student, ``softmax(s)``, without ``T²`` (``soften_student=False``
    gives that form), and it uses ``reduction='mean'``, which also divides by
    K, times a multiplier (100 for CIFAR-100, so ×1 relative to ``batchmean``).
    Its α=0.1, T=20, δ=0.99 therefore do not carry over unchanged.
    """
    ce = F.cross_entropy(student_logits, labels)
    target = virtual_teacher(labels, student_logits.shape[-1], delta, temperature, log_space)
    t_student = temperature if soften_student else 1.0
    kd = distillation_kl(student_logits, target, t_student)
    return {"loss": (1 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}


def tf_kd_reg_official(student_logits: torch.Tensor, labels: torch.Tensor, delta: float,
                       temperature: float, alpha: float,
                       multiplier: float) -> dict[str, torch.Tensor]:
    """Tf-KD-reg as the official code computes it (``loss_kd_regularization``):
    ``(1-α)·CE(s, y) + α·multiplier·KL_mean(q(T) ‖ softmax(s))``.

    The student is not softened and there is no ``T²``; ``KL_mean`` is PyTorch's
    ``reduction='mean'``, the KL summed over the batch and the classes divided by
    both, i.e. the ``batchmean`` KL divided by K. The official CIFAR-100 setting
    (δ = 0.99, T = 20, α = 0.1, multiplier 100, K = 100) weighs the ``batchmean`` KL
    by α; on K = 10 classes a multiplier of 10 keeps that weight.
    """
    ce = F.cross_entropy(student_logits, labels)
    k = student_logits.shape[-1]
    target = virtual_teacher(labels, k, delta, temperature)
    kl = F.kl_div(F.log_softmax(student_logits, dim=-1), target, reduction="batchmean") / k
    kd = multiplier * kl
    return {"loss": (1 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}


def tf_kd_self(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               labels: torch.Tensor, temperature: float, alpha: float) -> dict[str, torch.Tensor]:
    """Tf-KD-self: Hinton KD (:func:`hinton_kd`, unchanged) whose teacher is a
    trained copy of the student's own architecture.

    The official code scales the same KL with ``reduction='mean'`` (÷K) and a
    multiplier (α=0.95, T=6, multiplier 50 on CIFAR-100, i.e. ×0.5 relative to
    ``batchmean``), so its α does not carry over unchanged.
    """
    return hinton_kd(student_logits, teacher_logits, labels, temperature, alpha)
