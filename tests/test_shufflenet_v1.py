import pytest
import torch

from mobiledeploy.errors import ConfigError
from mobiledeploy.models.common import channel_shuffle
from mobiledeploy.models.shufflenet_v1 import ShuffleV1Unit, stage_widths
from mobiledeploy.analysis import analyse
from mobiledeploy.registry import build_model

PAPER_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}


@pytest.mark.parametrize("g", sorted(PAPER_WIDTHS))
def test_stage_widths_follow_table_1(g):
    report = analyse("v1", 224, g=g)
    assert [s["out_channels"] for s in report.stages] == list(PAPER_WIDTHS[g])
    assert [s["out_shape"][2] for s in report.stages] == [28, 14, 7]


@pytest.mark.parametrize("scale", [0.25, 0.5, 1.5, 2.0])
def test_width_multiplier_scales_every_stage(scale):
    assert stage_widths(3, scale) == tuple(int(c * scale) for c in PAPER_WIDTHS[3])


def test_width_not_divisible_by_g_is_rejected():
    with pytest.raises(ConfigError, match="not whole multiples of g=4"):
        stage_widths(4, 0.3)  # 272 * 0.3 = 81.6 channels
    with pytest.raises(ConfigError, match="not whole multiples of g=8"):
        stage_widths(8, 0.1)
    with pytest.raises(ConfigError, match="g=5 is not valid"):
        stage_widths(5, 1.0)


def test_channel_shuffle_is_the_g_n_transpose():
    g, n = 3, 4
    x = torch.arange(g * n, dtype=torch.float32).reshape(1, g * n, 1, 1)
    out = channel_shuffle(x, g).flatten().tolist()
    # channel k of the output is channel (k % g) * n + k // g of the input: (g, n) -> (n, g)
    assert out == [float((k % g) * n + k // g) for k in range(g * n)]
    assert out[:4] == [0.0, 4.0, 8.0, 1.0]


def test_channel_shuffle_is_undone_by_the_matching_shuffle():
    x = torch.randn(2, 24, 5, 5)
    # shuffling with g then with n = C/g restores the order: the (n, g) transpose back to (g, n)
    assert torch.equal(channel_shuffle(channel_shuffle(x, 3), 8), x)
    assert not torch.equal(channel_shuffle(x, 3), x)


def test_stride_two_unit_concatenates_to_double_channels():
    unit = ShuffleV1Unit(240, 480, stride=2, groups=3, first_grouped=True, shuffle=True).eval()
    out = unit(torch.randn(1, 240, 14, 14))
    assert out.shape == (1, 480, 7, 7)
    assert unit.gconv2.out_channels == 240  # branch output = 480 - 240, shortcut brings the rest
    assert isinstance(unit.shortcut_pool, torch.nn.AvgPool2d)


def test_stride_one_unit_adds_identity():
    unit = ShuffleV1Unit(240, 240, stride=1, groups=3, first_grouped=True, shuffle=True).eval()
    assert unit.shortcut_pool is None
    assert unit(torch.randn(1, 240, 7, 7)).shape == (1, 240, 7, 7)


def test_first_pointwise_of_stage_two_is_not_grouped():
    model = build_model("v1", g=8)
    assert model.stage2[0].gconv1.groups == 1
    assert model.stage2[1].gconv1.groups == 8
    assert model.stage3[0].gconv1.groups == 8
    assert model.stage2[0].gconv2.groups == 8


def test_bottleneck_is_a_quarter_of_unit_output():
    model = build_model("v1", g=3)
    assert model.stage3[1].gconv1.out_channels == 480 // 4
    assert model.stage4[0].dwconv.groups == model.stage4[0].dwconv.in_channels == 960 // 4


def test_unit_order_matches_paper_and_relu_only_after_first_pointwise():
    unit = build_model("v1", g=3).stage2[1]
    names = [n for n, _ in unit.named_children()]
    assert names[:8] == ["gconv1", "bn1", "relu1", "shuffle", "dwconv", "bn2", "gconv2", "bn3"]
    assert unit.dwconv.stride == (1, 1) and build_model("v1", g=3).stage2[0].dwconv.stride == (2, 2)


def test_shuffle_false_removes_the_shuffle_but_not_the_cost():
    with_shuffle = analyse("v1", 224, g=3)
    without = analyse("v1", 224, g=3, shuffle=False)
    assert "channel_shuffle" in with_shuffle.by_op() and "channel_shuffle" not in without.by_op()
    assert with_shuffle.macs == without.macs


def test_shuffle_changes_the_function():
    x = torch.randn(1, 3, 64, 64)
    a = build_model("v1", g=3, scale=0.25, seed=0)
    b = build_model("v1", g=3, scale=0.25, shuffle=False, seed=0)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
