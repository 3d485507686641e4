"""Counted ExecuTorch on an emulated Arm64 core: the `qemu:CPU` device's `executorch` runtime. The export's .pte runs
in the aarch64 ExecuTorch C++ runtime (`qemu/et_runner.cpp`, the executorch wheel's own libraries) under QEMU, and
every inference is measured in Arm instructions, as `counted` measures LiteRT's; Arm parity is checked on a seeded
input against the host's ExecuTorch on the same .pte."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..artifact_kinds import artifacts_read_as
from .counted import EmulatedRuntime, arm_guest, check_one_thread

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["CountedExecuTorchRuntime"]

#: largest error of the Arm output relative to the host's output range that counts as the same function
ARM_TOLERANCE = 1e-4


class CountedExecuTorchRuntime(EmulatedRuntime):
    """Runs a .pte on one emulated core; reports instructions per run, init (program and method load) and first
    inference, and the Arm output against the host's."""

    name = "executorch"
    artifacts = artifacts_read_as(".pte")

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str = "") -> None:
        from ..qemu.executorch_env import executorch_guest
        from ..qemu.run_executorch import run_executorch_guest

        check_one_thread(options)
        guest = arm_guest(executorch_guest, self.env.root)
        model = Path(target.artifact)
        x = _seeded_input(model)
        run = run_executorch_guest(self.env, guest, self.cpu, model, runs=options.runs, warmup=options.warmup,
                                   inputs=x, want_outputs=True)
        self.record(result, run, "et_runner (ExecuTorch C++ runtime, aarch64, qemu-user)",
                    guest_threads=run.counts.vcpus, arm_parity=_arm_parity(model, x, run.outputs[0]))
        result.versions["executorch (aarch64)"] = str(guest.versions.get("executorch"))


def _seeded_input(model: Path):  # -> numpy array of the .pte's input shape
    import numpy as np

    from ..converters.executorch import load_method
    from ..qemu.guest import input_data

    shape = list(load_method(model).metadata.input_tensor_meta(0).sizes())
    return input_data(np.random.default_rng(0), np.dtype("float32"), shape, None)


def _arm_parity(model: Path, x, arm_out) -> dict:
    """The Arm output against the host ExecuTorch's on the same input: largest error relative to the host's range."""
    import numpy as np

    from ..converters.executorch import pte_outputs

    host = pte_outputs(model, x).reshape(-1)
    if arm_out.shape != host.shape:
        return {"passed": False, "error": f"Arm output has {arm_out.size} values, the host's {host.size}"}
    span = float(host.max() - host.min()) or 1.0
    max_rel = float(np.max(np.abs(arm_out - host))) / span
    return {"reference": "executorch on the host", "max_rel": max_rel, "tolerance": ARM_TOLERANCE,
            "passed": bool(max_rel <= ARM_TOLERANCE)}
