"""PGD against torchattacks and its invariants; the AutoAttack wrapper on toy models.

The AutoAttack tests use linear models, whose exact L∞ robustness on the [0, 1]
box is known in closed form, and a constant classifier, which no attack can
move. All but one shrink AutoAttack's budget (`iterations`, `square_queries`).
"""

import dataclasses
import logging
import math

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from kdlib import attacks, models, objectives, training

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def linear(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def mlp(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return models.MLP([64, 32, 10], dropout=dropout)


class Constant(nn.Module):
    """Logits independent of the input. The ``0·x`` term keeps the input in the
    autograd graph: pyautoattack differentiates the loss with respect to it."""

    def __init__(self, label=3):
        super().__init__()
        self.bias = nn.Parameter(F.one_hot(torch.tensor(label), 10).float())

    def forward(self, x):
        return self.bias + 0 * x.flatten(1).sum(1, keepdim=True)


def exact_robust(model, x, y, eps):
    """Exact L∞ robustness of a linear model on the box: no target class j can have
    its margin ``(w_y - w_j)·x + b_y - b_j`` driven to 0 within the ε-ball ∩ [0, 1]."""
    lin = model[1]
    w, b = lin.weight.detach(), lin.bias.detach()
    x = x.flatten(1)
    d = w[y][:, None, :] - w[None]  # (n, classes, features): w_y - w_j
    margin = (d * x[:, None]).sum(-1) + (b[y][:, None] - b[None])
    room = torch.where(d > 0, x.clamp(max=eps)[:, None], (1 - x).clamp(max=eps)[:, None])
    slack = margin - (d.abs() * room).sum(-1)
    slack[torch.arange(len(y)), y] = float("inf")
    return slack.min(1).values > 0


# --- PGD -------------------------------------------------------------------------------------

def test_pgd_stays_in_the_eps_ball_and_the_box():
    model = linear()
    x = images(32)
    x[:8], x[8:16] = 0.0, 1.0
    x[16:24] = x[16:24] * 0.02
    x[24:] = 1 - x[24:] * 0.02
    y = torch.arange(32) % 10
    eps = 0.1
    xa = attacks.pgd(model, x, y, eps, step=0.07, steps=25)
    assert (xa - x).abs().max() <= eps + 1e-6
    assert xa.min() >= 0 and xa.max() <= 1
    assert (xa - x).abs().max() > eps - 1e-3  # it did move to the edge of the ball


def test_pgd_raises_the_loss():
    model, x = mlp(), images(64)
    y = torch.arange(64) % 10
    xa = attacks.pgd(model, x, y, 0.05, 0.01, 10)
    with torch.no_grad():
        assert F.cross_entropy(model(xa), y) > F.cross_entropy(model(x), y) + 0.05


def test_pgd_matches_torchattacks_from_the_same_start():
    model, x = mlp(dropout=0.5), images(32)  # both attacks must switch dropout off
    y = torch.arange(32) % 10
    ours = attacks.pgd(model, x, y, 8 / 255, 2 / 255, 10, random_start=False)
    assert model.training  # mode restored
    oracle = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=False)
    theirs = oracle(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    assert not torch.equal(ours, x)


def test_pgd_leaves_parameter_gradients_and_mode_alone():
    model, x = mlp(), images(16)
    y = torch.arange(16) % 10
    model.train()
    xa = attacks.pgd(model, x, y, 0.1, 0.02, 3)
    assert model.training and all(p.grad is None for p in model.parameters())
    F.cross_entropy(model(xa), y).backward()
    before = [p.grad.clone() for p in model.parameters()]
    model.eval()
    attacks.pgd(model, x, y, 0.1, 0.02, 3, mode="train")
    assert not model.training
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), before, strict=True))


def test_pgd_mode_decides_batchnorm_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))
    x, y = images(16), torch.arange(16) % 10
    stats = model[2].running_mean.clone()
    attacks.pgd(model, x, y, 0.1, 0.02, 3)
    assert torch.equal(model[2].running_mean, stats)
    attacks.pgd(model, x, y, 0.1, 0.02, 3, mode="train")
    assert not torch.equal(model[2].running_mean, stats)


