"""Exported graphs run as one XNNPACK partition, and the manifest says how each one runs.

The ONNX rewrites (converters/delegable.py) are proven against torch in ONNX Runtime, like the
max-pool padding rewrites in tests/test_export.py; the exported ShuffleNet v1 (the shared session
export of tests/conftest_export.py) is then loaded with the XNNPACK delegate.
"""

from __future__ import annotations

from pathlib import Path

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


# --- the manifest says how each artifact runs ------------------------------------------------------------

@pytest.fixture(scope="module")
def split_int8(tmp_path_factory) -> Path:
    """A tiny int8 .tflite with what XNNPACK refuses on int8: an AVERAGE_POOL_2D and a RELU after a concat."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from mobiledeploy.converters.tflite import _convert

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 4), tf.float32)])
    def model(x):
        pooled = tf.nn.avg_pool2d(x, 3, 2, "VALID")
        conv = tf.nn.conv2d(x, tf.constant(np.full((3, 3, 4, 4), 0.1, np.float32)), 2, "VALID")
        return tf.nn.relu(tf.concat([pooled, conv], axis=3))

    def samples():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.standard_normal((1, 8, 8, 4)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = samples
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return _convert(converter, tmp_path_factory.mktemp("split") / "split_int8.tflite", "int8")


def test_host_delegation_names_each_refused_op_and_why(split_int8):
    from mobiledeploy.converters.delegation import fully_delegated, host_delegation

    graph = tflite_graph(split_int8)  # as written, no delegate
    assert {"AVERAGE_POOL_2D", "RELU", "CONCATENATION"} <= {op["op_name"] for op in graph.ops}
    found = host_delegation(split_int8)
    assert found["not_delegated"] == {"AVERAGE_POOL_2D": 1, "RELU": 1}
    assert found["partitions"] >= 1 and found["delegated_nodes"] == found["nodes"] - 2
    assert "VisitAveragePool2DNode" in found["why"]["AVERAGE_POOL_2D"] and "int8" in found["why"]["AVERAGE_POOL_2D"]
    assert "VisitUnaryNode" in found["why"]["RELU"]
    assert not fully_delegated(found)


def test_export_warns_in_one_line_per_artifact_not_fully_delegated(split_int8, capsys):
    from mobiledeploy.cli.export_cmd import warn_delegation
    from mobiledeploy.converters.delegation import host_delegation
    from mobiledeploy.converters.manifest import Manifest

    found = host_delegation(split_int8)
    warn_delegation(Manifest.from_dict({"artifacts": {
        "fp32": {"path": "model_fp32.tflite", "delegation": {**found, "partitions": 1, "not_delegated": {}}},
        "int8": {"path": "model_int8.tflite", "delegation": found}}}))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mobiledeploy: warning: int8 is not fully delegated")
    assert "AVERAGE_POOL_2D×1" in lines[0] and "RELU×1" in lines[0]


@pytest.mark.slow
def test_int8_shufflenet_v1_runs_as_one_xnnpack_partition(exports):
    """The export of tests/conftest_export.py: no AVERAGE_POOL_2D or RELU op left, one partition, no TFLite kernel."""
    exp = exports("v1_g3")
    manifest = exp.result.manifest
    for fmt in ("fp32", "int8"):
        ops = manifest.artifacts[fmt].op_counts
        assert "AVERAGE_POOL_2D" not in ops and "RELU" not in ops and "PAD" in ops
        assert ops["CONCATENATION"] == 3 + 2  # the stride-2 units', and the max pool's padded border (rows, columns)
        found = manifest.artifacts[fmt].delegation
        assert found.partitions == 1 and found.not_delegated == {} and found.full
        arm = manifest.parity["arm"]
        if "skipped" not in arm:
            assert arm[fmt]["delegation"]["partitions"] == 1 and arm[fmt]["delegation"]["not_delegated"] == {}
    assert manifest.parity["int8"]["passed"] and manifest.parity["int8"]["floor"] == 0.98


def test_an_op_the_delegate_has_no_case_for_says_so():
    from mobiledeploy.converters.delegation import why

    assert "no GATHER" in why({"op": "GATHER", "inputs": ["int8", "int64"]})
    assert "no MIRROR_PAD" in why({"op": "MIRROR_PAD", "inputs": ["float32", "int32"]})
    assert "CheckTensorFloatType" in why({"op": "HARD_SWISH", "inputs": ["int8"]})
    assert "CheckTensorFloatType" not in why({"op": "HARD_SWISH", "inputs": ["float32"]})


def test_hard_sigmoid_becomes_add_relu6_mul(tmp_path):
    """MobileNetV3's SE gate: onnx2tf lowers HardSigmoid to RELU_0_TO_1, which XNNPACK has no case for."""
    import torch

    from mobiledeploy.converters.delegable import hardsigmoid_as_relu6

    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Hardsigmoid()).eval()
    x = torch.linspace(-12, 12, 3 * 11 * 11).reshape(1, 3, 11, 11)  # both clip ends and the slope
    rewritten, count = hardsigmoid_as_relu6(_onnx_of(model, x, tmp_path / "hsig.onnx"))
    assert count == 1 and _ops(rewritten) == ["Add", "Clip", "Mul"]
    clip = next(n for n in rewritten.graph.node if n.op_type == "Clip")
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in rewritten.graph.initializer}
    assert float(consts[clip.input[1]]) == 0.0 and abs(float(consts[clip.input[2]]) - 6.0) < 1e-6
    with torch.no_grad():
        expected = model(x).numpy()
    got = _run_onnx(rewritten, x)
    assert (got == 0.0).any() and (np.abs(got - 1.0) < 1e-6).any() and ((got > 0.01) & (got < 0.99)).any()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_relu_of_a_shared_add_reads_an_identity_depthwise_conv(tmp_path):
    """Xception's block boundary: the sum is the next skip and, through a ReLU, the next branch."""
    import torch

    from mobiledeploy.converters.delegable import relu_of_shared_add

    class Boundary(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = (torch.nn.Conv2d(3, 3, 1) for _ in range(3))

        def forward(self, x):
            total = self.a(x) + self.b(x)
            return self.c(torch.relu(total)) + total

    torch.manual_seed(0)
    model = Boundary().eval()
    x = torch.randn(1, 3, 9, 9)
    original = _onnx_of(model, x, tmp_path / "shared.onnx")
    rewritten, count = relu_of_shared_add(original)
    assert count == 1 and _ops(rewritten).count("Conv") == _ops(original).count("Conv") + 1
    relu = next(n for n in rewritten.graph.node if n.op_type == "Relu")
    own = next(n for n in rewritten.graph.node if n.output[0] == relu.input[0])
    assert own.op_type == "Conv" and next(a.i for a in own.attribute if a.name == "group") == 3
    assert sum(relu.input[0] in n.input for n in rewritten.graph.node) == 1
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(_run_onnx(rewritten, x), expected, rtol=0, atol=1e-6)
