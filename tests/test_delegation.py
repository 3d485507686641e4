"""Issue 19: exported graphs run as one XNNPACK partition, and the manifest says how each one runs.

The ONNX rewrites (converters/delegable.py) are proven against torch in ONNX Runtime, like the
max-pool padding rewrites in tests/test_export.py; the exported ShuffleNet v1 (the shared session
export of tests/conftest_export.py) is then loaded with the XNNPACK delegate.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest_export import tflite_graph


def _onnx_of(model, x, path):
    import onnx
    import torch

    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"], output_names=["out"])
    return onnx.load(str(path))


def _run_onnx(model, x) -> np.ndarray:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


# --- ONNX rewrites, exact in float ---------------------------------------------------------------------

@pytest.mark.parametrize("kernel, stride, padding, include_pad, ceil_mode, size", [
    (3, 2, 1, True, False, 23),   # ShuffleNet v1's shortcut pool, odd size: the last window is clipped
    (3, 2, 1, False, False, 22),  # edge windows average fewer values
    (2, 2, 0, True, False, 16),   # CondenseNet's transition
    (3, 1, 1, False, False, 9),
    (3, 2, 1, True, True, 23),    # ceil mode that gives the floor-mode size
], ids=["shufflenet_shortcut", "exclude_pad", "unpadded", "exclude_pad_stride1", "ceil_same_size"])
def test_average_pool_becomes_an_exact_depthwise_conv(tmp_path, kernel, stride, padding, include_pad, ceil_mode, size):
    import torch

    from mobiledeploy.converters.delegable import avgpool_as_depthwise

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1),
                                torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode,
                                                   count_include_pad=include_pad)).eval()
    x = torch.randn(1, 3, size, size) * 3.0 + 1.0  # far from zero: a wrong edge divisor shows
    rewritten, count = avgpool_as_depthwise(_onnx_of(model, x, tmp_path / "pool.onnx"))
    assert count == 1 and "AveragePool" not in _ops(rewritten)
    conv = [n for n in rewritten.graph.node if n.op_type == "Conv"][-1]
    assert next(a.i for a in conv.attribute if a.name == "group") == 6
    assert ("Mul" in _ops(rewritten)) == (padding > 0 and not include_pad)
    with torch.no_grad():
        expected = model(x).numpy()
    got = _run_onnx(rewritten, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * float(np.abs(expected).max()))


def test_a_ceil_mode_pool_past_the_padding_is_left_alone(tmp_path):
    import torch

    from mobiledeploy.converters.delegable import avgpool_as_depthwise

    model = torch.nn.AvgPool2d(3, 2, 0, ceil_mode=True).eval()
    x = torch.randn(1, 4, 10, 10)  # floor: 4x4, ceil: 5x5 (the last window hangs past the input)
    rewritten, count = avgpool_as_depthwise(_onnx_of(model, x, tmp_path / "ceil.onnx"))
    assert count == 0 and _ops(rewritten) == ["AveragePool"]


def _concat_relu_model(signed_shortcut: bool):
    import torch

    class ConcatRelu(torch.nn.Module):
        """ShuffleNet v1's stride-2 unit tail: relu(cat(pool(x), bn(conv(x))))."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.pool = torch.nn.AvgPool2d(3, 2, 1)
            self.branch = torch.nn.Sequential(torch.nn.Conv2d(4, 5, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(5))

        def forward(self, x):
            x = self.stem(x)
            x = x if signed_shortcut else torch.relu(x)
            return torch.relu(torch.cat((self.pool(x), self.branch(x)), 1))

    torch.manual_seed(0)
    model = ConcatRelu().eval()
    model.branch[1].running_mean.uniform_(-1, 1)
    return model


@pytest.mark.parametrize("signed_shortcut", [False, True], ids=["shortcut_after_relu", "signed_shortcut"])
def test_relu_after_concat_moves_onto_the_branches(tmp_path, signed_shortcut):
    import torch

    from mobiledeploy.converters.delegable import relu_through_concat

    model = _concat_relu_model(signed_shortcut)
    x = torch.randn(1, 3, 15, 15)
    original = _onnx_of(model, x, tmp_path / "cat.onnx")
    rewritten, count = relu_through_concat(original)
    assert count == 1
    ops = _ops(rewritten)
    assert ops[-1] == "Concat"  # nothing after the concat any more
    # a ReLU on each branch that can be negative: the conv branch, and the pool only over a signed input
    assert ops.count("Relu") == _ops(original).count("Relu") - 1 + (2 if signed_shortcut else 1)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(_run_onnx(rewritten, x), expected, rtol=0, atol=1e-6)
