"""The networks of the paper and a counter of their weights and FLOPs.

Table 1 counts parameters as weights only (940800 + 1440000 + 12000 for
the teacher) and FLOPs as one multiply-accumulate per weight (2,392,800).
:func:`count_cost` gives both that count and the full one with biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class MLP(nn.Module):
    """A fully connected ReLU network on flattened images.

    ``MLP([784, 1200, 1200, 10], dropout=0.5, input_dropout=0.2)`` is Hinton's
    MNIST teacher; ``MLP([784, 400, 10])`` is the paper's student.
    """

    def __init__(self, sizes: list[int], dropout: float = 0.0, input_dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(nn.Dropout(input_dropout))
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def teacher_mlp(dropout: float = 0.5, input_dropout: float = 0.2) -> MLP:
    """The paper's large model: 784-1200-1200-10."""
    return MLP([784, 1200, 1200, 10], dropout=dropout, input_dropout=input_dropout)


def student_mlp() -> MLP:
    """The paper's small model: 784-400-10, no regularisation."""
    return MLP([784, 400, 10])


@dataclass(frozen=True)
class Cost:
    """Size and per-image compute of a network."""

    weights: int  # multiplicative parameters (the paper's "# of Parameters")
    biases: int
    macs: int  # multiply-accumulates per image (the paper's "FLOPS")
    layer_weights: tuple[int, ...]  # weights of each Linear/Conv layer, in order
    bias_adds: int = 0  # additions of a bias per image

    @property
    def params(self) -> int:
        """All trainable numbers, biases included."""
        return self.weights + self.biases

    @property
    def flops(self) -> int:
        """Floating-point operations per image: 2 per MAC plus one add per bias use."""
        return 2 * self.macs + self.bias_adds


def count_cost(model: nn.Module, input_shape: tuple[int, ...]) -> Cost:
    """Count weights, biases and per-image MACs of Linear and Conv2d layers.

    Runs one forward pass on zeros of `input_shape` (without the batch
    dimension) and reads each layer's output size from a hook.
    """
    weights, biases, macs, bias_adds, per_layer = 0, 0, 0, 0, []

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal weights, biases, macs, bias_adds
        w = module.weight.numel()
        weights += w
        per_layer.append(w)
        outputs = out[0].numel()  # per image
        if isinstance(module, nn.Linear):
            macs += w
        else:  # Conv2d: each output element costs one kernel's worth of MACs
            macs += outputs * w // module.out_channels
        if module.bias is not None:
            biases += module.bias.numel()
            bias_adds += outputs

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Linear | nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return Cost(weights, biases, macs, tuple(per_layer), bias_adds)
