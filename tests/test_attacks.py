"""PGD against torchattacks and its invariants; the AutoAttack wrapper on toy models.

The AutoAttack tests use linear models, whose exact L∞ robustness on the [0, 1]
box is known in closed form, and a constant classifier, which no attack can
move. All but one shrink AutoAttack's budget (`iterations`, `square_queries`).
"""

import json
import logging

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from kdlib import attacks, models, training

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
    out = attacks.adversarial(record, 0.05, 0.02, 5)(model, x, targets)
    assert seen["targets"] is targets and 0 < (seen["x"] - x).abs().max() <= 0.05 + 1e-6
    clean = training.supervised()(model, x, y)["loss"]
    assert out["loss"] > clean
    assert attacks.adversarial(training.supervised(), 0.05, 0.02, 5)(model, x, y)["loss"] > clean


def test_adversarial_training_in_the_loop_is_seeded():
    x = images(64)
    y = torch.arange(64) % 10
    recipe = training.Recipe(epochs=2, batch_size=16, lr=0.05)
    objective = attacks.adversarial(training.supervised(), 0.1, 0.03, 3)

    def run():
        model = mlp()
        hist = training.train(model, objective, x, y, recipe, seed=0, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()]), hist

    (w1, h1), (w2, h2) = run(), run()
    assert torch.equal(w1, w2) and h1[-1]["loss"] == h2[-1]["loss"]
    assert not torch.equal(w1, torch.cat([p.detach().flatten() for p in mlp().parameters()]))


def test_robust_accuracy_pgd():
    model, x = mlp(), images(40)
    y = model(x).argmax(1).detach()
    assert attacks.robust_accuracy_pgd(model, x, y, 0.0, 0.0, 3, batch_size=16) == 1.0
    flags = attacks.robust_flags_pgd(model, x, y, 0.3, 0.05, 10, batch_size=16)
    assert flags.shape == (40,) and flags.float().mean() < 0.5
    again = attacks.robust_accuracy_pgd(model, x, y, 0.3, 0.05, 10, batch_size=16)
    assert again == int(flags.sum()) / 40  # seeded random start


# --- AutoAttack ------------------------------------------------------------------------------

FAST = {"iterations": 5, "square_queries": 30, "verbose": False, "batch_size": 64}


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


class InterruptAt(logging.Handler):
    def __init__(self, message):
        super().__init__(logging.DEBUG)
        self.message = message

    def emit(self, record):
        if record.getMessage() == self.message:
            raise InterruptError


@pytest.mark.slow  # AutoAttack at its full budget
def test_autoattack_at_full_budget_is_exact_on_a_linear_model():
    model, eps = linear(), 0.05
    x, y = mixed_points(model, eps)
    res = attacks.autoattack_eval(model, x, y, eps, verbose=False)  # the real budget: ~5 s
    assert torch.equal(res.robust, exact_robust(model, x, y, eps))
    assert res.robust_accuracy == 0.5 and res.clean_accuracy == 1.0


def test_autoattack_resumes_from_its_state(tmp_path, caplog):
    model, eps = linear(), 0.05
    x, y = mixed_points(model, eps)
    expected = exact_robust(model, x, y, eps)
    state = tmp_path / "aa" / "state.json"
    logger = logging.getLogger("auto-attack")
    stop = InterruptAt("running apgd-t")
    logger.addHandler(stop)
    logger.setLevel(logging.DEBUG)
    try:
        with pytest.raises(InterruptError):
            attacks.autoattack_eval(model, x, y, eps, state_path=state, **FAST)
    finally:
        logger.removeHandler(stop)
        logger.setLevel(logging.NOTSET)
    saved = json.loads(state.read_text())
    assert saved["_run_attacks"] == ["apgd-ce"] and sum(saved["_robust_flags"]) == 6

    caplog.set_level(logging.DEBUG, logger="auto-attack")
    caplog.clear()
    resumed = attacks.autoattack_eval(model, x, y, eps, state_path=state, **FAST)
    assert "apgd-ce was/were already run." in caplog.messages
    assert "running apgd-ce" not in caplog.messages and "running square" in caplog.messages
    assert torch.equal(resumed.robust, expected) and resumed.clean.all()

    caplog.clear()
    again = attacks.autoattack_eval(model, x, y, eps, state_path=state, **FAST)
    assert not any(m.startswith("running") for m in caplog.messages)
    assert torch.equal(again.robust, expected)
    with pytest.raises(ValueError, match="another evaluation"):
        attacks.autoattack_eval(model, x, y, 2 * eps, state_path=state, **FAST)


def test_square_only_and_verbose_progress(capfd):
    model, x = linear(), images(10)
    y = model(x).argmax(1).detach()
    res = attacks.autoattack_eval(model, x, y, 0.5, square_only=True, square_queries=30,
                                  batch_size=64)
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
