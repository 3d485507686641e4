"""A lab of phones on the command line, shared by the commands that take one: `bench`/`compare` fanned out over
`--device adb:A,adb:B` or `--device stf:URL?…` (`lab_session`), `gate`/`profile` run whole on each phone at once
(`per_phone`), and their tables. `mobiledeploy devices` is `devices_cmd.py`."""

from __future__ import annotations

import sys
from typing import Any

from .app import print_json
from .console import progress_on_stderr, stdout_console

__all__ = ["open_lab", "bench_lab", "compare_lab", "show_stored_by_device", "per_phone", "print_by_device"]


def warn(line: str) -> None:
    sys.stderr.write(f"mobiledeploy: warning: {' '.join(line.split())}\n")


def open_lab(device: str, adb_server: str | None) -> Any:
    """The Lab of `--device` when it names several phones or a farm; None for one device."""
    from ..lab_session import open_lab as lab_of

    return lab_of(device, adb_server, say=warn)


def bench_lab(lab: Any, refs: list[str], options: Any, precisions: Any, resolution: Any, runtimes: Any, rounds: int,
              db: str | None, inputs: dict[str, Any], json_out: bool) -> None:
    """`bench` on every phone of the lab (`lab_session.bench_on_lab`): one table with a phone column, every run
    stored and tagged."""
    from ..lab_session import bench_on_lab, db_path
    from .console import warn_calibration

    with progress_on_stderr() as progress:  # no phone to be had: NoPhoneError, one line and exit 1
        runs = bench_on_lab(lab, refs, options, precisions, resolution, runtimes, rounds, db, inputs, progress,
                            prepared=warn_calibration)
    if json_out:
        print_json({"device": lab.describe(), "db": str(db_path(runs, db)),
                    "devices": [{**run.to_dict(), "results": [_item(r) for r in run.results]} for run in runs]})
    else:
        print_lab_results(runs, str(db_path(runs, db)))
    _conclude(runs)


def _item(result: Any) -> dict[str, Any]:
    item = result.to_dict()
    if item.get("status") == "ok":
        item.pop("error", None)
    return item


def _conclude(runs: list[Any]) -> None:
    """One line per phone that did not succeed; the exit code says whether every phone did."""
    from ..fanout import lab_exit_code
    from ..lab_session import failure_lines

    for line in failure_lines(runs):
        sys.stderr.write(f"mobiledeploy: error: {line}\n")
    if code := lab_exit_code(runs):
        raise SystemExit(code)