def test_adversarial_objective_trains_on_pgd_examples():
    model, x = mlp(), images(32)
    y = torch.arange(32) % 10
    seen = {}

    def record(model, xb, targets):
        seen["x"], seen["targets"] = xb, targets
        return {"loss": F.cross_entropy(model(xb), targets["labels"])}

    targets = {"labels": y, "teacher_logits": torch.zeros(32, 10)}
    out = attacks.Adversarial(record, 0.05, 0.02, 5)(model, x, targets)
    assert seen["targets"] is targets and 0 < (seen["x"] - x).abs().max() <= 0.05 + 1e-6
    clean = objectives.CrossEntropy().objective()(model, x, y)["loss"]
    assert out["loss"] > clean
    adv = attacks.Adversarial(objectives.CrossEntropy().objective(), 0.05, 0.02, 5)
    assert adv(model, x, y)["loss"] > clean


def test_adversarial_training_in_the_loop_is_seeded():
    x = images(64)
    y = torch.arange(64) % 10
    recipe = training.Recipe(epochs=2, batch_size=16, lr=0.05)
    objective = attacks.Adversarial(objectives.CrossEntropy().objective(), 0.1, 0.03, 3)

    def run():
        model = mlp()
        hist = training.train(model, objective, x, y, recipe, seed=0, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), hist

    (w1, h1), (w2, h2) = run(), run()
    assert torch.equal(w1, w2) and h1[-1]["loss"] == h2[-1]["loss"]
    assert not torch.equal(w1, torch.cat([p.detach().flatten() for p in mlp().parameters()]))


def test_robust_flags_pgd():
    model, x = mlp(), images(40)
    y = model(x).argmax(1).detach()
    assert attacks.robust_flags_pgd(model, x, y, 0.0, 0.0, 3, batch_size=16).all()
    flags = attacks.robust_flags_pgd(model, x, y, 0.3, 0.05, 10, batch_size=16)
    assert flags.shape == (40,) and flags.float().mean() < 0.5
    again = attacks.robust_flags_pgd(model, x, y, 0.3, 0.05, 10, batch_size=16)
    assert torch.equal(again, flags)  # seeded random start


def test_model_mode_sets_and_restores_the_mode():
    model = mlp(dropout=0.5)
    for start in (True, False):
        for mode in ("eval", "train"):
            model.train(start)
            with attacks.model_mode(model, mode):
                assert all(m.training == (mode == "train") for m in model.modules())
            assert all(m.training == start for m in model.modules())


def test_model_mode_restores_the_mode_after_an_error_and_refuses_unknown_modes():
    model = mlp()
    model.train()
    with pytest.raises(RuntimeError, match="inside"), attacks.model_mode(model, "eval"):
        raise RuntimeError("inside")
    assert model.training
    model.eval()
    with pytest.raises(ValueError, match="mode must be 'eval' or 'train'"), \
            attacks.model_mode(model, "test"):
        pass
    assert not model.training


def signed_step_by_hand(model, x, y, eps, step):
    """One PGD step from `x` on a linear model, with the input gradient of the mean
    cross-entropy written out: W^T (softmax(Wx + b) - onehot(y)) / n."""
    w, b = model[1].weight.detach(), model[1].bias.detach()
    flat = x.flatten(1)
    p = torch.softmax(flat @ w.T + b, 1)
    grad = ((p - F.one_hot(y, 10)) @ w / len(y)).reshape(x.shape)
    moved = x + step * grad.sign()
    return torch.minimum(torch.maximum(moved, x - eps), x + eps).clamp(0, 1)


def test_pgd_one_step_by_hand():
    model, x = linear(), images(16)
    x[:4] = 0.0  # on the box's faces: clamping to [0, 1] matters
    x[4:8] = 1.0
    y = torch.arange(16) % 10
    # a step shorter than eps: only the box clips
    got = attacks.pgd(model, x, y, 0.1, 0.04, 1, random_start=False)
    torch.testing.assert_close(got, signed_step_by_hand(model, x, y, 0.1, 0.04))
    # a step longer than eps: the projection back to the eps-ball clips too
    got = attacks.pgd(model, x, y, 0.1, 0.3, 1, random_start=False)
    expected = signed_step_by_hand(model, x, y, 0.1, 0.3)
    torch.testing.assert_close(got, expected)
    inner = (x >= 0.1) & (x <= 0.9)  # every pixel away from the faces ends on the ball's edge
    assert inner.sum() > 300 and ((got - x).abs()[inner] - 0.1).abs().max() < 1e-6
    assert got[:4].min() == 0 and got[4:8].max() == 1


