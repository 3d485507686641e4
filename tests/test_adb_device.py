"""AdbDevice without a device: exact argv, quoting, error mapping (a fake `adb` on PATH), harness parsing."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from mobiledeploy.bench import BenchOptions, target_from_file
from mobiledeploy.benchmark_output import parse_benchmark_output
from mobiledeploy.devices import open_device, parse_device_uri
from mobiledeploy.devices.adb import AdbDevice
from mobiledeploy.devices.harness import facts_from_block, split_harness_output
from mobiledeploy.runtimes.benchmark_model import fill_from_benchmark_output
from mobiledeploy.runtimes.binary import find_benchmark_binary
from mobiledeploy.devices.base import new_result
from mobiledeploy.errors import (AdbMissingError, ConfigError, DeviceError, DeviceGoneError, DeviceNotFoundError,
                                 RemoteDiskFullError, RunnerError)
from mobiledeploy.records import RunResult

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"
DEVICES = "List of devices attached\nR58M123ABC\tdevice\nemulator-5554\toffline\n\n"

FAKE_ADB = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
i = 0
while i < len(args) and args[i] in ("-H", "-P", "-s"):
    i += 2
rules = json.loads(os.environ.get("FAKE_ADB_RULES", "{{}}"))
rc, out, err, *delay = rules.get(args[i] if i < len(args) else "", rules.get("*", [0, "", ""]))
time.sleep(delay[0] if delay else 0)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
"""


class FakeAdb:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.bin = tmp_path / "fakebin"
        self.bin.mkdir()
        self.path = self.bin / "adb"
        self.path.write_text(FAKE_ADB.format(python=sys.executable))
        self.path.chmod(0o755)
        self.log = tmp_path / "adb.log"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", f"{self.bin}:/usr/bin:/bin")
        monkeypatch.setenv("FAKE_ADB_LOG", str(self.log))
        monkeypatch.delenv("ANDROID_ADB_SERVER_ADDRESS", raising=False)
        monkeypatch.delenv("MOBILEDEPLOY_ADB", raising=False)
        self.rules({"devices": [0, DEVICES, ""]})

    def rules(self, rules: dict) -> None:
        self.monkeypatch.setenv("FAKE_ADB_RULES", json.dumps(rules))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def fake_adb(tmp_path, monkeypatch) -> FakeAdb:
    return FakeAdb(tmp_path, monkeypatch)


def test_argv_always_has_the_serial(fake_adb):
    dev = AdbDevice("R58M123ABC")
    assert dev.argv("shell", "true") == [str(fake_adb.path), "-s", "R58M123ABC", "shell", "true"]
    assert dev.argv("devices")[1:3] == ["-s", "R58M123ABC"]


@pytest.mark.parametrize("server, expected", [
    ("farm.example:5037", ["-H", "farm.example", "-P", "5037"]),
    ("farm.example", ["-H", "farm.example"]),
    (":5038", ["-P", "5038"]),
])
def test_remote_adb_server(fake_adb, server, expected):
    assert AdbDevice("10.0.0.5:5555", adb_server=server).argv("devices")[1:] == [*expected, "-s", "10.0.0.5:5555", "devices"]


