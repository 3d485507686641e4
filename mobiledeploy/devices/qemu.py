"""`qemu:CPU`: an emulated Arm64 core running the aarch64 LiteRT; the figure is Arm instructions.

Wall time under emulation means nothing (QEMU translates every instruction, float NEON much
slower than integer code), so this device never reports milliseconds: it reports the exact number
of Arm instructions each inference executes, counted by a QEMU plugin, identical on every host
for the same wheel, QEMU CPU model and artifact. XNNPACK picks its kernels from the emulated
core's features (dot product on cortex-a76, none on cortex-a53), as it would on a phone.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MobiledeployError
from ..qemu.env import Environment, environment
from ..records import RunResult, error_kind_of
from .base import Device, new_result
from .kinds import parse_cpu  # the emulated cores' names are part of the URI form (devices.kinds)

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget

__all__ = ["QemuDevice", "parse_cpu"]


class QemuDevice(Device):
    def __init__(self, cpu: str | None = None, env: Environment | None = None) -> None:
        self.cpu = parse_cpu(cpu)
        self.uri = f"qemu:{self.cpu}"
        self.env = env or environment()
        if self.cpu not in self.env.cpus:
            raise ConfigError(f"{self.cpu} has no core view in {self.env.root}: run `mobiledeploy qemu setup --cpu {self.cpu}`")
        from ..runtimes.counted import CountedRuntime

        self.runtime = CountedRuntime(self.env, self.cpu)
        self._runtimes = {self.runtime.name: self.runtime}

    def runtime_named(self, name: str | None = None) -> Any:
        """The counting runtime called `name` (`devices.kinds`: counted, LiteRT, by default; executorch), made once."""
        from .kinds import runtime_for

        name = runtime_for(self.uri, name)
        if name not in self._runtimes:
            from ..runtimes.counted_executorch import CountedExecuTorchRuntime

            self._runtimes[name] = CountedExecuTorchRuntime(self.env, self.cpu)
        return self._runtimes[name]

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
        result = new_result(target, options, self.uri, run_id)
        result.instruction_counts = []  # a counting run, even one that fails: its unit is instructions
        result.device_info = self.info()
        result.versions = self.versions()
        start = time.perf_counter()
        try:
            runtime = self.runtime_named(target.runtime)
            result.runtime = runtime.name
            runtime.run(target, options, result)
        except MobiledeployError as exc:  # a run that failed, or a setup step missing (exit 2)
            result.config["error_type"] = type(exc).__name__
            result.error_kind = error_kind_of(exc)
            return result.failed(" ".join(str(exc).split()))
        finally:
            result.wall_s = time.perf_counter() - start
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