def test_pgd_two_steps_by_hand_and_the_step_count_matters():
    model, x = linear(), images(16)
    y = torch.arange(16) % 10
    eps, step = 0.1, 0.03
    one = signed_step_by_hand(model, x, y, eps, step)
    grad_ok = signed_step_by_hand(model, one, y, 1.0, step)  # unprojected second step
    two = torch.minimum(torch.maximum(grad_ok, x - eps), x + eps).clamp(0, 1)
    torch.testing.assert_close(attacks.pgd(model, x, y, eps, step, 2, random_start=False), two)
    runs = [attacks.pgd(model, x, y, eps, step, k, random_start=False) for k in (0, 1, 2, 5)]
    assert torch.equal(runs[0], x)  # no steps, no random start: the input itself
    assert not torch.equal(runs[1], runs[2]) and not torch.equal(runs[2], runs[3])
    with torch.no_grad():
        ce = [F.cross_entropy(model(r), y).item() for r in runs]
    assert ce[0] < ce[1] < ce[2] < ce[3]


def test_pgd_random_start_matches_torchattacks_from_the_same_seed():
    model, x = mlp(), images(32)
    y = torch.arange(32) % 10
    for steps in (0, 1, 10):
        ours = attacks.pgd(model, x, y, 0.1, 0.03, steps,
                           generator=torch.Generator().manual_seed(5))
        torch.manual_seed(5)  # torchattacks draws its start from the global RNG
        theirs = torchattacks.PGD(model, eps=0.1, alpha=0.03, steps=steps)(x, y)
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert (ours - x).abs().max() <= 0.1 + 1e-6


def test_pgd_matches_torchattacks_when_the_step_outruns_the_ball():
    model, x = linear(1), images(32, seed=2)
    x[:8] = x[:8] * 0.05  # near the faces of the box
    x[8:16] = 1 - x[8:16] * 0.05
    y = torch.arange(32) % 10
    ours = attacks.pgd(model, x, y, 0.05, 0.08, 7, random_start=False)
    theirs = torchattacks.PGD(model, eps=0.05, alpha=0.08, steps=7, random_start=False)(x, y)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_pgd_random_start_is_uniform_in_the_ball_and_the_box():
    model = linear()
    x = torch.full((64, 1, 8, 8), 0.5)
    start = attacks.pgd(model, x, torch.zeros(64, dtype=torch.long), 0.2, 0.1, 0,
                        generator=torch.Generator().manual_seed(0))
    d = start - x
    assert d.abs().max() <= 0.2 + 1e-6
    assert d.min() < -0.19 and d.max() > 0.19  # fills the whole ball ...
    assert abs(d.mean().item()) < 0.01  # ... symmetrically
    assert abs(d.std().item() - 0.2 / math.sqrt(3)) < 0.005  # uniform on [-eps, eps]
    # at the faces of the box the start is clamped into [0, 1]
    for face in (0.0, 1.0):
        edge = attacks.pgd(model, torch.full_like(x, face), torch.zeros(64, dtype=torch.long),
                           0.2, 0.1, 0, generator=torch.Generator().manual_seed(0))
        assert edge.min() >= 0 and edge.max() <= 1
        assert (edge == face).float().mean() > 0.4 and (edge - face).abs().max() > 0.19


def test_pgd_leaves_pixels_the_loss_ignores_alone():
    model = linear()
    with torch.no_grad():
        model[1].weight[:, 32:] = 0  # the second half of each image plays no part
    x, y = images(8), torch.arange(8)
    xa = attacks.pgd(model, x, y, 0.1, 0.03, 3, random_start=False)
    flat, clean = xa.flatten(1), x.flatten(1)
    assert torch.equal(flat[:, 32:], clean[:, 32:])  # zero gradient: no step
    assert (flat[:, :32] != clean[:, :32]).float().mean() > 0.9


def test_pgd_keeps_the_input_device():
    # on the meta device (shapes only): the random start must be drawn where `x` lives
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).to("meta")
    x = torch.empty(2, 1, 2, 2, device="meta")
    y = torch.zeros(2, dtype=torch.long, device="meta")
    for steps in (0, 2):
        xa = attacks.pgd(model, x, y, 0.1, 0.05, steps)
        assert xa.device == x.device and xa.shape == x.shape


