"""ONNX Runtime in the emulated Arm64 environment: an optional part of `mobiledeploy qemu setup`.

The aarch64 onnxruntime wheel of the host's version (manylinux_2_28_aarch64 on PyPI) needs only libc, libm and
libstdc++ of the userland and numpy, which the userland has: its Python package runs there as it is, unpacked into
a folder of its own that the guest finds through PYTHONPATH (`qemu/guest_onnx.py`). The LiteRT sysroot and its
env.json are not touched, so environments set up before keep working and the LiteRT counts cannot change.

Layout, under the environment's root (built in a temporary sibling and renamed into place):

    onnxruntime/site/      the wheel's onnxruntime package
    onnxruntime/env.json   onnxruntime version and wheel file: present = ready
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .env import EmulatorMissingError, SETUP_HINT

__all__ = ["OnnxRuntimeGuest", "onnxruntime_guest", "setup_onnxruntime"]

#: the platform tags pip may pick for the guest (the userland is Debian bookworm: glibc 2.36)
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64", "manylinux_2_17_aarch64")


@dataclass
class OnnxRuntimeGuest:
    root: Path
    versions: dict[str, Any]

    @property
    def site(self) -> Path:
        return self.root / "site"


def onnxruntime_guest(env_root: Path) -> OnnxRuntimeGuest:
    """The ONNX Runtime part setup made; EmulatorMissingError (one line, with the command) if not, or stale."""
    root = env_root / "onnxruntime"
    hint = f"run `mobiledeploy qemu setup` ({SETUP_HINT.removeprefix('run ')})"
    try:
        recorded = json.loads((root / "env.json").read_text())
    except (OSError, ValueError):
        raise EmulatorMissingError(f"ONNX Runtime is not set up in the Arm64 environment: {hint}") from None
    if recorded.get("onnxruntime") != _host_version():
        raise EmulatorMissingError(f"the Arm64 ONNX Runtime is not the host's version "
                                   f"({recorded.get('onnxruntime')} vs {_host_version()}): {hint}")
    guest = OnnxRuntimeGuest(root, recorded)
    if not (guest.site / "onnxruntime" / "__init__.py").is_file():
        raise EmulatorMissingError(f"the Arm64 ONNX Runtime is incomplete: {hint}")
    return guest


def _host_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        return None


def setup_onnxruntime(env_root: Path, say: Callable[[str], None]) -> OnnxRuntimeGuest | None:
    """Unpack the aarch64 wheel of the host's onnxruntime (None when the host has none). A failure is
    EmulatorMissingError; the LiteRT part stays usable."""
    version = _host_version()
    if version is None:
        return None
    try:
        return onnxruntime_guest(env_root)
    except EmulatorMissingError:
        pass
    tmp = Path(tempfile.mkdtemp(prefix=".onnxruntime-", dir=env_root))
    try:
        say(f"ONNX Runtime for Arm64: the aarch64 onnxruntime {version} wheel")
        wheel = _download(version, tmp)
        part = tmp / "part"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(part / "site")
        versions = {"onnxruntime": version, "wheel": wheel.name}
        (part / "env.json").write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n")
        final = env_root / "onnxruntime"
        if final.exists():
            shutil.rmtree(final)
        os.replace(part, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return onnxruntime_guest(env_root)


def _download(version: str, dest: Path) -> Path:
    import subprocess

    platforms = [word for tag in PLATFORMS for word in ("--platform", tag)]
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
            "3.11", *platforms, "-d", str(dest), f"onnxruntime=={version}"]
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=900)
    except subprocess.CalledProcessError as exc:
        tail = " ".join((exc.stderr or exc.stdout or "").split())[-300:]
        raise EmulatorMissingError(f"pip download (aarch64 onnxruntime wheel) failed: {tail}") from None
    except subprocess.TimeoutExpired:
        raise EmulatorMissingError("pip download (aarch64 onnxruntime wheel) timed out") from None
    found = sorted(dest.glob("onnxruntime-*.whl"))
    if not found:
        raise EmulatorMissingError(f"pip found no aarch64 wheel of onnxruntime {version}")
    return found[0]
