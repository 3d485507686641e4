"""ShuffleNet v2 guideline micro-nets: exact MACs, registration, verdicts from constructed results."""

import json
from pathlib import Path

import pytest

from mobiledeploy.analysis import analyse
from mobiledeploy.cli import main
from mobiledeploy.errors import ConfigError
from mobiledeploy.guidelines import GUIDELINES, claim_verdict, evaluate, get_guidelines, overall_verdict
from mobiledeploy.models.microbench import g1_channels, g2_channels, g3_series_width
from mobiledeploy.registry import config_slug, get_spec, list_models, parse_model_ref
from mobiledeploy.records import RunResult

HW = 56 * 56


def test_channel_rules_reproduce_the_papers_pairs():
    assert [g1_channels(128, r) for r in (1, 2, 6, 12)] == [(128, 128), (90, 180), (52, 312), (36, 432)]  # Table 1
    assert [g1_channels(32, r) for r in (1, 2, 6, 12)] == [(32, 32), (22, 44), (13, 78), (9, 108)]
    assert [g2_channels(64, g) for g in (1, 2, 4, 8)] == [64, 90, 128, 184]
    assert g3_series_width(64, 2) == 32 and g3_series_width(64, 4) == 23


@pytest.mark.parametrize("ratio", [1, 2, 6, 12])
def test_g1_macs_exact(ratio):
    c1, c2 = g1_channels(32, ratio)
    assert analyse("g1_ratio", 56, ratio=ratio).macs == HW * (3 * c1 + 10 * 2 * c1 * c2)


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_g2_macs_exact(groups):
    c = g2_channels(64, groups)
    report = analyse("g2_groups", 56, groups=groups)
    assert report.macs == HW * (3 * c + 10 * c * c // groups)
    assert {layer.op for layer in report.layers if layer.op.startswith("conv")} == (
        {"conv2d_1x1"} if groups == 1 else {"conv2d_1x1", "conv2d_group"})


@pytest.mark.parametrize("fragments, layout, per_block", [
    (1, "series", 64 * 64), (2, "series", 2 * 64 * 32), (4, "series", 2 * 64 * 23 + 2 * 23 * 23),
    (2, "parallel", 2 * 64 * 32), (4, "parallel", 4 * 64 * 16),
])
def test_g3_macs_exact(fragments, layout, per_block):
    report = analyse("g3_fragments", 56, fragments=fragments, layout=layout)
    assert report.macs == HW * (3 * 64 + 10 * per_block)
    assert sum(layer.op == "concat" for layer in report.layers) == (10 if layout == "parallel" and fragments > 1 else 0)


@pytest.mark.parametrize("relu, shortcut", [(True, True), (False, True), (True, False), (False, False)])
def test_g4_same_macs_fewer_elementwise(relu, shortcut):
    report = analyse("g4_elementwise", 56, relu=relu, shortcut=shortcut)
    assert report.macs == HW * (3 * 64 + 10 * (64 * 16 + 9 * 16 * 16 + 16 * 64))
    ops = [layer.op for layer in report.layers]
    assert ops.count("add") == (10 if shortcut else 0)
    assert ops.count("relu") == 1 + (30 if relu else 0)  # the stem's ReLU stays


def test_families_hold_macs_nearly_fixed():
    """Per-pixel block MACs of every variant within 6% of its family's reference (the paper fixes FLOPs)."""
    g1 = [g1_channels(32, r) for r in (1, 2, 6, 12)]
    g2 = [g2_channels(64, g) ** 2 // g for g in (1, 2, 4, 8)]
    m4 = g3_series_width(64, 4)
    g3 = [64 * 64, 2 * 64 * g3_series_width(64, 2), 2 * 64 * m4 + 2 * m4 * m4, 2 * 64 * 32, 4 * 64 * 16]
    for family in ([c1 * c2 for c1, c2 in g1], g2, g3):
        assert max(family) / min(family) < 1.06, family
    assert len(GUIDELINES) == 4 and [len(g.variants) for g in GUIDELINES] == [4, 4, 5, 4]


def _arch_config(ref):
    return parse_model_ref(ref)


def test_registered_as_microbench():
    assert {"g1_ratio", "g2_groups", "g3_fragments", "g4_elementwise"} <= set(list_models("g*"))
    assert get_spec("g2_groups").family == "microbench"
    assert config_slug("g1_ratio", {"ratio": 2}, (56, 56)) == "g1_ratio-ratio2-56x56"
    assert config_slug("g4_elementwise", {"relu": False}) == "g4_elementwise-relu0-shortcut1"
    with pytest.raises(ConfigError):
        get_spec("g1_ratio").resolve({"ratio": 3})
    with pytest.raises(ConfigError):
        analyse("g3_fragments", 56, fragments=4, layout="parallel", width=30)


def test_get_guidelines():
    assert [g.id for g in get_guidelines("g4, G1")] == ["G4", "G1"]
    assert len(get_guidelines(None)) == 4
    with pytest.raises(ConfigError, match="unknown guideline G5"):
        get_guidelines("G5")


def test_claim_and_overall_verdicts():
    assert claim_verdict(1.2, [1.1, 1.3], 0.03) == "agrees"
    assert claim_verdict(1.02, [1.01, 1.03], 0.03) == "no clear difference"  # significant, too small
    assert claim_verdict(0.8, [0.7, 0.9], 0.03) == "disagrees"
    assert claim_verdict(1.2, [0.9, 1.5], 0.03) == "no clear difference"
    assert claim_verdict(None, None, 0.03) == "no data"
    assert overall_verdict(["agrees", "agrees"]) == "agrees"
    assert overall_verdict(["agrees", "no clear difference"]) == "partly"
    assert overall_verdict(["agrees", "disagrees"]) == "disagrees"
    assert overall_verdict(["no clear difference"]) == "no clear difference"
    assert overall_verdict(["no data"]) == "no data"


def _result(key: str, macs: int, ms: float, n: int = 8) -> RunResult:
    r = RunResult(model=f"{key}-56x56", precision="fp32", device="local", artifact="a", sha256="0", threads=1,
                  runs=0, warmup=0, macs=macs, config={"resolution": [56, 56]}, round=0)
    return r.with_timings([ms * 1000.0] * n)


def _g1_results(times_ms: dict[str, float], macs: dict[str, int]):
    g1 = GUIDELINES[0]
    keys = {v.label: config_slug(*_arch_config(v.ref)) for v in g1.variants}
    return g1, keys, [_result(keys[label], macs[label], t) for label, t in times_ms.items()]


def test_evaluate_g1_per_mac_and_verdicts():
    macs = {"1:1": 1000, "1:2": 950, "1:6": 1000, "1:12": 950}
    g1, keys, results = _g1_results({"1:1": 1.0, "1:2": 1.0, "1:6": 1.25, "1:12": 1.5}, macs)
    out = evaluate(g1, results, keys)
    by = {v.label: v for v in out.variants}
    assert by["1:1"].relative_speed == 1.0 and by["1:12"].relative_speed == pytest.approx(1 / 1.5)
    assert by["1:12"].relative_throughput == pytest.approx(0.95 / 1.5)
    assert by["1:2"].relative_throughput_ci == pytest.approx([0.95, 0.95])  # constant timings: no spread
    claims = {(c.faster, c.slower): c for c in out.claims}
    assert claims[("1:1", "1:12")].ratio == pytest.approx(1.5 * 1000 / 950)
    assert out.verdict == "agrees" and "agrees" in out.summary
    _, _, same = _g1_results({"1:1": 1.0, "1:2": 1.0, "1:6": 1.0, "1:12": 0.95}, macs)
    assert evaluate(g1, same, keys).verdict == "no clear difference"
    _, _, reverse = _g1_results({"1:1": 2.0, "1:2": 1.0, "1:6": 1.0, "1:12": 1.0}, macs)
    assert evaluate(g1, reverse, keys).verdict == "disagrees"
    missing = evaluate(g1, [r for r in results if "ratio12" not in r.model], keys)
    assert missing.variants[-1].status == "failed" and missing.verdict == "partly"
    assert json.dumps(out.to_dict())


def test_guidelines_cli_rejects_bad_input(capsys):
    assert main(["guidelines", "--only", "G5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["guidelines", "--resolution", "abc"]) == 2
    assert main(["guidelines", "--help"]) == 0 and "Example:" in capsys.readouterr().out


@pytest.mark.slow
def test_guidelines_end_to_end_on_local(tmp_path, monkeypatch, capsys, request):
    root = Path(request.config.cache.mkdir("mobiledeploy-guideline-artifacts")).resolve()
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", root)
    monkeypatch.setenv("MOBILEDEPLOY_DB", str(tmp_path / "results.db"))
    code = main(["guidelines", "--device", "local", "--only", "G4", "--resolution", "16", "--rounds", "2",
                 "--runs", "5", "--warmup", "1", "--json", "--report", str(tmp_path / "rep")])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    (g4,) = data["guidelines"]
    assert g4["id"] == "G4" and g4["verdict"] in ("agrees", "disagrees", "partly", "no clear difference")
    assert [v["label"] for v in g4["variants"]] == ["ReLU+shortcut", "no ReLU", "no shortcut", "neither"]
    assert all(v["status"] == "ok" and v["runs"] == 10 for v in g4["variants"])
    assert g4["variants"][0]["relative_speed"] == 1.0
    assert (tmp_path / "rep" / "guidelines.png").stat().st_size > 5000


def test_estimates_sit_beside_the_verdict_and_do_not_decide_it():
    """Each variant's estimate (what `--phone` stores per run) and its speed relative to the reference's estimate;
    the verdict stays on the measured timings even where the estimates say otherwise."""
    macs = {"1:1": 1000, "1:2": 1000, "1:6": 1000, "1:12": 1000}
    g1, keys, results = _g1_results({"1:1": 1.0, "1:2": 1.0, "1:6": 1.25, "1:12": 1.5}, macs)
    estimated = {"1:1": 4.0, "1:2": 4.0, "1:6": 2.0, "1:12": 8.0}
    for r in results:
        label = next(k for k, v in keys.items() if r.model == f"{v}-56x56")
        r.observed["estimate"] = {"kind": "estimated", "phone": "rpi3bplus", "ms": estimated[label], "band_pct": 15.0}
    out = evaluate(g1, results, keys)
    by = {v.label: v for v in out.variants}
    assert by["1:6"].estimated_ms == 2.0 and by["1:6"].estimated_relative_speed == pytest.approx(2.0)
    assert by["1:12"].estimated_relative_speed == pytest.approx(0.5) and by["1:12"].estimated_band_pct == 15.0
    assert by["1:12"].median_ms == pytest.approx(1.5) and out.verdict == "agrees"   # decided by the timings
    results[0].observed.pop("estimate")  # one run without an estimate: that variant shows none, never a mix
    again = {v.label: v for v in evaluate(g1, results, keys).variants}
    assert again["1:1"].estimated_ms is None and again["1:6"].estimated_relative_speed is None


def test_guidelines_phone_needs_its_emulated_core(capsys):
    assert main(["guidelines", "--device", "local", "--phone", "rpi3bplus", "--only", "G4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device qemu:cortex-a53" in err


def test_guidelines_report_shows_estimates_apart(tmp_path):
    from mobiledeploy.report import write_guidelines_report

    macs = {"1:1": 1000, "1:2": 1000, "1:6": 1000, "1:12": 1000}
    g1, keys, results = _g1_results({"1:1": 1.0, "1:2": 1.0, "1:6": 1.25, "1:12": 1.5}, macs)
    for r in results:
        r.observed["estimate"] = {"kind": "estimated", "phone": "rpi3bplus", "ms": 7.5, "band_pct": 15.0}
    md = write_guidelines_report(tmp_path, [evaluate(g1, results, keys)])["markdown"].read_text()
    timed, estimated = md.split("Estimated milliseconds (not measured")
    assert "7.5" not in timed and "| 1:12 | 7.5 | 15 | 1.00x |" in estimated
