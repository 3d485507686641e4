"""`mobiledeploy results`: list and export the stored runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .app import Json, app, print_json
from .options import DbOpt


@app.command("results")
def results_cmd(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N runs (0: all).")] = 20,
    model: Annotated[Optional[str], typer.Option("--model", help="Only runs of this model (slug or file stem).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="Only runs on this device URI.")] = None,
    runtime: Annotated[Optional[str], typer.Option("--runtime", help="Only runs timed by this runtime (litert, onnxruntime, …).")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="ok or failed.")] = None,
    json_out: Json = False,
) -> None:
    """List stored benchmark runs, newest first; --json exports them with raw per-run timings.

    Example: mobiledeploy results --limit 10
    Example: mobiledeploy results --json --limit 0 > results.json
    """
    from ..errors import ConfigError
    from ..results import SCHEMA_VERSION, ResultsStore
    from ..preflight import check_db

    if status not in (None, "ok", "failed"):
        raise ConfigError("--status takes ok or failed")
    if limit < 0:
        raise ConfigError("--limit must be >= 0")
    path = str(check_db(db, must_exist=bool(db or os.environ.get("MOBILEDEPLOY_DB"))))
    rows = []
    if Path(path).exists():  # the default database before the first bench: nothing stored, nothing created
        writable = os.access(path, os.W_OK) and os.access(Path(path).parent, os.W_OK | os.X_OK)
        with ResultsStore(path, readonly=not writable) as store:  # listing never needs to write
            rows = store.list(limit or None, model=model, device=device, status=status, runtime=runtime)
    if json_out:
        print_json({"db": path, "schema_version": SCHEMA_VERSION, "results": rows})
        return
    print_rows(rows, path)


def print_rows(rows: list[dict[str, Any]], path: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .console import count_text, ms_text, stdout_console

    def figure(row: dict, ms_key: str, count_key: str) -> str:  # qemu: rows hold instructions, never ms
        return count_text(row.get(count_key)) if row.get("unit") == "instructions" else ms_text(row[ms_key])

    console = stdout_console()
    table = Table(title=f"{len(rows)} run(s) in {escape(path)}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for col in ("id", "started (UTC)", "model", "precision", "device", "runtime", "thr", "", "median", "mean", "init", "warnings",
                "error"):
        table.add_column(col, overflow="fold", no_wrap=col == "precision")
    for r in rows:
        table.add_row(str(r["id"]), (r["started_at"] or "")[:16].replace("T", " "), escape(r["model"]),
                      escape(r["precision"]), escape(r["device"]), escape(r.get("runtime") or "—"), str(r["threads"]),
                      "[green]ok[/]" if r["status"] == "ok" else "[red]FAIL[/]",
                      figure(r, "median_ms", "instructions"), "—" if r.get("unit") == "instructions" else ms_text(r["mean_ms"]),
                      figure(r, "init_ms", "init_instructions"),
                      "[yellow]" + escape(",".join(w["code"] for w in r.get("warnings") or [])) + "[/]",
                      escape(r["error"] or ""))
    console.print(table)
    console.print("[dim]times in ms, or Arm instructions (M) on qemu: devices; warnings: reasons not to trust a run (noisy, drift, preempted, heated); "
                  "--json for everything (per-run timings, device facts, versions, commit, warning messages)[/]")
