"""Theory vs measurement: speedup arithmetic on constructed RunResults, suites, one end-to-end compare."""

import json
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.cli import main
from mobiledeploy.compare import (
    CompareRow, SuiteError, compare, efficiency, load_suite, measured_speedup, parse_suite, slug_key,
    pooled_timings_us, resolution_label, round_speedups, theoretical_speedup,
)
from mobiledeploy.records import RunResult

ALEX = "alexnet"
V1 = "shufflenet_v1-g3-scale0.5"


def run(model: str, precision: str, res: str, macs: int | None, timings_ms: list[float], rnd: int = 0, ok: bool = True) -> RunResult:
    h, w = (int(x) for x in res.split("x"))
    result = RunResult(model=f"{model}-{res}", precision=precision, device="local", artifact=f"/a/{model}.tflite", sha256="0",
                       threads=1, runs=0, warmup=0, macs=macs, config={"resolution": [h, w]}, round=rnd)
    if not ok:
        return result.failed("boom")
    return result.with_timings([t * 1000.0 for t in timings_ms])


def test_arithmetic_is_exact():
    assert theoretical_speedup(720e6, 40e6) == 18.0
    assert measured_speedup(184.0, 15.2) == pytest.approx(12.105263, rel=1e-6)
    assert efficiency(13.0, 18.0) == pytest.approx(0.722222, rel=1e-6)
    with pytest.raises(ValueError):
        theoretical_speedup(720e6, 0)
    with pytest.raises(ValueError):
        measured_speedup(0, 1.0)


def test_keys_and_resolution_from_results():
    r = run(V1, "fp32", "480x640", 1, [1.0])
    assert slug_key(r.model) == V1 and resolution_label(r) == "480x640"
    r.config.pop("resolution")
    assert resolution_label(r) == "480x640"  # from the slug


def test_speedup_efficiency_and_ci_from_constant_timings():
    """Constant timings: every bootstrap median is the same, so the interval collapses on the point."""
    results = [run(ALEX, "fp32", "224x224", 720_000_000, [180.0] * 10, rnd) for rnd in range(2)]
    results += [run(V1, "fp32", "224x224", 40_000_000, [15.0] * 10, rnd) for rnd in range(2)]
    rows = compare(results, ALEX, labels={ALEX: "AlexNet", V1: "ShuffleNet 0.5x"})
    base, row = rows
    assert base.baseline and base.model == "AlexNet" and base.measured_speedup == 1.0 and base.efficiency == 1.0
    assert row.model == "ShuffleNet 0.5x" and row.runs == 20 and row.rounds == 2
    assert row.median_ms == pytest.approx(15.0)
    assert row.theoretical_speedup == 18.0
    assert row.measured_speedup == pytest.approx(12.0)
    assert row.measured_speedup_ci == pytest.approx([12.0, 12.0])
    assert row.efficiency == pytest.approx(12.0 / 18.0)
    assert row.efficiency_ci == pytest.approx([12.0 / 18.0] * 2)
    assert row.gmacs_per_s == pytest.approx(40e6 / 0.015 / 1e9)
    assert row.to_dict()["round_speedups"] == pytest.approx([12.0, 12.0])


def test_each_runtime_is_set_against_the_baseline_timed_by_the_same_runtime():
    """Two runtimes in one session (TFLite and ONNX Runtime on the same exports): never pooled, each its own cells."""
    results = []
    for rnd in range(2):
        for runtime, alex_ms, v1_ms in (("litert", 180.0, 15.0), ("onnxruntime", 90.0, 30.0)):
            pair = [run(ALEX, "fp32", "224x224", 720_000_000, [alex_ms] * 5, rnd),
                    run(V1, "fp32", "224x224", 40_000_000, [v1_ms] * 5, rnd)]
            for r in pair:
                r.runtime = runtime
            results += pair
    failed = {"key": V1, "precision": "fp32", "resolution": "480x640", "runtime": "onnxruntime", "error": "export failed: x"}
    rows = compare(results, ALEX, failures=[failed])
    got = {(r.runtime, r.resolution, r.key): (r.median_ms, r.measured_speedup, r.runs) for r in rows}
    assert got[("litert", "224x224", V1)] == (pytest.approx(15.0), pytest.approx(12.0), 10)
    assert got[("onnxruntime", "224x224", V1)] == (pytest.approx(30.0), pytest.approx(3.0), 10)
    assert got[("onnxruntime", "224x224", ALEX)][:2] == (pytest.approx(90.0), 1.0)
    assert got[("onnxruntime", "480x640", V1)] == (None, None, 0) and len(rows) == 5
    assert [(r.runtime, r.key) for r in rows if r.resolution == "224x224"] == [
        ("litert", ALEX), ("litert", V1), ("onnxruntime", ALEX), ("onnxruntime", V1)]
    assert rows[-1].to_dict()["runtime"] == "onnxruntime" and rows[-1].error == "export failed: x"


