"""The networks of the paper and a counter of their weights and FLOPs.

Table 1 counts parameters as weights only (940800 + 1440000 + 12000 for
the teacher) and FLOPs as one multiply-accumulate per weight (2,392,800).
:func:`count_cost` gives both that count and the full one with biases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


class Autocast(nn.Module):
    """`model` run under bf16 autocast, returning float32 logits: the CPU's bf16 engine for
    evaluation and attacks, where AutoAttack's thousands of forward passes dominate. The
    parameters are the wrapped model's own."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()


class MaskDropout(nn.Dropout):
    """Dropout whose mask comes from 16-bit uniform integers, four to a 64-bit draw.

    A unit is dropped when its draw falls below ``cut = round(p * 2**16)``, so the drop
    rate is ``cut / 2**16`` (within 8e-6 of `p`), and kept units are scaled by the exact
    inverse of the keep rate: unbiased, as :class:`torch.nn.Dropout` is, from another
    random stream. On a CPU ``bernoulli_`` spends a float draw and more per element; this
    is some 10x cheaper, and the training engine's CPU fast path swaps it in (see
    :func:`mask_dropout`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        cut = round(self.p * 2**16)
        if cut >= 2**16:
            return x * 0
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
        draws = words.random_(-2**63, None).view(torch.int16)[:n].view(x.shape)
        keep = draws >= cut - 2**15  # int16 draws are uniform on [-2**15, 2**15)
        return x * keep.to(x.dtype).mul_(2**16 / (2**16 - cut))


@contextmanager
def mask_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every :class:`torch.nn.Dropout` of `model` is a :class:`MaskDropout`.

    Dropout layers hold no weights, so the state dict is untouched; the originals come
    back on exit.
    """
    swaps = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children() if type(child) is nn.Dropout]
    for parent, name, child in swaps:
        setattr(parent, name, MaskDropout(child.p))
    try:
        yield model
    finally:
        for parent, name, child in swaps:
            setattr(parent, name, child)


class SmallCNN(nn.Module):
    """The convolutional network Madry et al. (2018) trained robustly on MNIST, at `width`.

    Two 5×5 convolutions (``width`` and ``2·width`` channels, ReLU, 2×2 max-pooling after
    each) and a hidden layer of ``32·width`` units; ``width = 32`` is their network (32,
    64 and 1024). Inputs are 28×28 images in [0, 1], normalised inside the model.
    """

    def __init__(self, width: int = 32, in_channels: int = 1, num_classes: int = 10,
                 normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None):
        super().__init__()
        self.normalize = Normalize(*normalize) if normalize is not None else nn.Identity()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, 32 * width),
                                  nn.ReLU(), nn.Linear(32 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))


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


# --- ResNets in the CIFAR form ---------------------------------------------------------------

#: Per-channel mean and standard deviation of the training images, for :class:`Normalize`.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)
#: Data set -> the per-channel mean and std a network normalises its inputs with.
NORMALIZATION = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "mnist": (MNIST_MEAN, MNIST_STD),
                 "fashion-mnist": (FASHION_MEAN, FASHION_STD)}


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the model's first layer.

    Keeping it inside the model lets attacks and AutoAttack work on inputs in
    ``[0, 1]``, where the ε-ball is defined. Mean and std are buffers, so they
    travel with the weights and the device.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand by 4, with a residual connection (ResNet50+)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Identity, or a strided 1×1 projection when the shape changes (option B of He et al.)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class ResNet(nn.Module):
    """A ResNet in the CIFAR form (He et al. 2016, "Deep Residual Learning").

    As torchvision's ``resnet18``/``resnet50`` except the stem: one 3×3
    stride-1 convolution and no max-pool, so 32×32 inputs keep their
    resolution into ``layer1`` (the ImageNet 7×7/2 stem plus pool costs
    several points on CIFAR-10; see the book's *Methods and deviations* page).
    Stages ``layer1``..``layer4`` have widths ``w, 2w, 4w, 8w`` (``w = 64`` is
    the standard network; smaller `width` makes CPU profiles affordable), then
    global average pooling and the linear head ``fc``. `normalize` is
    ``(mean, std)`` applied inside the model, so it takes inputs in ``[0, 1]``.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], num_blocks: tuple[int, ...],
                 num_classes: int = 10, in_channels: int = 3, width: int = 64,
                 normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None):
        super().__init__()
        self.normalize = Normalize(*normalize) if normalize is not None else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        in_planes = width
        for i, n in enumerate(num_blocks):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(block(in_planes, planes, s))
                in_planes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(self.normalize(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64,
             normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> ResNet:
    """CIFAR ResNet18: BasicBlocks [2, 2, 2, 2]; 11,173,962 parameters at width 64, 10 classes."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, width, normalize)


def resnet50(num_classes: int = 10, in_channels: int = 3, width: int = 64,
             normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> ResNet:
    """CIFAR ResNet50: Bottlenecks [3, 4, 6, 3] (outputs 4× the stage width)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, width, normalize)
