"""Is a timed run trustworthy? Checks over one stored `RunResult`, each a reason to re-run.

A median can look precise and still describe a machine that changed under it: another process
took the core, the host slowed down half-way, or the phone heated up and throttled. These checks
read only what a run already records (per-run timings, the CPU-time share of the timed loop,
thermal zones before and after), so they apply to stored runs as well as to fresh ones. They
warn; they never change a figure or fail a run. Thresholds are module constants:

- `noisy`: the runs spread by more than 10% around the median (pyperf's threshold). With
  per-run timings the spread is robust, 1.4826 x MAD / median, so a few long outliers that leave
  the median alone do not raise it; from a summary (benchmark_model) it is std / mean.
- `drift`: the median of the last third of the timed runs differs from the first third's by
  more than 5% (needs per-run timings, i.e. `local`; >= 30 runs).
- `preempted`: a single-threaded timed loop got less than 90% of its wall time on a CPU
  (`cpu_share`, thread CPU time / wall time, measured by `local`'s in-process runtimes).
- `heated`: a thermal zone rose by 5 °C or more between the start and the end of the run.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from .records import RunResult

__all__ = ["StabilityWarning", "assess", "described", "flagged", "flagged_line", "spread", "drift", "max_temperature_rise",
           "MAX_SPREAD", "MAX_DRIFT", "MIN_CPU_SHARE", "MAX_TEMPERATURE_RISE_C", "MIN_RUNS_FOR_DRIFT"]

MAX_SPREAD = 0.10
MAX_DRIFT = 0.05
MIN_RUNS_FOR_DRIFT = 30
MIN_CPU_SHARE = 0.90
MAX_TEMPERATURE_RISE_C = 5.0


@dataclass(frozen=True)
class StabilityWarning:
    code: str  # "noisy" | "drift" | "preempted" | "heated"
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def spread(result: "RunResult") -> float | None:
    """Robust relative spread of the runs (1.4826 x MAD / median), else std / mean from a summary."""
    timings = result.timings_us or []
    if len(timings) >= 3:
        mid = statistics.median(timings)
        mad = statistics.median(abs(t - mid) for t in timings)
        return 1.4826 * mad / mid if mid > 0 else None
    return result.cv


def drift(timings_us: Sequence[float]) -> float | None:
    """median(last third) / median(first third) - 1 of runs in the order they ran; None below 30 runs."""
    if len(timings_us) < MIN_RUNS_FOR_DRIFT:
        return None
    third = len(timings_us) // 3
    first, last = statistics.median(timings_us[:third]), statistics.median(timings_us[-third:])
    return last / first - 1 if first > 0 else None


def max_temperature_rise(device_info: Mapping[str, Any]) -> tuple[str, float] | None:
    """(zone, °C) of the zone that warmed most between thermal_before and thermal_after."""
    before, after = device_info.get("thermal_before") or {}, device_info.get("thermal_after") or {}
    rises = [(zone, after[zone] - before[zone]) for zone in before.keys() & after.keys()
             if isinstance(before[zone], (int, float)) and isinstance(after[zone], (int, float))]
    return max(rises, key=lambda item: item[1]) if rises else None


def assess(result: "RunResult") -> list[StabilityWarning]:
    """The stability warnings of a successful run, in a fixed order (none for a failed run)."""
    if not result.ok:
        return []
    warnings = []
    noise = spread(result)
    if noise is not None and noise > MAX_SPREAD:
        warnings.append(StabilityWarning(
            "noisy", f"the runs spread by {noise:.0%} around the median (> {MAX_SPREAD:.0%}): the machine was not quiet"))
    change = drift(result.timings_us or [])
    if change is not None and abs(change) > MAX_DRIFT:
        warnings.append(StabilityWarning(
            "drift", f"latency {'rose' if change > 0 else 'fell'} {abs(change):.0%} from the first to the last third "
                     "of the runs: the machine changed speed during the run"))
    share = result.cpu_share
    if result.threads == 1 and isinstance(share, (int, float)) and share < MIN_CPU_SHARE:
        warnings.append(StabilityWarning(
            "preempted", f"the timed loop ran on a CPU only {share:.0%} of the time: another process shared its core"))
    rise = max_temperature_rise(result.device_info or {})
    if rise is not None and rise[1] >= MAX_TEMPERATURE_RISE_C:
        warnings.append(StabilityWarning(
            "heated", f"{rise[0]} warmed by {rise[1]:.1f} °C during the run: the device may have throttled"))
    return warnings


def described(result: "RunResult") -> dict[str, Any]:
    """The run as shown and stored for reading: its data plus the reasons not to trust it."""
    return {**result.to_dict(), "warnings": [w.to_dict() for w in assess(result)]}


def _codes_per_run(results: Sequence["RunResult"]) -> list[list[str]]:
    """The warning codes of each successful run (each run assessed once)."""
    return [[w.code for w in assess(r)] for r in results if r.ok]


def _count(codes_per_run: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for codes in codes_per_run:
        for code in codes:
            counts[code] = counts.get(code, 0) + 1
    return counts


def flagged(results: Sequence["RunResult"]) -> dict[str, int]:
    """How many of the successful runs each warning code flagged (a run may count under several)."""
    return _count(_codes_per_run(results))


def flagged_line(results: Sequence["RunResult"]) -> str | None:
    """'3 of 60 timed runs were flagged unstable (preempted 3)', or None when none was."""
    runs = _codes_per_run(results)
    unstable = sum(1 for codes in runs if codes)
    if not unstable:
        return None
    counts = ", ".join(f"{code} {n}" for code, n in sorted(_count(runs).items()))
    return f"{unstable} of {len(runs)} timed runs were flagged unstable ({counts})"
