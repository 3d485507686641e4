"""Counted LiteRT on an emulated Arm64 core: the `qemu:CPU` device's runtime. The aarch64 LiteRT runs in
the emulated userland (`mobiledeploy.qemu`) and every inference is measured in Arm instructions, never
in milliseconds."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..artifact_kinds import artifacts_read_as

if TYPE_CHECKING:
    from ..devices.qemu import QemuDevice
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["CountedRuntime"]


class CountedRuntime:
    """Runs a .tflite on one emulated core; reports instructions per run, init and first inference, and
    XNNPACK's delegation."""

    name = "counted"
    artifacts = artifacts_read_as(".tflite")

    def __init__(self, device: "QemuDevice") -> None:
        self.env, self.cpu = device.env, device.cpu

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str = "") -> None:
        from ..qemu.run import run_guest

        if options.threads != 1:
            raise ConfigError("qemu: devices count one thread's instructions: use --threads 1")
        guest = run_guest(self.env, self.cpu, Path(target.artifact), runs=options.runs, warmup=options.warmup,
                          threads=options.threads)
        counts = guest.counts
        result.status, result.error = "ok", None
        result.runs = len(counts.runs)
        result.instruction_counts = list(counts.runs)
        result.instructions = float(statistics.median(counts.runs))
        result.init_instructions = float(counts.init)
        result.first_instructions = float(counts.first)
        result.config.update(runner="litert-interpreter (aarch64, qemu-user)", cpu=self.cpu,
                             delegation=guest.delegation, input_dtypes=guest.input_dtypes,
                             bracket_instructions=counts.bracket, emulated_wall_s=round(guest.wall_s, 2))
