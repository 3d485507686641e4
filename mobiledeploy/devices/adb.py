"""`adb:SERIAL`: the transport to a phone (or a device farm's phone) over adb.

How a model is timed there is a runtime's business (`runtimes/benchmark_model.py`); `AdbDevice.run`
composes the two. `AdbDevice.argv` is the only place in the toolkit that builds an `adb` command line: it always
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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import (AdbMissingError, ConfigError, DeviceError, DeviceGoneError, DeviceNotFoundError, MobiledeployError,
                      RemoteDiskFullError, RunnerError)
from ..records import RunResult
from .base import Device, new_run_id, parse_cpu_mask
from .kinds import NotThisForm
from .harness import facts_from_block, harness_script, split_harness_output

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["AdbDevice", "REMOTE_ROOT", "ADB_INSTALL_HINT"]

REMOTE_ROOT = "/data/local/tmp/mobiledeploy"
ADB_INSTALL_HINT = ("install it with `sudo apt-get install adb` (Debian/Ubuntu) or Android SDK platform-tools "
                    "(https://developer.android.com/tools/releases/platform-tools) and put it on PATH")
_GONE = ("device offline", "error: closed", "protocol fault", "connection reset", "broken pipe",
         "failed to read", "cannot connect", "connection refused", "no route to host")


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
    """One phone reached through adb; `open()` checks that adb sees it (connecting host:port serials).

    Runs work in `remote_root`/<run id>/ (created by the runtime through `make_workdir`, removed after it).
    """

    remote_root = REMOTE_ROOT

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
        self._leftovers: set[str] = set()
        self._adb_version: str | None = None

    @classmethod
    def parse_arg(cls, arg: str | None) -> str | None:
        """adb:SERIAL: any non-empty serial (host:port included)."""
        if not arg:
            raise NotThisForm(arg)
        return arg

    @classmethod
    def from_uri(cls, arg: str | None, *, adb_server: str | None = None) -> "AdbDevice":
        """Checked here: adb sees the phone (a host:port serial is connected first)."""
        return cls(arg or "", adb_server=adb_server).open()

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

    def abi(self) -> str | None:
        """The phone's primary ABI (`getprop ro.product.cpu.abi`), None when it does not say."""
        if self._facts and self._facts.get("abi"):
            return self._facts["abi"]
        proc = self.shell(["getprop", "ro.product.cpu.abi"], check=False, what="getprop")
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def start_run(self, result: RunResult, options: "BenchOptions") -> str:
        result.versions = self._versions()
        parse_cpu_mask(options.cpu_mask)
        return f"{self.remote_root}/{result.run_id}"

    def end_run(self, result: RunResult, options: "BenchOptions", workdir: str, runtime: Any) -> None:
        """Keep the facts the run's harness read (temperatures after it); remove its folder unless kept."""
        self._facts = {**(self._facts or {}), **(getattr(runtime, "facts", None) or {})}
        if workdir:
            self._remove_run_dir(workdir, options.keep_remote, result)

    def cleanup(self) -> None:
        for remote_dir in sorted(self._leftovers):
            try:
                self.shell(["rm", "-rf", remote_dir], check=False, timeout=30)
            except MobiledeployError:
                return
        self._leftovers.clear()

    # ------------------------------------------------------------------ what runs need
    def make_workdir(self, remote_dir: str) -> None:
        """Create a run's folder; it is removed after the run (or by `cleanup`) unless --keep-remote."""
        self.shell(["mkdir", "-p", remote_dir])
        self._leftovers.add(remote_dir)

    def lost(self, proc: subprocess.CompletedProcess) -> MobiledeployError:
        """A harness run with no closing block: the device dropped the connection, or the harness could not start."""
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
            result.observed["remote_dir"] = remote_dir
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

