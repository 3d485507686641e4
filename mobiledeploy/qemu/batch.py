"""Many inputs through one .tflite on an emulated Arm core, the raw outputs back (`batch_guest.py`)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from .env import Environment, guest_env
from .run import _failure

__all__ = ["run_batch", "BATCH_TIMEOUT_S"]

BATCH_TIMEOUT_S = 1800.0


def run_batch(env: Environment, cpu: str, model: Path, feeds: Any, timeout: float = BATCH_TIMEOUT_S) -> Any:
    """(N, *output shape) raw outputs of `model` on `feeds` (N, *input shape, in the input's dtype), run on
    the emulated `cpu` by the aarch64 LiteRT, one thread; RunnerError (one line) when the guest fails."""
    import numpy as np

    if not Path(model).is_file():
        raise RunnerError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-qemu-batch-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "model.tflite").symlink_to(Path(model).resolve())
        np.savez(tmp / "inputs.npz", x=np.ascontiguousarray(feeds))
        script = Path(__file__).with_name("batch_guest.py")
        argv = env.command(cpu, script, str(tmp / "model.tflite"), str(tmp / "inputs.npz"), str(tmp / "outputs.npz"))
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=guest_env(), timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RunnerError(f"the emulated run on {cpu} took longer than {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise RunnerError(_failure(proc, cpu))
        try:
            with np.load(tmp / "outputs.npz") as data:
                return data["y"]
        except (OSError, ValueError, KeyError) as exc:
            raise RunnerError(f"the emulated run on {cpu} left no outputs: {exc}") from None
