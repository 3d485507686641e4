"""One emulated ExecuTorch run: a .pte through the aarch64 ExecuTorch C++ runtime (`et_runner`) under QEMU, every
phase counted exactly by the same plugin and markers as the LiteRT runs (`qemu.run`)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import RunnerError
from .counts import Counts
from .env import MARKER, Environment
from .executorch_env import ExecuTorchGuest
from .run import DEFAULT_TIMEOUT_S, GuestRun, run_counted

__all__ = ["run_executorch_guest", "pte_workdir", "pte_command", "check_no_thread_started"]


@contextlib.contextmanager
def pte_workdir(model: Path) -> Iterator[Path]:
    """A temporary folder holding `model` as model.pte. The timed run and the profiled one both use it: a path
    of another length moves the guest's layout and so its instruction counts (see `qemu.run`)."""
    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-qemu-et-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "model.pte").symlink_to(model.resolve())  # one path of one length for every model
        yield tmp


def pte_command(env: Environment, cpu: str, runner: Path, tmp: Path, runs: int, warmup: int, feed: str = "-",
                out: str = "-", profile: bool = False) -> list[str]:
    """argv of one counted run of `runner` (et_runner, or et_profile with `profile`: the plugin also records
    blocks) on tmp/model.pte, counts into tmp/counts.txt. Arguments: model, runs, warmup, marker, inputs, outputs."""
    plugin = f"{env.plugin},out={tmp / 'counts.txt'},marker={MARKER}" + (",profile=1" if profile else "")
    return [env.qemu, "-cpu", cpu, "-L", str(env.view(cpu)), "-plugin", plugin, str(runner), str(tmp / "model.pte"),
            str(runs), str(warmup), str(MARKER), feed, out]


def run_executorch_guest(env: Environment, guest: ExecuTorchGuest, cpu: str, model: Path, *, runs: int = 3,
                         warmup: int = 1, inputs: Any = None, want_outputs: bool = False,
                         timeout: float = DEFAULT_TIMEOUT_S) -> GuestRun:
    """Run `model` (.pte) on the emulated `cpu`; `inputs` (float32, the input's shape) instead of seeded values;
    the first output when `want_outputs`. RunnerError (one line) when the runner fails or crashes."""
    import numpy as np

    with pte_workdir(model) as tmp:
        feed, out = "-", "-"
        if inputs is not None:
            feed = str(tmp / "inputs.bin")
            np.ascontiguousarray(inputs, dtype=np.float32).tofile(feed)
        if want_outputs:
            out = str(tmp / "outputs.bin")
        argv = pte_command(env, cpu, guest.runner, tmp, runs, warmup, feed, out)
        counts, wall = run_counted(argv, cpu, tmp / "counts.txt", timeout=timeout, what="emulated ExecuTorch run",
                                   quiet=lambda line: line.startswith("I "))  # its cpuinfo log: not why it failed
        outputs = [np.fromfile(out, dtype=np.float32)] if want_outputs else []
    check_no_thread_started(counts, cpu)
    return GuestRun(counts, {}, ["float32"], wall, outputs)


def check_no_thread_started(counts: Counts, cpu: str) -> None:
    """RunnerError (one line) when a guest thread started between the first marker and the last: its instructions
    fell in whichever phase the host scheduled it in (et_runner starts ExecuTorch's threadpool before its first
    marker, so none should)."""
    if counts.started_in_phases:
        raise RunnerError(f"a guest thread started inside the counted phases on {cpu}: the counts would not repeat")
