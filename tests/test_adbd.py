"""Tests of the fake device-side adb daemon (tests/adbd.py) driven by the REAL adb client."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adbd import DEVICE_TMP, FakeAdbd
from tests.conftest_adb import adb_env, connect_fake_device, fake_device  # noqa: F401  (fixtures)

pytestmark = pytest.mark.adb

BIG = 3_000_000


def _wait_until(pred, timeout: float = 10.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --------------------------------------------------------------------------- connection


def test_devices_lists_fake_device(adb_env, fake_device):
    assert adb_env.devices().get(fake_device.serial) == "device"
    r = adb_env.run("devices", "-l")
    line = next(l for l in r.stdout.splitlines() if l.startswith(fake_device.serial))
    assert "product:md_fake" in line and "device:mdfake" in line
    assert "model:MD_Fake" in line  # adb sanitises '-' to '_' in `devices -l`
    assert fake_device.adb("get-state").stdout.strip() == "device"
    r = adb_env.run("-s", fake_device.serial, "get-serialno")
    assert r.stdout.strip() == fake_device.serial


# --------------------------------------------------------------------------- shell


def test_shell_echo_and_service_log(fake_device):
    r = fake_device.adb("shell", "echo", "hi")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    assert fake_device.shell_commands[-1] == "echo hi"
    svc = fake_device.services[-1]
    assert svc.startswith("shell,v2,") and svc.endswith(":echo hi")


def test_shell_exit_code_propagates(fake_device):
    assert fake_device.adb("shell", "exit 3").returncode == 3
    assert fake_device.adb("shell", "false").returncode == 1
    assert fake_device.adb("shell", "kill -9 $$").returncode == 137


def test_shell_stdout_stderr_separated(fake_device):
    r = fake_device.adb("shell", "echo out; echo err >&2; echo out2; exit 5")
    assert r.returncode == 5
    assert r.stdout == "out\nout2\n"
    assert r.stderr == "err\n"


def test_shell_stdin_is_forwarded(fake_device):
    r = fake_device.adb("shell", "tr a-z A-Z", input="hello device\n")
    assert (r.returncode, r.stdout) == (0, "HELLO DEVICE\n")


def test_shell_runs_in_sandbox(fake_device):
    r = fake_device.adb("shell", f"echo data > {DEVICE_TMP}/f.txt && cat {DEVICE_TMP}/f.txt")
    assert r.stdout == "data\n"
    assert (fake_device.device_tmp / "f.txt").read_text() == "data\n"
    # command text is rewritten, printed paths are not
    assert fake_device.adb("shell", f"cd {DEVICE_TMP} && pwd").stdout.strip() == str(fake_device.device_tmp)
    assert fake_device.shell_commands[-1] == f"cd {DEVICE_TMP} && pwd"


def test_legacy_shell_and_exec_out(fake_device):
    r = fake_device.adb("shell", "-x", "echo a; echo b >&2; exit 4")
    assert r.stdout == "a\nb\n" and r.returncode == 0  # no shell protocol: merged, no exit code
    assert fake_device.services[-1] == "shell:echo a; echo b >&2; exit 4"
    r = fake_device.adb("exec-out", "printf '\\001\\002'", text=False)
    assert r.stdout == b"\x01\x02"
    assert fake_device.services[-1].startswith("exec:")


def test_getprop_shim(fake_device):
    assert fake_device.adb("shell", "getprop ro.product.model").stdout == "MD-Fake\n"
    assert fake_device.adb("shell", "getprop ro.build.version.sdk").stdout == "34\n"
    assert fake_device.adb("shell", "getprop no.such.prop").stdout == "\n"
    assert fake_device.adb("shell", "getprop no.such.prop dflt").stdout == "dflt\n"
    fake_device.set_prop("ro.product.model", "Pixel Fake 9")
    assert fake_device.adb("shell", "getprop ro.product.model").stdout == "Pixel Fake 9\n"
    lines = fake_device.adb("shell", "getprop").stdout.splitlines()
    assert "[ro.product.cpu.abi]: [arm64-v8a]" in lines
    assert "[ro.board.platform]: [fakeboard]" in lines
    assert "[ro.product.manufacturer]: [mobiledeploy]" in lines
    assert "[ro.build.version.release]: [14]" in lines


# --------------------------------------------------------------------------- sync


def test_push_pull_roundtrip_3mb(fake_device, tmp_path):
    src = tmp_path / "big.bin"
    payload = os.urandom(BIG)
    src.write_bytes(payload)
    r = fake_device.adb("push", src, f"{DEVICE_TMP}/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (fake_device.device_tmp / "big.bin").read_bytes() == payload
    assert ("SEND", f"{DEVICE_TMP}/big.bin,{src.stat().st_mode}") in fake_device.sync_ops

    assert fake_device.adb("shell", f"stat -c %s {DEVICE_TMP}/big.bin").stdout.strip() == str(BIG)
    assert "big.bin" in fake_device.adb("shell", f"ls {DEVICE_TMP}").stdout.split()
    ls = fake_device.adb("ls", DEVICE_TMP).stdout  # sync LIS2
    assert any(l.endswith(" big.bin") and f"{BIG:08x}" in l for l in ls.splitlines())

    dst = tmp_path / "back.bin"
    r = fake_device.adb("pull", f"{DEVICE_TMP}/big.bin", dst)
    assert r.returncode == 0, r.stdout + r.stderr
    assert dst.read_bytes() == payload


def test_push_awkward_file_name(fake_device, tmp_path):
    name = "a b;$(x)'q.bin"
    src = tmp_path / name
    src.write_bytes(b"\x00weird\xff" * 1000)
    r = fake_device.adb("push", src, f"{DEVICE_TMP}/{name}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (fake_device.device_tmp / name).read_bytes() == src.read_bytes()
    assert name in fake_device.adb("shell", f"ls {DEVICE_TMP}").stdout.splitlines()
    r = fake_device.adb("pull", f"{DEVICE_TMP}/{name}", tmp_path / "out.bin")
    assert r.returncode == 0 and (tmp_path / "out.bin").read_bytes() == src.read_bytes()


def test_push_directory_creates_parents_and_pull_dir(fake_device, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.txt").write_text("f")
    (tree / "g.txt").write_text("g")
    r = fake_device.adb("push", tree, f"{DEVICE_TMP}/deep/er/")
    assert r.returncode == 0, r.stdout + r.stderr
    # like `cp -r`: the remote dir did not exist, so it *becomes* the copy of tree/
    assert (fake_device.device_tmp / "deep/er/sub/f.txt").read_text() == "f"
    out = tmp_path / "pulled"
    r = fake_device.adb("pull", f"{DEVICE_TMP}/deep/er", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "sub" / "f.txt").read_text() == "f" and (out / "g.txt").read_text() == "g"


def test_sync_errors(fake_device, tmp_path):
    r = fake_device.adb("pull", f"{DEVICE_TMP}/missing.bin", tmp_path / "x")
    assert r.returncode != 0 and "No such file or directory" in r.stdout + r.stderr
    src = tmp_path / "s.bin"
    src.write_bytes(b"x")
    r = fake_device.adb("push", src, "/system/bin/s.bin")
    assert r.returncode != 0 and "Permission denied" in r.stdout + r.stderr


def test_v1_sync_without_stat_v2_features(adb_env, tmp_path):
    """Legacy STAT/LIST (no stat_v2/ls_v2/shell_v2 advertised) still push/pull/ls."""
    with FakeAdbd(tmp_path / "old", features=("fixed_push_mkdir",)) as dev:
        connect_fake_device(adb_env, dev)
        try:
            src = tmp_path / "v1.bin"
            src.write_bytes(os.urandom(200_000))
            assert adb_env.run("-s", dev.serial, "push", src, f"{DEVICE_TMP}/v1.bin").returncode == 0
            assert adb_env.run("-s", dev.serial, "pull", f"{DEVICE_TMP}/v1.bin",
                               tmp_path / "v1.out").returncode == 0
            assert (tmp_path / "v1.out").read_bytes() == src.read_bytes()
            assert " v1.bin" in adb_env.run("-s", dev.serial, "ls", DEVICE_TMP).stdout
            ops = {op for op, _ in dev.sync_ops}
            assert "STAT" in ops and "LIST" in ops and "STA2" not in ops
            r = adb_env.run("-s", dev.serial, "shell", "echo legacy")
            assert r.stdout == "legacy\n" and dev.services[-1] == "shell:echo legacy"
        finally:
            adb_env.run("disconnect", dev.serial)


# --------------------------------------------------------------------------- faults


def test_disk_quota_push_fails_no_space(fake_device, tmp_path):
    fake_device.disk_quota_bytes = 1_000_000
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(BIG))
    r = fake_device.adb("push", src, f"{DEVICE_TMP}/big.bin")
    assert r.returncode != 0
    assert "No space left on device" in r.stdout + r.stderr
    assert not (fake_device.device_tmp / "big.bin").exists()  # partial file removed
    # a small file still fits; lifting the quota lets the big one through
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 1000)
    assert fake_device.adb("push", small, f"{DEVICE_TMP}/small.bin").returncode == 0
    fake_device.disk_quota_bytes = None
    assert fake_device.adb("push", src, f"{DEVICE_TMP}/big.bin").returncode == 0


def test_drop_on_makes_device_vanish(adb_env, fake_device):
    serial = fake_device.serial
    fake_device.drop_on("benchmark_model")
    r = fake_device.adb("shell", f"{DEVICE_TMP}/benchmark_model --graph=x.tflite", timeout=20)
    assert r.returncode != 0
    assert fake_device.shell_commands[-1] == f"{DEVICE_TMP}/benchmark_model --graph=x.tflite"
    assert _wait_until(lambda: adb_env.devices().get(serial) != "device", timeout=5)
    assert adb_env.run("-s", serial, "get-state").returncode != 0
    assert fake_device.adb("shell", "echo still-there").returncode != 0
    assert not fake_device.is_listening
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fake_device.port), timeout=2).close()

    fake_device.restore()  # comes back on the same port; reconnect explicitly (adb retries only every ~10 s)
    adb_env.run("disconnect", serial)
    connect_fake_device(adb_env, fake_device)
    assert fake_device.adb("shell", "echo back").stdout == "back\n"


def test_drop_mid_run_truncates_output(adb_env, fake_device):
    """Device vanishes while a command runs.  NOTE adb 29 quirk: the client then
    exits 0 (no exit packet => exit code stays 0), so only the output shows it."""
    fake_device.drop_on("MIDRUN", after=0.5)
    r = fake_device.adb("shell", "echo start; sleep 5; echo end # MIDRUN", timeout=20)
    assert r.stdout == "start\n"
    assert _wait_until(lambda: adb_env.devices().get(fake_device.serial) != "device", timeout=5)


def test_stop_device_gone(adb_env, fake_device):
    fake_device.stop()
    assert _wait_until(lambda: adb_env.devices().get(fake_device.serial) != "device", timeout=5)
    assert adb_env.run("-s", fake_device.serial, "shell", "true").returncode != 0


# --------------------------------------------------------------------------- standalone


def test_cli_prints_port_and_speaks_adb(tmp_path):
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("adbd.py")), "--port", "0",
                             "--root", str(tmp_path / "cli")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            banner = b"host::features=shell_v2\0"
            cmd = 0x4E584E43
            s.sendall(struct.pack("<6I", cmd, 0x01000001, 1 << 20, len(banner), sum(banner),
                                  cmd ^ 0xFFFFFFFF) + banner)
            hdr = b""
            while len(hdr) < 24:
                hdr += s.recv(24 - len(hdr))
            c, ver, maxdata, n, crc, magic = struct.unpack("<6I", hdr)
            data = b""
            while len(data) < n:
                data += s.recv(n - len(data))
        assert (c, magic, ver, maxdata) == (cmd, cmd ^ 0xFFFFFFFF, 0x01000001, 256 * 1024)
        assert crc == sum(data) & 0xFFFFFFFF
        assert data.startswith(b"device::") and b"features=" in data and b"shell_v2" in data
        assert (tmp_path / "cli" / "data" / "local" / "tmp").is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
