"""`bench --device adb:…` end to end through the real Debian adb client and the fake device (tests/adbd.py).

The "benchmark binary" is android_harness/host_benchmark_model.py behind a shebang wrapper; the
device harness (android_harness/run.sh) runs under the fake device's /bin/sh (dash on Debian).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobiledeploy.bench import BenchOptions, run_bench, target_from_file
from mobiledeploy.cli import main
from mobiledeploy.results import ResultsStore
from tests.conftest_bench import (adb_env, binaries_server, failing_runner, fake_device, host_runner,  # noqa: F401
                                  litert_runner, results_db, tiny_tflite)

pytestmark = pytest.mark.adb


def bench(fake_device, model, runner, *extra, capsys):
    code = main(["bench", "--device", f"adb:{fake_device.serial}", "--model", str(model),
                 "--benchmark-binary", str(runner), "--runs", "10", "--warmup", "1", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def stored(db: Path) -> list[dict]:
    with ResultsStore(db) as store:
        return store.list()


def remote_runs(fake_device) -> list[str]:
    root = fake_device.device_tmp / "mobiledeploy"
    return sorted(p.name for p in root.iterdir() if p.name != "bin") if root.exists() else []


def test_bench_cli_over_real_adb(adb_env, fake_device, tiny_tflite, host_runner, results_db):
    env = {**adb_env.env, "MOBILEDEPLOY_DB": str(results_db)}
    proc = subprocess.run([sys.executable, "-m", "mobiledeploy", "bench", "--device", f"adb:{fake_device.serial}",
                           "--model", str(tiny_tflite["int8"]), "--benchmark-binary", str(host_runner),
                           "--runs", "15", "--warmup", "2", "--json"],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    item = json.loads(proc.stdout)["results"][0]
    assert (item["status"], item["device"], item["precision"], item["runs"]) == ("ok", f"adb:{fake_device.serial}", "int8", 15)
    assert 0 < item["min_ms"] <= item["median_ms"] <= item["p95_ms"] <= item["max_ms"]
    assert item["init_ms"] > 0 and item["first_ms"] > 0 and item["memory_delta_mb"] is not None
    facts = item["device_info"]
    assert (facts["model"], facts["soc"], facts["abi"], facts["android_release"]) == ("MD-Fake", "fakeboard", "arm64-v8a", "14")
    assert item["versions"]["adb"] and item["observed"]["benchmark_binary_pushed"] is True
    # every adb shell command went through `-s SERIAL` and quoting; the run's files are gone afterwards
    assert any(cmd.startswith("sh /data/local/tmp/mobiledeploy/") and "--binary" in cmd for cmd in fake_device.shell_commands)
    assert remote_runs(fake_device) == []
    [row] = stored(results_db)
    assert (row["run_id"], row["status"], row["median_ms"]) == (item["run_id"], "ok", item["median_ms"])


def test_binary_pushed_once_and_rounds_interleave(fake_device, tiny_tflite, host_runner, results_db):
    targets = [target_from_file(tiny_tflite["fp32"]), target_from_file(tiny_tflite["int8"])]
    report = run_bench(f"adb:{fake_device.serial}", targets, BenchOptions(runs=5, warmup=1, benchmark_binary=str(host_runner)),
                       rounds=2, db=results_db)
    assert report.ok, [r.error for r in report.results]
    assert [(r.precision, r.round) for r in report.results] == [("fp32", 0), ("int8", 0), ("int8", 1), ("fp32", 1)]
    binary_sends = [path for op, path in fake_device.sync_ops if op == "SEND" and "/bin/" in path]
    assert len(binary_sends) == 1 and binary_sends[0].startswith("/data/local/tmp/mobiledeploy/bin/")
    assert [r.observed["benchmark_binary_pushed"] for r in report.results] == [True, False, False, False]
    assert len(stored(results_db)) == 4


def test_keep_remote(fake_device, tiny_tflite, host_runner, results_db, capsys):
    code, _, err = bench(fake_device, tiny_tflite["fp32"], host_runner, "--keep-remote", capsys=capsys)
    assert code == 0, err
    [run_dir] = remote_runs(fake_device)
    kept = sorted(p.name for p in (fake_device.device_tmp / "mobiledeploy" / run_dir).iterdir())
    assert kept == ["result.pb", "run.sh", "tiny_fp32.tflite"]  # result.pb: the BenchmarkResult proto it wrote
    assert stored(results_db)[0]["observed"]["remote_dir"] == f"/data/local/tmp/mobiledeploy/{run_dir}"


def test_filename_with_spaces_and_shell_metacharacters(fake_device, tiny_tflite, host_runner, results_db, tmp_path,
                                                       capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "my model; touch PWNED $(touch PWNED2) `touch PWNED3` 'q\" & x.tflite"
    shutil.copy(tiny_tflite["fp32"], model)
    code, _, err = bench(fake_device, model, host_runner, "--json", capsys=capsys)
    assert code == 0, err
    assert not list(tmp_path.glob("PWNED*")) and not list(fake_device.root.rglob("PWNED*"))
    run_cmd = next(c for c in fake_device.shell_commands if "--graph" in c)
    assert "'/data/local/tmp/mobiledeploy/" in run_cmd and "my model; touch PWNED" in run_cmd
    assert stored(results_db)[0]["status"] == "ok"


def test_device_gone_before_the_run(fake_device, tiny_tflite, host_runner, results_db, capsys):
    fake_device.stop()
    code, out, err = bench(fake_device, tiny_tflite["fp32"], host_runner, capsys=capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("mobiledeploy: error:")
    assert fake_device.serial in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and row["error"] in err and "tiny_fp32" in out


def test_device_gone_in_the_middle_of_a_run(fake_device, tiny_tflite, host_runner, results_db, capsys):
    fake_device.drop_on("run.sh --binary", after=1.0)
    code, _, err = bench(fake_device, tiny_tflite["fp32"], host_runner, "--min-secs", "20", capsys=capsys)
    assert code == 1 and err.count("\n") == 1
    assert "went away during the benchmark run" in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and "went away" in row["error"] and row["median_ms"] is None


def test_unknown_serial_lists_the_devices_adb_sees(fake_device, tiny_tflite, host_runner, results_db, capsys):
    code = main(["bench", "--device", "adb:no-such-phone", "--model", str(tiny_tflite["fp32"]),
                 "--benchmark-binary", str(host_runner)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "adb does not see no-such-phone" in err and f"{fake_device.serial} (device)" in err
    assert [r["status"] for r in stored(results_db)] == ["failed"]


def test_adb_missing(tiny_tflite, host_runner, results_db, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["bench", "--device", "adb:R58M123ABC", "--model", str(tiny_tflite["fp32"]),
                 "--benchmark-binary", str(host_runner)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "apt-get install adb" in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and "adb client was not found" in row["error"]


def test_benchmark_binary_failing(fake_device, tiny_tflite, failing_runner, results_db, capsys):
    code, _, err = bench(fake_device, tiny_tflite["fp32"], failing_runner, capsys=capsys)
    assert code == 1 and err.count("\n") == 1
    assert "benchmark_model exited with status 3: Benchmarking failed." in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and row["device_info"]["model"] == "MD-Fake"
    assert remote_runs(fake_device) == []  # cleaned up after a failure too


def test_remote_disk_full(fake_device, tiny_tflite, host_runner, results_db, capsys):
    fake_device.disk_quota_bytes = 1000  # smaller than the harness script: the first push fails
    code, _, err = bench(fake_device, tiny_tflite["fp32"], host_runner, capsys=capsys)
    assert code == 1 and err.count("\n") == 1
    assert "no space left" in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and row["observed"]["error_type"] == "RemoteDiskFullError"
    assert row["error_kind"] == "run"  # a full disk ends this run, not the device


def test_harness_runs_under_dash_with_fake_sysfs(tmp_path, host_runner, tiny_tflite):
    """run.sh alone under dash: facts, big-core mask from cpufreq, taskset, the runner's exit status."""
    if not shutil.which("dash"):
        pytest.skip("dash is not installed")
    sysfs = tmp_path / "sysfs"
    cpus = sorted(os.sched_getaffinity(0))
    for cpu in range(max(cpus) + 1):
        freq = sysfs / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text("2800000\n" if cpu == cpus[-1] else "1800000\n")
        (freq / "scaling_governor").write_text("schedutil\n")
    zone = sysfs / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-big\n")
    (zone / "temp").write_text("43500\n")
    script = Path(__file__).resolve().parents[1] / "android_harness" / "run.sh"
    proc = subprocess.run(["dash", str(script), "--binary", str(host_runner), "--graph", str(tiny_tflite["int8"]),
                           "--threads", "1", "--runs", "3", "--warmup", "1"],
                          capture_output=True, text=True, env={**os.environ, "MOBILEDEPLOY_SYSFS": str(sysfs)}, timeout=120)
    from mobiledeploy.devices.harness import facts_from_block, split_harness_output

    block, runner_text = split_harness_output(proc.stdout)
    assert proc.returncode == 0 and block["runner_exit"] == "0", proc.stdout + proc.stderr
    if len(cpus) > 1:
        assert block["cpu_mask"] == f"{1 << cpus[-1]:x}" and block["taskset"] == ("1" if shutil.which("taskset") else "0")
    facts = facts_from_block(block)
    assert facts["governors"]["cpu0"] == "schedutil" and facts["thermal_before"] == {"thermal_zone0": 43.5}
    assert "Inference timings in us" in runner_text


