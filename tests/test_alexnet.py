"""AlexNet baseline: the 6x6 adaptive pool must match torch and export at every resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobiledeploy.analysis import analyse
from mobiledeploy.registry import build_model
from mobiledeploy.models.alexnet import ExportableAdaptiveAvgPool2d


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (4, 4), (6, 6), (7, 9), (12, 12), (13, 13)])
def test_pool_matches_torch_adaptive_avg_pool(hw):
    x = torch.randn(2, 3, *hw)
    ours = ExportableAdaptiveAvgPool2d((6, 6))(x)
    ref = torch.nn.functional.adaptive_avg_pool2d(x, (6, 6))
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("res", [112])
def test_alexnet_exports_to_onnx_below_224(tmp_path, res):
    import onnxruntime as ort

    from mobiledeploy.converters.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("alexnet").eval()
    path = export_onnx(model, (1, 3, res, res), tmp_path / "alexnet.onnx", simplify=False)
    x = torch.randn(1, 3, res, res)
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


def test_alexnet_cost_at_224_unchanged_by_export_friendly_pool():
    report = analyse("alexnet", 224)
    assert report.macs == pytest.approx(714.2e6, rel=2e-3)