def print_lab_results(runs: list[Any], db_path: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .console import ms_text

    table = Table(title="latency in ms, per phone", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for col in ("phone", "machine class", "model", "precision", "round", "", "median", "p95", "init", "first"):
        table.add_column(col, justify="left" if col in ("phone", "machine class", "model", "precision") else "right",
                         no_wrap=col == "precision")
    for run in runs:
        for r in run.results or [None]:
            if r is None:
                table.add_row(escape(run.phone.label), escape(run.machine_class or "—"), "—", "—", "", "[red]FAIL[/]",
                              "", "", "", "")
                continue
            table.add_row(escape(run.phone.label), escape(run.machine_class or "—"), escape(r.model), escape(r.precision),
                          str(r.round), "[green]ok[/]" if r.ok else "[red]FAIL[/]", ms_text(r.median_ms),
                          ms_text(r.p95_ms), ms_text(r.init_ms), ms_text(r.first_ms))
    console = stdout_console()
    console.print(table)
    console.print(f"[dim]stored in {escape(db_path)}; each run's config.phone names its phone and machine class[/]")


def compare_lab(lab: Any, plan: Any, options: Any, rounds: int, export: Any, weights_of: dict[str, str] | None,
                db: str | None, report: Any, json_out: bool, meta: dict[str, Any]) -> None:
    """`compare` on every phone at once (`sessions.lab_compare_session`): each phone's speedups against the
    baseline timed on that phone, side by side (table, JSON, report)."""
    from ..lab_session import db_path, lab_report, uncompared
    from ..sessions import lab_compare_session
    from .console import warn_calibration

    with progress_on_stderr() as progress:  # no phone to be had: NoPhoneError, one line and exit 1
        runs, per_phone = lab_compare_session(lab, plan, options, rounds, export, weights_of, db, report, meta,
                                              progress, prepared=warn_calibration)
    meta = {**meta, "status": "complete", "results db": str(db_path(runs, db))}
    _show_by_device(per_phone, plan, json_out, meta)
    if report:
        written = lab_report(report, per_phone, meta)
        sys.stderr.write(f"mobiledeploy: report written to {written['html']}\n")
    _conclude(runs)
    if uncompared(per_phone):
        sys.stderr.write("mobiledeploy: error: on some phone no model could be compared with the baseline\n")
        raise SystemExit(1)


def show_stored_by_device(per_phone: list[tuple[Any, list[Any]]], plan: Any, json_out: bool,
                          meta: dict[str, Any]) -> None:
    """compare --results --by-device: stored runs grouped by the phone they ran on, each phone's speedups against
    its own baseline runs (`sessions.judge_stored`)."""
    from ..lab_session import uncompared

    _show_by_device(per_phone, plan, json_out, meta)
    if uncompared(per_phone):
        sys.stderr.write("mobiledeploy: error: on some phone no model could be compared with the baseline\n")
        raise SystemExit(1)


def _show_by_device(per_phone: list[tuple[Any, list[Any]]], plan: Any, json_out: bool,
                    meta: dict[str, Any]) -> None:
    if json_out:
        print_json({**{k.replace(" ", "_"): v for k, v in meta.items()},
                    "by_device": [{**run.to_dict(), "rows": [r.to_dict() for r in rows]} for run, rows in per_phone]})
    else:
        print_by_device(per_phone, plan.baseline_label, plan.paper)


def print_by_device(per_phone: list[tuple[Any, list[Any]]], baseline_label: str, paper: dict[str, Any]) -> None:
    """The measured speedups side by side, one column per phone, after a line per phone (its machine class)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from ..lab_session import side_by_side

    console = stdout_console()
    phones = Table(title="phones", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("phone", "device", "machine class", "status"):
        phones.add_column(col)
    for run, _ in per_phone:
        phones.add_row(escape(run.phone.label), escape(run.phone.uri), escape(run.machine_class or "—"),
                       "[green]ok[/]" if run.ok else f"[red]{escape(run.failure() or 'failed')}[/]")
    console.print(phones)
    table = Table(title=f"measured speedup over {escape(baseline_label)} per phone (95% CI)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("model", "precision", "size", "theoretical", *(run.phone.label for run, _ in per_phone)):
        table.add_column(escape(col), justify="left" if col in ("model", "precision", "size") else "right",
                         no_wrap=col == "precision")
    for cell, cells in side_by_side(per_phone).items():
        model, precision, res, theoretical = cell
        table.add_row(escape(model), precision, res, _x(theoretical), *(_speedup_text(c) for c in cells))
    console.print(table)
    console.print("[dim]each phone's models are set against the baseline timed on the same phone; "
                  "theoretical = baseline MACs / MACs[/]")


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _speedup_text(row: Any) -> str:
    if row is None or row.status != "ok":
        return "[red]FAILED[/]" if row is not None else "—"
    if row.baseline:
        return "baseline"
    ci = row.measured_speedup_ci
    return _x(row.measured_speedup) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def per_phone(lab: Any, job: Any, command: str, json_out: bool = False) -> None:
    """`job(phone)` (a whole command on one phone: gate, profile) on every phone of the lab at once
    (`lab_session.per_phone_jobs`). Each phone's output is printed whole after a `== PHONE: COMMAND exit N` line
    (its stderr lines prefixed by the phone); with --json, one object: {"devices": [{phone, device, exit_code,
    result: the phone's JSON}]}. The exit code is the worst phone's: 0 only when every phone succeeded."""
    from ..errors import NoPhoneError
    from ..lab_session import per_phone_jobs

    lab.check()  # the farm answers and has a matching phone (a DeviceError, exit 2, prints no phone's output)
    done: list[Any] = []
    try:
        per_phone_jobs(lab, lambda phone: _judged(job, phone), command, done)
    except NoPhoneError as exc:
        sys.stderr.write(f"mobiledeploy: error: {exc}\n")
        raise SystemExit(1) from None
    finally:
        _print_per_phone([(d.phone, d.exit_code, d.stdout, d.stderr) for d in done], command, json_out)
    if code := max((d.exit_code for d in done), default=1):
        raise SystemExit(code)


def _print_per_phone(done: list[tuple[Any, int, str, str]], command: str, json_out: bool) -> None:
    import json

    for phone, code, _, stderr in done:
        sys.stderr.write("".join(f"{phone.label}: {line}\n" for line in stderr.splitlines()))
    if json_out:
        items = []
        for phone, code, stdout, _ in done:
            try:
                result = json.loads(stdout or "null")
            except ValueError:
                result = stdout
            items.append({"phone": phone.label, "device": phone.uri, "identity": phone.identity, "exit_code": code,
                          "result": result})
        print_json({"command": command, "devices": items})
        return
    for phone, code, stdout, _ in done:
        sys.stdout.write(f"== {phone.label}: {command} exit {code}\n{stdout}")


def _judged(job: Any, phone: Any) -> int:
    """`job(phone)`'s exit code; its errors are its own (one line), the other phones go on."""
    from ..errors import MobiledeployError

    try:
        job(phone)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except MobiledeployError as exc:
        sys.stderr.write(f"mobiledeploy: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    except Exception as exc:  # a thread must not die silently: this phone fails, the others go on
        sys.stderr.write(f"mobiledeploy: error: {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return 2
    return 0
