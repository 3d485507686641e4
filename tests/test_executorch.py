"""ExecuTorch beside LiteRT (issue 30): .pte export (fp32, PT2E int8) with parity and delegation, and the
`executorch` runtime on `local`.

Fast tests: the formats, the runtime's declaration, every one-line error that comes before an export.
Slow ones (a tiny own model at 32x32, exported once per module, and MobileNet v1 0.25 at 64x64): the manifest's
.pte entries checked against files, torch and the fp32 program; the runtime timing both precisions beside
LiteRT and ONNX Runtime; a model that does not torch.export, and a .pte that does not load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mobiledeploy.converters import resolve_formats
from mobiledeploy.errors import ConfigError, RunnerError
from tests.cli_checks import one_error_line

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("mobiledeploy")
OWN = REPO / "tests" / "fixtures" / "own_model" / "sesplit.py"
#: runs the CLI as if executorch and torchao were not installed
WITHOUT_EXECUTORCH = ("import importlib.util as u, sys; real = u.find_spec; "
                      "u.find_spec = lambda n, *a: None if n in ('executorch', 'torchao') else real(n, *a); "
                      "from mobiledeploy.cli import main; sys.exit(main(sys.argv[1:]))")

NOT_EXPORTABLE = '''
import torch
from torch import nn


class Branchy(nn.Module):
    """Control flow on the data: torch.export cannot trace it into one graph (ONNX's tracer takes the branch
    every input takes, so the export gets as far as the .pte stage)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        if y.abs().sum() >= 0:
            return y.mean((2, 3))
        return -y.mean((2, 3))


def build():
    return Branchy()
