"""`compare --runtimes A,B,…` (several runtimes): ONE table, per model × runtime, of fp32/int8 instructions on the
emulated cores (counted), host ms (measured), file size and parity (`runtime_table.runtime_rows`)."""

from __future__ import annotations

import sys
from typing import Any

from .app import print_json
from .console import progress_on_stderr, stdout_console, warn_calibration

__all__ = ["compare_runtimes", "arm_cores", "show_runtime_table"]

def compare_runtimes(plan: Any, device: str, options: Any, rounds: int, export: Any, arm: str | None,
                     db: str | None, adb_server: str | None, json_out: bool, named: list[str]) -> None:
    """Export, time and count every model on every runtime (`sessions.runtimes_session`) and print the one
    table; exit 1 when no model could be measured."""
    from ..sessions import runtimes_session

    arm_cpus = arm_cores(arm)
    with progress_on_stderr() as progress:
        rows, results, failures = runtimes_session(plan, device, options, rounds, export, arm_cpus, db, adb_server,
                                                   named, progress, prepared=warn_calibration)
    meta = {"device": device, "arm_cores": arm_cpus, "rounds": rounds, "runtimes": list(plan.runtimes)}
    show_runtime_table(rows, meta, json_out)
    for failure in failures:
        sys.stderr.write(f"mobiledeploy: warning: {failure['key']} {failure['precision']} {failure['resolution']} "
                         f"{failure['runtime']}: {failure['error']}\n")
    for r in results:
        if not r.ok:
            sys.stderr.write(f"mobiledeploy: warning: {r.model} {r.precision} {r.runtime} on {r.device}: {r.error}\n")
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
