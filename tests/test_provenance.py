"""The artifact reuse key covers what made the files: the exporting code, the model's own code and data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mobiledeploy.converters.provenance import code_digest, converters_digest, files_digest, model_files
from mobiledeploy.registry import get_spec, register_source

CONVERTERS = Path(__file__).parent.parent / "converters"

HELPER = "def width() -> int:\n    return {width}\n"
NET = """import torch
from torch import nn

import prov_helpers


def build(classes: int = 4) -> nn.Module:
    w = prov_helpers.width()
    return nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(w, classes))
"""


def test_the_converters_digest_is_every_source_of_the_package(tmp_path):
    sources = sorted(p for p in CONVERTERS.rglob("*.py") if "__pycache__" not in p.parts)
    assert converters_digest() == files_digest(CONVERTERS.resolve(), [p.resolve() for p in sources])
    assert any(p.name == "pipeline.py" for p in sources) and any(p.name == "layout.py" for p in sources)
    copy = tmp_path / "converters"
    shutil.copytree(CONVERTERS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    copied = sorted(copy.rglob("*.py"))
    assert files_digest(copy, copied) == converters_digest()  # named relative to the folder: a copy keys the same
    (copy / "layout.py").write_text((copy / "layout.py").read_text() + "\n# one more line\n")
    assert files_digest(copy, copied) != converters_digest()


@pytest.mark.parametrize("arch, module", [("v1", "shufflenet_v1.py"), ("mobilenet_v1", "mobilenet_v1.py"),
                                          ("alexnet", "alexnet.py")])
def test_a_zoo_model_is_keyed_by_its_module_and_the_seeded_init(arch, module):
    root, files = model_files(get_spec(arch))
    assert [f.name for f in files] == sorted([module, "common.py"])
    digest = code_digest(get_spec(arch))
    assert digest["model_files"] == sorted([module, "common.py"]) and len(digest["model"]) == 64
    assert digest["converters"] == converters_digest()


def test_a_zoo_model_s_files_read_from_its_imports_are_those_its_loaded_module_uses(monkeypatch):
    """builtin_files reads the imports of models/*.py (nothing imported); the walk over the imported module's
    globals (what user modules get) must find the same files for every family, or the key would miss one."""
    import sys

    from mobiledeploy.converters import provenance
    from mobiledeploy.registry import list_models, load_builtins

    load_builtins()
    read = {name: model_files(get_spec(name)) for name in list_models()}
    assert [f.name for f in read["levit_128s"][1]] == ["blocks.py", "common.py", "levit.py", "repvit.py"]
    monkeypatch.setattr(provenance, "BUILTIN_PREFIX", "no.such.package.")  # every module takes the loaded walk
    for name in list_models():
        module = sys.modules[get_spec(name).builder.__module__]
        assert model_files(get_spec(name)) == read[name], (name, module.__name__)


def test_a_callables_key_follows_the_modules_it_imports_from_its_folder(tmp_path, monkeypatch):
    (tmp_path / "prov_helpers.py").write_text(HELPER.format(width=8))
    (tmp_path / "prov_net.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "prov_helpers", raising=False)
    spec = get_spec(register_source(f"{tmp_path}/prov_net.py:build"))
    before = code_digest(spec)
    assert before["model_files"] == ["prov_helpers.py", "prov_net.py"]  # not torch, not mobiledeploy
    (tmp_path / "prov_helpers.py").write_text(HELPER.format(width=12))
    after = code_digest(spec)
    assert after["model"] != before["model"] and after["converters"] == before["converters"]


def test_an_onnx_files_key_follows_its_external_data(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.bin",
                    size_threshold=0)
    spec = get_spec(register_source(str(tmp_path / "ext.onnx")))
    before = code_digest(spec)
    assert before["model_files"] == ["ext.bin"]
    data = bytearray((tmp_path / "ext.bin").read_bytes())
    data[0] ^= 0xFF
    (tmp_path / "ext.bin").write_bytes(bytes(data))
    assert code_digest(spec)["model"] != before["model"]


def test_a_changed_helper_rebuilds_the_export_in_place(tmp_path, monkeypatch):
    """End to end through export_model (ONNX only: seconds): reused while nothing changed, rebuilt when the
    imported helper changed though the model file did not (same folder name), and the manifest says why."""
    from mobiledeploy.converters import export_model

    (tmp_path / "prov_helpers.py").write_text(HELPER.format(width=8))
    (tmp_path / "prov_export.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "prov_helpers", raising=False)
    monkeypatch.setenv("MOBILEDEPLOY_ARM_CHECK", "off")
    ref = f"{tmp_path}/prov_export.py:build"
    export = lambda: export_model(ref, {"input_shape": "1x3x16x16"}, formats=("onnx",), out_dir=tmp_path / "out")  # noqa: E731
    first = export()
    assert not first.reused and first.manifest.code["model_files"] == ["prov_export.py", "prov_helpers.py"]
    assert first.manifest.request["code"] == first.manifest.code
    assert first.manifest.calibration["samples"] == 0  # no int8 asked: no calibration inputs made
    assert export().reused
    (tmp_path / "prov_helpers.py").write_text(HELPER.format(width=8) + "# edited\n")
    again = export()
    assert not again.reused and again.path == first.path
    assert again.manifest.code["model"] != first.manifest.code["model"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [first.path.name]
