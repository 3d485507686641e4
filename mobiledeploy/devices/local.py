"""`local`: this host — its facts, CPUs and thermal zones; models run in-process (`runtimes.litert`)."""

from __future__ import annotations

import glob
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import RunResult
from .base import Device, read_text

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["LocalDevice", "host_facts", "cpu_identity", "local_versions", "KERNEL_ISA"]

#: CPU features that change which XNNPACK kernels run (x86 flags, arm64 Features): part of the machine class.
KERNEL_ISA = ("sse4_1", "avx", "f16c", "fma", "avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
              "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")


class LocalDevice(Device):
    uri = "local"

    def __init__(self) -> None:
        self._info: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = host_facts()
        return dict(self._info)

    def push(self, local: Path, remote: str) -> None:
        shutil.copy2(local, remote)

    def pull(self, remote: str, local: Path) -> None:
        shutil.copy2(remote, local)

    def start_run(self, result: RunResult, options: "BenchOptions") -> str:
        result.device_info = {**self.info(), "thermal_before": thermal_temps()}
        result.versions = local_versions()
        return ""

    def end_run(self, result: RunResult, options: "BenchOptions", workdir: str, runtime: Any) -> None:
        result.device_info["thermal_after"] = thermal_temps()


def cpu_identity(cpuinfo: str) -> dict[str, Any]:
    """Vendor, family, model, name and kernel-relevant ISA of the first CPU in /proc/cpuinfo text.

    x86: vendor_id, cpu family, model, flags. arm64: CPU implementer, CPU architecture, CPU part,
    Features. The name (model name, or arm's Hardware line after the per-CPU blocks) may stand
    anywhere. Keys that the text lacks are left out.
    """
    fields: dict[str, str] = {}
    anywhere: dict[str, str] = {}
    first_block_done = False
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            first_block_done = first_block_done or bool(fields)
            continue
        anywhere.setdefault(key, value.strip())
        if not first_block_done:
            fields.setdefault(key, value.strip())
    fields.setdefault("model name", anywhere.get("model name", ""))
    fields.setdefault("hardware", anywhere.get("hardware", ""))
    ident: dict[str, Any] = {}
    for name, keys in (("vendor", ("vendor_id", "cpu implementer")), ("family", ("cpu family", "cpu architecture")),
                       ("model", ("model", "cpu part")), ("name", ("model name", "hardware"))):
        value = next((fields[k] for k in keys if fields.get(k)), None)
        if value:
            ident[name] = value
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    ident["isa"] = [f for f in KERNEL_ISA if f in flags]
    return ident


def host_facts() -> dict[str, Any]:
    """This host in the same vocabulary as a phone's facts."""
    cpu = cpu_identity(read_text("/proc/cpuinfo", "") or "")
    cpu_model = cpu.get("name")
    cpu_root = "/sys/devices/system/cpu"
    max_khz, governors = {}, {}
    for cpu_dir in sorted(glob.glob(f"{cpu_root}/cpu[0-9]*")):
        name = Path(cpu_dir).name
        if freq := read_text(f"{cpu_dir}/cpufreq/cpuinfo_max_freq"):
            max_khz[name] = int(freq) if freq.isdigit() else freq
        if gov := read_text(f"{cpu_dir}/cpufreq/scaling_governor"):
            governors[name] = gov
    return {
        "kind": "host",
        "model": platform.node() or "host",
        "soc": cpu_model or platform.processor() or platform.machine(),
        "abi": platform.machine(),
        "os": platform.platform(),
        "cores": os.cpu_count(),
        "allowed_cpus": sorted(os.sched_getaffinity(0)),
        "cpu": cpu,
        "cpu_max_khz": max_khz,
        "governors": governors,
        "thermal_zones": thermal_types(),
    }


def thermal_types() -> dict[str, str]:
    return {Path(z).name: read_text(f"{z}/type", "?") or "?" for z in sorted(glob.glob("/sys/class/thermal/thermal_zone*"))}


def thermal_temps() -> dict[str, float]:
    """Thermal zone temperatures in °C (millidegrees in sysfs); zones that cannot be read are left out."""
    temps = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        raw = read_text(f"{zone}/temp")
        if raw and raw.lstrip("-").isdigit():
            temps[Path(zone).name] = int(raw) / 1000.0
    return temps


def local_versions() -> dict[str, str]:
    from importlib import metadata

    from .. import __version__

    versions = {"mobiledeploy": __version__, "python": platform.python_version()}
    for dist in ("ai-edge-litert", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions
