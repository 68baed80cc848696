"""The KD losses against values worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlib import losses


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_kd_term_matches_hand_computation_at_t1():
    # teacher logits (ln 3, 0) -> p = (3/4, 1/4); student logits (0, 0) -> q = (1/2, 1/2)
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # = 0.130812...
    got = losses.distillation_kl(s, losses.soft_targets(t, 1.0), 1.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.1308120, abs=1e-6)


def test_kd_term_at_t2_is_scaled_by_t_squared():
    # At T = 2 the teacher's (ln 3)/2 gives p = (sqrt3, 1) / (1 + sqrt3).
    r3 = math.sqrt(3.0)
    p = (r3 / (1 + r3), 1 / (1 + r3))
    expected = 4 * kl(p, (0.5, 0.5))  # T^2 * KL = 0.145363...
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    got = losses.distillation_kl(s, losses.soft_targets(t, 2.0), 2.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.1453631, abs=1e-6)


def test_kd_term_averages_over_batch_not_classes():
    s = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    per_row = [kl(F.softmax(t[i], 0).tolist(), F.softmax(s[i], 0).tolist()) for i in range(2)]
    got = losses.distillation_kl(s, losses.soft_targets(t, 1.0), 1.0)
    assert got.item() == pytest.approx(sum(per_row) / 2, abs=1e-6)  # batchmean, not /6


def test_hinton_loss_mixes_hard_and_soft_terms():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])
    y = torch.tensor([0])
    alpha = 0.3
    out = losses.hinton_kd(s, t, y, temperature=1.0, alpha=alpha)
    ce = math.log(2.0)  # -log(1/2)
    kd = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert out["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert out["kd"].item() == pytest.approx(kd, abs=1e-6)
    assert out["loss"].item() == pytest.approx((1 - alpha) * ce + alpha * kd, abs=1e-6)


def test_kd_gradient_is_t_times_probability_gap():
    # d/ds [T^2 KL(p || softmax(s/T))] = T (softmax(s/T) - p), divided by the batch size.
    torch.manual_seed(0)
    s = torch.randn(4, 10, requires_grad=True)
    t = torch.randn(4, 10)
    T = 5.0
    losses.distillation_kl(s, losses.soft_targets(t, T), T).backward()
    expected = T * (F.softmax(s.detach() / T, 1) - F.softmax(t / T, 1)) / 4
    torch.testing.assert_close(s.grad, expected, atol=1e-6, rtol=1e-5)


def test_t_squared_keeps_gradient_scale_as_temperature_grows():
    # Hinton et al.: soft-target gradients shrink as 1/T^2, so the loss multiplies by T^2.
    torch.manual_seed(1)
    s0 = torch.randn(8, 10) * 0.5
    t = torch.randn(8, 10) * 0.5
    norms, raw_norms = [], []
    for T in (10.0, 20.0, 40.0):
        s = s0.clone().requires_grad_(True)
        losses.distillation_kl(s, losses.soft_targets(t, T), T).backward()
        norms.append(s.grad.norm().item())
        raw_norms.append(s.grad.norm().item() / T**2)  # what the unscaled KL would give
    assert max(norms) / min(norms) < 1.05  # scaled: nearly constant
    assert raw_norms[0] / raw_norms[-1] > 15  # unscaled: falls about 16x from T=10 to 40


def test_cross_entropy_objective_has_loss_key():
    out = losses.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))
    assert out["loss"].item() == pytest.approx(math.log(4.0), abs=1e-6)


def test_soft_targets_by_hand_row_by_row():
    # row 0: (ln 3, 0) -> (3/4, 1/4) at T=1 and (sqrt3, 1)/(1+sqrt3) at T=2; row 1: uniform
    t = torch.tensor([[math.log(3.0), 0.0], [5.0, 5.0]])
    torch.testing.assert_close(losses.soft_targets(t, 1.0),
                               torch.tensor([[0.75, 0.25], [0.5, 0.5]]))
    r3 = math.sqrt(3.0)
    torch.testing.assert_close(losses.soft_targets(t, 2.0),
                               torch.tensor([[r3 / (1 + r3), 1 / (1 + r3)], [0.5, 0.5]]))
    # a higher temperature flattens: at T=ln 3 the first row is (3^(1/ln3), 1) = (e, 1)
    e = math.e
    assert losses.soft_targets(t, math.log(3.0))[0, 0].item() == pytest.approx(e / (e + 1))


def test_distillation_kl_by_hand_at_t2_with_a_batch_of_two():
    # student rows (2 ln 2, 0) and (0, 0) at T=2 -> q = (2/3, 1/3) and (1/2, 1/2);
    # targets p = (1/2, 1/2) and (1/4, 3/4); the result is T^2 * mean KL(p || q)
    s = torch.tensor([[2 * math.log(2.0), 0.0], [0.0, 0.0]])
    p = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    rows = [kl((0.5, 0.5), (2 / 3, 1 / 3)), kl((0.25, 0.75), (0.5, 0.5))]
    got = losses.distillation_kl(s, p, 2.0)
    assert got.item() == pytest.approx(4 * sum(rows) / 2, abs=1e-6)
    assert got.shape == ()
    # at T=1 the same student is (4/5, 1/5) and (1/2, 1/2)
    rows1 = [kl((0.5, 0.5), (0.8, 0.2)), rows[1]]
    assert losses.distillation_kl(s, p, 1.0).item() == pytest.approx(sum(rows1) / 2, abs=1e-6)


def test_hinton_kd_by_hand_at_t2():
    # K = 2, T = 2: teacher (2 ln 3, 0) -> p = (3/4, 1/4); student (2 ln 2, 0) -> q = (2/3, 1/3)
    # at T, and softmax(s) = (4/5, 1/5) for the hard-label term with label 1
    s = torch.tensor([[2 * math.log(2.0), 0.0]])
    t = torch.tensor([[2 * math.log(3.0), 0.0]])
    y = torch.tensor([1])
    ce, kd = -math.log(0.2), 4 * kl((0.75, 0.25), (2 / 3, 1 / 3))
    for alpha in (0.0, 0.3, 1.0):
        out = losses.hinton_kd(s, t, y, 2.0, alpha)
        assert set(out) == {"loss", "ce", "kd"}
        assert out["ce"].item() == pytest.approx(ce, abs=1e-6)
        assert out["kd"].item() == pytest.approx(kd, abs=1e-6)
        assert out["loss"].item() == pytest.approx((1 - alpha) * ce + alpha * kd, abs=1e-6)


def test_cross_entropy_by_hand():
    s = torch.tensor([[math.log(3.0), 0.0, 0.0], [0.0, 0.0, math.log(2.0)]])  # (3,1,1)/5, (1,1,2)/4
    out = losses.cross_entropy(s, torch.tensor([0, 1]))
    expected = (-math.log(0.6) - math.log(0.25)) / 2
    assert set(out) == {"loss", "ce"}
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)
    assert out["ce"].item() == pytest.approx(expected, abs=1e-6)


def test_losses_emit_no_warnings():
    # e.g. softmax without an explicit dim is deprecated
    import warnings

    s, t, y = torch.zeros(2, 3), torch.ones(2, 3), torch.tensor([0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses.soft_targets(t, 2.0)
        losses.hinton_kd(s, t, y, 2.0, 0.5)
        losses.cross_entropy(s, y)
        losses.virtual_teacher(y, 3, 0.8, 2.0)
        losses.virtual_teacher(y, 3, 0.8, 2.0, log_space=True)
        losses.tf_kd_reg(s, y, 0.8, 2.0, 0.5)
        losses.tf_kd_self(s, t, y, 2.0, 0.5)
