"""One traced op per test, exact integers: the counting rules the model zoo relies on."""

import torch
from torch import nn

from mobiledeploy.analysis import analyse_model


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
