"""`compare --runtimes A,B,…` (several runtimes): ONE table, per model × runtime, of fp32/int8 instructions on the
emulated cores (counted), host ms (measured), file size and parity (`runtime_table.runtime_rows`)."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Callable

from .app import print_json
from .console import progress_on_stderr, stdout_console, warn_calibration

__all__ = ["compare_runtimes", "arm_cores", "show_runtime_table", "ARM_RUNTIME"]

#: a runtime's name on qemu: devices where it differs (LiteRT counted there is `counted`)
ARM_RUNTIME = {"litert": "counted"}
#: runs and warm-up of each counted run: the figure is the median, exact after the first run (ORT: see
#: runtimes/counted_onnxruntime.py)
ARM_RUNS, ARM_WARMUP = 3, 1


def compare_runtimes(plan: dict[str, Any], device: str, options: Any, rounds: int, export: Any, arm: str | None,
                     db: str | None, adb_server: str | None, json_out: bool, named: list[str],
                     export_targets: Callable[..., tuple[list[Any], list[dict[str, Any]]]]) -> None:
    """Export each model once for every runtime, time it on `device` (interleaved rounds), count it on each core
    of `arm` (see `arm_cores`), and print the one table. Only the `named` models when given (the baseline of a
    speedup means nothing here); `export_targets` is compare's (cli/compare_cmd.py). Exit 1 when no model could
    be measured."""
    from ..bench import run_bench
    from ..records import BenchOptions
    from ..runtime_table import runtime_rows

    arm_cpus = arm_cores(arm)
    refs = [r for r in plan["refs"] if not named or r in named] or plan["refs"]
    with progress_on_stderr() as progress:
        targets, failures = export_targets(refs, plan["formats"], plan["sizes"], progress, plan["keys"],
                                           export, None, plan["runtimes"])
        warn_calibration(targets)
        results = list(run_bench(device, targets, options, rounds=rounds, db=db, adb_server=adb_server,
                                 progress=progress).raise_for_setup().results) if targets else []
        counted = BenchOptions(threads=1, runs=ARM_RUNS, warmup=ARM_WARMUP)
        for cpu in arm_cpus:
            arm_targets = [replace(t, runtime=ARM_RUNTIME.get(t.runtime or "", t.runtime)) for t in targets]
            results += run_bench(f"qemu:{cpu}", arm_targets, counted, db=db, progress=progress).raise_for_setup().results
    rows = runtime_rows(results)
    meta = {"device": device, "arm_cores": arm_cpus, "rounds": rounds, "runtimes": list(plan["runtimes"])}
    show_runtime_table(rows, meta, json_out)
    for failure in failures:
        sys.stderr.write(f"mobiledeploy: warning: {failure['key']} {failure['format']} {failure['resolution']} "
                         f"{failure['runtime']}: {failure['error']}\n")
    for r in results:
        if not r.ok:
            sys.stderr.write(f"mobiledeploy: warning: {r.model} {r.format} {r.runtime} on {r.device}: {r.error}\n")
    if not rows:
        sys.stderr.write("mobiledeploy: error: no model could be measured by any runtime\n")
        raise SystemExit(1)


def arm_cores(arm: str | None) -> list[str]:
    """--arm: comma list of emulated cores (None: cortex-a76; 'none': no counted columns); ConfigError naming the
    cores QEMU offers for an unknown one."""
    from ..devices.qemu import parse_cpu

    if arm is None:
        return [parse_cpu(None)]
    if arm.strip().lower() == "none":
        return []
    return list(dict.fromkeys(parse_cpu(c) for c in arm.split(",") if c.strip()))


def show_runtime_table(rows: list[Any], meta: dict[str, Any], json_out: bool) -> None:
    """One table: a row per model × runtime; each column says whether its figure is counted or measured."""
    if json_out:
        print_json({**meta, "runtime_table": [row.to_dict() for row in rows]})
        return
    from rich.table import Table

    cores = list(dict.fromkeys(cpu for row in rows for cpu in row.instructions))
    table = Table(title=f"Runtimes side by side (host ms measured on {meta['device']}; Arm instructions counted)")
    for name in ("model", "size", "runtime"):
        table.add_column(name)
    for cpu in cores:
        table.add_column(f"{cpu} instr fp32 / int8", justify="right")
    table.add_column("host ms fp32 / int8", justify="right")
    table.add_column("MB fp32 / int8", justify="right")
    table.add_column("parity fp32 max rel / int8 cosine", justify="right")
    table.add_column("Arm vs host max rel", justify="right")
    for row in rows:
        cells = [_pair(row.instructions.get(cpu, {}), lambda v: f"{v / 1e6:.3f}M") for cpu in cores]
        table.add_row(row.model, row.resolution, row.runtime, *cells, _pair(row.host_ms, lambda v: f"{v:.2f}"),
                      _pair(row.file_bytes, lambda v: f"{v / 1e6:.2f}"), _parity(row.parity),
                      _pair(row.arm_parity, lambda v: f"{v:.1e}"))
    stdout_console().print(table)


def _pair(values: dict[str, Any], fmt: Any) -> str:
    return " / ".join(fmt(values[p]) if p in values else "—" for p in ("fp32", "int8"))


def _parity(parity: dict[str, dict[str, Any]]) -> str:
    fp32, int8 = parity.get("fp32") or {}, parity.get("int8") or {}
    left = f"{fp32['max_rel']:.1e}" if fp32.get("max_rel") is not None else "—"
    right = f"{int8['cosine']:.4f}" if int8.get("cosine") is not None else "—"
    return f"{left} / {right}"
