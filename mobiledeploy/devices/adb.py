"""`adb:SERIAL`: a phone (or a device farm's phone) over adb, timed by TFLite's `benchmark_model`.

`AdbDevice.argv` is the only place in the toolkit that builds an `adb` command line: it always
passes `-s SERIAL` (and `-H/-P` for a remote adb server). Every call is bounded by a timeout,
every word sent to `adb shell` goes through `shlex.quote`, and adb's failures become the
toolkit's own errors.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..benchmark_output import parse_benchmark_output
from ..files import sha256_file
from ..errors import (AdbMissingError, ConfigError, DeviceError, DeviceGoneError, DeviceNotFoundError, MobiledeployError,
                      RemoteDiskFullError, RunnerError)
from ..records import RunResult
from .base import Device, ms, new_result, new_run_id, parse_cpu_mask

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget

__all__ = ["AdbDevice", "find_benchmark_binary", "harness_script", "parse_harness_block", "facts_from_block",
           "fill_from_benchmark_output", "REMOTE_ROOT", "ADB_INSTALL_HINT", "BENCHMARK_MODEL_HINT"]

REMOTE_ROOT = "/data/local/tmp/mobiledeploy"
ADB_INSTALL_HINT = ("install it with `sudo apt-get install adb` (Debian/Ubuntu) or Android SDK platform-tools "
                    "(https://developer.android.com/tools/releases/platform-tools) and put it on PATH")
NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
               "nightly/latest/android_aarch64_benchmark_model")
BENCHMARK_MODEL_HINT = (
    "no benchmark_model binary for the phone: pass --benchmark-binary PATH, set MOBILEDEPLOY_BENCHMARK_MODEL, "
    "or put it at {cache}; get TensorFlow's prebuilt nightly benchmark tool ({url}) or build it with "
    "`bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model`"
)
BEGIN, END = "MOBILEDEPLOY-BEGIN", "MOBILEDEPLOY-END"
_GONE = ("device offline", "error: closed", "protocol fault", "connection reset", "broken pipe",
         "failed to read", "cannot connect", "connection refused", "no route to host")


def benchmark_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mobiledeploy" / "benchmark_model"


def find_benchmark_binary(explicit: str | os.PathLike | None = None) -> Path:
    """The arm64 `benchmark_model` to push: `explicit`, $MOBILEDEPLOY_BENCHMARK_MODEL, or the cache.

    The cache path may be the binary itself or a folder holding `benchmark_model`.
    """
    for source, value in (("--benchmark-binary", explicit), ("MOBILEDEPLOY_BENCHMARK_MODEL",
                                                             os.environ.get("MOBILEDEPLOY_BENCHMARK_MODEL"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise RunnerError(f"{source} {path} is not a file")
            return path
    cache = benchmark_cache_path()
    for path in (cache, cache / "benchmark_model"):
        if path.is_file():
            return path
    raise RunnerError(BENCHMARK_MODEL_HINT.format(cache=cache, url=NIGHTLY_URL))


def harness_script() -> Path:
    """android_harness/run.sh as installed (package data of mobiledeploy.android_harness)."""
    try:
        path = Path(str(resources.files("mobiledeploy.android_harness") / "run.sh"))
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[2] / "android_harness" / "run.sh"
    if not path.is_file():
        raise RunnerError(f"the device harness script is missing: {path}")
    return path


def _server_args(address: str | None) -> list[str]:
    """'host:port' → -H host -P port; 'host' → -H host; ':port' → -P port."""
    if not address:
        return []
    host, sep, port = address.rpartition(":") if ":" in address else (address, "", "")
    if sep and not port.isdigit():
        raise ConfigError(f"adb server {address!r} is not HOST, HOST:PORT or :PORT")
    args = ["-H", host] if host else []
    return args + (["-P", port] if port else [])


class AdbDevice(Device):
    """One phone reached through adb; `open()` checks that adb sees it (connecting host:port serials)."""

    def __init__(self, serial: str, adb_server: str | None = None, *, adb: str | None = None,
                 call_timeout_s: float = 60.0, push_timeout_s: float = 600.0, run_timeout_s: float = 1800.0):
        if not serial:
            raise DeviceError("adb: needs a serial (adb:SERIAL, e.g. adb:R58M123ABC or adb:192.168.1.20:5555)")
        self.serial = serial
        self.uri = f"adb:{serial}"
        self.adb_server = adb_server or os.environ.get("ANDROID_ADB_SERVER_ADDRESS") or None
        self._server = _server_args(self.adb_server)
        self._adb = adb
        self.call_timeout_s, self.push_timeout_s, self.run_timeout_s = call_timeout_s, push_timeout_s, run_timeout_s
        self._seen = False
        self._facts: dict[str, Any] | None = None
        self._installed: dict[str, str] = {}
        self._leftovers: set[str] = set()
        self._adb_version: str | None = None

    # ------------------------------------------------------------------ adb command lines
    def adb_path(self) -> str:
        path = self._adb or os.environ.get("MOBILEDEPLOY_ADB") or shutil.which("adb")
        if not path or not Path(path).exists():
            raise AdbMissingError(f"the adb client was not found; {ADB_INSTALL_HINT}")
        return path

    def argv(self, *args: str) -> list[str]:
        """The one builder of adb argv: adb [-H host -P port] -s SERIAL ARGS..."""
        return [self.adb_path(), *self._server, "-s", self.serial, *map(str, args)]

    def shell_command(self, words: list[str | os.PathLike]) -> str:
        """The command text for `adb shell`: every word quoted for the device's sh."""
        return " ".join(shlex.quote(str(w)) for w in words)

    def call(self, *args: str, timeout: float | None = None, what: str = "",
             on_timeout: Callable[[str], MobiledeployError] | None = None) -> subprocess.CompletedProcess:
        """Run adb; a missing client, a timeout or a failed call becomes a toolkit error."""
        timeout = timeout or self.call_timeout_s
        what = what or " ".join(args[:2])
        try:
            proc = subprocess.run(self.argv(*args), capture_output=True, text=True, errors="replace",
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise AdbMissingError(f"the adb client could not be started; {ADB_INSTALL_HINT}") from None
        except subprocess.TimeoutExpired:
            message = f"adb {what} on {self.serial} got no answer within {timeout:g} s"
            raise (on_timeout or DeviceGoneError)(message) from None
        return proc

    def check(self, proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
        if proc.returncode != 0 or "adb: error:" in proc.stdout:
            raise self.error_for(f"{proc.stderr}\n{proc.stdout}", what)
        return proc

    def error_for(self, text: str, what: str) -> MobiledeployError:
        """adb's complaint (stderr and stdout) → the toolkit's error type."""
        low = text.lower()
        last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "no output")
        if "no space left" in low:
            return RemoteDiskFullError(f"{self.serial} has no space left for {what} (free space in /data/local/tmp)")
        if "not found" in low and ("device" in low or "no devices" in low):
            return self._not_found()
        if "unauthorized" in low:
            return DeviceError(f"{self.serial} is unauthorized: accept the USB debugging prompt on the phone")
        if any(sign in low for sign in _GONE):
            return DeviceGoneError(f"{self.serial} went away during {what} ({last})")
        return DeviceError(f"adb {what} failed on {self.serial}: {last}")

    def _not_found(self) -> MobiledeployError:
        seen = self.devices()
        listing = ", ".join(f"{s} ({state})" for s, state in seen.items()) or "none"
        if self._seen:
            return DeviceGoneError(f"{self.serial} disappeared (adb now sees: {listing})")
        where = f" on the adb server at {self.adb_server}" if self.adb_server else ""
        return DeviceNotFoundError(f"adb does not see {self.serial}{where}; devices adb sees: {listing}")

    # ------------------------------------------------------------------ connection
    def devices(self) -> dict[str, str]:
        """`adb devices` as {serial: state}."""
        proc = self.call("devices", what="devices")
        if proc.returncode != 0:  # adb printed no list: the server (local or --adb-server) is not there
            last = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no answer")
            server = self.adb_server or f"localhost:{os.environ.get('ANDROID_ADB_SERVER_PORT') or 5037}"
            raise DeviceError(f"cannot reach the adb server at {server} ({last})")
        out = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.startswith(("List of", "*")):
                out[parts[0]] = parts[1]
        return out

    def open(self, wait_s: float = 3.0) -> "AdbDevice":
        """Check that adb sees the serial in state `device`; `adb connect` a host:port serial first.

        An `offline` device gets `wait_s` seconds to come back (adb reconnects TCP devices).
        """
        state = self.devices().get(self.serial)
        if state is None and re.fullmatch(r"[\w.\-]+:\d+", self.serial):
            try:
                text = self.call("connect", self.serial, what="connect").stdout
                if "connected to" in text:
                    return self._check_state(self._wait_state(wait_s), wait_s)
            except BaseException:
                self._disconnect()  # a failed connect leaves an entry the adb server retries for ever
                raise
            self._disconnect()
            raise self._connect_failed(text)
        return self._check_state(state, wait_s)

    def _check_state(self, state: str | None, wait_s: float) -> "AdbDevice":
        if state == "offline":
            state = self._wait_state(wait_s)
        if state is None:
            raise self._not_found()
        if state == "offline":
            raise DeviceGoneError(f"{self.serial} is offline: adb lists it but cannot reach it "
                                  "(replugged, rebooted or out of the network?)")
        if state != "device":
            raise self.error_for(f"device {state}", "open")
        self._seen = True
        return self

    def _disconnect(self) -> None:
        """`adb disconnect` the host:port this device connected; best effort (it may be gone already)."""
        try:
            self.call("disconnect", self.serial, what="disconnect", timeout=min(self.call_timeout_s, 10.0))
        except MobiledeployError:
            pass

    def _connect_failed(self, text: str) -> MobiledeployError:
        listing = ", ".join(f"{s} ({st})" for s, st in self.devices().items()) or "none"
        reason = " ".join(text.split()) or "no answer"
        return DeviceNotFoundError(f"adb cannot reach {self.serial} ({reason}); devices adb sees: {listing}")

    def _wait_state(self, wait_s: float) -> str | None:
        deadline = time.monotonic() + wait_s
        state = None
        while time.monotonic() < deadline:
            state = self.devices().get(self.serial)
            if state == "device":
                return state
            time.sleep(0.2)
        return state

    # ------------------------------------------------------------------ Device interface
    def shell(self, words: list[str | os.PathLike], *, timeout: float | None = None, check: bool = True,
              what: str = "", on_timeout: Callable[[str], MobiledeployError] | None = None) -> subprocess.CompletedProcess:
        what = what or f"shell {Path(str(words[0])).name}"
        proc = self.call("shell", self.shell_command(words), timeout=timeout, what=what, on_timeout=on_timeout)
        if proc.returncode != 0 and proc.stderr.startswith(("error:", "adb: error:")):
            raise self.error_for(proc.stderr, what)
        return self.check(proc, what) if check else proc

    def push(self, local: Path, remote: str) -> None:
        self.check(self.call("push", str(local), remote, timeout=self.push_timeout_s, what=f"push {Path(local).name}"),
                   f"push {Path(local).name}")

    def pull(self, remote: str, local: Path) -> None:
        self.check(self.call("pull", remote, str(local), timeout=self.push_timeout_s, what="pull"), "pull")

    def info(self) -> dict[str, Any]:
        if self._facts is None:
            remote_dir = f"{REMOTE_ROOT}/{new_run_id()}-info"
            self.shell(["mkdir", "-p", remote_dir])
            try:
                self.push(harness_script(), f"{remote_dir}/run.sh")
                proc = self.shell(["sh", f"{remote_dir}/run.sh", "--info"], what="device facts")
            finally:
                self.shell(["rm", "-rf", remote_dir], check=False)
            block, _ = split_harness_output(proc.stdout)
            if block is None:
                raise DeviceError(f"{self.serial}: the harness printed no facts ({proc.stdout.strip()[-200:]!r})")
            self._facts = facts_from_block(block)
        return {k: v for k, v in self._facts.items() if not k.startswith("thermal_after")}

    def run(self, target: "BenchTarget", options: "BenchOptions") -> RunResult:
        result = new_result(target, options, self.uri)
        result.versions = self._versions()
        start = time.perf_counter()
        remote_dir = f"{REMOTE_ROOT}/{result.run_id}"
        try:
            parse_cpu_mask(options.cpu_mask)
            binary = find_benchmark_binary(options.benchmark_binary)
            remote_bin = self.install_binary(binary, result.config)
            result.versions["benchmark_model_sha256"] = result.config["benchmark_binary_sha256"]
            self.shell(["mkdir", "-p", remote_dir])
            self._leftovers.add(remote_dir)
            remote_model = f"{remote_dir}/{Path(target.artifact).name}"
            self.push(Path(target.artifact), remote_model)
            self.push(harness_script(), f"{remote_dir}/run.sh")
            self._time(result, remote_dir, remote_bin, remote_model, options)
        except (MobiledeployError, OSError, ValueError) as exc:
            result.config["error_type"] = type(exc).__name__
            result.failed(" ".join(str(exc).split()))
        finally:
            self._remove_run_dir(remote_dir, options.keep_remote, result)
            result.wall_s = time.perf_counter() - start
        return result

    def cleanup(self) -> None:
        for remote_dir in sorted(self._leftovers):
            try:
                self.shell(["rm", "-rf", remote_dir], check=False, timeout=30)
            except MobiledeployError:
                return
        self._leftovers.clear()

    # ------------------------------------------------------------------ steps of a run
    def install_binary(self, binary: Path, config: dict[str, Any]) -> str:
        """Push the runner unless the device already has one with the same sha256 (bin/<sha256>/)."""
        sha = sha256_file(binary)
        remote = f"{REMOTE_ROOT}/bin/{sha}/benchmark_model"
        config.update(benchmark_binary=str(binary), benchmark_binary_sha256=sha)
        if sha in self._installed:
            config["benchmark_binary_pushed"] = False
            return remote
        proc = self.shell(["sha256sum", remote], check=False, what="sha256sum")
        present = proc.returncode == 0 and proc.stdout.split()[:1] == [sha]
        if not present:
            self.shell(["mkdir", "-p", f"{REMOTE_ROOT}/bin/{sha}"])
            self.push(binary, remote)
            self.shell(["chmod", "755", remote])
        config["benchmark_binary_pushed"] = not present
        self._installed[sha] = remote
        return remote

    def _time(self, result: RunResult, remote_dir: str, remote_bin: str, remote_model: str,
              options: "BenchOptions") -> None:
        words = ["sh", f"{remote_dir}/run.sh", "--binary", remote_bin, "--graph", remote_model,
                 "--threads", options.threads, "--runs", options.runs, "--warmup", options.warmup,
                 "--min-secs", f"{options.min_secs:g}", "--cpu-mask", options.cpu_mask]
        if options.op_profiling:
            words.append("--op-profiling")
        proc = self.shell(words, timeout=self.run_timeout_s, check=False, what="benchmark run",
                          on_timeout=lambda m: RunnerError(f"{m}: the benchmark did not finish"))
        block, runner_text = split_harness_output(proc.stdout)
        if block is None:
            raise self._harness_died(proc)
        facts = facts_from_block(block)
        self._facts = {**(self._facts or {}), **{k: v for k, v in facts.items() if k != "thermal_after"}}
        result.device_info = facts
        result.config.update(cpu_mask_used=facts.get("cpu_mask") or None, taskset=facts.get("taskset"),
                             runner="benchmark_model")
        exit_code = int(block.get("runner_exit", "-1") or -1)
        if exit_code != 0:
            last = next((line.strip() for line in reversed(runner_text.splitlines()) if line.strip()), "no output")
            raise RunnerError(f"benchmark_model exited with status {exit_code}: {last[:300]}")
        fill_from_benchmark_output(result, parse_benchmark_output(runner_text))

    def _harness_died(self, proc: subprocess.CompletedProcess) -> MobiledeployError:
        """No closing block: the device dropped the connection, or the harness could not start."""
        state = self.devices().get(self.serial)
        if state != "device":
            return DeviceGoneError(f"{self.serial} went away during the benchmark run "
                                   f"(adb now reports it as {state or 'absent'})")
        text = " ".join((proc.stderr or proc.stdout).split())[-300:] or "no output"
        return RunnerError(f"the device harness stopped without a result (status {proc.returncode}): {text}")

    def _remove_run_dir(self, remote_dir: str, keep: bool, result: RunResult) -> None:
        if remote_dir not in self._leftovers:
            return
        if keep:
            result.config["remote_dir"] = remote_dir
            self._leftovers.discard(remote_dir)
            return
        try:
            self.shell(["rm", "-rf", remote_dir], check=False, timeout=60)
            self._leftovers.discard(remote_dir)
        except MobiledeployError:
            pass  # the device is gone; nothing to clean now

    def _versions(self) -> dict[str, str]:
        from .local import local_versions

        versions = local_versions()
        if self._adb_version is None:
            try:
                lines = self.call("version", what="version", timeout=10).stdout.splitlines()
                self._adb_version = " ".join(line.split()[-1] for line in lines[:2] if line.split())
            except MobiledeployError:
                self._adb_version = ""
        if self._adb_version:
            versions["adb"] = self._adb_version
        return versions


def split_harness_output(stdout: str) -> tuple[dict[str, str] | None, str]:
    """(the key=value block, everything the runner printed) from the harness's stdout."""
    begin = stdout.rfind(BEGIN)
    end = stdout.find(END, begin + 1) if begin >= 0 else -1
    if begin < 0 or end < 0:
        return None, stdout
    return parse_harness_block(stdout[begin + len(BEGIN):end]), stdout[:begin]


def parse_harness_block(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _celsius(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value / 1000.0 if abs(value) >= 1000 else value  # sysfs: millidegrees (a few report degrees)


def facts_from_block(block: dict[str, str]) -> dict[str, Any]:
    """The harness's key=value block → device facts in the toolkit's vocabulary."""
    prop = lambda name: block.get(f"prop.{name}") or None  # noqa: E731
    facts: dict[str, Any] = {
        "kind": "android",
        "model": prop("ro.product.model"),
        "manufacturer": prop("ro.product.manufacturer"),
        "device": prop("ro.product.device"),
        "soc": prop("ro.soc.model") or prop("ro.board.platform"),
        "board_platform": prop("ro.board.platform"),
        "abi": prop("ro.product.cpu.abi"),
        "android_release": prop("ro.build.version.release"),
        "sdk": prop("ro.build.version.sdk"),
        "cores": int(block["cores"]) if block.get("cores", "").isdigit() else None,
        "cpu_max_khz": {}, "governors": {}, "thermal_zones": {}, "thermal_before": {}, "thermal_after": {},
    }
    for key, value in block.items():
        parts = key.split(".")
        if parts[0] == "cpu" and len(parts) == 3:
            if parts[2] == "max_khz":
                facts["cpu_max_khz"][parts[1]] = int(value) if value.isdigit() else value
            elif parts[2] == "governor":
                facts["governors"][parts[1]] = value
        elif parts[0] == "thermal" and len(parts) == 3 and parts[2] == "type":
            facts["thermal_zones"][parts[1]] = value
        elif parts[0] in ("thermal_before", "thermal_after") and len(parts) == 2:
            if (celsius := _celsius(value)) is not None:
                facts[parts[0]][parts[1]] = celsius
    if "cpu_mask" in block:
        facts["cpu_mask"] = block["cpu_mask"]
        facts["taskset"] = block.get("taskset") == "1"
    facts["harness_version"] = block.get("harness_version")
    return facts


def fill_from_benchmark_output(result: RunResult, parsed: dict[str, Any]) -> RunResult:
    """benchmark_model's summary → the RunResult fields (it prints stats, not per-run timings)."""
    if parsed.get("failed"):
        raise RunnerError("benchmark_model reported 'Benchmarking failed.'")
    stats = parsed.get("inference") or {}
    result.status, result.error = "ok", None
    result.runs = int(stats.get("count", 0)) or result.runs
    result.mean_ms = ms(stats.get("avg", parsed.get("inference_avg_us")))
    result.std_ms = ms(stats.get("std"))
    result.min_ms, result.max_ms = ms(stats.get("min")), ms(stats.get("max"))
    result.median_ms, result.p95_ms = ms(stats.get("median")), ms(stats.get("p95"))
    if result.mean_ms and result.std_ms is not None:
        result.cv = result.std_ms / result.mean_ms
    result.init_ms = ms(parsed.get("init_us"))
    result.first_ms = ms(parsed.get("first_us"))
    result.warmup_ms = ms(parsed.get("warmup_avg_us"))
    result.memory_delta_mb = parsed.get("memory_overall_mb")
    result.peak_memory_mb = parsed.get("peak_memory_mb")
    result.op_profile = parsed.get("op_profile")
    result.config["benchmark_output_format"] = parsed.get("format")
    return result
