"""Runtimes side by side: one row per model × runtime, from stored runs, the figures of each kind apart.

`compare --runtimes litert,executorch,onnxruntime` (and `benchmarks/bench_executorch.py`) set LiteRT, ExecuTorch
and ONNX Runtime against each other on one model: fp32 and int8 Arm instructions on each emulated core (counted,
`qemu:CPU` runs), host milliseconds (measured, `local` runs: the median over rounds of each run's median), file
size, and parity (the export's on the host, against torch for fp32 and against fp32 for int8; the Arm run's against
the host, where the runtime checks it). A pure function of RunResults: it runs nothing; it reads each artifact's
size and its folder's manifest.json when they are still on disk.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .artifact_kinds import ARTIFACT_KINDS
from .devices.kinds import KINDS, kind_name, uri_arg

__all__ = ["RuntimeRow", "runtime_rows", "SAME_RUNTIME"]

#: runtime names that are the same runtime on another device kind: LiteRT counted on qemu: is `counted`
SAME_RUNTIME = {"counted": "litert"}


@dataclass
class RuntimeRow:
    model: str
    resolution: str
    runtime: str
    instructions: dict[str, dict[str, float]] = field(default_factory=dict)  # counted: core → precision → median
    host_ms: dict[str, float] = field(default_factory=dict)                  # measured on `local`: precision → ms
    file_bytes: dict[str, int] = field(default_factory=dict)                 # precision → size of the file timed
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)          # precision → the export's parity entry
    arm_parity: dict[str, float] = field(default_factory=dict)               # precision → Arm vs host max_rel

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "resolution": self.resolution, "runtime": self.runtime,
                "instructions_counted": self.instructions, "host_ms_measured": self.host_ms,
                "file_bytes": self.file_bytes, "parity": self.parity, "arm_parity_max_rel": self.arm_parity}


def runtime_rows(results: Iterable[Any]) -> list[RuntimeRow]:
    """The table of the ok runs: qemu: runs give instructions per core, `local` runs host ms; the order is the
    runs' (model, size, runtime) in order of first appearance."""
    rows: dict[tuple[str, str, str], RuntimeRow] = {}
    ms: dict[tuple[tuple[str, str, str], str], list[float]] = {}
    for r in results:
        if not r.ok or r.precision not in ("fp32", "int8"):
            continue
        runtime = SAME_RUNTIME.get(r.runtime, r.runtime)
        key = (r.model, _resolution(r), runtime)
        row = rows.setdefault(key, RuntimeRow(*key))
        _file_facts(row, r)
        kind = KINDS.get(kind_name(r.device))
        if kind is not None and kind.exact and r.instructions is not None:  # an emulated core, named by its URI
            row.instructions.setdefault(uri_arg(r.device) or "", {})[r.precision] = float(r.instructions)
            arm = (r.observed or {}).get("arm_parity") or {}
            if "max_rel" in arm:
                row.arm_parity[r.precision] = float(arm["max_rel"])
        elif kind is not None and kind.host_cpus and r.median_ms is not None:  # this host
            ms.setdefault((key, r.precision), []).append(float(r.median_ms))
    for (key, precision), values in ms.items():
        rows[key].host_ms[precision] = statistics.median(values)
    return list(rows.values())


def _resolution(r: Any) -> str:
    shape = (r.config or {}).get("resolution")
    if isinstance(shape, (list, tuple)) and len(shape) == 2:
        return f"{shape[0]}x{shape[1]}"
    return str(shape or "")


def _file_facts(row: RuntimeRow, r: Any) -> None:
    """Size of the file timed and the export's parity entry for it, from the artifact folder (when still there)."""
    path = Path(r.artifact)
    if r.precision in row.file_bytes or not path.is_file():
        return
    row.file_bytes[r.precision] = path.stat().st_size
    from .converters.manifest import manifest_beside

    kind = next((key for key, k in ARTIFACT_KINDS.items() if k.file_name == path.name), None)
    manifest = manifest_beside(path)
    entry = manifest.parity.get(kind or "") if manifest else None
    if isinstance(entry, dict):
        row.parity[r.precision] = {k: entry[k] for k in ("max_rel", "max_abs", "cosine", "sqnr_db", "passed") if k in entry}
