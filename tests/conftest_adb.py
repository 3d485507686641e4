"""pytest fixtures for running the real ``adb`` client against :mod:`tests.adbd`.

Import into ``tests/conftest.py`` with::

    from tests.conftest_adb import *  # noqa: F401,F403   (adb_env, fake_device)

or ``pytest_plugins = ["tests.conftest_adb"]``.

* ``adb_env`` (session): an isolated adb host server on a free loopback port.
  ``ANDROID_ADB_SERVER_PORT`` is exported in ``os.environ`` for the whole session,
  so any code under test that shells out to ``adb`` talks to this server (and
  never to a developer's real one).  ``adb_env.run(*args, timeout=30)`` runs
  ``adb ARGS`` and returns a ``subprocess.CompletedProcess`` (text mode, stdin
  closed, never raises on a non-zero exit unless ``check=True``).
* ``fake_device`` (function): a fresh :class:`tests.adbd.FakeAdbd` whose sandbox
  is ``tmp_path / "device"``, already ``adb connect``-ed and in state ``device``.
  It has an extra helper ``fake_device.adb(*args, **kw)`` == ``adb_env.run("-s",
  serial, *args, **kw)``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

try:  # importable both as ``tests.conftest_adb`` and (rootdir on sys.path) ``conftest_adb``
    from tests.adbd import FakeAdbd
except ImportError:  # pragma: no cover
    from adbd import FakeAdbd  # type: ignore[no-redef]

__all__ = ["AdbEnv", "adb_env", "fake_device", "connect_fake_device", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AdbEnv:
    """An isolated adb host server (``adb start-server`` on a private port)."""

    def __init__(self, adb: str, port: int, home: Path):
        self.adb = adb
        self.port = port
        self.home = home
        #: environment used for every adb invocation made through :meth:`run`
        self.env = dict(os.environ)
        self.env["ANDROID_ADB_SERVER_PORT"] = str(port)
        # Keys, adb_usb.ini, server log ($TMPDIR/adb.$UID.log) stay in a private dir.
        self.env["HOME"] = str(home)
        self.env["TMPDIR"] = str(home)
        self.env["ANDROID_SDK_HOME"] = str(home)
        self.env["ANDROID_USER_HOME"] = str(home / ".android")
        self.env.pop("ANDROID_SERIAL", None)
        self.env.pop("ADB_TRACE", None)

    @property
    def server_log(self) -> Path:
        return self.home / f"adb.{os.getuid()}.log"

    def run(self, *args: str, timeout: float = 30, check: bool = False, text: bool = True,
            input: str | bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        e = dict(self.env)
        if env:
            e.update(env)
        kw: dict = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        if text:
            kw.update(text=True, errors="replace")
        return subprocess.run([self.adb, *map(str, args)], capture_output=True, timeout=timeout,
                              check=check, env=e, **kw)

    def state(self, serial: str, timeout: float = 10) -> str:
        """``adb -s SERIAL get-state`` output ('' on failure)."""
        try:
            r = self.run("-s", serial, "get-state", timeout=timeout)
        except subprocess.TimeoutExpired:
            return ""
        return r.stdout.strip() if r.returncode == 0 else ""

    def devices(self) -> dict[str, str]:
        """``adb devices`` as {serial: state}."""
        r = self.run("devices")
        out = {}
        for line in r.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = parts[1]
        return out

    def wait_for_state(self, serial: str, want: str = "device", timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.state(serial, timeout=max(1.0, min(5.0, deadline - time.monotonic()))) == want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


@pytest.fixture(scope="session")
def adb_env() -> Iterator[AdbEnv]:
    adb = shutil.which("adb")
    if adb is None:
        pytest.skip("the `adb` client is not on PATH (Debian: apt-get install adb); "
                    "CI installs it, so these tests run there")
    home = Path(tempfile.mkdtemp(prefix="md-adb-home-"))
    env = AdbEnv(adb, free_port(), home)
    saved = {k: os.environ.get(k) for k in ("ANDROID_ADB_SERVER_PORT", "ANDROID_SERIAL")}
    os.environ["ANDROID_ADB_SERVER_PORT"] = str(env.port)
    os.environ.pop("ANDROID_SERIAL", None)
    try:
        r = env.run("start-server", timeout=30)
        if r.returncode != 0:
            pytest.fail(f"adb start-server failed ({r.returncode}): {r.stdout}{r.stderr}")
        yield env
    finally:
        try:
            env.run("kill-server", timeout=15)
        except (subprocess.TimeoutExpired, OSError):
            pass
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)


def connect_fake_device(adb_env: AdbEnv, dev: FakeAdbd, timeout: float = 10) -> None:
    """``adb connect`` ``dev`` and wait (bounded) until it is in state ``device``."""
    r = adb_env.run("connect", dev.serial, timeout=timeout + 5)
    if "connected to" not in r.stdout:
        raise RuntimeError(f"adb connect {dev.serial} failed: {r.stdout}{r.stderr}")
    if not adb_env.wait_for_state(dev.serial, "device", timeout=timeout):
        raise RuntimeError(f"{dev.serial} never reached state 'device': {adb_env.devices()}")


@pytest.fixture
def fake_device(adb_env: AdbEnv, tmp_path: Path) -> Iterator[FakeAdbd]:
    dev = FakeAdbd(tmp_path / "device").start()
    dev.adb = lambda *args, **kw: adb_env.run("-s", dev.serial, *args, **kw)  # type: ignore[attr-defined]
    try:
        connect_fake_device(adb_env, dev)
        yield dev
    finally:
        try:
            adb_env.run("disconnect", dev.serial, timeout=15)
        except subprocess.TimeoutExpired:
            pass
        dev.stop()