def counted(model: str, counts: list[int], est_ms: float | None, phone: str = "sd820") -> RunResult:
    """A qemu: run (exact instructions, no ms) and, with `est_ms`, the estimate `bench --phone` stores beside."""
    r = RunResult(model=f"{model}-224x224", precision="fp32", device="qemu:cortex-a57", artifact=f"/a/{model}.tflite",
                  sha256="0", threads=1, runs=len(counts), warmup=0, macs=1000, config={"resolution": [224, 224]})
    r.instruction_counts, r.instructions = counts, float(np.median(counts))
    if est_ms is not None:
        r.observed["estimate"] = {"kind": "estimated", "phone": phone, "phone_label": f"{phone} label", "ms": est_ms,
                                "band_pct": 12.0, "calibration": "fitted on one model"}
    return r


def test_estimated_ms_sit_apart_from_the_instruction_speedup():
    """qemu: runs with a phone's estimate: the speedup of the exact counts and the estimated one side by side,
    never an estimate in median_ms; a cell where one run lacks its estimate shows none."""
    rows = compare([counted(ALEX, [600, 600], 184.0), counted(V1, [50, 50], 20.0)], ALEX)
    base, row = rows
    assert row.unit == "instructions" and row.median_ms is None and row.gmacs_per_s is None
    assert row.measured_speedup == pytest.approx(12.0)              # instruction ratio, exact
    assert row.estimated_ms == 20.0 and row.estimated_speedup == pytest.approx(9.2)
    assert base.estimated_speedup == 1.0 and row.estimate_phone == "sd820" and row.estimated_band_pct == 12.0
    assert row.to_dict()["estimate_phone_label"] == "sd820 label" and row.to_dict()["estimated_ms"] == 20.0
    mixed = compare([counted(ALEX, [600], 184.0), counted(V1, [50], 20.0), counted(V1, [50], None)], ALEX)[1]
    assert mixed.estimated_ms is None and mixed.estimated_speedup is None and mixed.measured_speedup == 12.0
    other = compare([counted(ALEX, [600], 184.0, "pixel4"), counted(V1, [50], 20.0)], ALEX)[1]
    assert other.estimated_ms == 20.0 and other.estimated_speedup is None  # two phones' estimates are not set together


def test_ci_brackets_the_point_and_matches_stats():
    from mobiledeploy.stats import ratio_of_medians_ci

    rng = np.random.default_rng(3)
    base_ms = list(100 + rng.normal(0, 2, 40))
    model_ms = list(10 + rng.normal(0, 0.5, 40))
    rows = compare([run(ALEX, "int8", "224x224", 700, base_ms), run(V1, "int8", "224x224", 70, model_ms)], ALEX)
    row = rows[1]
    point, low, high = ratio_of_medians_ci([t * 1000 for t in base_ms], [t * 1000 for t in model_ms])
    assert row.measured_speedup == pytest.approx(point)
    assert row.measured_speedup_ci == pytest.approx([low, high])
    assert low < row.measured_speedup < high and 8 < low and high < 12
    assert row.efficiency == pytest.approx(point / 10.0)


def test_rows_pair_the_baseline_of_the_same_format_and_resolution():
    results = [
        run(ALEX, "fp32", "224x224", 100, [10.0, 10.0]), run(ALEX, "int8", "224x224", 100, [5.0, 5.0]),
        run(ALEX, "fp32", "480x640", 600, [60.0, 60.0]),
        run(V1, "fp32", "224x224", 10, [2.0, 2.0]), run(V1, "int8", "224x224", 10, [2.5, 2.5]),
        run(V1, "fp32", "480x640", 60, [6.0, 6.0]),
    ]
    rows = {(r.key, r.precision, r.resolution): r for r in compare(results, ALEX)}
    assert rows[(V1, "fp32", "224x224")].measured_speedup == pytest.approx(5.0)
    assert rows[(V1, "int8", "224x224")].measured_speedup == pytest.approx(2.0)
    assert rows[(V1, "fp32", "480x640")].measured_speedup == pytest.approx(10.0)
    order = [(r.resolution, r.precision, r.baseline) for r in compare(results, ALEX)]
    assert order[0] == ("224x224", "fp32", True) and order[-1][0] == "480x640"