def test_gate_folder_names_the_phones_machine_class_over_real_adb(adb_env, fake_device, tmp_path):
    """With a --baseline folder the gate asks the phone what it is (the harness's facts) before choosing."""
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "README").write_text("not a baseline: ignored, only *.json are read\n")
    proc = subprocess.run([sys.executable, "-m", "mobiledeploy", "gate", "--device", f"adb:{fake_device.serial}",
                           "--baseline", str(baselines), "--if-no-baseline", "skip", "--json"],
                          capture_output=True, text=True, env=adb_env.env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["status"], out["machine_class"]) == ("skipped", "MD-Fake / fakeboard / arm64-v8a")
    assert f"--device adb:{fake_device.serial} --baseline {baselines}/ --update-baseline" in out["summary"]
    proc = subprocess.run([sys.executable, "-m", "mobiledeploy", "gate", "--device", f"adb:{fake_device.serial}",
                           "--baseline", str(baselines)], capture_output=True, text=True, env=adb_env.env, timeout=180)
    assert proc.returncode == 2 and proc.stderr.startswith("mobiledeploy: error: no baseline for this machine class")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def run_command(fake_device) -> list[str]:
    """The words of the last benchmark run the device was sent (after the harness's `--`)."""
    import shlex

    cmd = [c for c in fake_device.shell_commands if "run.sh --binary" in c][-1]
    words = shlex.split(cmd)
    return words[words.index("--") + 1:]


