"""One traced op per test, exact integers: the counting rules the model zoo relies on."""

import torch
from torch import nn

from mobiledeploy.analysis import HANDLERS, OpCost, analyse_model


class _Gather(nn.Module):
    def __init__(self, index: list[int]) -> None:
        super().__init__()
        self.register_buffer("index", torch.tensor(index))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.index_select(x, 1, self.index)


def test_index_select_is_a_gather_that_moves_data_only():
    report = analyse_model(_Gather([2, 0, 1, 1]), (1, 3, 5, 5))  # a repeated channel, as learned indices may hold
    (layer,) = report.layers
    assert report.unknown_ops == []
    assert layer.op == "gather"
    assert layer.out_shape == [1, 4, 5, 5]
    assert (layer.macs, layer.params, layer.elementwise) == (0, 0, 0)
    assert layer.memory_access == 3 * 25 + 4 * 25  # reads the input, writes the gathered maps


def test_index_select_on_features_counts_the_same_way():
    report = analyse_model(nn.Sequential(nn.Flatten(), _Gather(list(range(0, 12, 2)))), (1, 3, 2, 2))
    (layer,) = report.layers
    assert layer.op == "gather" and layer.out_shape == [1, 6]
    assert layer.memory_access == 12 + 6


def test_hard_swish_and_hard_sigmoid_are_elementwise():
    report = analyse_model(nn.Sequential(nn.Hardswish(), nn.Hardsigmoid()), (1, 4, 3, 3))
    assert [layer.op for layer in report.layers] == ["hardswish", "hardsigmoid"]
    for layer in report.layers:
        assert (layer.macs, layer.params, layer.elementwise, layer.memory_access) == (0, 0, 36, 72)


class _Erf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


def test_an_unknown_op_is_listed_and_a_handler_given_per_call_counts_it():
    model = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), _Erf())
    plain = analyse_model(model, (1, 2, 3, 3))
    assert plain.unknown_ops == ["erf"] and [l.op for l in plain.layers] == ["conv2d_1x1", "unknown:erf"]

    def erf(args: tuple, kwargs: dict, out: torch.Tensor) -> OpCost:
        return OpCost("erf", memory_access=2 * out.numel(), elementwise=out.numel())

    def conv_as_zero(args: tuple, kwargs: dict, out: torch.Tensor) -> OpCost:
        return OpCost("conv_overridden")

    handled = analyse_model(model, (1, 2, 3, 3), handlers={"erf": erf, "conv2d": conv_as_zero})
    assert handled.unknown_ops == []
    assert [(l.op, l.macs, l.memory_access, l.elementwise) for l in handled.layers] == [
        ("conv_overridden", 0, 0, 0), ("erf", 0, 2 * 4 * 9, 4 * 9)]
    assert "erf" not in HANDLERS and analyse_model(model, (1, 2, 3, 3)).unknown_ops == ["erf"]  # for that call only
