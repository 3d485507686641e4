"""Exact Arm instructions per function of a .pte's timed runs on an emulated core: `et_profile` (et_profile.cpp,
et_runner with the counting plugin's profile window around every run and the guest's /proc/self/maps at exit)
under QEMU with `profile=1`; `qemu.profile.attribute` names each block's function from the map and the
libraries' symbol tables, as for LiteRT's profile.

Why not per kernel through an ETDump: the aarch64 wheel's Python bindings cannot load in the userland (its torch is a
CUDA build, see README), and an event tracer's times under QEMU would be the emulator's wall clock, not the Arm
core's. Functions are what the plugin can count exactly: XNNPACK's micro-kernels where the wheel's library exports
their symbols, ExecuTorch's own (portable / optimized) kernels by name.

`et_profile` is built on demand (aarch64 g++, the headers of the aarch64 executorch wheel of the host's version,
linked against the libraries `mobiledeploy qemu setup` unpacked) into `<arm64>/executorch-profile/<digest>/`,
leaving the timed runner untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import RunnerError
from .env import EmulatorMissingError, Environment
from .executorch_env import ExecuTorchGuest
from .run import DEFAULT_TIMEOUT_S, run_counted
from .run_executorch import check_no_thread_started, pte_command, pte_workdir

__all__ = ["profile_runner", "run_pte_profile"]

SOURCES = ("et_profile.cpp", "et_runner.cpp")


def _digest() -> str:
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in SOURCES)).hexdigest()[:16]


def profile_runner(env: Environment, guest: ExecuTorchGuest) -> Path:
    """The `et_profile` binary of these sources and this executorch, built when missing (EmulatorMissingError,
    one line, when it cannot be)."""
    version = guest.versions.get("executorch", "?")
    final = env.root / "executorch-profile" / f"{version}-{_digest()}"
    binary = final / "et_profile"
    if binary.is_file():
        return binary
    from .env import run_tool
    from .executorch_env import DIST, PLATFORMS, _compile_argv, _unpack
    from .parts import download_wheel

    cxx = os.environ.get("CXX_AARCH64") or shutil.which("aarch64-linux-gnu-g++")
    if cxx is None:
        raise EmulatorMissingError("aarch64-linux-gnu-g++ is not installed (make arm installs it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".et-profile-", dir=final.parent))
    try:
        include = _unpack(download_wheel(DIST, version, tmp, PLATFORMS), tmp, tmp / "unused-lib")
        (tmp / "out").mkdir()
        argv = _compile_argv(cxx, include, guest.root / "lib", Path(__file__).with_name("et_profile.cpp"),
                             tmp / "out" / "et_profile", rpath=str(guest.root / "lib"))
        run_tool(argv, "building et_profile (aarch64-linux-gnu-g++)", timeout=600)
        try:
            os.replace(tmp / "out", final)
        except OSError:  # another process built it first
            if not binary.is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return binary


def run_pte_profile(env: Environment, guest: ExecuTorchGuest, cpu: str, model: Path, *, runs: int = 2,
                    warmup: int = 1, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[list[tuple[int, int, int]], str, list[int]]:
    """(blocks of the `runs` timed runs: (address, instructions, executions), the guest's maps, instructions per
    run) of `model` on the emulated `cpu`. RunnerError (one line) when the run fails or the map is missing."""
    with pte_workdir(model) as tmp:  # RunnerError for a missing model, before any build
        maps_path = tmp / "maps.txt"
        argv = pte_command(env, cpu, profile_runner(env, guest), tmp, runs, warmup, profile=True)
        counts, _ = run_counted(argv, cpu, tmp / "counts.txt", timeout=timeout, what="profiled ExecuTorch run",
                                extra_env={"MD_MAPS": str(maps_path)}, quiet=lambda line: line.startswith("I "))
        check_no_thread_started(counts, cpu)
        try:
            maps = maps_path.read_text()
        except OSError:
            raise RunnerError(f"the profiled ExecuTorch run on {cpu} wrote no memory map") from None
    return counts.blocks, maps, counts.runs