@pytest.mark.parametrize("tool", ["classic", "litert"])
def test_both_tools_told_apart_and_read_from_their_result_proto(fake_device, tiny_tflite, host_runner, litert_runner,
                                                                results_db, capsys, tool):
    runner = litert_runner if tool == "litert" else host_runner
    code, out, err = bench(fake_device, tiny_tflite["fp32"], runner, "--json", capsys=capsys)
    assert code == 0, err
    [item] = json.loads(out)["results"]
    observed = item["observed"]  # what benchmark_model reported
    assert (observed["benchmark_tool"], observed["result_source"]) == (tool, "result_file")
    assert observed["benchmark_output_format"] == ("litert" if tool == "litert" else "current")
    assert item["runs"] == 10 and 0 < item["min_ms"] <= item["median_ms"] <= item["p95_ms"] <= item["max_ms"]
    assert item["init_ms"] > 0 and item["memory_delta_mb"] is not None
    flags = run_command(fake_device)
    assert flags[:5] == ["--num_threads=1", "--num_runs=10", "--warmup_runs=1", "--min_secs=0", "--warmup_min_secs=0"]
    assert flags[5:-1] == (["--use_cpu=true"] if tool == "litert" else ["--use_xnnpack=true"])
    assert flags[-1].startswith("--result_file_path=/data/local/tmp/mobiledeploy/") and flags[-1].endswith("/result.pb")
    help_calls = [c for c in fake_device.shell_commands if c.endswith("/benchmark_model --help")]
    assert len(help_calls) == 1  # asked once per binary
    assert observed["delegation"] == {"accelerator": "cpu", "delegate": "TfLiteXNNPackDelegate", "nodes": 5,
                                      "delegated_nodes": 5, "cpu_nodes": 0, "partitions": 1}
    assert stored(results_db)[0]["observed"]["delegation"]["nodes"] == 5


def test_the_printed_summary_when_the_result_file_cannot_be_pulled(fake_device, tiny_tflite, litert_runner, results_db,
                                                                   capsys, monkeypatch):
    from mobiledeploy.devices.adb import AdbDevice

    real_pull = AdbDevice.pull
    monkeypatch.setattr(AdbDevice, "pull", lambda self, remote, local: real_pull(self, remote + ".missing", local))
    code, out, err = bench(fake_device, tiny_tflite["int8"], litert_runner, "--json", capsys=capsys)
    assert code == 0, err
    [item] = json.loads(out)["results"]
    assert item["observed"]["result_source"] == "text" and "pull" in item["observed"]["result_file_error"]
    assert item["median_ms"] > 0 and item["runs"] == 10


def test_gpu_pushes_its_library_and_the_table_says_what_ran_where(fake_device, tiny_tflite, litert_runner, results_db,
                                                                  capsys, monkeypatch):
    monkeypatch.setenv("MOBILEDEPLOY_STANDIN_UNSUPPORTED", "MEAN")  # the simulated GPU leaves MEAN on the CPU
    code, out, err = bench(fake_device, tiny_tflite["fp32"], litert_runner, "--accelerator", "gpu", capsys=capsys)
    assert code == 0, err
    assert "ran on" in out and "GPU 4/5, CPU 1" in out
    sends = [path.rsplit(",", 1)[0] for op, path in fake_device.sync_ops if op == "SEND"]  # "PATH,MODE"
    [library] = [path for path in sends if path.endswith("/libLiteRtClGlAccelerator.so")]
    [binary] = [path for path in sends if path.endswith("/benchmark_model")]
    assert library.rpartition("/")[0] == binary.rpartition("/")[0]  # beside the binary, on LD_LIBRARY_PATH
    assert run_command(fake_device)[5:7] == ["--use_cpu=true", "--use_gpu=true"]
    [row] = stored(results_db)
    assert row["observed"]["delegation"] == {"accelerator": "gpu", "delegate": "StandInGpuAccelerator",
                                           "nodes": 5, "delegated_nodes": 4, "cpu_nodes": 1, "partitions": 2}


def test_require_full_delegation_fails_a_partial_run_in_one_line(fake_device, tiny_tflite, litert_runner, results_db,
                                                                 capsys, monkeypatch):
    monkeypatch.setenv("MOBILEDEPLOY_STANDIN_UNSUPPORTED", "MEAN")
    code, out, err = bench(fake_device, tiny_tflite["fp32"], litert_runner, "--accelerator", "gpu",
                           "--require-full-delegation", capsys=capsys)
    assert code == 1 and err.count("\n") == 1 and "full delegation was required" in err
    assert run_command(fake_device)[5:8] == ["--use_cpu=false", "--use_gpu=true", "--require_full_delegation=true"]
    [row] = stored(results_db)
    assert row["status"] == "failed" and row["config"]["accelerator"] == "gpu"


