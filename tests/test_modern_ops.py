"""Today's mobile ops through the export: GELU, hard-swish, LayerNorm, attention (converters/modern.py and
the delegate's rules in converters/delegation.py), small nets at 32x32."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
OPS = REPO / "tests" / "fixtures" / "modern" / "ops.py"
CLI = Path(sys.executable).with_name("mobiledeploy")


def _onnx(module: nn.Module, path: Path, shape: tuple[int, ...] = (1, 4, 5, 5)) -> Any:
    import onnx
    import onnxslim

    torch.onnx.export(module.eval(), (torch.randn(*shape),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["out"])
    return onnxslim.slim(onnx.load(str(path)))


def _ops(model: Any) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("form", ["none", "tanh"])
def test_each_gelu_formula_torch_exports_becomes_one_gelu_node(form: str, tmp_path: Path) -> None:
    from onnx import helper

    from mobiledeploy.converters.modern import gelu_as_builtin

    model = _onnx(nn.Sequential(nn.Conv2d(4, 4, 1), nn.GELU(approximate=form), nn.Conv2d(4, 4, 1)), tmp_path / "g.onnx")
    assert ("Erf" if form == "none" else "Tanh") in _ops(model)
    untouched, none = gelu_as_builtin(model, forms=("tanh",) if form == "none" else ("none",))
    assert none == 0 and _ops(untouched) == _ops(model)
    rewritten, count = gelu_as_builtin(model, forms=(form,))
    assert count == 1 and _ops(rewritten) == ["Conv", "Gelu", "Conv"]
    gelu = rewritten.graph.node[1]
    assert helper.get_attribute_value(gelu.attribute[0]) == form.encode()
    assert gelu.input[0] == rewritten.graph.node[0].output[0] and gelu.output[0] == rewritten.graph.node[2].input[0]


def test_a_gelu_whose_inner_value_is_read_elsewhere_is_left_alone(tmp_path: Path) -> None:
    from mobiledeploy.converters.modern import gelu_as_builtin

    class Leaky(nn.Module):  # erf's output is also an output of its own: not a GELU to replace
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            e = torch.erf(x / 1.4142135623730951)
            return x * 0.5 * (1 + e) + e

    model = _onnx(Leaky(), tmp_path / "l.onnx")
    assert gelu_as_builtin(model)[1] == 0


def test_a_conversion_failure_names_the_op_not_mlir_text() -> None:
    from mobiledeploy.converters.tflite import _conversion_error

    mlir = ("Could not translate MLIR to FlatBuffer./x/site-packages/tf_keras/src/utils/traceback_utils.py:96:1: "
            "error: 'tf.Erf' op is neither a custom op nor a flex op\n note: see current operation")
    assert _conversion_error(RuntimeError(mlir)) == (
        "the graph needs TensorFlow op Erf, which TFLite has no builtin for (an ONNX op of the same name that "
        "onnx2tf lowered as is)")
    assert _conversion_error(RuntimeError("x\nloc: error: something else")) == "loc: error: something else"


def test_the_delegate_rules_for_attention_and_norms_in_int8() -> None:
    from mobiledeploy.converters.delegation import why

    assert "VisitSoftmaxNode" in why({"op": "SOFTMAX", "inputs": ["int8"]})
    matmul = why({"op": "BATCH_MATMUL", "inputs": ["int8", "int8"], "scales": [[0.1, 3], [0.2, 25], [0.3, 0]]})
    assert "zero point 25" in matmul and "VisitBatchMatMulNode" in matmul
    add = why({"op": "ADD", "inputs": ["int8", "int8"], "scales": [[1e-6, 0], [0.5, 0], [0.5, 0]]})
    assert "input scale / output scale 2e-06 outside [0.000977, 256)" in add
    assert "no known rule" in why({"op": "ADD", "inputs": ["int8", "int8"], "scales": [[0.5, 0], [0.5, 0], [0.5, 0]]})
    assert "VisitUnaryNode" in why({"op": "GELU", "inputs": ["int8"]})
    for types in (["float32", "int32", "int32", "int32"], ["int8", "int32", "int32", "int32"]):
        assert "VisitStridedSliceNode" in why({"op": "STRIDED_SLICE", "inputs": types})



class _Subsample(nn.Module):
    """LeViT's Subsample (timm levit.py): every `step`-th token of each row and column of a side x side grid."""

    def __init__(self, side: int, step: int) -> None:
        super().__init__()
        self.side, self.step = side, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        return x.view(b, self.side, self.side, c)[:, ::self.step, ::self.step].reshape(b, -1, c)