def test_pgd_random_start_keeps_the_input_dtype():
    model = linear().double()
    x = images(8).double()
    y = torch.arange(8)
    start = attacks.pgd(model, x, y, 0.1, 0.01, 0, generator=torch.Generator().manual_seed(3))
    assert start.dtype == torch.float64
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(start, (x + (2 * noise - 1) * 0.1).clamp(0, 1))
    out = attacks.pgd(model, x, y, 0.1, 0.01, 2, generator=torch.Generator().manual_seed(3))
    assert out.dtype == torch.float64 and (out - x).abs().max() <= 0.1 + 1e-9


def test_pgd_random_start_on_off_and_its_random_source():
    model, x = mlp(), images(16)
    y = torch.arange(16) % 10

    def attack(**kw):
        return attacks.pgd(model, x, y, 0.1, 0.02, 3, **kw)

    gen = {"generator": torch.Generator().manual_seed(1)}
    rng = torch.get_rng_state()
    first = attack(generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), rng)  # a generator leaves the global RNG alone
    assert torch.equal(first, attack(**gen))
    assert not torch.equal(first, attack(generator=torch.Generator().manual_seed(2)))
    # without a generator the start comes from the global RNG; random_start is the default
    torch.manual_seed(1)
    global_ = attack()
    torch.manual_seed(1)
    assert torch.equal(global_, attack(random_start=True))
    assert not torch.equal(torch.get_rng_state(), rng)
    # without a random start the attack is deterministic and ignores the generator
    fixed = attack(random_start=False)
    assert torch.equal(fixed, attack(random_start=False, generator=torch.Generator()))
    assert not torch.equal(fixed, first) and not torch.equal(fixed, global_)


def test_pgd_ascends_a_given_loss():
    model, x = mlp(), images(32)
    y = torch.arange(32) % 10

    def negative_ce(logits, labels):  # ascending it *lowers* the cross-entropy
        return -F.cross_entropy(logits, labels)

    down = attacks.pgd(model, x, y, 0.1, 0.02, 5, random_start=False, loss_fn=negative_ce)
    up = attacks.pgd(model, x, y, 0.1, 0.02, 5, random_start=False)
    with torch.no_grad():
        clean, low, high = (F.cross_entropy(model(v), y).item() for v in (x, down, up))
    assert low < clean - 0.05 < clean + 0.05 < high
    assert (down - x).abs().max() <= 0.1 + 1e-6


def test_pgd_works_under_no_grad_and_returns_a_detached_tensor():
    model, x = linear(), images(8).requires_grad_(True)
    y = torch.arange(8)
    with torch.no_grad():
        xa = attacks.pgd(model, x, y, 0.1, 0.05, 2, random_start=False)
    assert not xa.requires_grad and x.grad is None
    torch.testing.assert_close(xa, attacks.pgd(model, x, y, 0.1, 0.05, 2, random_start=False))
    assert not torch.equal(xa, x.detach())


def batchnorm_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Linear(16, 10))


def test_adversarial_objective_sees_exactly_the_pgd_examples():
    model, x = mlp(), images(16)
    y = torch.arange(16) % 10
    seen = []

    def record(model, xb, targets):
        seen.append(xb)
        return {"loss": xb.sum()}

    for targets in (y, {"labels": y}):
        torch.manual_seed(7)
        attacks.Adversarial(record, 0.08, 0.03, 4)(model, x, targets)
        torch.manual_seed(7)
        torch.testing.assert_close(seen[-1], attacks.pgd(model, x, y, 0.08, 0.03, 4),
                                   atol=0, rtol=0)
    # the labels steer the attack: other labels, other examples
    torch.manual_seed(7)
    attacks.Adversarial(record, 0.08, 0.03, 4)(model, x, (y + 1) % 10)
    assert not torch.equal(seen[-1], seen[0])


