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


# --- today's mobile models: attention, products, norms, resampling (hand counts) -------------------

class _Call(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _only(report):
    assert report.unknown_ops == []
    (layer,) = report.layers
    return layer


def test_matmul_bmm_and_the_operator_count_one_mac_per_output_per_reduced_element():
    # x: (1, 2, 3, 4); x @ xᵀ → (1, 2, 3, 3), each output a dot product of length 4
    for fn in (lambda x: torch.matmul(x, x.transpose(-1, -2)), lambda x: x @ x.transpose(-1, -2),
               lambda x: torch.bmm(x[0], x[0].transpose(1, 2))[None]):
        layer = _only(analyse_model(_Call(fn), (1, 2, 3, 4)))
        assert (layer.op, layer.macs, layer.params, layer.elementwise) == ("matmul", 2 * 3 * 3 * 4, 0, 0)
        assert layer.memory_access == 24 + 24 + 18


def test_einsum_counts_every_index_extent_of_a_two_operand_product():
    # 'bhqd,bhkd->bhqk' on (1, 2, 3, 4) twice: b h q k d = 1*2*3*3*4
    layer = _only(analyse_model(_Call(lambda x: torch.einsum("bhqd,bhkd->bhqk", x, x)), (1, 2, 3, 4)))
    assert (layer.op, layer.macs) == ("matmul", 72)
    layer = _only(analyse_model(_Call(lambda x: torch.einsum("nchw->nhwc", x)), (1, 2, 3, 4)))
    assert (layer.op, layer.macs, layer.elementwise) == ("einsum", 0, 24)


def test_scaled_dot_product_attention_is_two_products_and_a_softmax():
    # q, k, v: (batch 1, heads 2, tokens 5, dim 8): q kᵀ 2*5*5*8 MACs, p v 2*5*5*8, softmax over 2*5*5 scores
    fn = lambda x: torch.nn.functional.scaled_dot_product_attention(x, x, x)  # noqa: E731
    layer = _only(analyse_model(_Call(fn), (1, 2, 5, 8)))
    assert (layer.op, layer.macs, layer.elementwise) == ("attention", 2 * 5 * 5 * 8 * 2, 2 * 5 * 5)
    assert layer.memory_access == 4 * 80


def test_layer_norm_and_group_norm_are_elementwise_with_their_affine_params():
    report = analyse_model(nn.Sequential(nn.GroupNorm(2, 4), nn.Flatten(2), nn.LayerNorm(9)), (1, 4, 3, 3))
    assert report.unknown_ops == []
    assert [(l.op, l.macs, l.params, l.elementwise) for l in report.layers] == [
        ("group_norm", 0, 8, 36), ("layer_norm", 0, 18, 36)]
    assert report.layers[1].memory_access == 36 + 36 + 18


def test_softmax_gelu_interpolate_and_pad():
    model = nn.Sequential(nn.GELU(), nn.Softmax(dim=1), nn.Upsample(scale_factor=2, mode="bilinear"),
                          _Call(lambda x: torch.nn.functional.pad(x, (1, 1, 1, 1))))
    report = analyse_model(model, (1, 2, 3, 3))
    assert report.unknown_ops == []
    assert [(l.op, l.macs, l.elementwise) for l in report.layers] == [
        ("gelu", 0, 18), ("softmax", 0, 18), ("resize", 0, 72), ("pad", 0, 0)]
    assert report.layers[3].memory_access == 72 + 2 * 8 * 8


def test_edgenexts_fourier_positional_encoding_by_hand():
    """timm's PositionalEncodingFourier on a 3x5 grid, 4 frequencies, to 8 channels: every op counted as its outputs."""
    from mobiledeploy.models.edgenext import PositionalEncodingFourier

    encoding = PositionalEncodingFourier(8, hidden=4)
    report = analyse_model(_Call(lambda x: encoding((1, 3, 5))), (1, 1))
    assert report.unknown_ops == []  # zeros and arange make constants: no arithmetic, never unknown
    grid, row, column, freq, table, half = 15, 5, 3, 4, 15 * 4, 15 * 2
    assert [(l.op, l.elementwise) for l in report.layers] == [
        ("not", grid), ("cumsum", grid), ("cumsum", grid),                # ~mask, then running counts down and across
        ("add", row), ("div", grid), ("mul", grid),                       # y / (last row + eps) * 2π
        ("add", column), ("div", grid), ("mul", grid),                    # x likewise
        ("div", freq), ("mul", freq), ("div", freq), ("pow", freq),       # 10000 ** (2 * (i // 2) / 4)
        ("div", table), ("div", table),                                   # x / dim_t, y / dim_t
        ("sin", half), ("cos", half), ("concat", 0), ("sin", half), ("cos", half), ("concat", 0), ("concat", 0),
        ("conv2d_1x1", 0)]
    assert report.layers[-1].macs == grid * 8 * 8 and report.macs == grid * 8 * 8


def test_l2_normalize_is_elementwise():
    layer = _only(analyse_model(_Call(lambda x: torch.nn.functional.normalize(x, dim=-1)), (1, 2, 3, 4)))
    assert (layer.op, layer.macs, layer.elementwise, layer.memory_access) == ("normalize", 0, 24, 48)


def test_asserts_unbind_and_views_are_never_unknown():
    def fn(x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.shape[1] == 3, "three channels")
        q, k, v = x.unbind(1)
        return torch.stack([q, k, v], 1).flatten(1).unflatten(1, (3, -1))

    layer = _only(analyse_model(_Call(fn), (1, 3, 4, 4)))
    assert (layer.op, layer.memory_access) == ("concat", 48 + 48)  # stack copies like a concat


def test_the_counter_agrees_with_torchs_flop_counter_and_names_each_difference():
    import sys
    from pathlib import Path

    from mobiledeploy.analysis_check import cross_check
    from mobiledeploy.registry import build_model

    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "modern"))
    import ops  # noqa: E402

    manual = cross_check(ops.build(attention="manual"), (1, 3, 32, 32))  # matmul/softmax attention: counted alike
    assert manual["flop_counter_flops"] == 2 * manual["macs"] and manual["explained"] == {}
    sdpa = cross_check(ops.build(attention="sdpa"), (1, 3, 32, 32))
    assert sdpa["macs"] == manual["macs"] and sdpa["unexplained"] == 0
    (reason, macs), = sdpa["explained"].items()
    assert "flash_attention_for_cpu" in reason and macs == 2 * 2 * 256 * 256 * 8  # 2 heads, 256 tokens, dim 8, twice
    for name in ("shufflenet_v2", "mobilenet_v3_small", "edgenext_xx_small"):  # EdgeNeXt: XCA's products, normalize
        zoo = cross_check(build_model(name), (1, 3, 32, 32))
        assert zoo["flop_counter_flops"] == 2 * zoo["macs"] and zoo["unexplained"] == 0
