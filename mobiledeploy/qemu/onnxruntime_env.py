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

import zipfile
from pathlib import Path
from typing import Any, Callable

from .env import EmulatorMissingError, SETUP_HINT
from .parts import Part, download_wheel, ensure_part, host_version, read_part

__all__ = ["OnnxRuntimeGuest", "onnxruntime_guest", "setup_onnxruntime"]

DIST = "onnxruntime"
#: the platform tags pip may pick for the guest (the userland is Debian bookworm: glibc 2.36)
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64", "manylinux_2_17_aarch64")


class OnnxRuntimeGuest(Part):
    """The ONNX Runtime part: the wheel's onnxruntime package, for the guest's PYTHONPATH."""

    @property
    def site(self) -> Path:
        return self.root / "site"


def onnxruntime_guest(env_root: Path) -> OnnxRuntimeGuest:
    """The ONNX Runtime part setup made; EmulatorMissingError (one line, with the command) if not, or stale."""
    root = env_root / "onnxruntime"
    hint = f"run `mobiledeploy qemu setup` ({SETUP_HINT.removeprefix('run ')})"
    recorded = read_part(root, "ONNX Runtime", hint)
    if recorded.get("onnxruntime") != host_version(DIST):
        raise EmulatorMissingError(f"the Arm64 ONNX Runtime is not the host's version "
                                   f"({recorded.get('onnxruntime')} vs {host_version(DIST)}): {hint}")
    guest = OnnxRuntimeGuest(root, recorded)
    if not (guest.site / "onnxruntime" / "__init__.py").is_file():
        raise EmulatorMissingError(f"the Arm64 ONNX Runtime is incomplete: {hint}")
    return guest


def setup_onnxruntime(env_root: Path, say: Callable[[str], None]) -> OnnxRuntimeGuest | None:
    """Unpack the aarch64 wheel of the host's onnxruntime (None when the host has none). A failure is
    EmulatorMissingError; the LiteRT part stays usable."""
    return ensure_part(env_root, DIST, "onnxruntime", onnxruntime_guest,
                       lambda version, scratch, part: _build(version, scratch, part, say))


def _build(version: str, scratch: Path, part: Path, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"ONNX Runtime for Arm64: the aarch64 onnxruntime {version} wheel")
    wheel = download_wheel(DIST, version, scratch, PLATFORMS)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(part / "site")
    return {"onnxruntime": version, "wheel": wheel.name}