def test_adversarial_objective_passes_its_mode_to_pgd():
    x, y = images(16), torch.arange(16) % 10

    def no_model(model, xb, targets):  # leaves the BatchNorm statistics to the attack
        return {"loss": xb.sum()}

    model = batchnorm_model()
    stats = model[2].running_mean.clone()
    attacks.Adversarial(no_model, 0.1, 0.02, 3)(model, x, y)  # eval by default
    assert torch.equal(model[2].running_mean, stats) and model.training
    model.eval()
    attacks.Adversarial(no_model, 0.1, 0.02, 3, mode="train")(model, x, y)
    assert not torch.equal(model[2].running_mean, stats) and not model.training


class BatchSpy(nn.Module):
    """A linear classifier that records the size of every batch it sees."""

    def __init__(self):
        super().__init__()
        self.inner = linear()
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.inner(x)


def test_robust_flags_pgd_without_a_budget_are_the_clean_flags():
    model = mlp(dropout=0.5)  # train mode on entry: the flags must be computed in eval mode
    x = images(40)
    y = torch.randint(0, 10, (40,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), attacks.model_mode(model, "eval"):
        clean = model(x).argmax(1) == y
    assert 0 < clean.sum() < 40
    for kw in ({"batch_size": 16}, {"batch_size": 7}, {}):
        flags = attacks.robust_flags_pgd(model, x, y, 0.0, 0.1, 3, **kw)
        assert flags.dtype == torch.bool and torch.equal(flags, clean)
    # without a random start and without steps nothing moves either
    assert torch.equal(attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0, 16,
                                                random_start=False), clean)
    assert model.training


def test_robust_flags_pgd_breaks_points_and_is_seeded():
    model, x = linear(), images(200, seed=3)
    y = model(x).argmax(1).detach()
    # steps=0: only the random start moves the points, so the seed decides which break
    by_seed = [attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0, 64, seed=s) for s in (0, 1)]
    assert not torch.equal(by_seed[0], by_seed[1])
    assert 0 < by_seed[0].sum() < 200
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0, 64), by_seed[0])
    assert torch.equal(attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0, 64, seed=0),
                       by_seed[0])
    # a real attack breaks more points than its random start alone
    attacked = attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 10, 64)
    assert attacked.sum() < by_seed[0].sum() and not (attacked & ~by_seed[0]).any()


def test_robust_flags_pgd_random_start_switch():
    model, x = linear(), images(100, seed=4)
    y = model(x).argmax(1).detach()
    with_start = attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0)
    assert not with_start.all()  # on by default
    assert attacks.robust_flags_pgd(model, x, y, 0.5, 0.1, 0, random_start=False).all()


def test_robust_pgd_batches_of_512_by_default():
    model = BatchSpy()
    x = images(600)
    y = torch.zeros(600, dtype=torch.long)
    attacks.robust_flags_pgd(model, x, y, 0.1, 0.05, 1)
    assert model.sizes == [512, 512, 88, 88]  # attack step, then prediction, per batch
    model.sizes.clear()
    attacks.robust_flags_pgd(model, x, y, 0.1, 0.05, 2)
    assert model.sizes == [512, 512, 512, 88, 88, 88]
    model.sizes.clear()
    assert attacks.robust_flags_pgd(model, x[:40], y[:40], 0.1, 0.05, 1, 16).shape == (40,)
    assert model.sizes == [16, 16, 16, 16, 8, 8]
    model.sizes.clear()
    attacks.robust_flags_pgd(model, x[:40], y[:40], 0.1, 0.05, 1, 32)
    assert model.sizes == [32, 32, 8, 8]


# --- AutoAttack ------------------------------------------------------------------------------

FAST = {"verbose": False, "batch_size": 64}  # the full budget: tiny models make it fast


def test_autoattack_breaks_an_undefended_model():
    model, x = linear(), images(20)
    y = model(x).argmax(1).detach()
    assert not exact_robust(model, x, y, 0.5).any()
    res = attacks.autoattack_eval(model, x, y, 0.5, **FAST)
    assert res.clean_accuracy == 1.0 and res.robust_accuracy == 0.0
    assert (res.x_adv - x).abs().max() <= 0.5 + 1e-6
    assert (model(res.x_adv).argmax(1) != y).all()


def test_autoattack_cannot_move_a_constant_classifier():
    model, x = Constant(label=3), images(20)
    y = torch.arange(20) % 10
    rng = torch.get_rng_state()
    model.train()
    res = attacks.autoattack_eval(model, x, y, 0.5, **FAST)
    assert res.attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert res.clean_accuracy == res.robust_accuracy == 0.1
    assert torch.equal(res.robust, y == 3)
    assert model.training and model.bias.requires_grad and model.bias.grad is None
    assert torch.equal(torch.get_rng_state(), rng)