def test_adb_server_from_the_environment(fake_adb, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_ADDRESS", "farm")
    assert AdbDevice("X").argv("devices")[1:] == ["-H", "farm", "-s", "X", "devices"]
    assert AdbDevice("X", adb_server="other:1").argv("devices")[1:3] == ["-H", "other"]
    with pytest.raises(ConfigError, match="HOST:PORT"):  # bad input: exit 2, nothing recorded
        AdbDevice("X", adb_server="host:port")


def test_every_shell_word_is_quoted(fake_adb):
    fake_adb.rules({"shell": [0, "ok\n", ""]})
    dev = AdbDevice("R58M123ABC")
    words = ["sh", "/data/local/tmp/mobiledeploy/r1/run.sh", "--graph", "/data/local/tmp/mobiledeploy/r1/a b;$(rm -rf /)'\"&.tflite",
             "--threads", 4]
    assert dev.shell_command(["ls", "/data/local/tmp"]) == "ls /data/local/tmp"
    assert dev.shell_command(["echo", "a b"]) == "echo 'a b'"
    assert shlex.split(dev.shell_command(words)) == [str(w) for w in words]
    dev.shell(words)
    call = fake_adb.calls()[-1]
    assert call[:3] == ["-s", "R58M123ABC", "shell"] and len(call) == 4  # one pre-quoted command word
    assert shlex.split(call[3]) == [str(w) for w in words]


def test_unknown_serial_lists_what_adb_sees(fake_adb):
    with pytest.raises(DeviceNotFoundError) as err:
        open_device("adb:NOPE123")
    assert str(err.value) == ("adb does not see NOPE123; devices adb sees: R58M123ABC (device), "
                              "emulator-5554 (offline)")
    assert all(call[:2] == ["-s", "NOPE123"] for call in fake_adb.calls())


def test_host_port_serial_is_connected_first(fake_adb):
    fake_adb.rules({"devices": [0, DEVICES, ""],
                    "connect": [0, "failed to connect to '10.1.1.1:5555': Connection refused\n", ""]})
    with pytest.raises(DeviceNotFoundError, match=r"cannot reach 10\.1\.1\.1:5555 \(failed to connect .*refused\)"):
        open_device("adb:10.1.1.1:5555")
    assert ["-s", "10.1.1.1:5555", "connect", "10.1.1.1:5555"] in fake_adb.calls()


def test_a_failed_connect_is_disconnected_again(fake_adb):
    """A failed `adb connect` leaves an offline entry the adb server keeps retrying: we take it back."""
    fake_adb.rules({"devices": [0, DEVICES, ""],
                    "connect": [0, "failed to connect to '10.1.1.1:5555': Connection refused\n", ""]})
    with pytest.raises(DeviceNotFoundError):
        open_device("adb:10.1.1.1:5555")
    calls = fake_adb.calls()
    connect = calls.index(["-s", "10.1.1.1:5555", "connect", "10.1.1.1:5555"])
    assert ["-s", "10.1.1.1:5555", "disconnect", "10.1.1.1:5555"] in calls[connect + 1:]


def test_a_connected_device_that_stays_offline_is_disconnected_again(fake_adb):
    fake_adb.rules({"devices": [0, DEVICES, ""], "connect": [0, "connected to 10.1.1.1:5555\n", ""]})
    with pytest.raises(DeviceNotFoundError):  # adb never lists it
        AdbDevice("10.1.1.1:5555").open(wait_s=0.3)
    assert fake_adb.calls()[-1][2:] == ["disconnect", "10.1.1.1:5555"]


def test_a_listed_device_is_never_disconnected(fake_adb):
    open_device("adb:R58M123ABC").close()
    assert not [c for c in fake_adb.calls() if "disconnect" in c]


def test_an_unreachable_adb_server_is_said_so(fake_adb):
    fake_adb.rules({"devices": [1, "", "adb: failed to check server version: cannot connect to daemon at "
                                       "tcp:farm:5037: Connection refused\n"]})
    with pytest.raises(DeviceError) as err:
        open_device("adb:R58M123ABC", adb_server="farm:5037")
    assert str(err.value).startswith("cannot reach the adb server at farm:5037 (adb: failed to check server version")
    assert "does not see" not in str(err.value)


def test_open_a_listed_device(fake_adb):
    dev = open_device("adb:R58M123ABC")
    assert isinstance(dev, AdbDevice) and dev.uri == "adb:R58M123ABC"


@pytest.mark.parametrize("stderr, stdout, error, text", [
    ("error: device 'R58M123ABC' not found\n", "", DeviceNotFoundError, r"devices adb sees: R58M123ABC \(device\)"),
    ("error: device offline\n", "", DeviceGoneError, "went away"),
    ("error: closed\n", "", DeviceGoneError, "went away"),
    ("", "adb: error: failed to copy 'm.tflite' to '/data/local/tmp/x': remote write failed: No space left on device\n",
     RemoteDiskFullError, "no space left"),
    ("error: device unauthorized.\n", "", DeviceError, "accept the USB debugging prompt"),
    ("error: something new\n", "", DeviceError, "something new"),
])
def test_adb_failures_map_to_toolkit_errors(fake_adb, stderr, stdout, error, text):
    fake_adb.rules({"devices": [0, DEVICES, ""], "push": [1, stdout, stderr]})
    with pytest.raises(error, match=text) as caught:
        AdbDevice("R58M123ABC").push(Path("m.tflite"), "/data/local/tmp/x/m.tflite")
    assert type(caught.value) is error and "\n" not in str(caught.value)


def test_a_device_that_was_seen_and_vanished_is_gone(fake_adb):
    dev = open_device("adb:R58M123ABC")
    fake_adb.rules({"devices": [0, "List of devices attached\n\n", ""],
                    "shell": [1, "", "error: device 'R58M123ABC' not found\n"]})
    with pytest.raises(DeviceGoneError, match="disappeared"):
        dev.shell(["true"])


def test_every_call_has_a_timeout(fake_adb):
    fake_adb.rules({"shell": [0, "", "", 5]})
    with pytest.raises(DeviceGoneError, match="no answer within 0.5 s"):
        AdbDevice("R58M123ABC", call_timeout_s=0.5).shell(["true"])


def test_adb_missing_has_an_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MOBILEDEPLOY_ADB", raising=False)
    with pytest.raises(AdbMissingError, match="apt-get install adb.*platform-tools"):
        open_device("adb:R58M123ABC")


def test_device_uris():
    assert parse_device_uri("local") == ("local", None)
    assert parse_device_uri("adb:192.168.1.20:5555") == ("adb", "192.168.1.20:5555")
    for bad in ("adb:", "adb", "usb:1", ""):
        with pytest.raises(ConfigError):
            parse_device_uri(bad)


def test_find_benchmark_binary(tmp_path, monkeypatch):
    monkeypatch.delenv("MOBILEDEPLOY_BENCHMARK_MODEL", raising=False)
    monkeypatch.delenv("MOBILEDEPLOY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(RunnerError) as err:
        find_benchmark_binary()
    message = str(err.value)
    assert "\n" not in message and "--benchmark-binary" in message and "MOBILEDEPLOY_BENCHMARK_MODEL" in message
    assert "nightly" in message and "//tensorflow/lite/tools/benchmark:benchmark_model" in message
    with pytest.raises(RunnerError, match="is not a file"):
        find_benchmark_binary(tmp_path / "missing")
    cached = tmp_path / "cache" / "mobiledeploy" / "benchmark_model"
    cached.parent.mkdir(parents=True)
    cached.write_text("bin")
    assert find_benchmark_binary() == cached
    env_binary = tmp_path / "bm"
    env_binary.write_text("bin")
    monkeypatch.setenv("MOBILEDEPLOY_BENCHMARK_MODEL", str(env_binary))
    assert find_benchmark_binary() == env_binary
    assert find_benchmark_binary(cached) == cached


def test_harness_block_and_facts():
    stdout = ("INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 4\n"
              "MOBILEDEPLOY-BEGIN\nharness_version=1\nprop.ro.product.model=Pixel 6 Pro\nprop.ro.board.platform=gs101\n"
              "prop.ro.product.cpu.abi=arm64-v8a\nprop.ro.build.version.release=14\ncpu.cpu0.max_khz=1803000\n"
              "cpu.cpu0.governor=sched_pixel\ncpu.cpu7.max_khz=2850000\ncores=8\nthermal.thermal_zone0.type=BIG\n"
              "thermal_before.thermal_zone0=41250\nthermal_after.thermal_zone0=47500\ncpu_mask=c0\ntaskset=1\n"
              "runner_exit=0\nMOBILEDEPLOY-END\n")
    block, runner = split_harness_output(stdout)
    assert runner.startswith("INFO: Inference timings") and block["runner_exit"] == "0"
    facts = facts_from_block(block)
    assert facts["model"] == "Pixel 6 Pro" and facts["soc"] == "gs101" and facts["abi"] == "arm64-v8a"
    assert facts["android_release"] == "14" and facts["cores"] == 8
    assert facts["cpu_max_khz"] == {"cpu0": 1803000, "cpu7": 2850000} and facts["governors"] == {"cpu0": "sched_pixel"}
    assert facts["thermal_before"] == {"thermal_zone0": 41.25} and facts["thermal_after"] == {"thermal_zone0": 47.5}
    assert facts["cpu_mask"] == "c0" and facts["taskset"] is True and facts["thermal_zones"] == {"thermal_zone0": "BIG"}
    assert split_harness_output("partial output, then the device dropped")[0] is None


def test_benchmark_output_fills_a_run_result():
    result = RunResult(model="m", precision="fp32", device="adb:X", artifact="a", sha256="s", threads=4, runs=0, warmup=1)
    fill_from_benchmark_output(result, parse_benchmark_output((FIXTURES / "ti_am62x_cpu.txt").read_text()))
    assert result.ok and result.runs == 50 and result.timings_us is None
    assert (result.median_ms, result.p95_ms, result.mean_ms, result.min_ms, result.max_ms) == (
        1239.807, 1247.415, 1240.27, 1238.588, 1252.566)
    assert result.std_ms == 2.565 and result.cv == pytest.approx(2.565 / 1240.27)
    assert (result.init_ms, result.first_ms, result.warmup_ms) == (5.579, 1357.602, 1357.6)
    assert result.memory_delta_mb == 109.832 and result.peak_memory_mb is None and result.p90_ms is None


def test_run_without_a_runner_binary_is_a_failed_result(fake_adb, tiny_tflite, tmp_path, monkeypatch):
    monkeypatch.delenv("MOBILEDEPLOY_BENCHMARK_MODEL", raising=False)
    monkeypatch.delenv("MOBILEDEPLOY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    dev = open_device("adb:R58M123ABC")
    result = dev.run(target_from_file(tiny_tflite["fp32"]), BenchOptions())
    assert result.status == "failed" and "no benchmark_model binary" in result.error
    assert result.observed["error_type"] == "RunnerError"
    assert not any("push" in call for call in fake_adb.calls())  # nothing was sent


def test_new_result_starts_failed():
    target = target_from_file.__globals__["BenchTarget"](name="m", artifact=Path("m.tflite"), precision="fp32", sha256="x")
    result = new_result(target, BenchOptions(threads=2, runs=7), "adb:X")
    assert result.status == "failed" and result.threads == 2 and result.config["runs_requested"] == 7 and result.run_id


CLASSIC_HELP = ("usage: benchmark_model <flags>\nFlags:\n\t--num_runs=50\tint32\toptional\tnumber of runs\n"
                "\t--graph=\tstring\toptional\tmodel\n\t--use_xnnpack=false\tbool\toptional\txnnpack\n"
                "\t--use_gpu=false\tbool\toptional\tuse gpu\n\t--enable_op_profiling=false\tbool\toptional\tprofile\n"
                "\t--num_threads=-1\tint32\toptional\tthreads\n\t--warmup_runs=1\tint32\toptional\twarm-up\n"
                "\t--min_secs=1\tfloat\toptional\tmin\n\t--warmup_min_secs=0.5\tfloat\toptional\tmin\n"
                "\t--require_full_delegation=false\tbool\toptional\tfull\n")
LITERT_HELP = (CLASSIC_HELP.replace("\t--use_xnnpack=false\tbool\toptional\txnnpack\n", "")
               .replace("\t--enable_op_profiling=false\tbool\toptional\tprofile\n", "")
               + "\t--use_cpu=true\tbool\toptional\tcpu\n\t--use_npu=false\tbool\toptional\tnpu\n"
               "\t--dispatch_library_path=\tstring\toptional\tdispatch\n\t--result_file_path=\tstring\toptional\tproto\n")
BASE_FLAGS = ["--num_threads=4", "--num_runs=20", "--warmup_runs=2", "--min_secs=0", "--warmup_min_secs=0"]


def test_the_two_tools_are_told_apart_by_their_help():
    from mobiledeploy.runtimes.tool import binary_kind

    classic, litert = binary_kind(CLASSIC_HELP), binary_kind(LITERT_HELP)
    assert (classic.tool, classic.result_file) == ("classic", False)
    assert (litert.tool, litert.result_file) == ("litert", True)
    assert binary_kind("ERROR: Could not allocate tensors\nBenchmarking failed.").tool == "unknown"


@pytest.mark.parametrize("help_text, accelerator, full, expected", [
    (CLASSIC_HELP, "cpu", False, ["--use_xnnpack=true"]),
    (CLASSIC_HELP, "gpu", True, ["--use_gpu=true", "--require_full_delegation=true"]),
    (LITERT_HELP, "cpu", False, ["--use_cpu=true", "--result_file_path=/r/result.pb"]),
    (LITERT_HELP, "cpu", True, ["--use_cpu=true", "--result_file_path=/r/result.pb"]),  # checked from the log instead
    (LITERT_HELP, "gpu", True, ["--use_cpu=false", "--use_gpu=true", "--require_full_delegation=true",
                                "--result_file_path=/r/result.pb"]),
    (LITERT_HELP, "npu", False, ["--use_cpu=true", "--use_npu=true", "--dispatch_library_path=/vendor/lib64",
                                 "--result_file_path=/r/result.pb"]),
])
def test_each_tool_gets_only_flags_it_accepts(help_text, accelerator, full, expected):
    from mobiledeploy.runtimes.tool import benchmark_flags, binary_kind

    options = BenchOptions(threads=4, runs=20, warmup=2, accelerator=accelerator, require_full_delegation=full,
                           dispatch_library="/vendor/lib64" if accelerator == "npu" else None)
    flags = benchmark_flags(binary_kind(help_text), options, "/r/result.pb", "/vendor/lib64")
    assert flags == BASE_FLAGS + expected


def test_a_flag_the_binary_lacks_is_said_in_one_line():
    from mobiledeploy.runtimes.tool import benchmark_flags, binary_kind

    with pytest.raises(RunnerError, match=r"litert benchmark_model has no --use_profiler flag, which "
                                          r"--op-profiling needs"):
        benchmark_flags(binary_kind(LITERT_HELP), BenchOptions(op_profiling=True), None)
    no_gpu = binary_kind(CLASSIC_HELP.replace("\t--use_gpu=false\tbool\toptional\tuse gpu\n", ""))
    with pytest.raises(RunnerError, match=r"classic benchmark_model has no --use_gpu flag, which --accelerator gpu"):
        benchmark_flags(no_gpu, BenchOptions(accelerator="gpu"), None)
    with pytest.raises(RunnerError, match="--accelerator npu needs LiteRT's benchmark_model"):
        benchmark_flags(binary_kind(CLASSIC_HELP), BenchOptions(accelerator="npu", dispatch_library="/x"), None)
    with pytest.raises(ConfigError, match="--dispatch-library"):
        BenchOptions(accelerator="npu").validate()
    with pytest.raises(ConfigError, match="cpu, gpu, npu"):
        BenchOptions(accelerator="dsp").validate()


def test_where_text():
    from mobiledeploy.cli.bench_cmd import delegation_text

    gpu = {"accelerator": "gpu", "delegate": "GpuDelegate", "nodes": 130, "delegated_nodes": 118, "partitions": 3}
    assert delegation_text({"delegation": gpu}) == "GPU 118/130, CPU 12"
    xnn = {"accelerator": "cpu", "delegate": "TfLiteXNNPackDelegate", "nodes": 66, "delegated_nodes": 60,
           "not_delegated": {"AVERAGE_POOL_2D": 3, "RELU": 3}}
    assert delegation_text({"delegation": xnn}) == "XNNPACK 60/66, CPU 6 (AVERAGE_POOL_2D×3, RELU×3)"
    assert delegation_text({"delegation": {"accelerator": "npu"}}) == "NPU: no delegation logged"
    assert delegation_text({"delegation": {"partitions": 7, "not_delegated": {"RELU": 3}}}) == "7 partitions; own kernels: RELU×3"


def test_a_download_error_names_the_option_and_the_url(monkeypatch, tmp_path):
    from mobiledeploy.errors import BinaryUnavailableError
    from mobiledeploy.runtimes.binary import official_binary

    monkeypatch.setenv("MOBILEDEPLOY_BINARIES_URL", "http://127.0.0.1:9/bucket/")  # discard port: refused
    monkeypatch.setenv("MOBILEDEPLOY_CACHE", str(tmp_path))
    with pytest.raises(BinaryUnavailableError) as err:
        official_binary("arm64-v8a")
    message = str(err.value)
    assert message.startswith("cannot download http://127.0.0.1:9/bucket/") and "/android_arm64/benchmark_model (" in message
    assert "--benchmark-binary" in message and "\n" not in message and err.value.exit_code == 2
    assert not list(tmp_path.rglob("*benchmark_model*"))  # nothing half-written
    with pytest.raises(BinaryUnavailableError, match="arm64-v8a only and this phone is armeabi-v7a"):
        official_binary("armeabi-v7a")


def test_full_delegation_is_checked_on_the_host_too():
    """LiteRT aborts on --require_full_delegation with the CPU on, so on `cpu` the host checks the log's figure."""
    from mobiledeploy.runtimes.benchmark_model import check_full_delegation, delegation_record

    options = BenchOptions(accelerator="cpu", require_full_delegation=True)
    partial = delegation_record({"delegate": "TfLiteXNNPackDelegate", "nodes": 66, "delegated_nodes": 60,
                                 "cpu_nodes": 6, "partitions": 7}, options)
    assert partial["accelerator"] == "cpu"
    with pytest.raises(RunnerError, match=r"TfLiteXNNPackDelegate took 60 of 66 nodes \(6 left on the CPU\)"):
        check_full_delegation(partial, options)
    check_full_delegation({**partial, "delegated_nodes": 66, "cpu_nodes": 0}, options)
    check_full_delegation(partial, BenchOptions())  # not required: recorded, not failed
