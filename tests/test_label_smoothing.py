"""The label-smoothing control and the official Tf-KD-reg form, against values by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlib import losses, objectives


def log_softmax(z):
    m = max(z)
    lse = m + math.log(sum(math.exp(v - m) for v in z))
    return [v - lse for v in z]


def test_label_smoothing_is_cross_entropy_on_the_smoothed_labels():
    s, y, eps = [2.0, -1.0, 0.5, 0.0], 2, 0.1
    target = [eps / 4 + (1 - eps) * (i == y) for i in range(4)]  # (1-ε)·onehot + ε/K
    assert target == pytest.approx([0.025, 0.025, 0.925, 0.025])
    by_hand = -sum(t * lp for t, lp in zip(target, log_softmax(s), strict=True))
    out = losses.label_smoothing(torch.tensor([s]), torch.tensor([y]), eps)
    assert out["loss"].item() == pytest.approx(by_hand, abs=1e-6)
    assert out["ce"].item() == pytest.approx(-log_softmax(s)[y], abs=1e-6)
    # and PyTorch's own label smoothing agrees on a batch
    z, labels = torch.randn(5, 10, generator=torch.Generator().manual_seed(0)), torch.arange(5)
    assert losses.label_smoothing(z, labels, 0.2)["loss"].item() == pytest.approx(
        F.cross_entropy(z, labels, label_smoothing=0.2).item(), abs=1e-6)
    assert losses.label_smoothing(z, labels, 0.0)["loss"].item() == pytest.approx(
        F.cross_entropy(z, labels).item(), abs=1e-6)


def test_official_tf_kd_reg_by_hand():
    # the official loss_kd_regularization: (1-α)·CE + α·m·KLDivLoss()(log_softmax(s),
    # softmax(p/T)), KLDivLoss averaging over batch × classes
    s, y, delta, T, alpha, m = [1.0, 0.0, -1.0], 0, 0.9, 2.0, 0.3, 5.0
    p = [delta if i == y else (1 - delta) / 2 for i in range(3)]
    zq = [math.exp(v / T) for v in p]
    q = [v / sum(zq) for v in zq]
    ls = log_softmax(s)
    kl_sum = sum(qi * (math.log(qi) - li) for qi, li in zip(q, ls, strict=True))
    kl_mean = kl_sum / 3  # one image, three classes
    ce = -ls[y]
    by_hand = (1 - alpha) * ce + alpha * m * kl_mean
    out = losses.tf_kd_reg_official(torch.tensor([s]), torch.tensor([y]), delta, T, alpha, m)
    assert out["loss"].item() == pytest.approx(by_hand, abs=1e-6)
    assert out["kd"].item() == pytest.approx(m * kl_mean, abs=1e-6)
    # it differs from this build's form, which softens the student and multiplies by T²
    ours = losses.tf_kd_reg(torch.tensor([s]), torch.tensor([y]), delta, T, alpha)["loss"]
    assert abs(ours.item() - by_hand) > 1e-3


def test_official_weight_at_ten_classes_equals_the_cifar100_setting():
    z = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6)
    kd10 = losses.tf_kd_reg_official(z, y, 0.99, 20.0, 0.1, 10.0)["kd"]
    q = losses.virtual_teacher(y, 10, 0.99, 20.0)
    batchmean = F.kl_div(F.log_softmax(z, 1), q, reduction="batchmean")
    assert kd10.item() == pytest.approx(batchmean.item(), rel=1e-6)  # multiplier 10 / K 10


def test_objectives_are_built_from_their_specs():
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    loss = objectives.LabelSmoothing(0.1)
    assert loss.spec() == {"loss": "label_smoothing", "epsilon": 0.1}
    ls = loss.objective()(model, x, y)
    assert ls["loss"].item() == pytest.approx(
        F.cross_entropy(model(x), y, label_smoothing=0.1).item(), abs=1e-6)
    spec = {"loss": "tf_kd_reg_official", "delta": 0.99, "temperature": 20.0, "alpha": 0.1,
            "multiplier": 10.0}
    official = objectives.TfKdRegOfficial(0.99, 20.0, 0.1, 10.0)
    assert official.spec() == spec
    off = official.objective()(model, x, y)
    assert off["loss"].item() == pytest.approx(
        losses.tf_kd_reg_official(model(x), y, 0.99, 20.0, 0.1, 10.0)["loss"].item())


def test_label_smoothing_on_the_wrong_classes_only_by_hand():
    """The official Tf-KD code's form: 1-ε on the label, ε/(K-1) on each other class."""
    s, y, eps = [2.0, -1.0, 0.5, 0.0], 2, 0.3
    target = [0.1, 0.1, 0.7, 0.1]  # ε/(K-1) = 0.3/3
    by_hand = -sum(t * lp for t, lp in zip(target, log_softmax(s), strict=True))
    out = losses.label_smoothing(torch.tensor([s]), torch.tensor([y]), eps, "others")
    assert out["loss"].item() == pytest.approx(by_hand, abs=1e-6)
    assert losses.smoothed_labels(torch.tensor([y]), 4, eps, "others").sum().item() == \
        pytest.approx(1.0)
    with pytest.raises(ValueError, match="uniform"):
        losses.smoothed_labels(torch.tensor([y]), 4, eps, "other")
    # the first form keeps the spec (and so the names) of the records made before the second
    assert objectives.LabelSmoothing(0.1).spec() == {"loss": "label_smoothing", "epsilon": 0.1}
    assert objectives.LabelSmoothing(0.1, "others").spec()["form"] == "others"