def mixed_points(model, eps, n=12):
    """Points either clearly broken (at ε/2) or clearly robust (at 2ε), half and half."""
    x = images(2000, seed=1)
    y = model(x).argmax(1).detach()
    weak = (~exact_robust(model, x, y, eps / 2)).nonzero()[:n // 2, 0]
    strong = exact_robust(model, x, y, 2 * eps).nonzero()[:n // 2, 0]
    assert len(weak) == len(strong) == n // 2
    idx = torch.cat([weak, strong])[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    return x[idx], y[idx]


class InterruptError(Exception):
    pass


@pytest.mark.slow  # AutoAttack at its full budget
def test_autoattack_at_full_budget_is_exact_on_a_linear_model():
    model, eps = linear(), 0.05
    x, y = mixed_points(model, eps)
    res = attacks.autoattack_eval(model, x, y, eps, verbose=False)  # the real budget: ~5 s
    assert torch.equal(res.robust, exact_robust(model, x, y, eps))
    assert res.robust_accuracy == 0.5 and res.clean_accuracy == 1.0


class InterruptOnSecond(logging.Handler):
    """Raises when `message` is logged for the second time (in the second chunk)."""

    def __init__(self, message):
        super().__init__(logging.DEBUG)
        self.message, self.seen = message, 0

    def emit(self, record):
        if record.getMessage() == self.message:
            self.seen += 1
            if self.seen == 2:
                raise InterruptError


def test_an_interrupted_autoattack_loses_at_most_one_chunk(tmp_path, caplog):
    model, eps = linear(), 0.05
    x, y = mixed_points(model, eps)
    expected = exact_robust(model, x, y, eps)
    folder = tmp_path / "aa"
    logger = logging.getLogger("auto-attack")
    stop = InterruptOnSecond("running apgd-ce")  # the second chunk's first attack
    logger.addHandler(stop)
    logger.setLevel(logging.DEBUG)
    try:
        with pytest.raises(InterruptError):
            attacks.autoattack_eval(model, x, y, eps, chunk=5, folder=folder, **FAST)
    finally:
        logger.removeHandler(stop)
        logger.setLevel(logging.NOTSET)
    assert sorted(p.name for p in folder.glob("chunk-*")) == ["chunk-00000.pt"]
    first = torch.load(folder / "chunk-00000.pt", weights_only=True)
    assert torch.equal(first["robust"], expected[:5])

    caplog.set_level(logging.DEBUG, logger="auto-attack")
    caplog.clear()
    resumed = attacks.autoattack_eval(model, x, y, eps, chunk=5, folder=folder, **FAST)
    assert caplog.messages.count("running apgd-ce") == 2  # chunks 2 and 3, not chunk 1 again
    assert torch.equal(resumed.robust, expected) and resumed.clean.all()
    assert resumed.x_adv.shape == x.shape

    caplog.clear()
    again = attacks.autoattack_eval(model, x, y, eps, chunk=5, folder=folder, **FAST)
    assert not any(m.startswith("running") for m in caplog.messages)  # all from disk
    assert torch.equal(again.robust, expected) and again.after_attack == resumed.after_attack
    whole = attacks.autoattack_eval(model, x, y, eps, **FAST)
    assert torch.equal(whole.robust, expected)
    with pytest.raises(ValueError, match="another evaluation"):
        attacks.autoattack_eval(model, x, y, 2 * eps, chunk=5, folder=folder, **FAST)


def test_robust_accuracy_after_each_attack_adds_up_over_chunks():
    clean = torch.tensor([True, True, True, False])
    parts = [{"clean": clean, "after_attack": {"apgd-ce": 0.5, "square": 0.25}},
             {"clean": clean[:2], "after_attack": {}},  # nothing robust was left to attack
             {"clean": clean[:2], "after_attack": {"apgd-ce": 0.5}}]
    out = attacks._after_attack(parts, ("apgd-ce", "apgd-t", "square"))
    # chunk 2 keeps its clean accuracy (1.0) throughout; chunk 3 keeps 0.5 after apgd-ce
    assert out == pytest.approx({"apgd-ce": (0.5 * 4 + 1.0 * 2 + 0.5 * 2) / 8,
                                 "square": (0.25 * 4 + 1.0 * 2 + 0.5 * 2) / 8})


def test_square_only_and_verbose_progress(capfd):
    model, x = linear(), images(10)
    y = model(x).argmax(1).detach()
    res = attacks.autoattack_eval(model, x, y, 0.5, square_only=True, batch_size=64)
    assert res.attacks == ("square",) and res.robust_accuracy < 1.0
    err = capfd.readouterr().err
    assert "running square" in err and "robust accuracy after SQUARE" in err


def test_autoattack_reports_each_attack_and_its_own_flags():
    model, x = linear(), images(20)
    y = model(x).argmax(1).detach()
    res = attacks.autoattack_eval(model, x, y, 0.5, **FAST)
    assert res.after_attack == {"apgd-ce": 0.0}  # every point falls to the first attack
    assert res.flags == ()
    # a model that outputs probabilities trips pyautoattack's range check
    probs = nn.Sequential(linear(), nn.Softmax(dim=1))
    res = attacks.autoattack_eval(probs, x, probs(x).argmax(1).detach(), 0.01, **FAST)
    assert any("probability distribution" in f for f in res.flags)
    assert list(res.after_attack) == list(res.attacks)


def counted_autoattack(cap):
    """Forward calls and result of AutoAttack on a classifier no attack can move (so every
    attack spends its whole budget on the robust points), with iterations capped at `cap`."""
    model, x = Constant(label=3), images(20)
    y = torch.arange(20) % 10
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    res = attacks.autoattack_eval(model, x, y, 0.5, cap=cap, **FAST)
    return len(calls), res


def test_a_cap_bounds_every_attacks_work_and_keeps_the_attacks():
    one, capped_one = counted_autoattack(1)
    three, capped_three = counted_autoattack(3)
    full, uncapped = counted_autoattack(None)
    assert one < three < full / 20  # APGD's and FAB's 100 iterations, Square's 5,000 queries
    for res in (capped_one, capped_three):
        assert res.attacks == uncapped.attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
        assert torch.equal(res.robust, uncapped.robust)
    with pytest.raises(ValueError, match="cap"):
        attacks.autoattack_eval(Constant(label=3), images(2), torch.zeros(2).long(), 0.5,
                                cap=0, **FAST)


def test_capped_sets_the_budgets_pyautoattack_exposes():
    from pyautoattack import AutoAttack

    aa = attacks.capped(AutoAttack(Constant(label=3), eps=0.5, version="standard"), 2)
    assert (aa.apgd.n_iter, aa.apgd_targeted.n_iter, aa.fab.n_iter, aa.square.n_queries) == \
        (2, 2, 2, 2)
    assert aa.apgd_targeted.n_target_classes == aa.fab.n_target_classes == 9  # targets kept
    assert attacks.capped(AutoAttack(Constant(label=3), eps=0.5), 10_000).square.n_queries \
        == 5000  # a cap never raises a budget


def test_bf16_evaluation_runs_every_attack_in_bf16_with_float32_logits():
    """The CPU's bf16 path of chapter 6's evaluation, held here on any CPU: the paper-shape
    check runs it only where bf16 is the faster precision."""
    from kdlib import evaluation

    model, x = linear(), images(6)
    y = model(x).argmax(1).detach()
    ev = evaluation.Evaluation(attacks.Threat(0.5, 0.1, 1), evaluation.AutoAttackRun(6, cap=1),
                               square_images=2, batch=3, bf16_on_cpu=True)
    wrapped = evaluation.as_evaluated(ev, model, torch.device("cpu"))
    seen = []
    model[1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    assert isinstance(wrapped, models.Autocast) and wrapped(x).dtype == torch.float32
    res = attacks.autoattack_eval(wrapped, x, y, 0.5, cap=1, **FAST)
    assert set(seen) == {torch.bfloat16}  # every attack's passes ran under bf16 autocast
    assert res.clean_accuracy == 1.0 and (res.x_adv - x).abs().max() <= 0.5 + 1e-6
    plain = dataclasses.replace(ev, bf16_on_cpu=False)
    assert evaluation.as_evaluated(plain, model, torch.device("cpu")) is model
