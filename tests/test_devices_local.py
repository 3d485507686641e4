"""`local`: the LiteRT interpreter timed in-process, and `bench --device local` end to end."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.bench import BenchOptions, BenchTarget, run_interleaved, target_from_file
from mobiledeploy.cli import main
from mobiledeploy.devices import open_device
from mobiledeploy.devices.local import LocalDevice, host_facts
from mobiledeploy.runtimes.litert import big_cores, make_inputs, time_tflite
from mobiledeploy.results import ResultsStore

REQUIRED = {"model", "precision", "device", "artifact", "sha256", "threads", "runs", "median_ms", "p90_ms", "mean_ms",
            "std_ms", "min_ms", "init_ms", "first_ms", "macs", "status"}


def test_time_tflite_fp32_and_int8(tiny_tflite):
    for fmt, dtype in (("fp32", "float32"), ("int8", "int8")):
        t = time_tflite(tiny_tflite[fmt], threads=1, runs=25, warmup=3)
        assert len(t["timings_us"]) == 25 and all(x > 0 for x in t["timings_us"])
        assert t["init_us"] > 0 and t["first_us"] > 0 and t["warmup_avg_us"] > 0
        assert t["input_dtypes"] == [dtype] and t["memory_delta_mb"] >= 0


def test_min_secs_extends_the_timed_runs(tiny_tflite):
    t = time_tflite(tiny_tflite["fp32"], runs=1, warmup=0, min_secs=0.05)
    assert len(t["timings_us"]) > 1 and t["warmup_avg_us"] is None


def test_int8_inputs_go_through_the_input_quantization(tiny_tflite):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tiny_tflite["int8"]))
    interpreter.allocate_tensors()
    assert make_inputs(interpreter, seed=1) == ["int8"]
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    data = interpreter.get_tensor(detail["index"])
    assert data.dtype == np.int8 and data.shape == tuple(detail["shape"])
    real = (data.astype(np.float64) - zero_point) * scale  # standard-normal data, dequantized back
    assert abs(real.mean()) < 0.2 and 0.6 < real.std() < 1.4


def test_local_device_run_is_a_full_run_result(tiny_tflite):
    device = open_device("local")
    assert isinstance(device, LocalDevice)
    target = target_from_file(tiny_tflite["int8"])
    assert (target.precision, target.name) == ("int8", "tiny_int8")
    result = device.run(target, BenchOptions(runs=30, warmup=2))
    assert result.ok and result.error is None and result.runs == 30 and len(result.timings_us) == 30
    timings_ms = np.array(result.timings_us) / 1000
    assert result.median_ms == pytest.approx(np.median(timings_ms))
    assert result.p90_ms == pytest.approx(np.percentile(timings_ms, 90))
    assert result.p95_ms == pytest.approx(np.percentile(timings_ms, 95))
    assert result.min_ms == pytest.approx(timings_ms.min()) and result.cv == pytest.approx(result.std_ms / result.mean_ms)
    assert result.init_ms > 0 and result.first_ms > 0 and result.warmup_ms > 0
    assert result.device == "local" and result.device_info["abi"] and "thermal_after" in result.device_info
    assert result.versions["ai-edge-litert"] and result.observed["input_dtypes"] == ["int8"]
    assert REQUIRED <= set(result.to_dict())


def test_a_broken_model_is_a_failed_result_not_an_exception(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    result = LocalDevice().run(target_from_file(bad), BenchOptions(runs=2))
    assert result.status == "failed" and result.error and "\n" not in result.error
    assert result.timings_us is None and result.median_ms is None


def test_cpu_masks(tiny_tflite):
    allowed = sorted(os.sched_getaffinity(0))
    one = 1 << allowed[0]
    assert time_tflite(tiny_tflite["fp32"], runs=2, cpu_mask=f"{one:x}")["cpus"] == [allowed[0]]
    assert sorted(os.sched_getaffinity(0)) == allowed  # restored afterwards
    target = target_from_file(tiny_tflite["fp32"])
    outside = LocalDevice().run(target, BenchOptions(runs=2, cpu_mask=f"{1 << 60:x}"))
    assert outside.status == "failed" and "selects none" in outside.error
    nonsense = LocalDevice().run(target, BenchOptions(runs=2, cpu_mask="zz"))
    assert nonsense.status == "failed" and "hex mask" in nonsense.error


def test_big_cores_take_whole_frequency_tiers(tmp_path):
    root = tmp_path / "cpu"
    for cpu, khz in enumerate([1800000] * 4 + [2250000] * 2 + [2800000] * 2):
        (root / f"cpu{cpu}" / "cpufreq").mkdir(parents=True)
        (root / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq").write_text(f"{khz}\n")
    assert big_cores(1, str(root)) == {6, 7}
    assert big_cores(3, str(root)) == {4, 5, 6, 7}
    assert big_cores(8, str(root)) == set(range(8))
    for cpu in range(8):
        (root / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq").write_text("2000000\n")
    assert big_cores(1, str(root)) == set()  # all equal: nothing to choose


def test_host_facts():
    facts = host_facts()
    assert facts["kind"] == "host" and facts["cores"] >= 1 and facts["allowed_cpus"]
    assert {"model", "soc", "abi", "cpu_max_khz", "governors", "thermal_zones"} <= set(facts)


def test_interleaved_rounds_alternate_order(tiny_tflite):
    targets = [target_from_file(tiny_tflite["fp32"]), target_from_file(tiny_tflite["int8"])]
    results = run_interleaved(LocalDevice(), targets, BenchOptions(runs=3, warmup=0), rounds=3)
    assert [(r.precision, r.round) for r in results] == [
        ("fp32", 0), ("int8", 0), ("int8", 1), ("fp32", 1), ("fp32", 2), ("int8", 2)]
    assert len({r.run_id for r in results}) == 6 and all(r.ok and len(r.timings_us) == 3 for r in results)


def test_bench_cli_local_json(tiny_tflite, results_db, capsys):
    code = main(["bench", "--device", "local", "--model", str(tiny_tflite["fp32"]), "--runs", "20", "--warmup", "2",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)  # exactly one JSON object on stdout
    assert data["db"] == str(results_db) and len(data["results"]) == 1
    item = data["results"][0]
    assert REQUIRED <= set(item) and item["status"] == "ok" and "error" not in item
    assert (item["model"], item["precision"], item["device"], item["runs"], item["threads"]) == ("tiny_fp32", "fp32", "local", 20, 1)
    assert item["runtime"] == "litert"  # the device kind's default runtime, recorded with the run
    assert item["artifact"] == str(Path(tiny_tflite["fp32"]).resolve()) and len(item["sha256"]) == 64
    assert len(item["timings_us"]) == 20
    with ResultsStore(results_db) as store:
        rows = store.list()
    assert [(r["run_id"], r["status"], r["timings_us"], r["runtime"]) for r in rows] == [
        (item["run_id"], "ok", item["timings_us"], "litert")]


def test_bench_cli_table(tiny_tflite, results_db, capsys):
    assert main(["bench", "--model", str(tiny_tflite["int8"]), "--runs", "5", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    for column in ("runtime", "median", "p90", "mean", "std", "CV", "min", "init", "first", "mem MB", "MACs", "GMAC/s"):
        assert column in out
    assert re.search(r"tiny_int8\s+int8\s+litert\s", out)
    assert "tiny_int8" in out and "stored in" in out
    assert "ran on" in out and "XNNPACK 5/5, CPU 0" in out  # what ran where, as on a phone
    with ResultsStore(results_db) as store:
        [row] = store.list()
    assert row["observed"]["delegation"] == {"accelerator": "cpu", "delegate": "TfLiteXNNPackDelegate", "partitions": 1,
                                           "nodes": 5, "delegated_nodes": 5, "not_delegated": {}, "kernel_nodes": [],
                                           "cpu_nodes": 0}


@pytest.mark.parametrize("args, message", [
    (["--model", "x.tflite", "--arch", "v1"], "give either --model FILE.tflite, or a model to export (--arch"),
    ([], "give --model FILE.tflite to time, or a model to export first: --arch NAME"),
    (["--model", "/nonexistent/m.tflite"], "model file not found"),
    (["--model", "{fp32}", "--cpu-mask", "xyz"], "hex mask"),
    (["--model", "{fp32}", "--device", "phone"], "unknown device"),
    (["--model", "{fp32}", "--runs", "0"], "--runs >= 1"),
    (["--arch", "v1", "--formats", "fp16"], "--formats"),
    (["--model", "{fp32}", "--runtime", "tensorrt"], "--runtime tensorrt is not available on local devices"),
    (["--model", "{fp32}", "--device", "adb:R58M", "--runtime", "litert"], "--runtime litert is not available on adb"),
])
def test_bench_cli_bad_input_exits_2(tiny_tflite, results_db, capsys, args, message):
    args = [a.format(fp32=tiny_tflite["fp32"]) for a in args]
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("mobiledeploy: error:") and err.count("\n") == 1
    assert not results_db.exists() or ResultsStore(results_db).list() == []


def test_target_from_file_reads_a_manifest_beside_it(tiny_tflite, tmp_path):
    from mobiledeploy.files import sha256_file

    model = tmp_path / "model_int8.tflite"
    model.write_bytes(tiny_tflite["int8"].read_bytes())
    (tmp_path / "manifest.json").write_text(json.dumps({
        "slug": "shufflenet_v1-g3-scale0.5-224x224", "arch": "shufflenet_v1", "config": {"g": 3, "scale": 0.5},
        "resolution": [224, 224], "complexity": {"macs": 37_600_000},
        "artifacts": {"int8": {"path": "model_int8.tflite", "sha256": sha256_file(model)}}}))
    target = target_from_file(model)
    assert (target.name, target.precision, target.macs, target.resolution) == (
        "shufflenet_v1-g3-scale0.5-224x224", "int8", 37_600_000, (224, 224))
    assert isinstance(target, BenchTarget) and target.config["g"] == 3


def test_bench_cli_arch_exports_then_times_both_formats(tiny_tflite, results_db, tmp_path, monkeypatch, capsys):
    """--arch goes through export_model (replaced here by the tiny models; the real export is slow)."""
    import mobiledeploy.converters as converters
    from mobiledeploy.files import sha256_file

    calls = []

    def fake_export(arch, config, resolution=(224, 224), out_dir=None, formats=(), weights=None, progress=None, **kw):
        calls.append({"arch": arch, "config": config, "resolution": resolution, "formats": tuple(formats),
                      "out_dir": out_dir, "weights": weights})
        progress("onnx", "start", None)
        manifest = {"slug": "shufflenet_v1-g3-scale0.5-160x160", "arch": arch, "config": {"g": 3, "scale": 0.5},
                    "resolution": list(resolution), "complexity": {"macs": 20_000_000},
                    "artifacts": {fmt: {"path": path.name, "sha256": sha256_file(path)} for fmt, path in tiny_tflite.items()}}
        return converters.ExportResult(tiny_tflite["fp32"].parent, converters.Manifest.from_dict(manifest), reused=True)

    monkeypatch.setattr(converters, "export_model", fake_export)
    monkeypatch.chdir(tmp_path)
    code = main(["bench", "--arch", "v1", "--g", "3", "--scale", "0.5", "--resolution", "160", "--runs", "5",
                 "--warmup", "0", "--json"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert calls == [{"arch": "shufflenet_v1", "config": {"g": 3, "scale": 0.5}, "resolution": (160, 160),
                      "formats": ("fp32", "int8"), "out_dir": (tmp_path / "artifacts").resolve(), "weights": None}]
    assert [(r["model"], r["precision"], r["macs"], r["status"]) for r in data["results"]] == [
        ("shufflenet_v1-g3-scale0.5-160x160", "fp32", 20_000_000, "ok"),
        ("shufflenet_v1-g3-scale0.5-160x160", "int8", 20_000_000, "ok")]
    for r in data["results"]:
        assert r["gmacs_per_s"] == pytest.approx(20e6 / (r["median_ms"] / 1e3) / 1e9)
        assert r["config"]["resolution"] == [160, 160] and r["config"]["g"] == 3
    assert len(ResultsStore(results_db).list()) == 2