class _Slices(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # negative and clamped bounds, step 1 beside step 2 and 3
        return x[:, 1:, -5::3, 2:7:2] * 2.0


@pytest.mark.parametrize("module,shape", [(_Subsample(7, 2), (1, 49, 8)), (_Subsample(8, 2), (2, 64, 4)),
                                          (_Subsample(9, 3), (1, 81, 4)), (_Slices(), (2, 3, 11, 9))])
def test_a_strided_slice_becomes_slices_of_step_one_exactly(module: nn.Module, shape: tuple[int, ...],
                                                           tmp_path: Path) -> None:
    import onnxruntime as ort

    from mobiledeploy.converters.strided import strided_slice_as_reshape

    model = _onnx(module, tmp_path / "s.onnx", shape)
    assert any(n.op_type == "Slice" for n in model.graph.node)
    rewritten, count = strided_slice_as_reshape(model)
    assert count == 1  # onnxslim merges the per-axis Slices torch exports into one
    assert strided_slice_as_reshape(rewritten)[1] == 0  # no step > 1 left
    x = torch.randn(*shape)
    out = ort.InferenceSession(rewritten.SerializeToString()).run(None, {"input": x.numpy()})[0]
    np.testing.assert_array_equal(out, module(x).numpy())  # the same values moved: exact


# --- channels-last islands in NCHW (converters/channels_last.py) ---------------------------------------

class _Tokens(nn.Module):
    """EdgeNeXt's SDTA tail: (N, H·W, C) tokens reshaped to (N, H, W, C), LayerNorm, Linear, γ, permuted back."""

    def __init__(self, dim: int, side: int) -> None:
        super().__init__()
        self.side, self.norm, self.fc = side, nn.LayerNorm(dim), nn.Linear(dim, dim)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        tokens = x.flatten(2).transpose(1, 2) * 2.0
        y = (self.gamma * self.fc(self.norm(tokens.reshape(b, self.side, self.side, c)))).permute(0, 3, 1, 2)
        return x + y


class _LastAxis(nn.Module):
    """A channels-last island with `op` in it (softmax: over the last axis, not per pixel) or read as an output."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op, self.fc = op, nn.Linear(4, 4, bias=op != "matmul")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x.permute(0, 2, 3, 1))
        if self.op == "softmax":
            y = y.softmax(-1)
        return y.permute(0, 3, 1, 2) if self.op != "output" else y


def _channels_last_block() -> nn.Module:
    from tests.fixtures.modern.ops import ChannelsLastBlock

    torch.manual_seed(0)
    return ChannelsLastBlock(8)


@pytest.mark.parametrize("build,shape", [(_channels_last_block, (2, 8, 6, 5)), (lambda: _Tokens(8, 6), (1, 8, 6, 6)),
                                         (lambda: _LastAxis("matmul"), (1, 4, 3, 5))])
def test_a_channels_last_island_becomes_nchw_ops_without_transposes(build: Any, shape: tuple[int, ...],
                                                                    tmp_path: Path) -> None:
    import onnxruntime as ort

    from mobiledeploy.converters.channels_last import channels_last_as_nchw

    module = build().eval()
    model = _onnx(module, tmp_path / "c.onnx", shape)
    before = _ops(model)
    rewritten, count = channels_last_as_nchw(model)
    after = _ops(rewritten)
    perms = [list(n.attribute[0].ints) for n in rewritten.graph.node if n.op_type == "Transpose"]
    assert count == 1 and all(len(p) == 3 for p in perms)  # no 4-D transpose left; tokens go channels-first in 3-D
    assert after.count("Transpose") == before.count("Transpose") - (0 if isinstance(module, _Tokens) else 2)
    assert "LayerNormalization" not in after and "Gemm" not in after and "MatMul" not in after
    assert after.count("Conv") == before.count("Conv") + before.count("Gemm") + before.count("MatMul")
    x = torch.randn(*shape)
    out = ort.InferenceSession(rewritten.SerializeToString()).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, module(x).numpy(), rtol=0, atol=2e-6)  # the same function, fp32 rounding
    assert channels_last_as_nchw(rewritten)[1] == 0


@pytest.mark.parametrize("op", ["softmax", "output"])
def test_a_channels_last_island_with_other_work_is_left_alone(op: str, tmp_path: Path) -> None:
    from mobiledeploy.converters.channels_last import channels_last_as_nchw

    model = _onnx(_LastAxis(op), tmp_path / "c.onnx", (1, 4, 3, 5))
    rewritten, count = channels_last_as_nchw(model)
    assert count == 0 and _ops(rewritten) == _ops(model)


# --- through the whole export, the Arm check and bench ------------------------------------------------

def _export(tmp: Path, options: str) -> dict[str, Any]:
    env = {**os.environ, "MOBILEDEPLOY_ARM_CHECK": "on"}
    argv = [str(CLI), "export", "--model-fn", f"{OPS}:build", "--out", str(tmp), "--json"]
    for option in filter(None, options.split(",")):
        argv += ["--set", option]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def every_op(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Exact GELU, hard-swish, LayerNorm, SDPA attention and a channels-last block (EdgeNeXt's) in one net, exported
    with the Arm check."""
    return _export(tmp_path_factory.mktemp("modern"), "channels_last=1")


@pytest.mark.slow
def test_every_op_converts_with_parity_and_fp32_runs_as_one_partition(every_op: dict[str, Any]) -> None:
    manifest = every_op["manifest"]
    assert all(manifest["parity"][f]["passed"] for f in ("onnx", "fp32", "int8", "arm"))
    assert manifest["complexity"]["unknown_ops"] == []
    fp32, int8 = (manifest["artifacts"][f] for f in ("fp32", "int8"))
    assert fp32["op_counts"]["GELU"] == 2 and fp32["op_counts"]["HARD_SWISH"] == 1  # the block's GELU is exact
    assert {"BATCH_MATMUL", "SOFTMAX"} <= set(fp32["op_counts"])
    assert fp32["delegation"]["partitions"] == 1 and fp32["delegation"]["not_delegated"] == {}
    left = int8["delegation"]["not_delegated"]
    assert {"GELU", "SOFTMAX", "BATCH_MATMUL", "HARD_SWISH"} <= set(left)
    # its two LayerNorms stay in float by default (converters/layernorm.py), which XNNPACK runs: no RSQRT left
    assert int8["float_layers"]["layernorms"] == 2 and not {"RSQRT", "SQUARED_DIFFERENCE", "SUB"} & set(left)
    assert all("xnnpack_delegate.cc" in int8["delegation"]["why"][op] and "no known rule" not in
               int8["delegation"]["why"][op] for op in left)


@pytest.mark.slow
def test_every_op_runs_on_arm_as_on_the_host(every_op: dict[str, Any]) -> None:
    arm = every_op["manifest"]["parity"]["arm"]
    if "skipped" in arm:
        assert not os.environ.get("CI")
        pytest.skip(arm["skipped"])
    assert arm["fp32"]["vs_torch"]["passed"] and arm["fp32"]["delegation"]["partitions"] == 1
    assert arm["int8"]["vs_host_steps"] <= 1 and arm["int8"]["instructions"] > 0


@pytest.mark.slow
def test_tanh_gelu_and_a_strided_subsample_run_int8_as_one_partition(tmp_path: Path) -> None:
    """Width 12: with as many channels as rows and columns (16), onnx2tf mistakes the (b, 16, 16, c) view's layout."""
    manifest = _export(tmp_path, "gelu=tanh,hswish=0,norm=0,attention=,subsample=3,width=12")["manifest"]
    for fmt in ("fp32", "int8"):
        entry = manifest["artifacts"][fmt]
        assert "GELU" not in entry["op_counts"] and "TANH" in entry["op_counts"]
        assert entry["delegation"]["partitions"] == 1 and entry["delegation"]["not_delegated"] == {}, entry["delegation"]
    assert manifest["parity"]["int8"]["passed"] and manifest["parity"]["fp32"]["max_rel"] <= 1e-4


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("device", ["local", "qemu:cortex-a76"])
def test_every_op_benches(every_op: dict[str, Any], device: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if device.startswith("qemu"):
        request.getfixturevalue("arm_env")
    out = Path(every_op["path"]).parent
    proc = subprocess.run([str(CLI), "bench", "--device", device, "--model-fn", f"{OPS}:build", "--out", str(out),
                           "--runs", "2", "--warmup", "1", "--db", str(tmp_path / "r.db"), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(proc.stdout)["results"]
    assert {r["precision"] for r in runs} == {"fp32", "int8"} and all(r["status"] == "ok" for r in runs)


# --- the Arm check names the first op whose int8 output differs ---------------------------------------

def test_first_difference_and_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    from mobiledeploy.converters import arm_locate

    order = [{"tensor": 7, "op": "CONV_2D", "node": 0}, {"tensor": 8, "op": "SOFTMAX", "node": 1}]
    host = [np.zeros((2, 3), np.int8), np.zeros(4, np.int8)]
    arm = [host[0].copy(), np.array([0, 3, -1, 0], np.int8)]
    found = arm_locate.first_difference(order, host, arm)
    assert found == {"tensor": 8, "op": "SOFTMAX", "node": 1, "max_steps": 3, "elements": 2, "of": 4}
    assert arm_locate.judge(found)["verdict"] == "defect" and arm_locate.first_difference(order, host, host) is None
    assert arm_locate.judge(None)["verdict"] == "not_located"
    monkeypatch.setitem(arm_locate.ISA_DIFFERENCES, "SOFTMAX", (4, "a documented rounding"))
    assert arm_locate.judge(found) == {"verdict": "isa_difference", "tolerance_steps": 4, "why": "a documented rounding"}


def test_int8_mul_may_differ_by_one_step_on_arm_as_xnnpack_documents_and_no_more() -> None:
    from mobiledeploy.converters import arm_locate

    one = {"op": "MUL", "node": 109, "tensor": 3, "max_steps": 1, "elements": 107, "of": 37632}  # RepViT-M1's SE gate
    verdict = arm_locate.judge(one)
    assert verdict["verdict"] == "isa_difference" and verdict["tolerance_steps"] == 1
    assert "rndnu" in verdict["why"] and "fp32" in verdict["why"]
    assert arm_locate.judge({**one, "max_steps": 2})["verdict"] == "defect"
    assert arm_locate.judge({**one, "op": "ADD"})["verdict"] == "defect"


@pytest.mark.slow
@pytest.mark.qemu
def test_an_arm_int8_difference_names_the_first_op_that_differs(every_op: dict[str, Any], arm_env: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulated run is made to differ from the host at one op (node `BAD`): the check finds that op."""
    import mobiledeploy.qemu.run as qemu_run
    from mobiledeploy.converters import arm_locate
    from mobiledeploy.converters.arm_check import ArmCheck
    from mobiledeploy.converters.pipeline import _require_arm
    from mobiledeploy.errors import ParityError

    path = Path(every_op["path"]) / "model_int8.tflite"
    with_outputs = Path(every_op["path"]) / "probe.tflite"
    order = arm_locate.all_outputs_model(path, with_outputs)
    bad = next(i for i, e in enumerate(order) if e["op"] == "SOFTMAX")  # a kernel TFLite runs itself in int8
    real = qemu_run.run_guest

    def differing(env: Any, cpu: str, model: Path, **kw: Any) -> Any:
        run = real(env, cpu, model, **kw)
        if model.name == "every_output.tflite":  # every op's output: the one at `bad` and all after it move
            run.outputs[bad:] = [np.clip(o.astype(np.int16) + 3, -128, 127).astype(o.dtype) for o in run.outputs[bad:]]
        elif model.name.endswith("int8.tflite"):
            run.outputs[0] = np.clip(run.outputs[0].astype(np.int16) + 3, -128, 127).astype(run.outputs[0].dtype)
        return run

    monkeypatch.setattr(qemu_run, "run_guest", differing)
    monkeypatch.setenv("MOBILEDEPLOY_ARM_CHECK", "on")  # the suite turns the stage off
    holdout = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with ArmCheck(holdout) as check:
        check.start("int8", path)
        report = check.report(np.zeros((1, 10), np.float32), 0.98)
    entry = report["int8"]
    assert entry["vs_host_steps"] == 3 and not entry["passed"] and entry["verdict"] == "defect"
    assert {k: entry["first_difference"][k] for k in ("op", "node")} == {"op": "SOFTMAX", "node": order[bad]["node"]}
    assert 3 <= entry["first_difference"]["max_steps"] <= 4  # the 3 added, plus SOFTMAX's own 1 step on Arm here
    with pytest.raises(ParityError, match=r"differs from the host by 3 quantisation steps; first at SOFTMAX \(node \d+\): [34] "
                                          r"steps in \d+ of \d+ values, a defect"):
        _require_arm(report)
    monkeypatch.setitem(arm_locate.ISA_DIFFERENCES, "SOFTMAX", (4, "documented"))
    with ArmCheck(holdout) as check:
        check.start("int8", path)
        report = check.report(np.zeros((1, 10), np.float32), 0.98)
    assert report["int8"]["verdict"] == "isa_difference" and report["int8"]["passed"]


# --- int8 SOFTMAX: TFLite's own kernel has an arm64 path and another (converters/arm_locate.py ISA_DIFFERENCES) ---

def test_int8_softmax_may_differ_by_one_step_on_arm_as_tflite_documents_and_no_more() -> None:
    from mobiledeploy.converters import arm_locate

    one = {"op": "SOFTMAX", "node": 0, "tensor": 1, "max_steps": 1, "elements": 7, "of": 8036}
    verdict = arm_locate.judge(one)
    assert verdict["verdict"] == "isa_difference" and verdict["tolerance_steps"] == 1
    assert "TFLITE_SOFTMAX_USE_UINT16_LUT" in verdict["why"] and "SoftmaxInt8LUT" in verdict["why"]
    assert arm_locate.judge({**one, "max_steps": 2})["verdict"] == "defect"


def test_the_two_int8_softmax_paths_compute_differently() -> None:
    """The recomputed kernels (tests/softmax_int8.py) agree on most values and differ by one step on a few."""
    from tests.softmax_int8 import float_table_softmax, uint16_table_softmax

    x = _softmax_logits()
    other, arm64 = float_table_softmax(x, 0.05), uint16_table_softmax(x, 0.05)
    steps = np.abs(other.astype(np.int16) - arm64)
    assert steps.max() == 1 and 0 < (steps > 0).sum() < x.size // 100
    probs = (other.astype(np.float64) + 128) / 256  # both are softmax: each row sums to 1 within a step per value
    assert np.all(np.abs(probs.sum(-1) - 1) <= x.shape[-1] / 256)


def _softmax_logits() -> np.ndarray:
    """Attention-like logits: rows of 49 (7x7 tokens), normal with a spread of 40 steps (2 at scale 0.05)."""
    return np.clip(np.round(np.random.default_rng(1).standard_normal((1, 164, 49)) * 40), -128, 127).astype(np.int8)


@pytest.mark.qemu
def test_int8_softmax_on_arm_is_the_uint16_table_path_and_on_the_host_the_float_one(arm_env: Any, tmp_path: Path) -> None:
    """A model of one SOFTMAX: the host's output is the float-table path's exactly, the emulated A76's the uint16
    table's exactly, a few values one step apart, and the Arm check calls that the documented ISA difference."""
    from mobiledeploy.converters.arm_locate import all_outputs_model, first_difference, judge
    from mobiledeploy.qemu.parity import host_run
    from mobiledeploy.qemu.run import run_guest
    from tests.softmax_int8 import float_table_softmax, softmax_model, uint16_table_softmax

    x = _softmax_logits()
    model = softmax_model(tmp_path / "softmax.tflite", x.shape, 0.05)
    (host,), _ = host_run(model, [x])
    arm = run_guest(arm_env, "cortex-a76", model, runs=1, warmup=0, inputs=[x], want_outputs=True)
    assert arm.delegation["not_delegated"] == {"SOFTMAX": 1}  # TFLite's kernel on both, not XNNPACK's
    np.testing.assert_array_equal(host, float_table_softmax(x, 0.05))
    np.testing.assert_array_equal(arm.outputs[0], uint16_table_softmax(x, 0.05))
    found = first_difference(all_outputs_model(model, tmp_path / "every.tflite"), [host], arm.outputs)
    assert found is not None and found["op"] == "SOFTMAX" and found["max_steps"] == 1 and 0 < found["elements"] < 80
    assert judge(found)["verdict"] == "isa_difference"


def test_an_int8_kernel_that_refuses_to_run_is_one_export_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """EdgeNeXt-XXS at 64x64: an int8 DIV by a divisor quantised to zero fails in LiteRT's invoke; one line, no traceback."""
    import ai_edge_litert.interpreter as litert

    from mobiledeploy.converters.parity import tflite_outputs
    from mobiledeploy.errors import ExportError

    class Refusing:
        def __init__(self, **kw: Any) -> None:
            pass

        def allocate_tensors(self) -> None:
            pass

        def get_input_details(self) -> list[dict[str, Any]]:
            return [{"index": 0, "dtype": np.float32, "quantization": (0.0, 0)}]

        get_output_details = get_input_details

        def set_tensor(self, index: int, value: np.ndarray) -> None:
            pass

        def invoke(self) -> None:
            raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.Node number 315 (DIV) "
                               "failed to invoke.\n")

    monkeypatch.setattr(litert, "Interpreter", Refusing)
    with pytest.raises(ExportError, match=r"^LiteRT cannot run model_int8.tflite: tflite/kernels/div.cc:262 .* \(DIV\) "
                                          r"failed to invoke.$"):
        tflite_outputs(Path("model_int8.tflite"), np.zeros((1, 3, 4, 4), np.float32))
