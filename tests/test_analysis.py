import pytest
import torch
from torch import nn

from mobiledeploy.analysis import analyse, analyse_model, parse_resolution
from mobiledeploy.errors import ConfigError
from mobiledeploy.registry import get_spec, list_models, parse_label


def _declared_cases():
    for name in list_models():
        for label, declared in get_spec(name).declared.items():
            yield pytest.param(name, label, declared, id=f"{name}[{label}]")


@pytest.mark.parametrize("name, label, declared", list(_declared_cases()))
def test_complexity_matches_published_tables(name, label, declared):
    config = parse_label(label)
    report = analyse(name, config.pop("resolution", 224), **config)
    if declared.macs:
        assert declared.comparable_macs(report) == pytest.approx(declared.macs, rel=declared.tolerance), declared.source
    if declared.params:
        # papers print params to 0.1 M: allow half a unit of the last printed digit
        assert abs(report.params - declared.params) <= max(declared.tolerance * declared.params, 0.05e6), declared.source


def test_conv_macs_params_and_memory_access_exact():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False))
    report = analyse_model(model, (1, 4, 10, 10))
    (layer,) = report.layers
    assert layer.op == "conv2d_group"
    assert layer.macs == 10 * 10 * 8 * (4 // 2) * 9
    assert layer.params == 8 * 2 * 9
    assert layer.memory_access == 4 * 100 + 8 * 100 + 8 * 2 * 9


def test_pointwise_memory_access_is_shufflenet_v2_formula():
    h = w = 7
    c1, c2 = 16, 32
    report = analyse_model(nn.Conv2d(c1, c2, 1, bias=False), (1, c1, h, w))
    assert report.layers[0].op == "conv2d_1x1"
    assert report.memory_access == h * w * (c1 + c2) + c1 * c2  # MAC = hw(c1+c2) + c1c2


def test_depthwise_and_linear_are_classified():
    model = nn.Sequential(nn.Conv2d(6, 6, 3, groups=6), nn.Flatten(), nn.Linear(6 * 4 * 4, 10))
    report = analyse_model(model, (1, 6, 6, 6))
    ops = [layer.op for layer in report.layers]
    assert ops == ["conv2d_dw", "linear"]
    assert report.layers[1].macs == 96 * 10 and report.layers[1].params == 96 * 10 + 10


class _Odd(nn.Module):
    def forward(self, x):
        return torch.erf(x) + x


def test_unknown_ops_are_reported_not_dropped():
    report = analyse_model(_Odd(), (1, 2, 4, 4))
    assert report.unknown_ops == ["erf"]
    assert [layer.op for layer in report.layers] == ["unknown:erf", "add"]


def test_elementwise_ops_counted_on_their_own():
    report = analyse("v1", 224, g=3)
    by_op = report.by_op()
    assert by_op["add"]["count"] == 13  # 16 units, 3 of them stride 2 (concat instead)
    assert by_op["concat"]["count"] == 3
    assert by_op["add"]["macs"] == 0 and by_op["add"]["elementwise"] > 0
    assert report.elementwise == sum(layer.elementwise for layer in report.layers)


@pytest.mark.parametrize("name", ["shufflenet_v1", "shufflenet_v2", "mobilenet_v1", "alexnet"])
def test_per_layer_sums_equal_totals_and_model_params(name):
    report = analyse(name, 224)
    assert report.params == report.model_params
    assert report.macs == sum(layer.macs for layer in report.layers)
    assert report.memory_access == sum(layer.memory_access for layer in report.layers)
    assert report.unknown_ops == []
    d = report.to_dict()
    assert d["macs"] == sum(layer["macs"] for layer in d["layers"])


def test_macs_scale_with_resolution():
    a = analyse("mobilenet_v1", 224)
    b = analyse("mobilenet_v1", "448x448")
    conv = lambda r: sum(l.macs for l in r.layers if l.op.startswith("conv"))  # noqa: E731
    assert conv(b) == 4 * conv(a)


@pytest.mark.parametrize("value, expected", [(224, (224, 224)), ("480x640", (480, 640)), ("160", (160, 160))])
def test_parse_resolution(value, expected):
    assert parse_resolution(value) == expected


@pytest.mark.parametrize("value", ["abc", "12", "224x", "1x2x3"])
def test_parse_resolution_rejects_bad_input(value):
    with pytest.raises(ConfigError):
        parse_resolution(value)