'''


def run(args: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOBILEDEPLOY_DB": str(cwd / "results.db"), "COLUMNS": "200", "NO_COLOR": "1",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# --- fast ----------------------------------------------------------------------------------------------

def test_pte_formats_derive_like_tflite_and_stay_out_of_the_default() -> None:
    assert resolve_formats("pte_int8") == ("onnx", "pte_fp32", "pte_int8")
    assert resolve_formats("int8,pte_fp32") == ("onnx", "fp32", "int8", "pte_fp32")
    assert resolve_formats(("onnx", "fp32", "int8")) == ("onnx", "fp32", "int8")
    with pytest.raises(ConfigError, match="pte_fp32, pte_int8"):
        resolve_formats("pte")


def test_a_rebuild_for_a_pte_keeps_the_formats_the_folder_held(tmp_path: Path) -> None:
    """Asking for a .pte where the same request's .tflite files are builds both (else litert and executorch would
    rebuild each other's files away in turn); a folder of another request gives nothing of its own."""
    from mobiledeploy.converters.manifest import SCHEMA_VERSION
    from mobiledeploy.converters.pipeline import _with_existing

    held = {"schema_version": SCHEMA_VERSION, "request": {"slug": "m", "seed": 0},
            "artifacts": {"weights": {}, "onnx": {}, "fp32": {}, "int8": {}}}
    (tmp_path / "manifest.json").write_text(json.dumps(held))
    assert _with_existing(tmp_path, {"slug": "m", "seed": 0}, ("onnx", "pte_fp32")) == ("onnx", "fp32", "int8", "pte_fp32")
    assert _with_existing(tmp_path, {"slug": "m", "seed": 1}, ("onnx", "pte_fp32")) == ("onnx", "pte_fp32")
    assert _with_existing(tmp_path / "none", {"slug": "m", "seed": 0}, ("onnx", "fp32")) == ("onnx", "fp32")


def test_the_executorch_runtime_is_declared_once_and_offered_on_local_and_qemu() -> None:
    from mobiledeploy.devices.kinds import runtime_for
    from mobiledeploy.runtimes import artifact_for, runtime_class

    cls = runtime_class("executorch")
    assert (cls.name, cls.artifacts) == ("executorch", {"fp32": "pte_fp32", "int8": "pte_int8"})
    assert artifact_for("executorch", "int8") == "pte_int8"
    assert runtime_for("local", "executorch") == "executorch"
    assert runtime_for("qemu:cortex-a53", "executorch") == "executorch"  # counted: runtimes/counted_executorch.py
    assert runtime_class("executorch", "qemu").__name__ == "CountedExecuTorchRuntime"
    assert runtime_class("executorch", "qemu").artifacts == cls.artifacts
    assert runtime_for("adb:R58M", "executorch") == "executorch"  # the user's executor_runner (--runner)
    assert runtime_class("executorch", "adb").__name__ == "ExecutorRunnerRuntime"
    assert runtime_class("executorch", "adb").artifacts == cls.artifacts


def test_without_the_extra_a_pte_format_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = run([sys.executable, "-c", WITHOUT_EXECUTORCH, "export", "--arch", "v1", "--g", "3", "--resolution", "32",
                "--formats", "pte_fp32", "--out", str(tmp_path / "out")], tmp_path)
    line = one_error_line(proc)
    assert "pip install 'mobiledeploy[executorch]'" in line, line
    assert not (tmp_path / "out").exists()


def test_without_the_extra_the_runtime_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = run([sys.executable, "-c", WITHOUT_EXECUTORCH, "bench", "--device", "local", "--runtime", "executorch",
                "--arch", "v1", "--g", "3", "--resolution", "32", "--out", str(tmp_path / "out")], tmp_path)
    line = one_error_line(proc)
    assert "mobiledeploy[executorch]" in line, line
    assert not (tmp_path / "out").exists()


def test_an_onnx_file_has_no_pytorch_model_to_make_a_pte_from(tmp_path: Path) -> None:
    from mobiledeploy.converters import export_model

    import torch

    onnx_file = tmp_path / "net.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (torch.zeros(1, 3, 8, 8),), str(onnx_file), dynamo=False)
    with pytest.raises(ConfigError, match="exported from PyTorch"):
        export_model(str(onnx_file), {}, formats="pte_fp32", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_without_the_arm_runner_a_qemu_run_fails_as_a_setup_step(tmp_path: Path) -> None:
    from mobiledeploy.devices.qemu import QemuDevice
    from mobiledeploy.qemu.env import Environment
    from mobiledeploy.records import BenchOptions, BenchTarget, ErrorKind

    env = Environment(tmp_path, "qemu-aarch64", {}, {"cortex-a76": {"midr": "0x414fd0b1", "features": []}})
    (tmp_path / "model.pte").write_bytes(b"never read")
    target = BenchTarget(name="m", artifact=tmp_path / "model.pte", precision="fp32", sha256="0", macs=None, config={},
                         resolution=(8, 8), runtime="executorch")
    result = QemuDevice("cortex-a76", env=env).run(target, BenchOptions(runs=1, warmup=0))
    assert result.status == "failed" and result.error_kind == ErrorKind.SETUP and result.runtime == "executorch"
    assert "mobiledeploy qemu setup" in result.error and "\n" not in result.error


# --- slow: exports ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The tiny own model (squeeze-excite, hard-swish, a channel split) at 32x32, .pte fp32 and int8 only."""
    root = tmp_path_factory.mktemp("own_pte")
    proc = run([str(CLI), "export", "--model-fn", f"{OWN}:build", "--input-shape", "1x3x32x32",
                "--formats", "pte_fp32,pte_int8", "--out", str(root / "artifacts"), "--json"], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    return Path(out["path"]), out["manifest"]


@pytest.mark.slow
def test_own_model_pte_files_match_the_manifest_and_pass_parity(own_export: tuple[Path, dict[str, Any]]) -> None:
    from mobiledeploy.files import sha256_file

    folder, manifest = own_export
    assert set(manifest["artifacts"]) == {"weights", "onnx", "pte_fp32", "pte_int8"}  # no TFLite asked for
    for key, name in (("pte_fp32", "model_fp32.pte"), ("pte_int8", "model_int8.pte")):
        entry = manifest["artifacts"][key]
        assert entry["path"] == name and sha256_file(folder / name) == entry["sha256"]
        assert entry["inputs"][0]["shape"] == [1, 3, 32, 32] and entry["outputs"][0]["shape"] == [1, 10]
    fp32, int8 = manifest["parity"]["pte_fp32"], manifest["parity"]["pte_int8"]
    assert fp32["reference"] == "torch" and fp32["passed"] and fp32["max_rel"] <= fp32["tolerance"]
    assert int8["reference"] == "fp32" and int8["passed"] and int8["cosine"] >= 0.98 and int8["samples"] == 8
    assert manifest["versions"]["executorch"] and manifest["versions"]["torchao"]


@pytest.mark.slow
def test_own_model_delegation_says_what_xnnpack_took(own_export: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = own_export
    for key in ("pte_fp32", "pte_int8"):
        found = manifest["artifacts"][key]["delegation"]
        assert found["partitions"] >= 1
        assert found["delegated_nodes"] == sum(found["delegated"].values()) > 0
        assert found["nodes"] == found["delegated_nodes"] + sum(found["not_delegated"].values())
        assert any("convolution" in op for op in found["delegated"]), found
        assert "getitem" not in found["not_delegated"]
    int8 = manifest["artifacts"]["pte_int8"]["delegation"]["delegated"]
    assert any("quantize_per_tensor" in op for op in int8), int8  # the int8 program's edges run in XNNPACK too


@pytest.mark.slow
def test_pte_outputs_match_torch_outside_the_export(own_export: tuple[Path, dict[str, Any]]) -> None:
    """An independent check of the fp32 parity: the .pte against the model rebuilt from its saved weights."""
    import torch

    from mobiledeploy.converters.executorch import pte_outputs
    from tests.fixtures.own_model.sesplit import build

    folder, _ = own_export
    model = build().eval()
    model.load_state_dict(torch.load(folder / "model.pt"))
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = pte_outputs(folder / "model_fp32.pte", x)
    assert got.shape == (2, 10)
    assert np.max(np.abs(got - expected)) <= 1e-4 * (expected.max() - expected.min())


@pytest.mark.slow
def test_the_runtime_times_both_precisions_in_process(own_export: tuple[Path, dict[str, Any]]) -> None:
    from mobiledeploy.runtimes.executorch import pte_delegation, time_pte

    folder, manifest = own_export
    for key in ("pte_fp32", "pte_int8"):
        timing = time_pte(folder / manifest["artifacts"][key]["path"], runs=5, warmup=1)
        assert len(timing["timings_us"]) == 5 and all(t > 0 for t in timing["timings_us"])
        assert timing["threadpool_threads"] == 1 and timing["input_dtypes"] == ["float32"]
        found = pte_delegation(folder / manifest["artifacts"][key]["path"])
        assert found["delegated_nodes"] == manifest["artifacts"][key]["delegation"]["delegated_nodes"]


@pytest.mark.slow
def test_the_per_kernel_profile_of_both_pte_files(own_export: tuple[Path, dict[str, Any]]) -> None:
    """ExecuTorch's ETDump read by its Inspector: XNNPACK's own operators, float in fp32 and quantised in int8,
    their shares summing to the whole Method::execute."""
    from mobiledeploy.runtimes.executorch import pte_op_profile

    folder, manifest = own_export
    kinds = {}
    for key in ("pte_fp32", "pte_int8"):
        rows = pte_op_profile(folder / manifest["artifacts"][key]["path"], runs=5)
        kernels = [r for r in rows if r["node_type"] != "outside kernels"]
        assert kernels and all(r["delegated"] for r in kernels if "NHWC" in r["name"]), rows
        assert sum(r["percent"] for r in rows) == pytest.approx(100.0, abs=0.1)
        assert all(r["median_ms"] >= 0 for r in rows) and all(r["name"].startswith(r["node_type"]) for r in kernels)
        kinds[key] = {r["node_type"] for r in kernels}
    assert any("F32" in k and "Convolution" in k for k in kinds["pte_fp32"]), kinds
    assert any("Convolution" in k and "F32" not in k for k in kinds["pte_int8"]), kinds


@pytest.mark.slow
def test_a_zoo_model_benched_by_three_runtimes_in_one_session(tmp_path: Path) -> None:
    """MobileNet v1 0.25 at 32x32, fp32 (int8 .pte files are the own model's tests above; a zoo int8 PT2E export
    costs ~40 s of the suite): one export makes the .tflite and .pte files, then LiteRT, ExecuTorch and ONNX
    Runtime time them interleaved; every run records its runtime and the artifact it timed."""
    proc = run([str(CLI), "bench", "--device", "local", "--runtime", "litert,executorch,onnxruntime",
                "--arch", "mobilenet_v1", "--alpha", "0.25", "--resolution", "32", "--formats", "fp32", "--runs", "5",
                "--warmup", "1", "--rounds", "2", "--out", str(tmp_path / "artifacts"), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    seen = {(r["runtime"], r["precision"]) for r in results}
    assert seen == {("litert", "fp32"), ("executorch", "fp32"), ("onnxruntime", "fp32")}
    assert len(results) == 6 and all(r["status"] == "ok" for r in results)
    folder = next((tmp_path / "artifacts").iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"onnx", "fp32", "pte_fp32"} <= set(manifest["artifacts"]) and "pte_int8" not in manifest["artifacts"]
    by_runtime = {r["runtime"]: r for r in results}
    for runtime, key in (("executorch", "pte_fp32"), ("litert", "fp32"), ("onnxruntime", "onnx")):
        assert by_runtime[runtime]["sha256"] == manifest["artifacts"][key]["sha256"], runtime
    assert manifest["parity"]["pte_fp32"]["passed"] and manifest["parity"]["fp32"]["passed"]


@pytest.mark.slow
def test_a_model_that_does_not_torch_export_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "branchy.py").write_text(NOT_EXPORTABLE)
    proc = run([str(CLI), "export", "--model-fn", "branchy.py:build", "--input-shape", "1x3x16x16",
                "--formats", "pte_fp32", "--out", str(tmp_path / "out")], tmp_path)
    line = one_error_line(proc)
    assert "stage 'torch.export'" in line and "branchy.py:build" in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_a_pte_that_does_not_load_is_one_line(tmp_path: Path) -> None:
    from mobiledeploy.runtimes.executorch import time_pte

    bad = tmp_path / "model_fp32.pte"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(RunnerError, match="ExecuTorch cannot load model_fp32.pte") as caught:
        time_pte(bad, runs=1, warmup=0)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.qemu
def test_both_pte_files_counted_exactly_on_an_emulated_arm_core(own_export: tuple[Path, dict[str, Any]]) -> None:
    """qemu:cortex-a76 runs the .pte in ExecuTorch's aarch64 C++ runtime without a warm-up: the same count in every
    run, the same timed, first-inference and init counts in a second process, and the Arm output equal to the
    host's. (Before et_runner started ExecuTorch's threadpool ahead of its markers, the pool's worker put 13,132
    instructions in the first inference or the timed run after it: 5 of 40 processes beside a CPU hog, and the
    first inference counted 8 different figures in those 40; after, 30 of 30 identical in every phase.)"""
    from mobiledeploy.devices.qemu import QemuDevice
    from mobiledeploy.qemu.env import EmulatorMissingError
    from mobiledeploy.qemu.executorch_env import executorch_guest
    from mobiledeploy.records import BenchOptions, BenchTarget

    try:
        device = QemuDevice("cortex-a76")
        executorch_guest(device.env.root)
    except EmulatorMissingError as exc:
        pytest.skip(f"make arm with the executorch extra: {exc}")
    folder, manifest = own_export
    counts = {}
    for key, precision in (("pte_fp32", "fp32"), ("pte_int8", "int8"), ("pte_fp32", "fp32")):
        entry = manifest["artifacts"][key]
        target = BenchTarget(name="sesplit", artifact=folder / entry["path"], precision=precision, sha256=entry["sha256"],
                             macs=None, config={}, resolution=(32, 32), runtime="executorch")
        result = device.run(target, BenchOptions(runs=3, warmup=0))
        assert result.status == "ok" and result.runtime == "executorch", result.error
        assert len(set(result.instruction_counts)) == 1 and result.instructions > 0
        assert result.init_instructions > 0 and result.first_instructions > 0
        assert result.observed["arm_parity"]["passed"], result.observed["arm_parity"]
        counts.setdefault(precision, []).append((result.instructions, result.first_instructions, result.init_instructions))
    assert counts["fp32"][0] == counts["fp32"][1]  # another process: the same counts, the first inference's too
    assert counts["int8"][0][0] != counts["fp32"][0][0]


# --- profile --runtime executorch (profiling_pte.py, qemu/et_profile.py) ------------------------------------

#: ETDump rows as rows_from_etdump gives them (names from ShuffleNet v1 0.5x g=3's .pte at 64x64)
PTE_ROWS = [
    {"node_type": "Convolution (NHWC, F32) IGEMM", "name": "Convolution (NHWC, F32) IGEMM #1", "median_ms": 0.06,
     "delegated": True},
    {"node_type": "Max Pooling (NHWC, F32)", "name": "Max Pooling (NHWC, F32) #1", "median_ms": 0.01, "delegated": True},
    {"node_type": "native_call_avg_pool2d.out", "name": "native_call_avg_pool2d.out", "median_ms": 0.12,
     "delegated": False},
    {"node_type": "Convolution (NHWC, F32) DWConv", "name": "Convolution (NHWC, F32) DWConv #1", "median_ms": 0.005,
     "delegated": True},
    {"node_type": "Convolution (NHWC, F32) IGEMM", "name": "Convolution (NHWC, F32) IGEMM #2", "median_ms": 0.012,
     "delegated": True},
    {"node_type": "Fully Connected (NC, F32) GEMM", "name": "Fully Connected (NC, F32) GEMM #1", "median_ms": 0.03,
     "delegated": True},
    {"node_type": "outside kernels", "name": "Method::execute − kernels", "median_ms": 0.2, "delegated": False},
]


def test_pte_rows_join_the_layers_by_op_type() -> None:
    """XNNPACK's IGEMM runs grouped and dense convs alike, so they join as 'conv (any)'; the portable avg pool
    joins the pools; the runtime's own time is 'other', never a layer's."""
    from mobiledeploy.attribution import attribute
    from mobiledeploy.profiling_pte import pte_op_times

    layers = [{"name": "conv1", "op": "conv2d", "macs": 600, "memory_access": 100},
              {"name": "pool", "op": "max_pool", "macs": 0, "memory_access": 50},
              {"name": "s.0.short", "op": "avg_pool", "macs": 0, "memory_access": 50},
              {"name": "s.0.dw", "op": "conv2d_dw", "macs": 100, "memory_access": 40},
              {"name": "s.0.g", "op": "conv2d_group", "macs": 200, "memory_access": 60},
              {"name": "fc", "op": "linear", "macs": 100, "memory_access": 100}]
    report = attribute(layers, pte_op_times(PTE_ROWS), model="m")
    rows = {r.category: r for r in report.categories}
    assert rows["conv_any"].layers == 2 and rows["conv_any"].ops == 2 and rows["conv_any"].macs == 800
    assert rows["conv_any"].time_ms == pytest.approx(0.072)
    assert rows["pool"].ops == 2 and rows["pool"].time_ms == pytest.approx(0.13) and rows["pool"].mac_share == 0
    assert rows["other"].layers == 0 and rows["other"].time_ms == pytest.approx(0.2)
    assert rows["depthwise"].ops == 1 and rows["fc"].ops == 1
    assert report.time_ms == pytest.approx(sum(r["median_ms"] for r in PTE_ROWS))
    assert max(report.categories, key=lambda r: r.gap).category == "other"


def test_profile_takes_executorch_on_local_and_qemu_only() -> None:
    from mobiledeploy.profiling_pte import check_pte_profile

    check_pte_profile("executorch", "local", None)
    check_pte_profile("litert", "adb:SERIAL", None)
    for runtime, device, phone, words in (("tvm", "local", None, "litert or executorch"),
                                          ("executorch", "adb:SERIAL", None, "--runner PATH --op-profiling"),
                                          ("executorch", "qemu:cortex-a53", "rpi3bplus", "--phone")):
        with pytest.raises(ConfigError) as caught:
            check_pte_profile(runtime, device, phone)
        assert words in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
@pytest.mark.qemu
def test_the_pte_profile_on_an_emulated_core_counts_what_the_run_counts(own_export: tuple[Path, dict[str, Any]]) -> None:
    """et_profile's window over the timed runs holds the runner's count (to 0.5%: two processes, two binaries), and
    the guest's map names where it went: XNNPACK's library, by function where it exports one."""
    from mobiledeploy.qemu.env import EmulatorMissingError, environment
    from mobiledeploy.qemu.et_profile import run_pte_profile
    from mobiledeploy.qemu.executorch_env import executorch_guest
    from mobiledeploy.qemu.profile import attribute
    from mobiledeploy.qemu.run_executorch import run_executorch_guest

    try:
        env = environment()
        guest = executorch_guest(env.root)
    except EmulatorMissingError as exc:
        pytest.skip(f"make arm with the executorch extra: {exc}")
    folder, manifest = own_export
    pte = folder / manifest["artifacts"]["pte_fp32"]["path"]
    # no warm-up: the one-time 13,132 instructions that landed in the first inference or (5 processes in 40 beside a
    # CPU hog) in the timed run after it were ExecuTorch's threadpool worker, started in the first execute(); et_runner now
    # starts the pool before its first marker (qemu/et_runner.cpp) and a thread started inside a phase fails the run
    blocks, maps, per_run = run_pte_profile(env, guest, "cortex-a76", pte, runs=1, warmup=0)
    timed = run_executorch_guest(env, guest, "cortex-a76", pte, runs=1, warmup=0).counts.runs
    profile = attribute(blocks, maps, 1, model="sesplit", precision="fp32", artifact="pte_fp32", cpu="cortex-a76")
    # Two processes of two binaries (et_profile is et_runner compiled whole with the window), the same temp folder
    # name length (`run_executorch.pte_workdir`): 42 of 459,524 apart in 3 runs of this test and 40 runs of both;
    # a clean-clone CI run once saw 1,002 (before the shared folder and the warm-up), cause not known: 0.5% kept.
    assert abs(per_run[0] - timed[0]) <= 5e-3 * timed[0]
    assert abs(profile.instructions - per_run[0]) <= 1e-3 * per_run[0]  # blocks the window cuts
    assert profile.unattributed < 0.01 * profile.instructions
    libraries = {k.library for k in profile.kernels if k.instructions > 0.01 * profile.instructions}
    assert "libexecutorch_backend_xnnpack.so" in libraries, libraries
    assert any(k.function.startswith("xnn_") for k in profile.kernels), profile.kernels[:5]
