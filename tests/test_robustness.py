"""The robustness audit: paired tests by hand, a masking model caught, an honest one passed."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import attacks, objectives, robustness, training

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mcnemar_against_the_binomial_by_hand():
    a = torch.tensor([1] * 9 + [0] * 1 + [1] * 5 + [0] * 5, dtype=torch.bool)
    b = torch.tensor([0] * 9 + [1] * 1 + [1] * 5 + [0] * 5, dtype=torch.bool)
    # 9 discordant one way, 1 the other: p = 2 * (C(10,0) + C(10,1)) / 2**10
    assert robustness.mcnemar(a, b) == (9, 1, pytest.approx(22 / 1024))
    assert robustness.mcnemar(b, a) == (1, 9, pytest.approx(22 / 1024))
    assert robustness.mcnemar(a, a) == (0, 0, 1.0)
    five = torch.tensor([True] * 5)
    assert robustness.mcnemar(five, ~five)[2] == pytest.approx(2 / 32)  # 2 * (1/2)**5


def test_clopper_pearson_against_tables():
    lo, hi = robustness.binomial_ci(5, 10)
    assert (lo, hi) == pytest.approx((0.18709, 0.81291), abs=1e-5)
    assert robustness.binomial_ci(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-5)
    assert robustness.binomial_ci(10, 10) == pytest.approx((0.69150, 1.0), abs=1e-5)


def test_margin_loss_by_hand():
    z = torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, -1.0]])
    y = torch.tensor([0, 2])
    # row 0: max other 1.0 - 2.0 = -1; row 1: max other 3.0 - (-1.0) = 4
    assert robustness.margin_loss(z, y).item() == pytest.approx((-1 + 4) / 2)


def data(n=200, seed=0):
    """Images in [0, 1] whose class is the brightest of ten horizontal bands."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.5
    y = torch.randint(0, 10, (n,), generator=g)
    for i, c in enumerate(y.tolist()):
        x[i, 0, 2 * c + 4:2 * c + 6] += 0.5
    return x, y


def linear(adversarial: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = data(512, seed=seed + 1)
    objective = objectives.CrossEntropy().objective()
    if adversarial:
        objective = attacks.Adversarial(objective, 0.05, 0.02, 5)
    training.train(model, objective, x, y, training.Recipe(epochs=8, batch_size=64, lr=0.05),
                   seed=seed, progress=False)
    return model.eval()


class Rounded(nn.Module):
    """A classifier that rounds its input to 1/1000 first: as sensitive to small changes as
    the model inside, but no gradient reaches the input."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 1000) / 1000)


def audit(model, reference, x, y, eps=0.05):
    pgd20 = robustness.robust_flags(model, x, y, eps, 20)
    square = attacks.autoattack_eval(model, x[:20], y[:20], eps, square_only=True,
                                     verbose=False).robust
    return {c.name: c for c in robustness.audit(model, x, y, eps, pgd20=pgd20, square=square,
                                                reference=reference, sweep=(0.1, 0.3),
                                                strong_steps=40, restarts=2)}


def test_an_honest_adversarially_trained_model_passes_every_check():
    model, reference = linear(True), linear(False, seed=3)
    x, y = data(120, seed=9)
    checks = audit(model, reference, x, y)
    assert set(checks) == {"sweep", "stronger PGD", "margin loss", "transfer", "black box",
                           "zero gradients"}
    assert all(c.passed for c in checks.values()), [c for c in checks.values() if not c.passed]


def test_a_model_that_hides_its_gradients_is_caught():
    honest, reference = linear(False), linear(False, seed=3)
    x, y = data(120, seed=9)
    masked = Rounded(honest)
    assert robustness.zero_gradient_fraction(masked, x, y) == 1.0
    checks = audit(masked, reference, x, y, eps=0.3)  # the honest model falls at 0.2
    # PGD cannot move it, yet it is no more robust than the honest model under transfer
    assert not checks["zero gradients"].passed
    assert not checks["transfer"].passed
    assert not checks["sweep"].passed


def test_the_sweep_of_an_undefended_model_reaches_zero():
    model = linear(False)
    x, y = data(100, seed=9)
    accs = [float(robustness.robust_flags(model, x, y, e, 20).float().mean())
            for e in (0.0, 0.1, 0.3, 1.0)]
    assert accs[0] > 0.9 and accs == sorted(accs, reverse=True)
    assert float(robustness.robust_flags(model, x, y, 1.0, 50, step=0.1).float().mean()) == 0.0


def test_transfer_flags_use_the_source_model():
    model, source = linear(False), linear(False, seed=3)
    x, y = data(60, seed=9)
    same = robustness.transfer_flags(model, model, x, y, 0.1, 20)
    white = robustness.robust_flags(model, x, y, 0.1, 20)
    assert torch.equal(same, white)  # from itself, transfer is the white-box attack
    other = robustness.transfer_flags(model, source, x, y, 0.1, 20)
    assert other.float().mean() >= white.float().mean()
    assert F.cross_entropy(model(x), y).item() < 2.0  # the models did learn


def test_a_cap_bounds_the_audits_own_attacks_and_keeps_every_check():
    model, reference = linear(False), linear(False, seed=3)
    x, y = data(40, seed=9)
    passes = []
    model.register_forward_hook(lambda *_: passes.append(1))
    pgd20 = robustness.robust_flags(model, x, y, 0.05, 20)

    def run(cap):
        passes.clear()
        checks = robustness.audit(model, x, y, 0.05, pgd20=pgd20, reference=reference,
                                  sweep=(0.1,), strong_steps=2, restarts=1, batch_size=40,
                                  cap=cap)
        return {c.name: c for c in checks}, len(passes)

    capped, few = run(1)
    full, many = run(None)
    assert set(capped) == set(full) == {"sweep", "stronger PGD", "margin loss", "transfer",
                                        "zero gradients"}
    assert "PGD-1 on the CW margin" in capped["margin loss"].measured
    assert "PGD-20 on the CW margin" in full["margin loss"].measured
    # each PGD step is a forward pass of `model`, and one more to score it (the transfer
    # attack's steps run on the reference): the sweep at 2 ε, the unbounded attack, the
    # stronger PGD, the margin, the transfer's scoring, the zero-gradient check
    assert few == (1 + 1) * 2 + (1 + 1) + (2 + 1) + (1 + 1) + 1 + 1
    assert many == (20 + 1) * 2 + (50 + 1) + (2 + 1) + (20 + 1) + 1 + 1
