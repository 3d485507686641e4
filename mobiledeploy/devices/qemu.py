"""`qemu:CPU`: an emulated Arm64 core running the aarch64 LiteRT; the figure is Arm instructions.

Wall time under emulation means nothing (QEMU translates every instruction, float NEON much
slower than integer code), so this device never reports milliseconds: it reports the exact number
of Arm instructions each inference executes, counted by a QEMU plugin, identical on every host
for the same wheel, QEMU CPU model and artifact. XNNPACK picks its kernels from the emulated
core's features (dot product on cortex-a76, none on cortex-a53), as it would on a phone.
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RunnerError
from ..qemu.env import CPUS, DEFAULT_CPU, Environment, environment
from ..records import RunResult, error_kind_of
from .base import Device, new_result

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget

__all__ = ["QemuDevice", "parse_cpu", "QEMU_DEFAULTS"]

#: bench defaults on this device: counts repeat exactly, so a few runs show the (zero) spread
QEMU_DEFAULTS = {"runs": 3, "warmup": 1}


def parse_cpu(name: str | None) -> str:
    cpu = (name or DEFAULT_CPU).strip().lower()
    if cpu not in CPUS:
        raise ConfigError(f"unknown emulated CPU {name!r}: choose one of {', '.join(CPUS)}")
    return cpu


class QemuDevice(Device):
    def __init__(self, cpu: str | None = None, env: Environment | None = None) -> None:
        self.cpu = parse_cpu(cpu)
        self.uri = f"qemu:{self.cpu}"
        self.env = env or environment()
        if self.cpu not in self.env.cpus:
            raise ConfigError(f"{self.cpu} has no core view in {self.env.root}: run `mobiledeploy qemu setup --cpu {self.cpu}`")

    def info(self) -> dict[str, Any]:
        facts = self.env.cpus[self.cpu]
        features = list(facts.get("features") or [])
        midr = int(facts["midr"], 16)
        from .local import KERNEL_ISA

        return {
            "kind": "qemu",
            "model": f"QEMU {self.env.versions.get('qemu', '?')} -cpu {self.cpu}",
            "soc": f"{self.cpu} (emulated)",
            "abi": "arm64-v8a",
            "cores": 1,
            "cpu": {"vendor": f"0x{midr >> 24 & 0xFF:02x}", "family": "8", "model": f"0x{midr >> 4 & 0xFFF:03x}",
                    "name": self.cpu, "isa": [f for f in KERNEL_ISA if f in features], "midr": facts["midr"]},
            "features": features,
        }

    def push(self, local: Path, remote: str) -> None:  # the guest reads host paths directly
        shutil.copy2(local, remote)

    def pull(self, remote: str, local: Path) -> None:
        shutil.copy2(remote, local)

    def run(self, target: "BenchTarget", options: "BenchOptions", run_id: str | None = None) -> RunResult:
        from ..qemu.run import run_guest

        result = new_result(target, options, self.uri, run_id)
        result.instruction_counts = []  # a counting run, even one that fails: its unit is instructions
        result.device_info = self.info()
        result.versions = self.versions()
        start = time.perf_counter()
        try:
            if options.threads != 1:
                raise ConfigError("qemu: devices count one thread's instructions: use --threads 1")
            guest = run_guest(self.env, self.cpu, Path(target.artifact), runs=options.runs, warmup=options.warmup,
                              threads=options.threads)
        except (RunnerError, ConfigError) as exc:
            result.config["error_type"] = type(exc).__name__
            result.error_kind = error_kind_of(exc)
            return result.failed(" ".join(str(exc).split()))
        finally:
            result.wall_s = time.perf_counter() - start
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
        return result

    def versions(self) -> dict[str, str]:
        from .local import local_versions

        wheels = self.env.versions.get("wheels") or {}
        debian = self.env.versions.get("debian") or {}
        return {**local_versions(), "qemu": str(self.env.versions.get("qemu")),
                "ai-edge-litert (aarch64)": str(wheels.get("ai_edge_litert")),
                "numpy (aarch64)": str(wheels.get("numpy")), "libc6 (arm64)": str(debian.get("libc6")),
                "python3.11 (arm64)": str(debian.get("python3.11-minimal")),
                "insn_count plugin": str(self.env.versions.get("plugin_sha256", ""))[:12]}
