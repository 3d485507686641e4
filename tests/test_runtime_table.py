"""Runtimes side by side (issue 30): `runtime_table.runtime_rows` over stored runs, and `compare --runtimes A,B`
printing ONE table of them (host ms measured, Arm instructions counted, file size, parity).

The fast test builds runs over real files and a manifest in a temp folder; the qemu one reuses the suite's shared
ShuffleNet v1 0.25x g=3 export at 64x64 (copied), so it exports nothing, and times LiteRT and ONNX Runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobiledeploy.records import RunResult
from mobiledeploy.runtime_table import runtime_rows

CLI = Path(sys.executable).with_name("mobiledeploy")


def _run(artifact: Path, precision: str, device: str, runtime: str, **figures) -> RunResult:
    return RunResult(model="net-64x64", precision=precision, device=device, artifact=str(artifact), sha256="0", threads=1,
                     runs=3, warmup=1, runtime=runtime, config={"resolution": [64, 64], **figures.pop("config", {})},
                     **figures)


def test_rows_keep_counted_measured_and_file_facts_apart(tmp_path: Path) -> None:
    for name, size in (("model_fp32.tflite", 1000), ("model_int8.tflite", 300), ("model.onnx", 990)):
        (tmp_path / name).write_bytes(b"x" * size)
    (tmp_path / "manifest.json").write_text(json.dumps({"parity": {
        "fp32": {"max_rel": 2e-7, "passed": True}, "int8": {"cosine": 0.998, "sqnr_db": 21.0, "passed": True},
        "onnx": {"max_rel": 1e-7, "passed": True}}}))
    fp32, int8, onnx = tmp_path / "model_fp32.tflite", tmp_path / "model_int8.tflite", tmp_path / "model.onnx"
    runs = [
        _run(fp32, "fp32", "local", "litert", median_ms=2.0), _run(fp32, "fp32", "local", "litert", median_ms=4.0),
        _run(fp32, "fp32", "local", "litert", median_ms=3.0), _run(int8, "int8", "local", "litert", median_ms=1.0),
        _run(onnx, "fp32", "local", "onnxruntime", median_ms=2.5),
        _run(fp32, "fp32", "qemu:cortex-a76", "counted", instructions=5e6),
        _run(int8, "int8", "qemu:cortex-a76", "counted", instructions=2e6),
        _run(fp32, "fp32", "qemu:cortex-a53", "counted", instructions=6e6),
        _run(onnx, "fp32", "qemu:cortex-a76", "onnxruntime", instructions=9e6,
             observed={"arm_parity": {"max_rel": 3e-7, "passed": True}}),
        _run(onnx, "fp32", "local", "onnxruntime", status="failed", error="boom", median_ms=99.0),
    ]
    rows = runtime_rows(runs)
    assert [(r.runtime, r.resolution) for r in rows] == [("litert", "64x64"), ("onnxruntime", "64x64")]
    litert, ort = rows
    assert litert.host_ms == {"fp32": 3.0, "int8": 1.0}  # the median over rounds; a failed run is left out
    assert litert.instructions == {"cortex-a76": {"fp32": 5e6, "int8": 2e6}, "cortex-a53": {"fp32": 6e6}}
    assert litert.file_bytes == {"fp32": 1000, "int8": 300}
    assert litert.parity == {"fp32": {"max_rel": 2e-7, "passed": True},
                             "int8": {"cosine": 0.998, "sqnr_db": 21.0, "passed": True}}
    assert (ort.host_ms, ort.instructions, ort.file_bytes) == ({"fp32": 2.5}, {"cortex-a76": {"fp32": 9e6}}, {"fp32": 990})
    assert ort.parity["fp32"]["max_rel"] == 1e-7 and ort.arm_parity == {"fp32": 3e-7}
    assert set(ort.to_dict()) >= {"instructions_counted", "host_ms_measured", "file_bytes", "parity"}


def test_an_unknown_arm_core_is_one_line_before_any_export(tmp_path: Path) -> None:
    proc = subprocess.run([str(CLI), "compare", "--runtimes", "litert,onnxruntime", "--models", "v1:g=3",
                           "--arm", "cortex-z9", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ, "MOBILEDEPLOY_DB": str(tmp_path / "r.db")}, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mobiledeploy:")]
    assert len(lines) == 1 and "cortex-z9" in lines[0] and "cortex-a76" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.qemu
def test_compare_runtimes_prints_one_table(exports, arm_env, tmp_path: Path) -> None:
    from mobiledeploy.qemu.env import EmulatorMissingError
    from mobiledeploy.qemu.onnxruntime_env import onnxruntime_guest

    try:
        onnxruntime_guest(arm_env.root)
    except EmulatorMissingError as exc:
        pytest.skip(f"make arm sets up ONNX Runtime: {exc}")
    shared = exports("v1_g3")
    shutil.copytree(shared.out_root, tmp_path / "artifacts")
    argv = [str(CLI), "compare", "--runtimes", "litert,onnxruntime", "--models", "shufflenet_v1:g=3,scale=0.25",
            "-r", "64x64", "--rounds", "1", "--runs", "3", "--warmup", "1", "--arm", "cortex-a76",
            "--out", str(tmp_path / "artifacts")]
    env = {**os.environ, "MOBILEDEPLOY_DB": str(tmp_path / "r.db"), "NO_COLOR": "1", "COLUMNS": "250"}
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "export shufflenet_v1: TFLite" not in proc.stderr  # the copied export was reused
    table = json.loads(proc.stdout)["runtime_table"]
    assert [(r["runtime"], r["resolution"]) for r in table] == [("litert", "64x64"), ("onnxruntime", "64x64")]
    litert, ort = table
    assert set(litert["instructions_counted"]["cortex-a76"]) == {"fp32", "int8"}
    assert litert["instructions_counted"]["cortex-a76"]["int8"] < litert["instructions_counted"]["cortex-a76"]["fp32"]
    assert set(litert["host_ms_measured"]) == {"fp32", "int8"} and set(ort["host_ms_measured"]) == {"fp32"}
    assert ort["instructions_counted"]["cortex-a76"]["fp32"] > 0 and ort["arm_parity_max_rel"]["fp32"] < 1e-4
    assert litert["file_bytes"]["int8"] < litert["file_bytes"]["fp32"] and litert["parity"]["int8"]["passed"]
    stored = sqlite_runs(tmp_path / "r.db")
    assert stored == {("local", "litert"): 2, ("local", "onnxruntime"): 1, ("qemu:cortex-a76", "counted"): 2,
                      ("qemu:cortex-a76", "onnxruntime"): 1}


def sqlite_runs(db: Path) -> dict[tuple[str, str], int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {(d, r): n for d, r, n in conn.execute("SELECT device, runtime, COUNT(*) FROM runs GROUP BY 1, 2")}
