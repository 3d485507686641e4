"""The timing model: estimated cycles and milliseconds of one inference on one phone, from per-block executions.

For each block: core cycles = executions x the block's steady-state cycles on the phone's pipeline (llvm-mca),
memory cycles = lines fetched from memory (the simulated hierarchy's last-level misses) x 64 bytes / the
core's bandwidth in bytes per cycle; the block costs the larger of the two (a roofline per block: streaming
loads overlap with compute, whichever is slower sets the pace). Blocks outside the hot set (the last 1% of
executed instructions) and hot blocks the pipeline model cannot read are costed at the covered blocks' mean
cycles per instruction, and the band widens by their share. Estimated cycles x cycle_scale (the profile's one
free parameter) / clock = milliseconds, single thread.

Left out: cache-hit latencies (L2/L3 hits cost what the pipeline model gives a load), hardware prefetchers
beyond the bandwidth bound, branch mispredictions (llvm-mca predicts every branch), TLB misses, frequency
scaling and heat, other threads, and the dispatch between blocks (each is costed in its own steady state).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .blocks import BlockRecord
from .phones import PhoneProfile

__all__ = ["Estimate", "BlockCost", "estimate", "LEAVES_OUT", "HOT_SHARE", "LINE_BYTES"]

HOT_SHARE = 0.99
LINE_BYTES = 64
LEAVES_OUT = ("cache-hit latency", "prefetchers beyond the bandwidth bound", "branch mispredictions", "TLB misses",
              "frequency scaling and heat", "other threads")


@dataclass
class BlockCost:
    address: int
    instructions: float          # per inference
    core_cycles: float           # per inference, pipeline model (or mean CPI when uncovered)
    memory_cycles: float         # per inference, lines from memory / bandwidth
    covered: bool

    @property
    def cycles(self) -> float:
        return max(self.core_cycles, self.memory_cycles)


@dataclass
class Estimate:
    phone: str
    clock_ghz: float
    llvm_mcpu: str
    ms: float                    # estimated, single thread, per inference
    low_ms: float
    high_ms: float
    band_pct: float
    cycles: float                # estimated, per inference, after cycle_scale
    core_cycles: float           # sum of the pipeline model's cycles (before the memory bound and the scale)
    memory_bound_cycles: float   # cycles the memory bound adds over the pipeline model
    instructions: float          # per inference (executed in the window / runs)
    coverage: float              # share of the instructions whose blocks the pipeline model read
    dram_bytes: float            # per inference, simulated
    cycle_scale: float
    calibration: str
    kind: str = "estimated"
    leaves_out: tuple[str, ...] = LEAVES_OUT
    blocks: list[BlockCost] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("blocks")
        data["unit"] = "estimated ms per inference (single thread), not measured"
        return data


def hot_blocks(records: list[BlockRecord], share: float = HOT_SHARE) -> list[BlockRecord]:
    """The blocks, most executed instructions first, that cover `share` of all executed instructions."""
    ranked = sorted(records, key=lambda r: -r.instructions * r.executions)
    total = sum(r.instructions * r.executions for r in ranked)
    hot, seen = [], 0
    for r in ranked:
        if seen >= share * total:
            break
        hot.append(r)
        seen += r.instructions * r.executions
    return hot


def estimate(records: list[BlockRecord], phone: PhoneProfile, runs: int, *,
             cycles_per_block: dict[int, float | None] | None = None) -> Estimate:
    """Estimated ms of one inference (`records` counted over `runs`); `cycles_per_block` maps a record's index
    in `records` to its llvm-mca cycles per execution (computed here when not given)."""
    if cycles_per_block is None:
        cycles_per_block = pipeline_cycles(records, phone.llvm_mcpu)
    per_line = LINE_BYTES / phone.bytes_per_cycle()
    costs, cov_cycles, cov_insns = [], 0.0, 0.0
    for i, r in enumerate(records):
        cpi = cycles_per_block.get(i)
        insns = r.instructions * r.executions / runs
        core = cpi * r.executions / runs if cpi is not None else None
        if core is not None:
            cov_cycles, cov_insns = cov_cycles + core, cov_insns + insns
        costs.append((r, insns, core))
    mean_cpi = cov_cycles / cov_insns if cov_insns else 1.0
    blocks = [BlockCost(r.address, insns, core if core is not None else insns * mean_cpi,
                        r.dram_lines(phone.levels) * per_line / runs, core is not None) for r, insns, core in costs]
    return _total(blocks, phone, runs, records)


def _total(blocks: list[BlockCost], phone: PhoneProfile, runs: int, records: list[BlockRecord]) -> Estimate:
    instructions = sum(b.instructions for b in blocks)
    coverage = sum(b.instructions for b in blocks if b.covered) / instructions if instructions else 0.0
    core = sum(b.core_cycles for b in blocks)
    bound = sum(b.cycles for b in blocks)
    cycles = phone.cycle_scale * bound
    ms = cycles / (phone.clock_ghz * 1e9) * 1e3
    band = phone.band_pct + 100.0 * (1.0 - coverage)
    dram = sum(r.dram_lines(phone.levels) for r in records) * LINE_BYTES / runs
    return Estimate(phone.name, phone.clock_ghz, phone.llvm_mcpu, ms, ms * (1 - band / 100), ms * (1 + band / 100),
                    band, cycles, core, bound - core, instructions, coverage, dram, phone.cycle_scale,
                    phone.calibration_source, blocks=blocks)


def pipeline_cycles(records: list[BlockRecord], mcpu: str, share: float = HOT_SHARE) -> dict[int, float | None]:
    """llvm-mca cycles per execution of the hot records, by index (cold ones are absent: costed at mean CPI)."""
    from .pipeline import block_cycles, disassemble

    hot = {id(r) for r in hot_blocks(records, share)}
    index = [i for i, r in enumerate(records) if id(r) in hot]
    cycles = block_cycles(disassemble([records[i].code for i in index]), mcpu)
    return dict(zip(index, cycles))
