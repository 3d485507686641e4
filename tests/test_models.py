"""Every registered model, the day it is registered: builds, runs, analyses cleanly."""

import pytest
import torch

from mobiledeploy.analysis import analyse_model
from mobiledeploy.registry import build_model, list_models


from mobiledeploy.registry import get_spec

CLASSIFIERS = [n for n in list_models() if get_spec(n).family != "microbench"]
MICROBENCH = [n for n in list_models() if get_spec(n).family == "microbench"]


@pytest.mark.parametrize("name", list_models())
def test_output_shape_and_clean_analysis(name):
    if name in CLASSIFIERS:
        model = build_model(name, num_classes=10)
    else:  # guideline micro-nets end in global pooling: (N, channels)
        model = build_model(name)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))
    assert out.shape[0] == 2 and out.ndim == 2
    if name in CLASSIFIERS:
        assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    report = analyse_model(model, (1, 3, 96, 96))
    assert report.unknown_ops == []
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.macs > 0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_declared_figures_cite_a_source(name):
    spec = get_spec(name)
    assert spec.paper and spec.declared
    assert all(d.source for d in spec.declared.values())


def test_weights_roundtrip_and_mismatch(tmp_path):
    from mobiledeploy.errors import WeightsError
    from mobiledeploy.models.common import load_weights

    src = build_model("v1", g=3, scale=0.25, seed=7)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = build_model("v1", g=3, scale=0.25, seed=0)
    load_weights(dst, str(path))
    assert torch.equal(dst.state_dict()["fc.weight"], src.state_dict()["fc.weight"])
    other = build_model("v1", g=8, scale=0.25)
    with pytest.raises(WeightsError, match="do not fit the model.*wrong shape"):
        load_weights(other, str(path))
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_weights(dst, str(tmp_path / "junk.pt"))
    with pytest.raises(WeightsError, match="not found"):
        load_weights(dst, str(tmp_path / "missing.pt"))
