"""Teacher-free KD: the virtual teacher and the Tf-KD losses against hand computations."""

import math

import pytest
import torch

from kdlib import losses

# DESIGN.md §4 / the paper's Figure 1: delta = 0.9, K = 10, softmax(p / T)
CORRECT_PROB = {1: 0.2128, 2: 0.1477, 5: 0.1172, 10: 0.1083, 20: 0.1041}


def softmax(v):
    e = [math.exp(a) for a in v]
    return [a / sum(e) for a in e]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


@pytest.mark.parametrize("temperature, expected", CORRECT_PROB.items())
def test_virtual_teacher_matches_figure_1(temperature, expected):
    labels = torch.tensor([3, 0])
    q = losses.virtual_teacher(labels, 10, 0.9, temperature)
    assert q[0, 3].item() == pytest.approx(expected, abs=5e-5)
    assert q[1, 0].item() == pytest.approx(expected, abs=5e-5)
    assert q[0, 0].item() == pytest.approx((1 - expected) / 9, abs=1e-5)
    torch.testing.assert_close(q.sum(1), torch.ones(2))


def test_log_space_teacher():
    labels = torch.tensor([1, 2])
    q = losses.virtual_teacher(labels, 4, 0.7, 1.0, log_space=True)
    torch.testing.assert_close(q[0], torch.tensor([0.1, 0.7, 0.1, 0.1]))
    # at T = 2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p))
    q2 = losses.virtual_teacher(labels, 4, 0.7, 2.0, log_space=True)
    r = [math.sqrt(v) for v in (0.1, 0.1, 0.7, 0.1)]
    torch.testing.assert_close(q2[1], torch.tensor([v / sum(r) for v in r]))


def test_tf_kd_reg_by_hand():
    # K = 3, delta = 0.8, T = 2, label 1: teacher softmax((0.1, 0.8, 0.1) / 2);
    # student logits (0, 0, 0) give a uniform student at any T.
    T, alpha = 2.0, 0.25
    p = softmax([0.05, 0.4, 0.05])
    kd = T**2 * kl(p, [1 / 3] * 3)
    ce = math.log(3.0)
    out = losses.tf_kd_reg(torch.zeros(1, 3), torch.tensor([1]), 0.8, T, alpha)
    assert out["kd"].item() == pytest.approx(kd, abs=1e-6)
    assert out["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert out["loss"].item() == pytest.approx((1 - alpha) * ce + alpha * kd, abs=1e-6)


def test_tf_kd_reg_official_form_leaves_the_student_unsoftened():
    # soften_student=False: KL(teacher || softmax(s)), no T^2 (the official code's form)
    s = torch.tensor([[math.log(2.0), 0.0, 0.0]])  # softmax = (1/2, 1/4, 1/4)
    out = losses.tf_kd_reg(s, torch.tensor([0]), 0.8, 2.0, 0.5, soften_student=False)
    p = softmax([0.4, 0.05, 0.05])
    assert out["kd"].item() == pytest.approx(kl(p, [0.5, 0.25, 0.25]), abs=1e-6)
    assert out["ce"].item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_tf_kd_reg_averages_over_the_batch():
    s = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    y = torch.tensor([2, 0])
    both = losses.tf_kd_reg(s, y, 0.9, 3.0, 0.5)["kd"]
    single = [losses.tf_kd_reg(s[i:i + 1], y[i:i + 1], 0.9, 3.0, 0.5)["kd"] for i in range(2)]
    assert both.item() == pytest.approx(sum(v.item() for v in single) / 2, abs=1e-6)


def test_tf_kd_self_is_hinton_kd():
    torch.manual_seed(0)
    s, t, y = torch.randn(4, 10), torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    a = losses.tf_kd_self(s, t, y, 6.0, 0.95)
    b = losses.hinton_kd(s, t, y, 6.0, 0.95)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_virtual_teacher_lives_on_the_labels_device():
    labels = torch.tensor([1, 0], device="meta")  # shapes and devices only, no values
    q = losses.virtual_teacher(labels, 4, 0.7, 2.0)
    assert q.device == labels.device and q.shape == (2, 4)


def test_virtual_teacher_rows_by_hand():
    # K = 4, delta = 0.7: raw rows are 0.7 on the label and 0.1 elsewhere
    labels = torch.tensor([2, 0, 3])
    q = losses.virtual_teacher(labels, 4, 0.7, 1.0)
    on, off = math.exp(0.7), math.exp(0.1)
    z = on + 3 * off
    for row, label in enumerate(labels.tolist()):
        expected = [off / z] * 4
        expected[label] = on / z
        torch.testing.assert_close(q[row], torch.tensor(expected))
    # in log space at T = 1 it is the raw teacher itself
    raw = losses.virtual_teacher(labels, 4, 0.7, 1.0, log_space=True)
    torch.testing.assert_close(raw, torch.tensor([[0.1, 0.1, 0.7, 0.1], [0.7, 0.1, 0.1, 0.1],
                                                  [0.1, 0.1, 0.1, 0.7]]))


def test_tf_kd_reg_log_space_by_hand():
    # log_space at T = 2: teacher sqrt(p) / sum(sqrt(p)) with p = (0.1, 0.8, 0.1)
    T, alpha = 2.0, 0.4
    r = [math.sqrt(v) for v in (0.1, 0.8, 0.1)]
    p = [v / sum(r) for v in r]
    s = torch.tensor([[0.0, 2 * math.log(2.0), 0.0]])  # softmax(s / 2) = (1, 2, 1) / 4
    out = losses.tf_kd_reg(s, torch.tensor([1]), 0.8, T, alpha, log_space=True)
    kd = T**2 * kl(p, [0.25, 0.5, 0.25])
    ce = -math.log(4 / 6)  # softmax(s) = (1, 4, 1) / 6
    assert out["kd"].item() == pytest.approx(kd, abs=1e-6)
    assert out["ce"].item() == pytest.approx(ce, abs=1e-6)
    assert out["loss"].item() == pytest.approx((1 - alpha) * ce + alpha * kd, abs=1e-6)
    # the default (probability space) teacher gives another value on the same input
    plain = losses.tf_kd_reg(s, torch.tensor([1]), 0.8, T, alpha)["kd"].item()
    assert plain == pytest.approx(T**2 * kl(softmax([0.05, 0.4, 0.05]), [0.25, 0.5, 0.25]),
                                  abs=1e-6)


def test_tf_kd_self_by_hand():
    # teacher (ln 3, 0) -> (3/4, 1/4) at T = 1; uniform student; label 0
    out = losses.tf_kd_self(torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]),
                            torch.tensor([0]), 1.0, 0.25)
    ce, kd = math.log(2.0), kl((0.75, 0.25), (0.5, 0.5))
    assert set(out) == {"loss", "ce", "kd"}
    assert out["kd"].item() == pytest.approx(kd, abs=1e-6)
    assert out["loss"].item() == pytest.approx(0.75 * ce + 0.25 * kd, abs=1e-6)
