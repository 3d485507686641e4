"""`qemu:CPU`: an emulated Arm64 core running the aarch64 LiteRT; the figure is Arm instructions.

Wall time under emulation means nothing (QEMU translates every instruction, float NEON much
slower than integer code), so this device never reports milliseconds: it reports the exact number
of Arm instructions each inference executes, counted by a QEMU plugin, identical on every host
for the same wheel, QEMU CPU model and artifact. XNNPACK picks its kernels from the emulated
core's features (dot product on cortex-a76, none on cortex-a53), as it would on a phone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..qemu.env import Environment, environment
from ..records import RunResult
from .base import Device

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["QemuDevice", "parse_cpu"]


def parse_cpu(name: str | None) -> str:
    """An emulated core's name ('cortex-a76'; None: the default one); ConfigError naming the ones there are."""
    from ..qemu.env import CPUS, DEFAULT_CPU

    cpu = (name or DEFAULT_CPU).strip().lower()
    if cpu not in CPUS:
        raise ConfigError(f"unknown emulated CPU {name!r}: choose one of {', '.join(CPUS)}")
    return cpu


class QemuDevice(Device):
    """qemu[:CPU]: one emulated core (the default one when CPU is left out); opening checks its environment."""

    def __init__(self, cpu: str | None = None, env: Environment | None = None) -> None:
        self.cpu = parse_cpu(cpu)
        self.uri = f"qemu:{self.cpu}"
        self.env = env or environment()
        if self.cpu not in self.env.cpus:
            raise ConfigError(f"{self.cpu} has no core view in {self.env.root}: run `mobiledeploy qemu setup --cpu {self.cpu}`")

    @classmethod
    def parse_arg(cls, arg: str | None) -> str | None:
        return parse_cpu(arg or None)

    @classmethod
    def check_arg(cls, arg: str | None) -> None:
        cls(arg)

    @classmethod
    def from_uri(cls, arg: str | None, *, adb_server: str | None = None) -> "QemuDevice":
        return cls(arg)

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

    def start_run(self, result: RunResult, options: "BenchOptions") -> str:
        result.instruction_counts = []  # a counting run, even one that fails: its unit is instructions
        result.device_info = self.info()
        result.versions = self.versions()
        return ""

    def versions(self) -> dict[str, str]:
        from .local import local_versions

        wheels = self.env.versions.get("wheels") or {}
        debian = self.env.versions.get("debian") or {}
        return {**local_versions(), "qemu": str(self.env.versions.get("qemu")),
                "ai-edge-litert (aarch64)": str(wheels.get("ai_edge_litert")),
                "numpy (aarch64)": str(wheels.get("numpy")), "libc6 (arm64)": str(debian.get("libc6")),
                "python3.11 (arm64)": str(debian.get("python3.11-minimal")),
                "insn_count plugin": str(self.env.versions.get("plugin_sha256", ""))[:12]}
