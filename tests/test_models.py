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


def test_mask_dropout_drops_at_rate_p_in_every_lane_and_scales_exactly():
    torch.manual_seed(0)
    drop = models.MaskDropout(0.3).train()
    x = torch.ones(400, 1000)
    out = drop(x)
    cut = round(0.3 * 2**16)
    kept = out != 0
    assert torch.equal(out[kept], torch.full_like(out[kept], 2**16 / (2**16 - cut)))
    # four 16-bit draws share one 64-bit word: each of the four lanes must be uniform
    # (a draw of non-negative int64s would leave the top lane's sign bit at 0: no drops)
    lanes = kept.flatten().view(-1, 4).float().mean(0)
    assert torch.allclose(lanes, torch.full((4,), 0.7), atol=0.005), lanes
    assert abs(float(out.mean()) - 1.0) < 0.01  # unbiased, as nn.Dropout is
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(models.MaskDropout(1.0).train()(x), torch.zeros_like(x))


def test_mask_dropout_swap_is_temporary_and_leaves_weights_alone():
    model = models.teacher_mlp(0.3, 0.2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with models.mask_dropout(model):
        kinds = [type(m) for m in model.net]
        assert kinds.count(models.MaskDropout) == 3 and nn.Dropout not in kinds
        assert [m.p for m in model.net if isinstance(m, nn.Dropout)] == [0.2, 0.3, 0.3]
    assert [type(m) for m in model.net].count(nn.Dropout) == 3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
