"""The per-layer gradient recorder: hand-computed values, sampling, and ResNet stages."""

import pytest
import torch
from torch import nn

from kdlib import gradients, models, objectives, training

#: Cross-entropy on the labels, the plain objective.
CE = objectives.CrossEntropy().objective()


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)


def test_mean_abs_gradient_by_hand():
    # loss = (w.x + b - t)^2 / 2 has dL/dw = (w.x + b - t) x
    net = Head()
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[1.0, 2.0]]))
        net.fc.bias.zero_()
    rec = gradients.GradientRecorder(net)
    for step, x in enumerate([torch.tensor([[1.0, -3.0]]), torch.tensor([[2.0, 1.0]])]):
        net.zero_grad()
        (0.5 * (net.fc(x) - 0.0) ** 2).sum().backward()
        rec(step)
    # step 0: residual -5, grad (-5, 15), mean |g| = 10; step 1: residual 4, grad (8, 4), mean 6
    frame = rec.frame()
    assert frame.to_dict("records") == [
        {"stage": "fc", "layer": "fc", "mean_abs_grad": pytest.approx(8.0), "samples": 2}]


def test_samples_every_k_steps_in_the_training_loop():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 4, 4), torch.randint(0, 3, (64,))

    def build():
        return training.seeded(0, lambda: models.MLP([16, 8, 3]))

    recipe = training.Recipe(epochs=2, batch_size=8)  # 16 steps: 0, 5, 10, 15 are sampled
    net, plain, steps = build(), build(), []
    rec = gradients.GradientRecorder(net, every=5)

    def hook(step):
        steps.append(step)
        rec(step)

    training.train(net, CE, x, y, recipe, seed=0, progress=False,
                   on_backward=hook)
    training.train(plain, CE, x, y, recipe, seed=0, progress=False)
    assert steps == list(range(16)) and rec.samples == 4
    frame = rec.frame()
    assert frame["layer"].tolist() == ["net.1", "net.3"]  # weights only, no biases
    assert (frame["samples"] == 4).all() and (frame["mean_abs_grad"] > 0).all()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), plain.parameters(),
                                                 strict=True))  # recording changes nothing


def test_resnet_layers_grouped_by_stage():
    net = models.resnet18(width=4)
    net(torch.rand(4, 3, 16, 16)).logsumexp(1).sum().backward()
    rec = gradients.GradientRecorder(net)
    rec(0)
    frame = rec.frame()
    counts = frame.groupby("stage", sort=False).size()
    # stem conv; 4 convs in layer1; 4 convs + a projection shortcut in layers 2-4; fc
    assert counts.to_dict() == {"stem": 1, "layer1": 4, "layer2": 5, "layer3": 5, "layer4": 5,
                                "fc": 1}
    assert frame["layer"].iloc[:3].tolist() == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    means = gradients.stage_means(frame)
    assert means.index.tolist() == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    conv1 = net.conv1.weight.grad.abs().mean().item()
    assert means["stem"] == pytest.approx(conv1)


def test_recorder_refuses_bad_use():
    with pytest.raises(ValueError, match="every"):
        gradients.GradientRecorder(Head(), every=0)
    rec = gradients.GradientRecorder(Head())
    with pytest.raises(RuntimeError, match="no step"):
        rec.frame()
    with pytest.raises(RuntimeError, match="after backward"):
        rec(0)
