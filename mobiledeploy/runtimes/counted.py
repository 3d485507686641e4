"""Counted LiteRT on an emulated Arm64 core: the `qemu:CPU` device's runtime. The aarch64 LiteRT runs in
the emulated userland (`mobiledeploy.qemu`) and every inference is measured in Arm instructions, never
in milliseconds."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..artifact_kinds import artifacts_read_as

if TYPE_CHECKING:
    from ..devices.qemu import QemuDevice
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["CountedRuntime", "EmulatedRuntime", "fill_counts", "check_one_thread", "arm_guest"]


def check_one_thread(options: "BenchOptions") -> None:
    """Every counted runtime counts one thread's instructions: ConfigError for any other --threads."""
    if options.threads != 1:
        raise ConfigError("qemu: devices count one thread's instructions: use --threads 1")


def arm_guest(find: Any, root: Path) -> Any:
    """A runtime's files in the emulated userland, `find(root)`; not set up: a SetupError (bench exits 2 naming
    the setup step)."""
    from ..errors import SetupError
    from ..qemu.env import EmulatorMissingError

    try:
        return find(root)
    except EmulatorMissingError as exc:
        raise SetupError(str(exc)) from None


class EmulatedRuntime:
    """A runtime of the `qemu:CPU` device: it runs the file in the emulated userland on the device's core, one
    thread, and counts the Arm instructions of every phase."""

    def __init__(self, device: "QemuDevice") -> None:
        self.env, self.cpu = device.env, device.cpu

    def record(self, result: "RunResult", run: Any, runner: str, **facts: Any) -> None:
        """An ok counted run (`run`: counts, input_dtypes, wall_s) in `result`, with what the runtime adds."""
        fill_counts(result, run.counts)
        result.observed.update(runner=runner, cpu=self.cpu, input_dtypes=run.input_dtypes,
                               bracket_instructions=run.counts.bracket, emulated_wall_s=round(run.wall_s, 2), **facts)


class CountedRuntime(EmulatedRuntime):
    """Runs a .tflite on one emulated core; reports instructions per run, init and first inference, and
    XNNPACK's delegation."""

    name = "counted"
    artifacts = artifacts_read_as(".tflite")

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str = "") -> None:
        from ..qemu.run import run_guest

        check_one_thread(options)
        if options.phone:
            guest = self._estimate(target, options, result)
        else:
            guest = run_guest(self.env, self.cpu, Path(target.artifact), runs=options.runs, warmup=options.warmup,
                              threads=options.threads)
        self.record(result, guest, "litert-interpreter (aarch64, qemu-user)", delegation=guest.delegation)

    def _estimate(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult"):
        """The counted run with the block_cache plugin beside: the same exact counts, and the phone's estimated
        ms stored apart from any measured figure (observed["estimate"], kind "estimated")."""
        from ..estimate.phones import phone as phone_profile
        from ..estimate.run import estimate_guest

        profile = phone_profile(options.phone or "")
        if profile.qemu_cpu != self.cpu:
            raise ConfigError(f"phone {profile.name} runs the kernels of qemu:{profile.qemu_cpu}, not qemu:{self.cpu}")
        guest, run = estimate_guest(Path(target.artifact), profile, runs=options.runs, warmup=options.warmup,
                                    env=self.env)
        result.observed["estimate"] = {**run.estimate.to_dict(), "phone_label": profile.label,
                                       "model_wall_s": round(run.model_wall_s, 2)}
        return guest


def fill_counts(result: "RunResult", counts: Any) -> None:
    """An ok counted run: instructions per inference (each run, their median), init and first inference."""
    result.status, result.error = "ok", None
    result.runs = len(counts.runs)
    result.instruction_counts = list(counts.runs)
    result.instructions = float(statistics.median(counts.runs))
    result.init_instructions = float(counts.init)
    result.first_instructions = float(counts.first)
