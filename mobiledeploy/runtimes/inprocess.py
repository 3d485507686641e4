"""What the in-process runtimes (LiteRT, ONNX Runtime) share: pinning to CPUs, the phases of a timed run,
the measured loop and the figures a RunResult takes from them. Every duration is from perf_counter_ns."""

from __future__ import annotations

import gc
import glob
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..devices.base import read_text
from ..errors import ConfigError, RunnerError
from ..records import parse_cpu_mask, percentile

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["InProcessRuntime", "time_phases", "fill_timing", "timed_loop", "big_cores", "pin_cpus"]


class InProcessRuntime:
    """A runtime of the `local` device: it loads and times the file in this process (`time_file`, which returns
    `time_phases`'s figures) and adds what it knows of the run to the result (`describe`)."""

    name: str
    artifacts: dict[str, str]

    def __init__(self, device: Any = None) -> None:
        """In this process: nothing of the device is needed."""

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str = "") -> None:
        timing = self.time_file(Path(target.artifact), threads=options.threads, runs=options.runs,
                                warmup=options.warmup, min_secs=options.min_secs, cpu_mask=options.cpu_mask)
        fill_timing(result, timing)
        self.describe(Path(target.artifact), options, result, timing)

    def time_file(self, model: Path, **how: Any) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self, model: Path, options: "BenchOptions", result: "RunResult", timing: dict[str, Any]) -> None:
        raise NotImplementedError


def time_phases(load: Callable[[], Any], prepare: Callable[[Any], tuple[Callable[[], Any], dict[str, Any]]], *,
                threads: int = 1, runs: int = 50, warmup: int = 5, min_secs: float = 0.0,
                cpu_mask: str = "auto") -> dict[str, Any]:
    """Time a model the same way whatever runs it: `load()` (timed: init) gives a loaded model, `prepare(it)`
    (untimed) its `invoke` and facts to report; then the first inference, `warmup` runs and the timed loop.

    Returns init_us, first_us, warmup_avg_us, timings_us (at least `runs`, and at least `min_secs` seconds),
    cpu_share (CPU time of the calling thread during the timed loop / its wall time: below 1 when the thread
    waited for a CPU, or, with threads > 1, for worker threads), memory_delta_mb (peak resident-set growth
    since before loading, sampled between phases), the CPUs used, and what `prepare` returned.
    """
    saved_cpus = pin_cpus(cpu_mask, threads)
    clock = time.perf_counter_ns
    try:
        rss = [_rss_bytes()]
        t0 = clock()
        loaded = load()
        init_ns = clock() - t0
        rss.append(_rss_bytes())
        invoke, facts = prepare(loaded)
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
        timings = timed_loop(invoke, runs, min_secs)
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
        **facts,
    }


def fill_timing(result: "RunResult", timing: dict[str, Any]) -> None:
    """The figures of `time_phases` in a RunResult: per-run timings and their summary, p95, init, first,
    warm-up, memory growth, CPUs and cpu_share."""
    result.status, result.error = "ok", None
    result.with_timings(timing["timings_us"])
    result.p95_ms = percentile(timing["timings_us"], 0.95) / 1000.0
    result.init_ms = timing["init_us"] / 1000.0
    result.first_ms = timing["first_us"] / 1000.0
    result.warmup_ms = timing["warmup_avg_us"] / 1000.0 if timing["warmup_avg_us"] is not None else None
    result.memory_delta_mb = timing["memory_delta_mb"]
    result.cpu_share = round(timing["cpu_share"], 4)
    result.observed["cpus"] = timing["cpus"]


def timed_loop(invoke: Any, runs: int, min_secs: float) -> list[int]:
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


def pin_cpus(cpu_mask: str, threads: int) -> set[int] | None:
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


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