def test_failures_and_missing_baseline_leave_speedups_empty():
    results = [run(ALEX, "fp32", "224x224", 100, [1.0], ok=False), run(V1, "fp32", "224x224", 10, [1.0, 1.0])]
    # a failure dict saved before `precision` says `format`: it is read the same
    rows = compare(results, ALEX, failures=[{"key": "mobilenet_v1-alpha1.0", "format": "fp32",
                                             "resolution": "224x224", "error": "export failed: x"}])
    by_key = {r.key: r for r in rows}
    assert by_key[ALEX].status == "failed" and by_key[ALEX].error == "boom"
    assert by_key[V1].status == "ok" and by_key[V1].measured_speedup is None and by_key[V1].theoretical_speedup is None
    assert by_key["mobilenet_v1-alpha1.0"].error == "export failed: x"


def test_summary_only_results_count_one_value_per_round():
    r = run(V1, "fp32", "224x224", 1, [1.0])
    r.timings_us, r.median_ms = None, 4.0
    assert pooled_timings_us([r]) == [4000.0]
    a = [run(ALEX, "fp32", "224x224", 1, [10.0], rnd) for rnd in (0, 1)]
    b = [run(V1, "fp32", "224x224", 1, [t], rnd) for rnd, t in ((0, 2.0), (1, 5.0))]
    assert round_speedups(a, b) == pytest.approx([5.0, 2.0])


def test_paper_columns_from_the_shipped_suite():
    suite = load_suite("paper-table8")
    assert suite.baseline == "alexnet" and suite.resolutions == ("224x224", "480x640", "720x1280")
    by_ref = {m.ref: m for m in suite.models}
    alex, half = by_ref["alexnet"], by_ref["shufflenet_v1:g=3,scale=0.5"]
    assert alex.paper_ms["224x224"] == 184.0 and half.paper_ms["720x1280"] == 260.1
    results = [run(ALEX, "fp32", "224x224", 714, [50.0, 50.0]), run(V1, "fp32", "224x224", 38, [5.0, 5.0])]
    rows = compare(results, ALEX, paper={ALEX: alex, V1: half})
    row = rows[1]
    assert row.paper_ms == 15.2
    assert row.paper_measured_speedup == pytest.approx(184.0 / 15.2)  # the paper's "~13x" at 224
    assert row.paper_theoretical_speedup == pytest.approx(720 / 38)  # "~18x"
    assert row.paper_efficiency == pytest.approx((184.0 / 15.2) / (720 / 38))
    assert isinstance(row, CompareRow) and json.dumps(row.to_dict())


GOOD = {"schema_version": 1, "name": "s", "baseline": "alexnet", "resolutions": ["224x224"],
        "models": [{"ref": "alexnet", "paper": {"macs": 720e6, "ms": {"224x224": 184.0}}}, {"ref": "v1:g=3"}]}


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 2}, "schema_version"),
    ({"models": []}, "non-empty 'models'"),
    ({"baseline": "resnet"}, "'baseline' must be one of"),
    ({"resolutions": ["224"]}, "HxW"),
    ({"formats": ["fp16"]}, "'formats'"),
    ({"precisions": ["fp16"]}, "'precisions'"),
    ({"precisions": ["fp32"], "formats": ["fp32"]}, "not both"),
    ({"threads": 0}, "'threads'"),
    ({"models": [{"ref": "alexnet", "paper": {"ms": {"224x224": -1}}}]}, "positive number"),
    ({"models": [{"label": "no ref"}]}, "needs a 'ref'"),
])
def test_bad_suites_raise_one_line_suite_errors(change, message):
    with pytest.raises(SuiteError, match=message) as info:
        parse_suite({**GOOD, **change}, "bad.json")
    assert "\n" not in str(info.value) and str(info.value).startswith("suite bad.json:")
    assert parse_suite(GOOD).threads == 1


def test_a_suite_names_its_precisions_under_either_key():
    """Suite files say "formats" (they hold precisions); "precisions" is read too; Suite has `precisions` only."""
    assert parse_suite(GOOD).precisions == ("fp32",) and load_suite("paper-table8").precisions == ("fp32", "int8")
    assert parse_suite({**GOOD, "formats": ["int8", "fp32"]}).precisions == ("int8", "fp32")
    assert parse_suite({**GOOD, "precisions": ["int8"]}).precisions == ("int8",)
    assert not hasattr(parse_suite(GOOD), "formats")


