"""Per-layer attribution: op categories, profile parsing, the join to the analysis, real profiles."""

from pathlib import Path

import pytest

from mobiledeploy.analysis import analyse, layer_owner
from mobiledeploy.attribution import (
    OpProfile, OpTime, analysis_category, attribute, conv_category, module_path_of_onnx_node,
    onnx_category, onnx_op_times, op_times_from_profile, parse_ort_profile, tflite_category, tflite_op_categories,
)
from tests.conftest_bench import tiny_tflite  # noqa: F401  (session fixture: a 6-op fp32/int8 CNN)

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"


def test_categories_match_the_analysis_classes():
    assert conv_category(32, 64, [1, 1], 32) == "conv1x1"
    assert conv_category(3, 24, [3, 3], 3) == "conv"
    assert conv_category(240, 60, [1, 1], 80) == "group_conv"
    assert conv_category(60, 60, [3, 3], 1) == "depthwise"
    assert [analysis_category(op) for op in ("conv2d_1x1", "conv2d_group", "conv2d_dw", "conv2d", "linear")] == [
        "conv1x1", "group_conv", "depthwise", "conv", "fc"]
    assert analysis_category("channel_shuffle") == "shuffle" and analysis_category("relu") == "elementwise"
    assert analysis_category("batch_norm") is None and analysis_category("dropout") is None  # removed by export
    assert onnx_category("FusedConv", [[1, 30, 56, 56], [30, 1, 3, 3]]) == "depthwise"
    assert onnx_category("Conv", [[1, 30, 28, 28], [108, 10, 1, 1]]) == "group_conv"
    assert onnx_category("Transpose") == "shuffle" and onnx_category("Gemm") == "fc" and onnx_category("Relu") == "elementwise"


def test_tflite_and_xnnpack_names():
    assert tflite_category("DEPTHWISE_CONV_2D") == "depthwise"
    assert tflite_category("CONV_2D") == "conv_any"
    assert tflite_category("TRANSPOSE") == "shuffle"
    assert tflite_category("Convolution (NHWC, F32) GEMM") == "pointwise"
    assert tflite_category("Convolution (NHWC, QS8) IGEMM") == "conv"
    assert tflite_category("Convolution (NHWC, F32) DWConv") == "depthwise"
    assert tflite_category("Fully Connected (NC, QS8) GEMM") == "fc"
    assert tflite_category("Transpose (ND, X32)") == "shuffle"
    assert tflite_category("Global Average Pooling (NWC, F32)") == "pool"
    assert tflite_category("TfLiteXNNPackDelegate") == "other"


def test_module_paths_from_onnx_node_names():
    assert module_path_of_onnx_node("/stage2/stage2.0/gconv1/Conv") == "stage2.0.gconv1"
    assert module_path_of_onnx_node("/stage2/stage2.0/Concat") == "stage2.0"
    assert module_path_of_onnx_node("/stage2/stage2.0/branch1/branch1.0/branch1.0.0/Conv") == "stage2.0.branch1.0.0"
    assert module_path_of_onnx_node("fused /classifier/classifier.1/Gemm") == "classifier.1"
    assert module_path_of_onnx_node("Reshape_12") is None
    assert layer_owner("stage2.1.add", "add") == "stage2.1" and layer_owner("stage2.0.shuffle", "channel_shuffle") == "stage2.0.shuffle"


def test_every_analysed_layer_records_its_module():
    """Names cannot be read back for sure: module `relu1` calling relu is named 'stage2.0.relu1', which
    reads back as module 'stage2.0'. So the analysis records the module and attribution uses it."""
    report = analyse("shufflenet_v1", 64, g=3, scale=0.25)
    by_name = {layer.name: layer for layer in report.layers}
    assert by_name["stage2.0.relu1"].module == "stage2.0.relu1" and by_name["stage2.0.concat"].module == "stage2.0"
    assert layer_owner("stage2.0.relu1", "relu") == "stage2.0"  # what the name alone would have said
    assert all(layer.name.startswith(layer.module) for layer in report.layers)


def test_parse_ort_profile_takes_medians_after_warmup():
    def node(name, op, dur, shapes):
        return {"cat": "Node", "name": f"{name}_kernel_time", "dur": dur,
                "args": {"op_name": op, "input_type_shape": [{"float": s} for s in shapes]}}

    events = []
    for dur in (900, 100, 110, 120):  # the first run is warm-up
        events.append({"cat": "Session", "name": "model_run", "dur": dur * 3})
        events.append(node("/a/conv/Conv", "FusedConv", dur, [[1, 8, 4, 4], [8, 8, 1, 1]]))
        events.append(node("/a/Add", "Add", dur // 10, [[1, 8, 4, 4], [1, 8, 4, 4]]))
    profile = parse_ort_profile(events, skip=1)
    conv, add = profile.ops
    assert (conv.module, conv.category, conv.time_ms) == ("a.conv", "conv1x1", pytest.approx(0.110))
    assert (add.module, add.category, add.time_ms) == ("a", "add", pytest.approx(0.011))
    assert profile.run_ms == pytest.approx(0.330)


LAYERS = [  # name, op, macs, memory_access (elements)
    {"name": "stem", "op": "conv2d", "macs": 600, "memory_access": 100},
    {"name": "stem_bn", "op": "batch_norm", "macs": 0, "memory_access": 999},
    {"name": "u.pw", "op": "conv2d_1x1", "macs": 300, "memory_access": 50},
    {"name": "u.dw", "op": "conv2d_dw", "macs": 100, "memory_access": 200},
    {"name": "u.shuffle", "op": "channel_shuffle", "macs": 0, "memory_access": 150},
    {"name": "u.add", "op": "add", "macs": 0, "memory_access": 100},
]


def test_join_shares_rates_and_layers_exactly():
    ops = [OpTime("/stem/Conv", "FusedConv", "conv", 2.0, "stem"),
           OpTime("/u/pw/Conv", "FusedConv", "conv1x1", 1.0, "u.pw"),
           OpTime("/u/dw/Conv", "Conv", "depthwise", 4.0, "u.dw"),
           OpTime("/u/shuffle/Reshape", "Reshape", "reshape", 0.5, "u.shuffle"),
           OpTime("/u/shuffle/Transpose", "Transpose", "shuffle", 1.5, "u.shuffle"),
           OpTime("/u/Add", "Add", "add", 1.0, "u")]
    att = attribute(LAYERS, OpProfile(ops, "test", 11.0), bytes_per_element=4, model="m")
    cats = {c.category: c for c in att.categories}
    assert att.time_ms == 10.0 and att.macs == 1000 and att.memory_bytes == 600 * 4  # BN left out
    dw = cats["depthwise"]
    assert (dw.time_share, dw.mac_share, dw.memory_share) == (0.4, 0.1, pytest.approx(200 / 600))
    assert dw.gap == pytest.approx(0.3)
    assert dw.gmacs_per_s == pytest.approx(100 / 0.004 / 1e9)
    assert dw.gbytes_per_s == pytest.approx(800 / 0.004 / 1e9)
    assert dw.macs_per_byte == pytest.approx(100 / 800)
    assert cats["shuffle"].ops == 2 and cats["shuffle"].time_share == pytest.approx(0.2)  # reshapes join the shuffle
    assert [c.category for c in att.top_categories(2)] == ["depthwise", "shuffle"]
    assert cats["conv"].gap == pytest.approx(0.2 - 0.6)
    layers = {r.name: r for r in att.layers}
    assert set(layers) == {"stem", "u.pw", "u.dw", "u.shuffle", "u.add"} and att.unmatched_ops == []
    assert layers["u.shuffle"].time_ms == pytest.approx(2.0) and layers["u.add"].time_share == pytest.approx(0.1)
    assert att.layers[0].name == "u.dw"


def test_coarse_profiles_merge_what_they_cannot_split():
    ops = [OpTime("Delegate/Convolution (NHWC, F32) GEMM:0", "Convolution (NHWC, F32) GEMM", "pointwise", 3.0),
           OpTime("Delegate/Convolution (NHWC, F32) IGEMM:1", "Convolution (NHWC, F32) IGEMM", "conv", 1.0)]
    layers = LAYERS + [{"name": "u.g", "op": "conv2d_group", "macs": 200, "memory_access": 10}]
    att = attribute(layers, ops, bytes_per_element=1, precision="int8")
    assert att.precision == "int8" and att.to_dict()["precision"] == "int8" and "format" not in att.to_dict()
    cats = {c.category: c for c in att.categories}
    assert cats["pointwise"].layers == 2 and cats["pointwise"].macs == 500  # 1x1 + group conv
    assert cats["conv"].macs == 600 and att.layers == []
    assert any("merged into pointwise" in n for n in att.notes)
    assert any("by op type only" in n for n in att.notes)


def test_benchmark_model_op_profile_fixture_joined_to_mobilenet():
    """The RISC-V MobileNet v1 1.0-224 run (tests/fixtures): builtin ops, no .tflite to split CONV_2D."""
    from mobiledeploy.analysis import analyse
    from mobiledeploy.benchmark_output import parse_benchmark_output

    parsed = parse_benchmark_output((FIXTURES / "riscv_mobilenet_v1_op_profiling.txt").read_text())
    profile = op_times_from_profile(parsed["op_profile"])
    assert len(profile.ops) == 31 and profile.ops[1].category == "depthwise"
    att = attribute(analyse("mobilenet_v1", 224).layers, profile)
    cats = {c.category: c for c in att.categories}
    total = 2651.86 + 296.924 + 0.869 + 0.017 + 0.233
    assert att.time_ms == pytest.approx(total)
    assert cats["depthwise"].time_share == pytest.approx(296.924 / total)
    assert cats["conv_any"].time_share == pytest.approx(2651.86 / total)
    assert cats["depthwise"].mac_share == pytest.approx(17_385_984 / 568_740_352)
    assert att.top_categories(1)[0].category == "depthwise"  # memory-bound: more time than MACs
    assert cats["depthwise"].macs_per_byte < cats["conv_any"].macs_per_byte


def test_tflite_op_categories_split_convs(tiny_tflite):  # noqa: F811
    assert tflite_op_categories(tiny_tflite["fp32"]) == {0: "conv", 1: "depthwise", 2: "conv1x1", 3: "pool", 4: "fc"}
    rows = [{"node_type": "CONV_2D", "name": "[x]:2", "avg_ms": 1.5}, {"node_type": "MEAN", "name": "[m]:3", "avg_ms": 0.5}]
    ops = op_times_from_profile(rows, tiny_tflite["fp32"]).ops
    assert [(o.category, o.time_ms) for o in ops] == [("conv1x1", 1.5), ("pool", 0.5)]


def test_onnx_runtime_profile_of_a_real_model_joins_every_conv(tmp_path):
    from mobiledeploy.analysis import analyse_model
    from mobiledeploy.converters.onnx_export import export_onnx
    from mobiledeploy.registry import build_model

    model = build_model("g3_fragments", fragments=2, layout="parallel", width=16, blocks=2)
    path = export_onnx(model, (1, 3, 16, 16), tmp_path / "m.onnx")
    profile = onnx_op_times(path, runs=3, warmup=1)
    assert "onnxruntime" in profile.source and profile.run_ms > 0
    report = analyse_model(model, (1, 3, 16, 16))
    att = attribute(report.layers, profile)
    convs = [layer.name for layer in report.layers if layer.op.startswith("conv")]
    assert len(convs) == 5 and {r.name for r in att.layers} >= set(convs)
    assert {c.category for c in att.categories if c.ops} >= {"conv1x1", "concat"}
    assert att.unmatched_ops == []
