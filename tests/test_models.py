"""Parameter and FLOP counts against Table 1 of the paper."""

import torch
from torch import nn

from kdlib import models, paper


def test_teacher_counts_match_table1():
    cost = models.count_cost(models.teacher_mlp(), (1, 28, 28))
    assert cost.layer_weights == paper.TABLE1["teacher_layer_weights"]
    assert cost.macs == paper.TABLE1["teacher_flops"] == 2_392_800
    assert cost.biases == 1200 + 1200 + 10
    assert cost.params == 2_392_800 + 2410
    assert cost.flops == 2 * 2_392_800 + 2410


def test_student_counts_match_table1():
    cost = models.count_cost(models.student_mlp(), (1, 28, 28))
    assert cost.layer_weights == paper.TABLE1["student_layer_weights"]
    assert cost.macs == paper.TABLE1["student_flops"] == 317_600
    assert cost.params == 317_600 + 410


def test_conv_macs_counted_per_output_pixel():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    cost = models.count_cost(net, (3, 32, 32))
    assert cost.macs == 32 * 32 * 8 * 3 * 3 * 3
    assert cost.biases == 0


def test_mlp_shapes_and_dropout_only_in_training():
    net = models.teacher_mlp()
    x = torch.rand(5, 1, 28, 28)
    assert net(x).shape == (5, 10)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    assert not any(isinstance(m, nn.Dropout) for m in models.student_mlp().modules())
