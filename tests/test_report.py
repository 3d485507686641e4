"""Reports: the PNGs exist and show something, the HTML is self-contained, files are written atomically."""

import re

import numpy as np
import pytest

from mobiledeploy.attribution import OpTime, attribute
from mobiledeploy.compare import compare, load_suite
from mobiledeploy.guidelines import GUIDELINES, evaluate
from mobiledeploy.registry import config_slug, parse_model_ref
from mobiledeploy.files import write_atomic
from mobiledeploy.report import plot_latency_vs_macs, plot_speedups, write_compare_report, write_guidelines_report
from mobiledeploy.records import RunResult

KEYS = {"alexnet": 714_188_480, "shufflenet_v1-g3-scale0.5": 37_600_000, "shufflenet_v1-g3-scale1.0": 137_500_000}
MEDIANS = {"alexnet": 60.0, "shufflenet_v1-g3-scale0.5": 5.0, "shufflenet_v1-g3-scale1.0": 12.0}


def _runs(precision: str, res: str, scale: float):
    rng = np.random.default_rng(0)
    h, w = (int(x) for x in res.split("x"))
    out = []
    for key, macs in KEYS.items():
        for rnd in range(2):
            r = RunResult(model=f"{key}-{res}", precision=precision, device="local", artifact="a", sha256="0", threads=1,
                          runs=0, warmup=0, macs=int(macs * scale), config={"resolution": [h, w]}, round=rnd)
            out.append(r.with_timings(list(MEDIANS[key] * scale * 1000 * (1 + rng.normal(0, 0.02, 15)))))
    return out


@pytest.fixture(scope="module")
def rows():
    suite = load_suite("paper-table8")
    paper = {config_slug(*parse_model_ref(m.ref)): m for m in suite.models}
    results = _runs("fp32", "224x224", 1.0) + _runs("int8", "224x224", 0.6) + _runs("fp32", "480x640", 6.1)
    return compare(results, "alexnet", labels={"alexnet": "AlexNet", "shufflenet_v1-g3-scale0.5": "ShuffleNet 0.5x",
                                               "shufflenet_v1-g3-scale1.0": "ShuffleNet 1x"}, paper=paper)


@pytest.fixture(scope="module")
def attribution():
    layers = [{"name": "stem", "op": "conv2d", "macs": 600, "memory_access": 100},
              {"name": "u.dw", "op": "conv2d_dw", "macs": 100, "memory_access": 200},
              {"name": "u.shuffle", "op": "channel_shuffle", "macs": 0, "memory_access": 150}]
    ops = [OpTime("/stem/Conv", "Conv", "conv", 2.0, "stem"), OpTime("/u/dw/Conv", "Conv", "depthwise", 4.0, "u.dw"),
           OpTime("/u/shuffle/Transpose", "Transpose", "shuffle", 1.5, "u.shuffle")]
    return attribute(layers, ops, model="ShuffleNet 0.5x")


def assert_real_png(path, min_bytes=8000):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    image = mpimg.imread(path)
    h, w = image.shape[:2]
    assert h >= 300 and w >= 500
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 20  # not a single colour: axes, text, bars, points


def test_compare_report_writes_real_plots_and_pages(tmp_path, rows, attribution):
    out = tmp_path / "report"
    written = write_compare_report(out, rows, attributions=[attribution], meta={"device": "local", "threads": 1})
    for name in ("latency_vs_macs.png", "speedups.png", "per_layer_gap.png"):
        assert_real_png(out / name)
        assert written[name] == out / name
    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r"<img[^>]+src='(?!data:)", page)  # self-contained: no external images
    assert "ShuffleNet 0.5x" in page and "184" in page  # the paper's AlexNet latency at 224x224
    markdown = (out / "compare.md").read_text()
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (out / link).is_file()
    assert "| ShuffleNet 0.5x | fp32 | 224x224 |" in markdown
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_guidelines_report(tmp_path):
    g4 = GUIDELINES[3]
    keys = {v.label: config_slug(*parse_model_ref(v.ref)) for v in g4.variants}
    rng = np.random.default_rng(1)
    results = []
    for i, v in enumerate(g4.variants):
        r = RunResult(model=f"{keys[v.label]}-56x56", precision="fp32", device="local", artifact="a", sha256="0",
                      threads=1, runs=0, warmup=0, macs=1000, config={"resolution": [56, 56]})
        results.append(r.with_timings(list(1000 * (1.0 - 0.05 * i) * (1 + rng.normal(0, 0.01, 20)))))
    verdict = evaluate(g4, results, keys)
    assert verdict.verdict == "agrees"
    write_guidelines_report(tmp_path, [verdict], meta={"device": "local"})
    assert_real_png(tmp_path / "guidelines.png", min_bytes=5000)
    assert "G4 (fp32)" in (tmp_path / "guidelines.md").read_text()
    assert verdict.to_dict()["precision"] == "fp32" and "format" not in verdict.to_dict()
    old = {("format" if k == "precision" else k): v for k, v in verdict.to_dict().items()}
    write_guidelines_report(tmp_path / "old", [old], meta={"device": "local"})  # a result saved with `format`
    assert "G4 (fp32)" in (tmp_path / "old" / "guidelines.md").read_text()


def test_rows_saved_before_precision_still_make_a_report(tmp_path, rows, attribution):
    """compare/guidelines dicts written with `format` (the precision's old key) render as those saying `precision`."""
    def old(d):
        return {("format" if k == "precision" else k): v for k, v in d.items()}

    new, was = tmp_path / "new", tmp_path / "old"
    write_compare_report(new, rows, attributions=[attribution])
    write_compare_report(was, [old(r.to_dict()) for r in rows], attributions=[old(attribution.to_dict())])
    assert "format" not in rows[0].to_dict() and "precision" in attribution.to_dict()
    def page(folder):
        return [line for line in (folder / "compare.md").read_text().splitlines() if "generated:" not in line]

    markdown = "\n".join(page(was))
    assert page(was) == page(new) and "| ShuffleNet 0.5x | fp32 | 224x224 |" in markdown
    assert "| model | precision | resolution |" in markdown and "ShuffleNet 0.5x (fp32)" in markdown


def test_plots_without_data_are_skipped(tmp_path):
    assert plot_latency_vs_macs([]) is None and plot_speedups([]) is None
    written = write_compare_report(tmp_path, [])
    assert set(written) == {"html", "markdown"}


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "a" / "file.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two" and [p.name for p in target.parent.iterdir()] == ["file.txt"]
