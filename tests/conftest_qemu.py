"""The emulated Arm64 environment for the qemu tests (`make arm` builds it; CI must have it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def arm_env():
    """The set-up environment. Skipped on a developer machine without it; an error in CI, where
    `make test` sets it up first, so a broken setup can never pass as skipped tests."""
    from mobiledeploy.qemu.env import EmulatorMissingError, environment

    try:
        return environment()
    except EmulatorMissingError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the qemu tests: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def aarch64_gcc() -> str:
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    if gcc is None:
        if os.environ.get("CI"):
            pytest.fail("aarch64-linux-gnu-gcc is missing: make arm installs gcc-aarch64-linux-gnu")
        pytest.skip("aarch64-linux-gnu-gcc is not installed (make arm)")
    return gcc


def build_static(gcc: str, source: Path, out: Path) -> Path:
    subprocess.run([gcc, "-nostdlib", "-static", "-o", str(out), str(source)], check=True, capture_output=True)
    return out


def window_program(body: str, *, functions: str = "", setup: str = "", data: str = "") -> str:
    """An aarch64 program without libc (for `build_static`): `functions`, then `_start`, which runs `setup`, then
    `body` inside the profile window (the marker syscall with a1 = 2, then with a1 = 3), and exits 0; `data` last.
    `{marker}` and the body's own fields are left for str.format."""
    return ("    .text\n" + functions + "    .global _start\n_start:\n" + setup
            + "    mov x8, #{marker}\n    mov x0, #2\n    svc #0\n" + body
            + "    mov x8, #{marker}\n    mov x0, #3\n    svc #0\n"
            + "    mov x0, #0\n    mov x8, #93\n    svc #0\n" + data)
