"""ExecuTorch in the emulated Arm64 environment: an optional part of `mobiledeploy qemu setup`.

The aarch64 executorch wheel's Python bindings link libtorch, and PyPI's aarch64 torch 2.13.0 is a CUDA build
(its libtorch_cpu.so needs libcudart.so.13 and libcupti.so.13), which the userland cannot load. The wheel's C++
runtime does not: libexecutorch.so, libexecutorch_backend_xnnpack.so and the kernel libraries need only libc and
libstdc++. So the guest is a small C++ runner (`et_runner.cpp`) built against the wheel's own headers and
libraries with Debian's aarch64 cross g++, the way ExecuTorch's `executor_runner` is built for a phone.

Layout, under the environment's root (built in a temporary sibling and renamed into place; the LiteRT part and
its env.json are not touched, so environments set up before keep working):

    executorch/lib/        the wheel's aarch64 shared libraries, and et_runner beside them (rpath $ORIGIN)
    executorch/env.json    executorch version, wheel file, runner source sha256: present = ready
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable

from .env import EmulatorMissingError, SETUP_HINT, run_tool
from .parts import Part, download_wheel, ensure_part, host_version, read_part

__all__ = ["ExecuTorchGuest", "executorch_guest", "setup_executorch", "runner_source_digest"]

DIST = "executorch"
#: the platform tag of the aarch64 wheel on PyPI
PLATFORMS = ("manylinux_2_28_aarch64",)
#: -D flags the wheel's headers need (executorch-config.cmake of the wheel, EXECUTORCH_COMPILE_DEFINITIONS)
DEFINES = ("-DC10_USING_CUSTOM_GENERATED_MACROS", "-DET_EVENT_TRACER_ENABLED")
LIBS = ("executorch_backend_xnnpack", "executorch_kernels_optimized", "executorch_kernels_quantized", "executorch",
        "executorch_threadpool")


class ExecuTorchGuest(Part):
    """The ExecuTorch part: the aarch64 libraries and et_runner beside them."""

    @property
    def runner(self) -> Path:
        return self.root / "lib" / "et_runner"


def runner_source_digest() -> str:
    return hashlib.sha256(Path(__file__).with_name("et_runner.cpp").read_bytes()).hexdigest()


def executorch_guest(env_root: Path) -> ExecuTorchGuest:
    """The ExecuTorch part setup made; EmulatorMissingError (one line, with the command) if not, or stale."""
    root = env_root / "executorch"
    hint = f"run `mobiledeploy qemu setup` with the executorch extra installed ({SETUP_HINT.removeprefix('run ')})"
    recorded = read_part(root, "ExecuTorch", hint)
    if recorded.get("runner_sha256") != runner_source_digest() or recorded.get("executorch") != host_version(DIST):
        raise EmulatorMissingError(f"the Arm64 ExecuTorch runner is stale (another executorch or runner): {hint}")
    guest = ExecuTorchGuest(root, recorded)
    if not guest.runner.is_file():
        raise EmulatorMissingError(f"the Arm64 ExecuTorch runner is missing: {hint}")
    return guest


def setup_executorch(env_root: Path, say: Callable[[str], None]) -> ExecuTorchGuest | None:
    """Build the ExecuTorch part when the host has executorch (the wheel of the same version); None when it has
    not. A failure is EmulatorMissingError; the LiteRT part stays usable."""
    return ensure_part(env_root, DIST, "executorch", executorch_guest,
                       lambda version, scratch, part: _build(version, scratch, part, say))


def _build(version: str, scratch: Path, part: Path, say: Callable[[str], None]) -> dict[str, Any]:
    cxx = os.environ.get("CXX_AARCH64") or shutil.which("aarch64-linux-gnu-g++")
    if cxx is None:
        raise EmulatorMissingError("aarch64-linux-gnu-g++ is not installed (Debian: apt-get install "
                                   "g++-aarch64-linux-gnu; make arm does it)")
    say(f"ExecuTorch for Arm64: the aarch64 executorch {version} wheel")
    wheel = download_wheel(DIST, version, scratch, PLATFORMS)
    lib = part / "lib"
    include = _unpack(wheel, scratch, lib)
    say("ExecuTorch for Arm64: building et_runner (aarch64 g++)")
    _compile(cxx, include, lib)
    return {"executorch": version, "wheel": wheel.name, "runner_sha256": runner_source_digest(), "cxx": cxx}


def _unpack(wheel: Path, scratch: Path, lib: Path) -> Path:
    """The wheel's lib/*.so into `lib`, its headers into scratch/include (only for the build); returns that dir."""
    lib.mkdir(parents=True)
    include = scratch / "include"
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("executorch/lib/") and name.endswith(".so"):
                (lib / Path(name).name).write_bytes(zf.read(name))
            elif name.startswith("executorch/include/") and not name.endswith("/"):
                target = include / name.removeprefix("executorch/include/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    return include


def _compile(cxx: str, include: Path, lib: Path) -> None:
    argv = _compile_argv(cxx, include, lib, Path(__file__).with_name("et_runner.cpp"), lib / "et_runner")
    run_tool(argv, "building et_runner (aarch64-linux-gnu-g++)", timeout=600)


def _compile_argv(cxx: str, include: Path, lib: Path, src: Path, out: Path, rpath: str = "$ORIGIN") -> list[str]:
    """g++ argv of a runner built from `src` against the wheel's headers and the libraries in `lib`
    (also et_profile.py's)."""
    return [cxx, "-O2", "-std=c++17", *DEFINES, "-I", str(include),
            "-I", str(include / "executorch/runtime/core/portable_type/c10"), "-o", str(out), str(src),
            "-L", str(lib), "-Wl,--no-as-needed", *(f"-l{name}" for name in LIBS), f"-Wl,-rpath,{rpath}"]