def test_npu_takes_the_dispatch_library(fake_device, tiny_tflite, litert_runner, host_runner, results_db, capsys,
                                        tmp_path):
    dispatch = tmp_path / "libLiteRtDispatch_Fake.so"
    dispatch.write_bytes(b"stand-in dispatch library")
    code, out, err = bench(fake_device, tiny_tflite["int8"], litert_runner, "--accelerator", "npu",
                           "--dispatch-library", str(dispatch), "--json", capsys=capsys)
    assert code == 0, err
    [item] = json.loads(out)["results"]
    flags = run_command(fake_device)
    assert flags[5:7] == ["--use_cpu=true", "--use_npu=true"]
    assert flags[7].startswith("--dispatch_library_path=/data/local/tmp/mobiledeploy/") and flags[7].endswith("/dispatch")
    assert item["observed"]["delegation"]["accelerator"] == "npu" and item["observed"]["delegation"]["nodes"] == 5
    # the classic tool has no NPU path: one line, a stored failed record
    code, _, err = bench(fake_device, tiny_tflite["int8"], host_runner, "--accelerator", "npu",
                         "--dispatch-library", str(dispatch), capsys=capsys)
    assert code == 1 and err.count("\n") == 1 and "needs LiteRT's benchmark_model" in err
    assert sorted(r["status"] for r in stored(results_db)) == ["failed", "ok"]  # newest first


