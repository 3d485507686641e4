"""ONNX Runtime as a local runtime: it times a real export's model.onnx with the in-process timed loop, feeds it
what torch computes the same answer from, and `bench --runtime onnxruntime` records the runtime of each run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.bench import BenchOptions, targets_from_export
from mobiledeploy.cli import main
from mobiledeploy.devices.local import LocalDevice
from mobiledeploy.results import ResultsStore
from mobiledeploy.runtimes.onnxruntime import bind_inputs, onnx_session


@pytest.fixture(scope="module")
def exported(exports):
    return exports("v1_g3").result


def test_onnxruntime_times_the_exports_onnx_model(exported):
    (target,) = targets_from_export(exported.path, exported.manifest, ["fp32"], ["onnxruntime"])
    assert target.artifact.name == "model.onnx" and target.runtime == "onnxruntime"
    assert target.sha256 == exported.manifest.artifacts["onnx"].sha256
    result = LocalDevice().run(target, BenchOptions(runs=7, warmup=2))
    assert result.ok, result.error
    assert (result.runtime, result.precision, result.runs, len(result.timings_us)) == ("onnxruntime", "fp32", 7, 7)
    assert 0 < result.min_ms <= result.median_ms <= result.max_ms and result.init_ms > 0 and result.first_ms > 0
    assert result.observed["runner"] == "onnxruntime" and result.observed["input_dtypes"] == ["float32"]
    assert 0 < result.cpu_share <= 1 and "cpu_share" not in result.config and result.versions["onnxruntime"]


def test_what_onnxruntime_runs_matches_torch(exported):
    """The session and inputs the runtime times give torch's output for the same input."""
    import torch

    from mobiledeploy.registry import build_model

    manifest = exported.manifest
    session = onnx_session(exported.path / manifest.artifacts["onnx"].path)
    binding, feeds, dtypes = bind_inputs(session, seed=0)
    session.run_with_iobinding(binding)
    (got,) = binding.copy_outputs_to_cpu()
    model = build_model(manifest.arch, seed=123, **manifest.config)
    model.load_state_dict(torch.load(exported.artifact("weights"), map_location="cpu", weights_only=True))
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(feeds["input"])).numpy()
    h, w = manifest.resolution
    assert dtypes == ["float32"] and feeds["input"].shape == (1, 3, h, w) and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4 * (want.max() - want.min())


def test_a_file_onnxruntime_cannot_load_is_a_failed_run(tmp_path, exported):
    (target,) = targets_from_export(exported.path, exported.manifest, ["fp32"], ["onnxruntime"])
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx model")
    target.artifact = broken
    result = LocalDevice().run(target, BenchOptions(runs=2))
    assert not result.ok and result.runtime == "onnxruntime" and result.error.startswith("onnxruntime cannot load model.onnx")


def test_bench_cli_times_the_onnx_model_with_runtime_onnxruntime(exported, results_db, monkeypatch, capsys):
    import mobiledeploy.converters as converters

    asked = []

    def fake_export(arch, config, resolution=(224, 224), out_dir=None, formats=(), **kw):
        asked.append(tuple(formats))
        return exported

    monkeypatch.setattr(converters, "export_model", fake_export)
    code = main(["bench", "--runtime", "onnxruntime", "--arch", "v1", "--g", "3", "--scale", "0.25", "--resolution", "64",
                 "--runs", "5", "--warmup", "1", "--json"])
    assert code == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert asked == [("onnx",)]  # only what ONNX Runtime times: no TFLite conversion
    [item] = data["results"]
    assert (item["runtime"], item["precision"], item["status"], len(item["timings_us"])) == ("onnxruntime", "fp32", "ok", 5)
    assert item["artifact"].endswith("model.onnx")
    with ResultsStore(results_db) as store:
        assert [(r["runtime"], r["run_id"]) for r in store.list()] == [("onnxruntime", item["run_id"])]


@pytest.mark.parametrize("args, message", [
    (["--arch", "v1", "--runtime", "onnxruntime", "--formats", "int8"], "onnxruntime times fp32 models, not int8"),
    (["--model", "{fp32}", "--runtime", "onnxruntime"], "--runtime onnxruntime times ONNX models: give --onnx FILE.onnx"),
    (["--arch", "v1", "--device", "adb:R58M", "--runtime", "onnxruntime"],
     "--runtime onnxruntime is not available on adb devices (runtimes there: benchmark_model, executorch)"),
])
def test_bench_cli_runtime_errors_are_one_line_exit_2(args, message, tiny_tflite, results_db, capsys):
    assert main(["bench", *[a.format(fp32=tiny_tflite["fp32"]) for a in args]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("mobiledeploy: error:") and err.count("\n") == 1
    assert not results_db.exists() or ResultsStore(results_db).list() == []


def test_bench_cli_interleaves_two_runtimes_of_the_same_export(exported, results_db, monkeypatch, capsys):
    """TFLite and ONNX Runtime time the same model in one process, round after round (A B C, then C B A)."""
    import mobiledeploy.converters as converters

    asked = []
    monkeypatch.setattr(converters, "export_model", lambda *a, formats=(), **kw: asked.append(tuple(formats)) or exported)
    code = main(["bench", "--runtime", "litert,onnxruntime", "--arch", "v1", "--g", "3", "--scale", "0.25",
                 "--resolution", "64", "--runs", "3", "--warmup", "0", "--rounds", "2", "--json"])
    assert code == 0, capsys.readouterr().err
    runs = json.loads(capsys.readouterr().out)["results"]
    assert asked == [("fp32", "int8")]
    order = [("litert", "fp32"), ("litert", "int8"), ("onnxruntime", "fp32")]
    assert [(r["runtime"], r["precision"]) for r in runs] == order + order[::-1]
    assert {Path(r["artifact"]).name for r in runs if r["runtime"] == "onnxruntime"} == {"model.onnx"}
    assert all(r["status"] == "ok" and len(r["timings_us"]) == 3 for r in runs)


def test_onnx_runtime_under_mobiledeploy_makes_no_telemetry_store(tmp_path):
    """onnxruntime's 1DS telemetry writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ on import (and starts a
    thread that tries to upload); importing mobiledeploy first turns it off. The bare import is the control. ORT
    stays quiet by itself where it sees a CI service (CI, TF_BUILD, GITHUB_ACTIONS: with CI=true
    the bare import wrote nothing), so both runs go without those; on a user's machine they are usually unset."""
    import os
    import subprocess
    import sys

    def cache_after(code: str, home: Path) -> list[str]:
        home.mkdir()
        quiet = {"ORT_DISABLE_TELEMETRY", "CI", "TF_BUILD", "GITHUB_ACTIONS"}
        env = {k: v for k, v in os.environ.items() if k not in quiet} | {"HOME": str(home)}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
        return sorted(p.name for p in (home / ".cache" / "Microsoft").rglob("*"))

    assert "onnxruntime.db" in cache_after("import onnxruntime", tmp_path / "bare")
    assert cache_after("import mobiledeploy.runtimes.onnxruntime, onnxruntime", tmp_path / "ours") == []
