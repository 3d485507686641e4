"""One emulated ExecuTorch run: a .pte through the aarch64 ExecuTorch C++ runtime (`et_runner`) under QEMU, every
phase counted exactly by the same plugin and markers as the LiteRT runs (`qemu.run`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from .env import MARKER, Environment
from .executorch_env import ExecuTorchGuest
from .run import DEFAULT_TIMEOUT_S, GuestRun, run_counted

__all__ = ["run_executorch_guest"]


def run_executorch_guest(env: Environment, guest: ExecuTorchGuest, cpu: str, model: Path, *, runs: int = 3,
                         warmup: int = 1, inputs: Any = None, want_outputs: bool = False,
                         timeout: float = DEFAULT_TIMEOUT_S) -> GuestRun:
    """Run `model` (.pte) on the emulated `cpu`; `inputs` (float32, the input's shape) instead of seeded values;
    the first output when `want_outputs`. RunnerError (one line) when the runner fails or crashes."""
    import numpy as np

    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-qemu-et-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "model.pte").symlink_to(model.resolve())  # one path of one length for every model (see qemu.run)
        feed, out = "-", "-"
        if inputs is not None:
            feed = str(tmp / "inputs.bin")
            np.ascontiguousarray(inputs, dtype=np.float32).tofile(feed)
        if want_outputs:
            out = str(tmp / "outputs.bin")
        counts_path = tmp / "counts.txt"
        argv = [env.qemu, "-cpu", cpu, "-L", str(env.view(cpu)), "-plugin",
                f"{env.plugin},out={counts_path},marker={MARKER}", str(guest.runner), str(tmp / "model.pte"),
                str(runs), str(warmup), str(MARKER), feed, out]
        counts, wall = run_counted(argv, cpu, counts_path, timeout=timeout, what="emulated ExecuTorch run",
                                   quiet=lambda line: line.startswith("I "))  # its cpuinfo log: not why it failed
        outputs = [np.fromfile(out, dtype=np.float32)] if want_outputs else []
    return GuestRun(counts, {}, ["float32"], wall, outputs)