def test_bad_suite_on_the_command_line_exits_2(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    assert main(["compare", "--suite", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid JSON" in err
    assert main(["compare", "--suite", "no-such-suite"]) == 2
    assert "unknown suite 'no-such-suite'" in capsys.readouterr().err
    assert main(["compare", "--device", "local", "--resolutions", "64x64", "--formats", "fp16"]) == 2
    assert main(["compare", "--help"]) == 0 and "Example:" in capsys.readouterr().out


@pytest.fixture(scope="session")
def artifacts_root(request: pytest.FixtureRequest) -> Path:
    """Exports shared by the end-to-end tests, kept in pytest's cache between sessions."""
    return Path(request.config.cache.mkdir("mobiledeploy-compare-artifacts")).resolve()


@pytest.mark.slow
def test_compare_end_to_end_on_local(artifacts_root, tmp_path, monkeypatch, capsys):
    """v1 0.25x against MobileNet 0.25 at 64x64 (AlexNet's 6x6 pool only exports near 224)."""
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", artifacts_root)
    monkeypatch.setenv("MOBILEDEPLOY_DB", str(tmp_path / "results.db"))
    code = main(["compare", "--device", "local", "--models", "v1:g=3,scale=0.25", "--baseline", "mobilenet_v1:alpha=0.25",
                 "--resolutions", "64x64", "--formats", "fp32", "--rounds", "2", "--runs", "5", "--warmup", "1",
                 "--json", "--report", str(tmp_path / "report")])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    rows = {r["key"]: r for r in data["rows"]}
    base, row = rows["mobilenet_v1-alpha0.25"], rows["shufflenet_v1-g3-scale0.25"]
    assert base["baseline"] and base["measured_speedup"] == 1.0
    for key in ("model", "precision", "resolution", "macs", "median_ms", "theoretical_speedup", "measured_speedup",
                "measured_speedup_ci", "efficiency"):
        assert row[key] is not None, key
    assert row["resolution"] == "64x64" and row["precision"] == "fp32" and "format" not in row and row["runs"] == 10
    assert row["theoretical_speedup"] == pytest.approx(base["macs"] / row["macs"])
    assert row["measured_speedup"] == pytest.approx(base["median_ms"] / row["median_ms"])
    low, high = row["measured_speedup_ci"]
    assert low <= row["measured_speedup"] <= high
    assert row["efficiency"] == pytest.approx(row["measured_speedup"] / row["theoretical_speedup"])
    assert {a["model"] for a in data["attribution"]} == {"v1:g=3,scale=0.25", "mobilenet_v1:alpha=0.25"}
    from mobiledeploy.results import ResultsStore
    from mobiledeploy.records import RunResult
    from mobiledeploy.stability import flagged

    stored = [RunResult.from_dict(r) for r in ResultsStore(tmp_path / "results.db").list()
              if r["session_id"] == data["session"]]
    assert len(stored) == 4 and data["unstable_runs"] == flagged(stored)  # 2 models x 2 rounds, as stored
    report = tmp_path / "report"
    assert {"compare.html", "compare.md", "latency_vs_macs.png", "speedups.png", "per_layer_gap.png"} <= {
        p.name for p in report.iterdir()}
    assert "data:image/png;base64," in (report / "compare.html").read_text()


def test_compare_judges_stored_runs_from_result_files(tmp_path, capsys):
    """compare --results: the table from runs already stored (e.g. on a phone last week), nothing measured."""
    rng = np.random.default_rng(0)
    alex_ms, v1_ms = list(50 + rng.random(12)), list(4 + rng.random(12) / 10)
    runs = [run(ALEX, "fp32", "224x224", 714_188_480, alex_ms), run(V1, "fp32", "224x224", 37_589_856, v1_ms),
            run("mobilenet_v1-alpha0.25", "fp32", "224x224", 14_000_000, [1.0] * 12)]  # not asked for: left out
    for r in runs:
        r.run_id = r.model
    stored = tmp_path / "runs.json"
    stored.write_text(json.dumps({"results": [r.to_dict() for r in runs]}))
    code = main(["compare", "--results", str(stored), "--models", "v1:g=3,scale=0.5", "--baseline", "alexnet",
                 "--resolutions", "224x224", "--formats", "fp32", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code in (0, None) and out["status"] == "stored runs" and out["device"] == "local"
    rows = {row["key"]: row for row in out["rows"]}
    assert set(rows) == {ALEX, V1}
    assert rows[V1]["measured_speedup"] == pytest.approx(float(np.median(alex_ms)) / float(np.median(v1_ms)))
    assert rows[V1]["theoretical_speedup"] == pytest.approx(714_188_480 / 37_589_856)

    assert main(["compare", "--results", str(stored), "--models", "squeezenet", "--baseline", "alexnet",
                 "--formats", "int8"]) == 2
    assert "no run in" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text('{"what": 1}')
    assert main(["compare", "--results", str(tmp_path / "junk.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not results JSON" in err and "Traceback" not in err


@pytest.mark.qemu
@pytest.mark.slow
def test_compare_with_a_phone_shows_the_estimate_each_run_stored(arm_env, artifacts_root, tmp_path, monkeypatch, capsys):
    """compare --phone on a qemu: device (one run each at 64x64, the exports of the test above): each row's
    estimated ms is the estimate its stored run carries (what `bench --phone` stores), apart from the exact
    counts; the estimated speedup is the ratio of those two stored estimates."""
    import shutil

    from mobiledeploy.records import RunResult
    from mobiledeploy.results import ResultsStore

    if not (shutil.which("llvm-mca") or shutil.which("llvm-mca-14")):
        pytest.skip("llvm-mca is not installed (make arm)")
    monkeypatch.setattr("mobiledeploy.converters.pipeline.DEFAULT_OUT", artifacts_root)
    monkeypatch.setenv("MOBILEDEPLOY_DB", str(tmp_path / "results.db"))
    code = main(["compare", "--device", "qemu:cortex-a53", "--phone", "rpi3bplus", "--models", "v1:g=3,scale=0.25",
                 "--baseline", "mobilenet_v1:alpha=0.25", "--resolutions", "64x64", "--formats", "fp32",
                 "--runs", "1", "--warmup", "1", "--json"])
    out, err = capsys.readouterr()
    assert code in (0, None), err
    data = json.loads(out)
    rows = {r["key"]: r for r in data["rows"]}
    base, row = rows["mobilenet_v1-alpha0.25"], rows["shufflenet_v1-g3-scale0.25"]
    stored = {r.model.rsplit("-64x64", 1)[0]: r for r in (RunResult.from_dict(d) for d in
              ResultsStore(tmp_path / "results.db").list()) if r.session_id == data["session"]}
    assert data["phone"] == "rpi3bplus" and len(stored) == 2
    for r in (base, row):
        est = stored[r["key"]].observed["estimate"]
        assert est["kind"] == "estimated" and r["estimated_ms"] == est["ms"] > 0 and r["median_ms"] is None
        assert r["estimated_band_pct"] == est["band_pct"] and r["estimate_calibration"] == est["calibration"]
        assert r["median_instructions"] == stored[r["key"]].instructions   # the exact counts, unchanged
    assert row["estimated_speedup"] == pytest.approx(base["estimated_ms"] / row["estimated_ms"])
    assert row["measured_speedup"] == pytest.approx(base["median_instructions"] / row["median_instructions"])


def test_compare_phone_needs_its_emulated_core(capsys):
    assert main(["compare", "--device", "local", "--phone", "sd820", "--resolutions", "64x64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device qemu:cortex-a57" in err
    assert main(["compare", "--device", "qemu:cortex-a57", "--phone", "nokia3310", "--resolutions", "64x64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown phone 'nokia3310'" in err and "sd820" in err
    assert main(["compare", "--results", "runs.json", "--phone", "sd820"]) == 2
    assert "stored runs show the estimates they carry" in capsys.readouterr().err


def test_reports_show_estimates_in_a_section_of_their_own(tmp_path):
    from mobiledeploy.report import write_compare_report

    rows = compare([counted(ALEX, [600, 600], 184.0), counted(V1, [50, 50], 20.0)], ALEX,
                   labels={ALEX: "AlexNet", V1: "ShuffleNet 0.5x"})
    md = write_compare_report(tmp_path / "r", rows)["markdown"].read_text()
    measured, estimated = md.split("## Estimated milliseconds (not measured)")
    assert "184" not in measured and "sd820" not in measured  # no estimate in the measured table
    assert "| ShuffleNet 0.5x | fp32 | 224x224 | sd820 | 20 | 12 | 9.20x | 12.00x |" in estimated
    assert "fitted on one model" in estimated
    plain = write_compare_report(tmp_path / "p", compare([counted(ALEX, [600], None), counted(V1, [50], None)], ALEX))
    assert "Estimated" not in plain["markdown"].read_text()
