"""Per-kernel times of a .pte (`runtimes.executorch.pte_op_profile` on the host, an executor_runner's ETDump on a
phone): ExecuTorch's ETDump (its event tracer, on in the pip wheel's runtime) read by its
Inspector (`executorch.devtools`). The XNNPACK delegate reports each of its operators ("Convolution (NHWC, F32)
IGEMM #1"), the portable ops their own calls, so the rows say where a .pte's time goes beside benchmark_model's
per-op table of the .tflite (`bench --op-profiling`). Measured wall times of the host (or of the phone, from an
executor_runner's ETDump); the row layout is benchmark_model's `op_profile` (node_type, name, avg_ms, percent).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["rows_from_etdump", "ETDUMP_ID"]

#: the flatbuffer file identifier of an ETDump (executorch/devtools/etdump/etdump_schema_flatcc.fbs)
ETDUMP_ID = b"ED00"
#: events that wrap the kernels rather than being one: left out of the rows (their time is the rows' sum and more)
#: (OPERATOR_CALL wraps each portable op's own event, `native_call_<op>`: counting both counted that op twice)
_WRAPPERS = {"Method::execute", "DELEGATE_CALL", "Method::init", "Program::load_method", "OPERATOR_CALL"}


def rows_from_etdump(path: Path) -> list[dict[str, Any]]:
    """The kernels of the Execute block, in run order: {node_type (the name without its ' #N'), name, avg_ms,
    median_ms, percent (of the kernels' summed medians), delegated}; a last row 'outside kernels' =
    Method::execute − that sum (the delegate calls' own cost, the runtime's). The median, because the first run
    (cold caches, XNNPACK's first packing) is among the runs. ValueError when the file is not an ETDump."""
    from executorch.devtools import Inspector

    head = path.read_bytes()[:12]
    if ETDUMP_ID not in (head[4:8], head[8:12]):  # a flatbuffer's identifier, after its size prefix when it has one
        raise ValueError(f"not an ETDump (no {ETDUMP_ID.decode()} identifier)")
    frame = Inspector(etdump_path=str(path)).to_dataframe()
    records = [r for r in frame.to_dict("records") if r.get("event_block_name") == "Execute"]
    rows = [{"node_type": re.sub(r" #\d+$", "", str(r["event_name"])), "name": str(r["event_name"]),
             "avg_ms": float(r["avg (ms)"]), "median_ms": float(r["p50 (ms)"]),
             "delegated": bool(r.get("is_delegated_op"))} for r in records if r["event_name"] not in _WRAPPERS]
    execute = next((r for r in records if r["event_name"] == "Method::execute"), None)
    if execute is not None and float(execute["p50 (ms)"]) > sum(r["median_ms"] for r in rows):
        rows.append({"node_type": "outside kernels", "name": "Method::execute − kernels",
                     "avg_ms": max(float(execute["avg (ms)"]) - sum(r["avg_ms"] for r in rows), 0.0),
                     "median_ms": float(execute["p50 (ms)"]) - sum(r["median_ms"] for r in rows), "delegated": False})
    whole = sum(r["median_ms"] for r in rows) or 1.0
    for row in rows:
        row["percent"] = round(100.0 * row["median_ms"] / whole, 2)
    return rows
