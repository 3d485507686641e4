"""An estimate of one .tflite on one phone: a profiled emulated run on the phone's `qemu_cpu` with the
block_cache plugin beside the counting one (the exact counts come out as in any counted run), then the
timing model. The cache hierarchy simulated is the phone's, so a run serves one phone (or phones whose
core and caches agree)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunnerError
from .blocks import BlockRecord, parse_blocks, plugin_argument
from .phones import PhoneProfile
from .timing import Estimate, estimate

__all__ = ["EstimateRun", "estimate_artifact", "estimate_guest", "kinds_of"]


@dataclass
class EstimateRun:
    estimate: Estimate
    counted_instructions: float   # the counting plugin's exact median per inference (outside the interpreter)
    records: list[BlockRecord]
    maps: str
    runs: int
    emulated_wall_s: float
    model_wall_s: float           # llvm-mc + llvm-mca + the sums


def estimate_artifact(artifact: Path, phone: PhoneProfile, *, runs: int = 1, warmup: int = 1,
                      env: Any = None) -> EstimateRun:
    """Run `artifact` once profiled on the phone's emulated core and estimate its milliseconds there."""
    return estimate_guest(artifact, phone, runs=runs, warmup=warmup, env=env)[1]


def estimate_guest(artifact: Path, phone: PhoneProfile, *, runs: int = 1, warmup: int = 1,
                   env: Any = None) -> tuple[Any, EstimateRun]:
    """(the emulated run with its exact counts, the estimate): one process serves both."""
    import statistics

    from ..qemu.env import MARKER, environment
    from ..qemu.run import run_guest

    env = env or environment()
    plugin = plugin_argument(phone.l1_kib, phone.l2_kib, phone.l3_kib, MARKER)
    guest = run_guest(env, phone.qemu_cpu, Path(artifact), runs=runs, warmup=warmup, profile=True,
                      plugins={"block_cache": plugin})
    records = parse_blocks(guest.extra.get("block_cache", ""), skip_main=True)
    if not records:
        raise RunnerError(f"the estimating run of {Path(artifact).name} on {phone.qemu_cpu} recorded no blocks")
    start = time.perf_counter()
    result = estimate(records, phone, runs)
    return guest, EstimateRun(result, float(statistics.median(guest.counts.runs)), records, guest.maps or "", runs,
                              guest.wall_s, time.perf_counter() - start)


def kinds_of(run: EstimateRun, macs_by_op: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Estimated ms and instructions per kernel kind (XNNPACK micro-kernels and TFLite's kernels by name)."""
    from collections import defaultdict

    from ..qemu.profile import _demangle, _symbolise, kernel_kind, parse_maps

    maps = parse_maps(run.maps)
    where = {b.address: _symbolise(maps, b.address) for b in run.estimate.blocks}
    names = _demangle(sorted({w[0] for w in where.values() if w}))
    ms_per_cycle = run.estimate.cycle_scale / (run.estimate.clock_ghz * 1e9) * 1e3
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for b in run.estimate.blocks:
        w = where[b.address]
        kind = kernel_kind(names.get(w[0], w[0]), w[1]) if w else "unattributed"
        by_kind[kind][0] += b.cycles * ms_per_cycle
        by_kind[kind][1] += b.instructions
        by_kind[kind][2] += b.memory_cycles > b.core_cycles and b.cycles * ms_per_cycle or 0.0
    total = run.estimate.ms or 1.0
    return [{"kind": k, "estimated_ms": v[0], "share": v[0] / total, "instructions": v[1],
             "memory_bound_ms": v[2]} for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1][0])]
