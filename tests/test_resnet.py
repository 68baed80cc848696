"""The CIFAR ResNets: shapes, sizes, cost, and equality with torchvision's blocks."""

import pytest
import torch
from torch import nn

from kdlib import models

RESNET18_PARAMS = 11_173_962  # CIFAR form, 10 classes (torchvision's 7x7 stem: 11,181,642)
RESNET18_MACS = 555_422_720  # per 32x32 image, convolutions and fc


@pytest.mark.parametrize("build, channels, size, classes", [
    (models.resnet18, 3, 32, 10), (models.resnet18, 1, 28, 10), (models.resnet50, 3, 32, 100),
])
def test_output_shapes(build, channels, size, classes):
    net = build(num_classes=classes, in_channels=channels, width=4)
    assert net(torch.rand(2, channels, size, size)).shape == (2, classes)


def test_stages_are_named_for_gradient_statistics():
    names = [n for n, _ in models.resnet18(width=4).named_children()]
    assert names == ["normalize", "conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert models.resnet50(width=4).fc.in_features == 4 * 8 * 4  # 8w, times Bottleneck's 4


def test_resnet18_size_and_cost():
    net = models.resnet18()
    assert sum(p.numel() for p in net.parameters()) == RESNET18_PARAMS
    cost = models.count_cost(net, (3, 32, 32))
    assert cost.macs == RESNET18_MACS
    assert abs(cost.macs - 556e6) / 556e6 < 0.01  # the usual "0.56 GMAC"
    assert cost.params == RESNET18_PARAMS - 9600  # count_cost leaves out BatchNorm's 2x4800


@pytest.mark.slow  # importing torchvision takes seconds
def test_resnet18_is_torchvision_with_the_cifar_stem():
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.resnet18(num_classes=10)
    tv.conv1, tv.maxpool = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.Identity()
    ours = models.resnet18()
    ours.load_state_dict(dict(zip(ours.state_dict(), tv.state_dict().values(), strict=True)))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ours.eval()(x), tv.eval()(x))


def test_normalization_inside_the_model():
    stats = (models.CIFAR10_MEAN, models.CIFAR10_STD)
    a = models.resnet18(width=4, normalize=stats).eval()
    b = models.resnet18(width=4).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("normalize")})
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    x = torch.rand(3, 3, 32, 32)
    mean, std = (torch.tensor(s).view(1, 3, 1, 1) for s in stats)
    torch.testing.assert_close(a(x), b((x - mean) / std))
