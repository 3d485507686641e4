"""Per-layer int8 error: a model with one layer of outlier activations is named first, and `--float-layers auto`
keeps that layer in float and recovers the int8 model's agreement with fp32."""

from __future__ import annotations

import numpy as np
import pytest

FRAGILE = '''
import torch
from torch import nn


class Fragile(nn.Module):
    """conv2's first channel is 1000x the others and conv3 scales it back: the same function in float, but one
    int8 scale for conv2's output rounds its seven ordinary channels to almost nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.conv3, self.head = nn.Conv2d(8, 16, 3, padding=1), nn.Linear(16, 10)
        with torch.no_grad():
            self.conv2.weight[0] *= 1000.0
            self.conv2.bias[0] *= 1000.0
            self.conv3.weight[:, 0] /= 1000.0

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(torch.relu(self.conv3(x)).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Fragile()
'''


@pytest.mark.slow
def test_the_layer_with_outlier_activations_is_named_first_and_float_layers_auto_recovers(tmp_path, monkeypatch):
    pytest.importorskip("onnx2tf")
    from mobiledeploy.converters import export_model
    from mobiledeploy.converters.calibration import synthetic_images, normalise
    from mobiledeploy.quant_error import _interpreter, _run, layer_errors
    from mobiledeploy.registry import register_source

    (tmp_path / "fragile.py").write_text(FRAGILE)
    monkeypatch.chdir(tmp_path)
    name = register_source("fragile.py:build")
    res = export_model(name, {"input_shape": "1x3x16x16"}, out_dir=tmp_path / "out", int8_cosine_floor=0.0)
    x = normalise(synthetic_images(8, (16, 16), seed=5), res.manifest["mean"], res.manifest["std"])
    rows = layer_errors(res.artifact("fp32"), res.artifact("int8"), x)
    fp32 = _interpreter(res.artifact("fp32"))
    _run(fp32, x[0])
    by_name = {t["name"].split(";")[0]: t for t in fp32.get_tensor_details()}

    def outlier_ratio(row):  # largest channel's peak over the median channel's peak, in the float model
        value = np.abs(fp32.get_tensor(by_name[row["tensor"]]["index"]))
        peaks = value.reshape(-1, value.shape[-1]).max(axis=0) if value.ndim == 4 else np.array([1.0])
        return float(peaks.max() / max(np.median(peaks), 1e-12))

    assert rows[0]["op"] == "CONV_2D" and outlier_ratio(rows[0]) > 100, rows[:3]
    assert rows[0]["added_db"] > rows[1]["added_db"] + 10 and rows[0]["nsr_db"] > -20, rows[:3]

    fixed = export_model(name, {"input_shape": "1x3x16x16"}, out_dir=tmp_path / "out", int8_cosine_floor=0.0,
                         float_layers="auto")
    entry = fixed.manifest["artifacts"]["int8"]
    assert fixed.path != res.path and fixed.path.name.startswith(res.path.name + "-fl")
    assert entry["float_layers"]["layers"] == [rows[0]["tensor"]] and entry["float_layers"]["requested"] == "auto"
    assert entry["op_counts"].get("DEQUANTIZE") == 1 and entry["op_counts"].get("QUANTIZE") == 1
    before, after = res.manifest["parity"]["int8"]["sqnr_db"], fixed.manifest["parity"]["int8"]["sqnr_db"]
    assert before < 25 and after > before + 20, (before, after)


def test_float_layers_values():
    from mobiledeploy.converters.float_layers import parse_float_layers, worst_layers
    from mobiledeploy.errors import ConfigError

    assert parse_float_layers("auto") == ("auto", 1) and parse_float_layers("auto:3") == ("auto", 3)
    assert parse_float_layers(" a/b , c ") == ("names", ["a/b", "c"]) and parse_float_layers("") is None
    with pytest.raises(ConfigError, match="auto:N takes a positive N"):
        parse_float_layers("auto:0")
    rows = [{"op": "INPUT", "tensor": "input", "added_db": 0.0}, {"op": "CONV_2D", "tensor": "x", "added_db": 9.0},
            {"op": "MEAN", "tensor": "y", "added_db": 2.0}, {"op": "ADD", "tensor": "z", "added_db": -1.0}]
    assert worst_layers(sorted(rows, key=lambda r: -r["added_db"]), 5) == ["x", "y"]
