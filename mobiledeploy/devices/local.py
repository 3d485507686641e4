"""`local`: this host, the LiteRT interpreter (XNNPACK, given threads), every run timed here."""

from __future__ import annotations

import gc
import glob
import os
import platform
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RunnerError
from ..qemu.guest import delegation, make_inputs  # one definition each, shared with the emulated Arm runs
from ..records import RunResult, error_kind_of, percentile
from .base import Device, new_result, parse_cpu_mask, read_text

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget

__all__ = ["LocalDevice", "time_tflite", "make_inputs", "host_facts", "big_cores", "cpu_identity", "KERNEL_ISA"]

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

    def run(self, target: "BenchTarget", options: "BenchOptions") -> RunResult:
        result = new_result(target, options, self.uri)
        result.device_info = {**self.info(), "thermal_before": thermal_temps()}
        result.versions = local_versions()
        start = time.perf_counter()
        try:
            timing = time_tflite(Path(target.artifact), threads=options.threads, runs=options.runs,
                                 warmup=options.warmup, min_secs=options.min_secs, cpu_mask=options.cpu_mask)
        except Exception as exc:  # a broken artifact or interpreter error is a failed run, not a crash
            result.config["error_type"] = type(exc).__name__
            result.error_kind = error_kind_of(exc)
            return result.failed(_one_line(exc))
        finally:
            result.wall_s = time.perf_counter() - start
            result.device_info["thermal_after"] = thermal_temps()
        result.status, result.error = "ok", None
        result.with_timings(timing["timings_us"])
        result.p95_ms = percentile(timing["timings_us"], 0.95) / 1000.0
        result.init_ms = timing["init_us"] / 1000.0
        result.first_ms = timing["first_us"] / 1000.0
        result.warmup_ms = timing["warmup_avg_us"] / 1000.0 if timing["warmup_avg_us"] is not None else None
        result.memory_delta_mb = timing["memory_delta_mb"]
        result.config.update(runner="litert-interpreter", delegate="xnnpack (LiteRT default)",
                             cpus=timing["cpus"], cpu_share=round(timing["cpu_share"], 4),
                             input_dtypes=timing["input_dtypes"], delegation=_where(timing["delegation"]))
        return result


def time_tflite(model: Path, *, threads: int = 1, runs: int = 50, warmup: int = 5, min_secs: float = 0.0,
                cpu_mask: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Load `model` in the LiteRT interpreter and time it; every duration from perf_counter_ns.

    Returns init_us (interpreter creation + allocate_tensors), first_us, warmup_avg_us,
    timings_us (one per timed run: at least `runs`, and at least `min_secs` seconds),
    cpu_share (CPU time of the calling thread during the timed loop / its wall time: below 1 when
    the thread waited for a CPU, or, with threads > 1, for XNNPACK's worker threads),
    memory_delta_mb (peak resident-set growth since before loading, sampled between phases),
    the CPUs used and the input dtypes.
    """
    from ai_edge_litert.interpreter import Interpreter

    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")
    saved_cpus = _pin(cpu_mask, threads)
    clock = time.perf_counter_ns
    try:
        rss = [_rss_bytes()]
        t0 = clock()
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        interpreter.allocate_tensors()
        init_ns = clock() - t0
        rss.append(_rss_bytes())
        dtypes = make_inputs(interpreter, seed)
        delegated = delegation(interpreter)
        invoke = interpreter.invoke
        t0 = clock()
        invoke()
        first_ns = clock() - t0
        rss.append(_rss_bytes())
        warm = []
        for _ in range(warmup):
            t0 = clock()
            invoke()
            warm.append(clock() - t0)
        cpu_t0, wall_t0 = time.thread_time_ns(), clock()
        timings = _timed_loop(invoke, runs, min_secs)
        # a thread cannot run longer than the wall clock; on a VM whose kernel charges stolen time to the
        # running thread the ratio was seen at 1.03 under load, so it is capped
        cpu_share = min(1.0, (time.thread_time_ns() - cpu_t0) / max(1, clock() - wall_t0))
        rss.append(_rss_bytes())
        cpus = sorted(os.sched_getaffinity(0))
    finally:
        if saved_cpus is not None:
            os.sched_setaffinity(0, saved_cpus)
    return {
        "init_us": init_ns / 1e3,
        "first_us": first_ns / 1e3,
        "warmup_avg_us": sum(warm) / len(warm) / 1e3 if warm else None,
        "timings_us": [t / 1e3 for t in timings],
        "memory_delta_mb": max(0, max(rss) - rss[0]) / 2**20,
        "cpus": cpus,
        "cpu_share": cpu_share,
        "input_dtypes": dtypes,
        "delegation": delegated,
    }


def _where(found: dict[str, Any]) -> dict[str, Any]:
    """XNNPACK's share of the graph in the record adb runs use (config.delegation): nodes, partitions, and the
    nodes TFLite runs with its own kernels, by op type."""
    return {"accelerator": "cpu", "delegate": "TfLiteXNNPackDelegate", **found,
            "cpu_nodes": found["nodes"] - found["delegated_nodes"]}


def _timed_loop(invoke: Any, runs: int, min_secs: float) -> list[int]:
    """The measured loop: nothing but the clock and `invoke` between two readings."""
    clock = time.perf_counter_ns
    timings: list[int] = []
    append = timings.append
    deadline = clock() + int(min_secs * 1e9)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        n = 0
        while n < runs or clock() < deadline:
            t0 = clock()
            invoke()
            append(clock() - t0)
            n += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


def _pin(cpu_mask: str, threads: int) -> set[int] | None:
    """Pin this process to the mask's CPUs ('auto': the fastest cores, when frequencies are known)."""
    try:
        mask = parse_cpu_mask(cpu_mask)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    allowed = os.sched_getaffinity(0)
    cpus = big_cores(threads) if mask is None else {i for i in range(mask.bit_length()) if mask >> i & 1}
    if not cpus:
        return None
    chosen = cpus & allowed
    if not chosen:
        raise RunnerError(f"cpu mask {cpu_mask} selects none of the CPUs this process may use ({sorted(allowed)})")
    if chosen == allowed:
        return None
    os.sched_setaffinity(0, chosen)
    return allowed


def big_cores(threads: int, root: str = "/sys/devices/system/cpu") -> set[int]:
    """The fastest cores by cpuinfo_max_freq, whole frequency tiers until there are >= `threads`.

    Empty when no frequency is known or every core is equally fast (pinning would change nothing).
    """
    freqs: dict[int, int] = {}
    for path in glob.glob(f"{root}/cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        value = read_text(path)
        if value and value.isdigit():
            freqs[int(Path(path).parent.parent.name[3:])] = int(value)
    if len(set(freqs.values())) < 2:
        return set()
    chosen: set[int] = set()
    for tier in sorted(set(freqs.values()), reverse=True):
        chosen |= {cpu for cpu, f in freqs.items() if f == tier}
        if len(chosen) >= threads:
            break
    return chosen


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


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
