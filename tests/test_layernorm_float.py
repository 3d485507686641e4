"""int8 exports keep every LayerNorm in float by default (converters/layernorm.py, pipeline revision 9);
`--float-layers none` gives full-integer int8; a glob is recorded as the names it matched; a net without a
LayerNorm gets the same full-integer file as before the rule. A tiny net at 32x32 (tests/fixtures/layernorm/net.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

NET = Path(__file__).resolve().parent / "fixtures" / "layernorm" / "net.py"
NORM_OPS_KERAS = ["MEAN", "SQUARED_DIFFERENCE", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "MUL", "SUB", "ADD"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Five int8 exports of the net (Arm check off, tests/conftest.py): with its two LayerNorms by default, with
    `none` and with a glob; without LayerNorms by default and with `none`."""
    from mobiledeploy.converters import export_model
    from mobiledeploy.registry import parse_model_ref

    out = tmp_path_factory.mktemp("layernorm")
    runs = {"default": ("", None), "none": ("", "none"), "glob": ("", "*layer_normalization/batchnorm/Rsqrt"),
            "cnn": (":norm=0", None), "cnn_none": (":norm=0", "none")}
    found = {}
    for key, (options, float_layers) in runs.items():
        name, config = parse_model_ref(f"{NET}:build{options}")
        found[key] = export_model(name, config, resolution=32, out_dir=out, formats="int8", float_layers=float_layers)
    return found


def _ops(path: Path) -> list[tuple[str, str, int]]:
    """(op, output name, output type) of every op in a flatbuffer; type 0 is float32, 9 int8."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [(names[max(model.operatorCodes[op.opcodeIndex].builtinCode, model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)],
             graph.tensors[op.outputs[0]].name.decode(), graph.tensors[op.outputs[0]].type) for op in graph.operators]


def test_both_forms_of_a_lowered_layernorm_are_found_by_structure(exports: dict[str, Any]) -> None:
    from mobiledeploy.converters.layernorm import layernorm_outputs

    fp32 = exports["default"].artifact("fp32")
    norms = layernorm_outputs(fp32.read_bytes())
    kinds = {name: op for op, name, _ in _ops(fp32)}
    assert len(norms) == 2
    nchw, keras = ([kinds[n] for n in norm] for norm in norms)
    assert keras == NORM_OPS_KERAS and all("layer_normalization" in n for n in norms[1])
    assert nchw == ["MEAN", "SUB", "MUL", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "ADD"]  # the residual ADD is not the norm's
    assert layernorm_outputs(exports["cnn"].artifact("fp32").read_bytes()) == []


def test_int8_keeps_every_layernorm_in_float_by_default_and_says_why(exports: dict[str, Any]) -> None:
    from mobiledeploy.converters.layernorm import layernorm_outputs

    entry = exports["default"].manifest.artifacts["int8"]
    norms = layernorm_outputs(exports["default"].artifact("fp32").read_bytes())
    record = entry.float_layers
    assert record["requested"] is None and record["chosen_by"].startswith("default: every LayerNorm's ops")
    assert record["layernorms"] == 2 and record["layers"] == list(dict.fromkeys(n.split(";")[0] for m in norms for n in m))
    kinds = {name: op for op, name, _ in _ops(exports["default"].artifact("fp32"))}
    int8 = _ops(exports["default"].artifact("int8"))
    float_ops = [op for op, _, kind in int8 if kind == 0 and op != "DEQUANTIZE"]  # renamed mobiledeploy_float_K
    assert sorted(float_ops) == sorted(kinds[n] for norm in norms for n in norm)  # the norms' ops, and only they
    assert all(kind == 9 for op, name, kind in int8 if op in ("CONV_2D", "FULLY_CONNECTED"))  # the readers stay int8
    assert "but for the float layers" in entry.scheme
    assert entry.delegation.partitions == 1 and entry.delegation.not_delegated == {}  # XNNPACK runs the float norm
    assert exports["default"].manifest.parity["int8"]["passed"]


def test_float_layers_none_gives_full_integer_int8(exports: dict[str, Any]) -> None:
    none = exports["none"]
    assert all(kind == 9 for op, _, kind in _ops(none.artifact("int8")) if op not in ("QUANTIZE", "DEQUANTIZE"))
    assert none.manifest.artifacts["int8"].scheme.startswith("full-integer")
    assert none.manifest.artifacts["int8"].float_layers == {"requested": "none", "layers": [],
                                                            "chosen_by": "--float-layers none: full-integer"}
    assert {"RSQRT", "SQUARED_DIFFERENCE"} <= set(none.manifest.artifacts["int8"].delegation.not_delegated)
    assert none.path != exports["default"].path and none.path.name.startswith(exports["default"].path.name + "-fl")


def test_a_glob_is_recorded_as_the_names_it_matched(exports: dict[str, Any]) -> None:
    record = exports["glob"].manifest.artifacts["int8"].float_layers
    assert record == {"requested": "*layer_normalization/batchnorm/Rsqrt", "chosen_by": "--float-layers names and globs",
                      "layers": ["model/layer_normalization/batchnorm/Rsqrt"]}
    float_ops = [op for op, _, kind in _ops(exports["glob"].artifact("int8")) if kind == 0 and op != "DEQUANTIZE"]
    assert float_ops == ["RSQRT", "MUL"]  # the matched op and its reader (a user's layer keeps its readers in float)


def test_a_net_without_layernorm_gets_the_full_integer_file_it_got_before(exports: dict[str, Any]) -> None:
    default, none = exports["cnn"], exports["cnn_none"]
    assert default.manifest.artifacts["int8"].float_layers is None
    assert default.manifest.artifacts["int8"].scheme.startswith("full-integer")
    assert default.manifest.artifacts["int8"].sha256 == none.manifest.artifacts["int8"].sha256
    assert "-fl" not in default.path.name


def test_float_layers_none_parses_and_is_part_of_the_request() -> None:
    from mobiledeploy.converters.float_layers import parse_float_layers
    from mobiledeploy.converters.pipeline import PIPELINE_REVISION, _request

    assert parse_float_layers("none") == ("none", None) and parse_float_layers(" None ") == ("none", None)
    assert parse_float_layers(None) is None
    default = _request("v1", {}, (32, 32), "synthetic", 4, None, 0)
    none = _request("v1", {}, (32, 32), "synthetic", 4, None, 0, float_layers="none")
    assert PIPELINE_REVISION == default["pipeline"] == 9 and "float_layers" not in default
    assert none["float_layers"] == "none" and none["slug"] != default["slug"]