def test_accelerators_are_for_phones(tiny_tflite, results_db, capsys):
    code = main(["bench", "--device", "local", "--model", str(tiny_tflite["fp32"]), "--accelerator", "gpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "are for adb:SERIAL devices" in err
    assert not results_db.exists() or stored(results_db) == []


def test_official_binary_downloaded_once_for_the_phones_abi(fake_device, tiny_tflite, binaries_server, results_db,
                                                            capsys, tmp_path):
    from importlib import metadata

    from mobiledeploy.files import sha256_file

    version = metadata.version("ai-edge-litert")
    for _ in range(2):
        code = main(["bench", "--device", f"adb:{fake_device.serial}", "--model", str(tiny_tflite["fp32"]),
                     "--runs", "3", "--warmup", "1", "--accelerator", "gpu", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
    cached = tmp_path / "cache" / version / "arm64-v8a"
    assert sorted(p.name for p in cached.iterdir()) == ["benchmark_model", "libLiteRtClGlAccelerator.so"]
    assert binaries_server.requests == [f"/{version}/android_arm64/benchmark_model",
                                        f"/{version}/android_arm64/libLiteRtClGlAccelerator.so"]  # once each
    for row in stored(results_db):
        assert row["observed"]["benchmark_binary_url"] == f"{binaries_server.url}/{version}/android_arm64/benchmark_model"
        assert row["observed"]["benchmark_binary_sha256"] == sha256_file(cached / "benchmark_model")
        assert row["observed"]["benchmark_tool"] == "litert" and row["status"] == "ok"


def test_offline_download_is_one_line_naming_the_option_and_the_url(fake_device, tiny_tflite, binaries_server,
                                                                    results_db, capsys):
    from importlib import metadata

    binaries_server.stop()  # offline: nothing listens there any more
    code = main(["bench", "--device", f"adb:{fake_device.serial}", "--model", str(tiny_tflite["fp32"]), "--rounds", "2"])
    err = capsys.readouterr().err
    url = f"{binaries_server.url}/{metadata.version('ai-edge-litert')}/android_arm64/benchmark_model"
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--benchmark-binary" in err and url in err
    rows = stored(results_db)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    first, rest = sorted(rows, key=lambda r: r["round"])
    assert first["observed"]["error_type"] == "BinaryUnavailableError" and url in first["error"]
    assert rest["observed"]["error_type"] == "NotRun"  # the second round is not tried: no binary to be had
    assert (first["error_kind"], rest["error_kind"]) == ("setup", "not_run")
    assert not [path for op, path in fake_device.sync_ops if op == "SEND" and "/bin/" in path]  # no binary sent


@pytest.mark.parametrize("command", [
    ["compare", "--models", "v1:g=3,scale=0.5", "--baseline", "v1:g=3,scale=0.5", "--formats", "fp32"],
    ["profile", "--arch", "v1", "--g", "3", "--scale", "0.5"],
    ["gate", "--baseline", "BASELINE", "--update-baseline", "--model", "v1:g=3,scale=0.5"],
    ["gate", "--against", "HEAD", "--model", "v1:g=3,scale=0.5"],
])
def test_every_timing_command_takes_the_accelerator_options(command, results_db, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(tmp_path / "b.json") if word == "BASELINE" else word for word in command]
    code = main([*argv, "--device", "local", "--accelerator", "gpu", "--require-full-delegation"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "are for adb:SERIAL devices" in err, err
    assert not (tmp_path / "artifacts").exists()  # refused before any export


def test_op_profiling_asks_each_tool_its_own_way(fake_device, tiny_tflite, host_runner, litert_runner, results_db,
                                                 capsys):
    for runner, flag in ((host_runner, "--enable_op_profiling=true"), (litert_runner, "--use_profiler=true")):
        code, out, err = bench(fake_device, tiny_tflite["fp32"], runner, "--op-profiling", "--json", capsys=capsys)
        assert code == 0, err
        [item] = json.loads(out)["results"]
        assert flag in run_command(fake_device)
        assert item["op_profile"][0]["node_type"] == "INVOKE" and item["op_profile"][0]["percent"] == 100.0


def test_gpu_without_its_library_beside_a_given_binary(fake_device, tiny_tflite, litert_runner, results_db, capsys,
                                                       tmp_path):
    alone = tmp_path / "alone" / "benchmark_model"
    alone.parent.mkdir()
    shutil.copy(litert_runner, alone)
    code, out, err = bench(fake_device, tiny_tflite["fp32"], alone, "--accelerator", "gpu", capsys=capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"needs libLiteRtClGlAccelerator.so beside {alone}" in err
    [row] = stored(results_db)
    assert row["status"] == "failed" and row["observed"]["benchmark_tool"] == "litert"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["compare", "gate"])
def test_commands_that_judge_stop_in_one_line_when_no_binary_can_be_had(command, fake_device, binaries_server, exports,
                                                                         results_db, capsys, tmp_path):
    """Offline with no --benchmark-binary: compare and gate exit 2 with one line, the failed runs stored."""
    import shutil

    artifacts = tmp_path / "artifacts"  # a copy: the shared export's folder must stay as its own tests expect it
    shutil.copytree(exports("v1_g3").out_root, artifacts)
    binaries_server.stop()
    device = f"adb:{fake_device.serial}"
    if command == "compare":
        argv = ["compare", "--device", device, "--models", "v1:g=3,scale=0.25", "--baseline", "v1:g=3,scale=0.25",
                "--resolutions", "64x64", "--formats", "fp32", "--rounds", "1", "--out", str(artifacts),
                "--report", str(tmp_path / "report")]
    else:
        argv = ["gate", "--baseline", str(tmp_path / "b.json"), "--update-baseline", "--device", device,
                "--model", "v1:g=3,scale=0.25,resolution=64", "--reference", "none", "--rounds", "1",
                "--artifacts", str(artifacts), "--junit", str(tmp_path / "g.xml")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--benchmark-binary" in err and "Traceback" not in err
    assert stored(results_db) and all(r["status"] == "failed" for r in stored(results_db))
    if command == "gate":  # nothing recorded as a baseline; the report says the gate ended in an error
        junit = (tmp_path / "g.xml").read_text()
        assert not (tmp_path / "b.json").exists() and 'errors="1"' in junit and "--benchmark-binary" in junit
    else:  # the report is written all the same, saying why it holds no figures
        report = (tmp_path / "report" / "compare.md").read_text()
        assert "(stopped by an error)" in report and "error: " in report and "--benchmark-binary" in report
