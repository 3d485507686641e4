"""A lab of phones on the command line: `bench`/`compare` fanned out over `--device adb:A,adb:B` or
`--device stf:URL?…` (`fanout`), `gate`/`profile` run whole on each phone at once (`per_phone`), and
`mobiledeploy devices` (what a farm or the adb server offers)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .app import Json, app, print_json
from .console import progress_on_stderr, stdout_console
from .options import AdbServerOpt

__all__ = ["open_lab", "bench_lab", "run_lab", "compare_lab", "per_phone", "print_by_device", "devices_cmd"]


def warn(line: str) -> None:
    sys.stderr.write(f"mobiledeploy: warning: {' '.join(line.split())}\n")


def open_lab(device: str, adb_server: str | None) -> Any:
    """The Lab of `--device` when it names several phones or a farm; None for one device."""
    from ..lab_session import open_lab as lab_of

    return lab_of(device, adb_server, say=warn)


def run_lab(lab: Any, targets: list[Any], options: Any, rounds: int, db: str | None, progress: Any,
            collected: list[Any] | None = None) -> list[Any]:
    """`lab_session.run_lab`; no phone to be had: one line, exit 1."""
    from ..errors import DeviceError
    from ..lab_session import run_lab as run_on_phones

    try:
        return run_on_phones(lab, targets, options, rounds, db, progress, collected)
    except DeviceError as exc:
        sys.stderr.write(f"mobiledeploy: error: {' '.join(str(exc).split())}\n")
        raise SystemExit(1) from None


def bench_lab(lab: Any, refs: list[str], options: Any, formats: Any, resolution: Any, runtimes: Any, rounds: int,
              db: str | None, inputs: dict[str, Any], json_out: bool) -> None:
    """`bench` on every phone of the lab: one table with a phone column, every run stored and tagged."""
    from ..lab_session import db_path, lab_targets
    from .console import warn_calibration

    with progress_on_stderr() as progress:
        targets = lab_targets(lab, refs, formats, resolution, runtimes, db, inputs, progress)
        warn_calibration(targets)
        runs = run_lab(lab, targets, options, rounds, db, progress)
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


def compare_lab(lab: Any, targets: list[Any], failures: list[dict[str, Any]], plan: dict[str, Any], options: Any,
                rounds: int, db: str | None, report: Any, json_out: bool, meta: dict[str, Any]) -> None:
    """`compare` on every phone at once: each phone's speedups against the baseline timed on that phone, side by
    side (table, JSON, report); an interrupt still writes the report of what was measured."""
    from ..lab_session import by_device, db_path, lab_report, runs_of, uncompared

    collected: list[Any] = []
    try:
        with progress_on_stderr() as progress:
            runs = run_lab(lab, targets, options, rounds, db, progress, collected) if targets else []
    except KeyboardInterrupt:
        if report:
            lab_report(report, by_device(runs_of(collected), plan, failures), {**meta, "status": "interrupted"})
        raise
    per_phone = by_device([(run, run.results) for run in runs], plan, failures)
    meta = {**meta, "status": "complete", "results db": str(db_path(runs, db))}
    _show_by_device(per_phone, plan, json_out, meta)
    if report:
        written = lab_report(report, per_phone, meta)
        sys.stderr.write(f"mobiledeploy: report written to {written['html']}\n")
    _conclude(runs)
    if uncompared(per_phone):
        sys.stderr.write("mobiledeploy: error: on some phone no model could be compared with the baseline\n")
        raise SystemExit(1)


def judge_stored_by_device(runs: list[Any], plan: dict[str, Any], json_out: bool, meta: dict[str, Any]) -> None:
    """compare --results --by-device: stored runs grouped by the phone they ran on (`config.phone`, else the
    device URI), each phone's speedups against its own baseline runs."""
    from ..lab_session import by_device, stored_by_device, uncompared

    per_phone = by_device(stored_by_device(runs), plan, [])
    _show_by_device(per_phone, plan, json_out, meta)
    if uncompared(per_phone):
        sys.stderr.write("mobiledeploy: error: on some phone no model could be compared with the baseline\n")
        raise SystemExit(1)


def _show_by_device(per_phone: list[tuple[Any, list[Any]]], plan: dict[str, Any], json_out: bool,
                    meta: dict[str, Any]) -> None:
    if json_out:
        print_json({**{k.replace(" ", "_"): v for k, v in meta.items()},
                    "by_device": [{**run.to_dict(), "rows": [r.to_dict() for r in rows]} for run, rows in per_phone]})
    else:
        print_by_device(per_phone, plan["labels"][plan["baseline"]], plan["paper"])


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
        model, fmt, res, theoretical = cell
        table.add_row(escape(model), fmt, res, _x(theoretical), *(_speedup_text(c) for c in cells))
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


class _PerThread:
    """sys.stdout / sys.stderr that send what a phone's thread writes to that phone's buffer (the others, and
    the main thread, write through): a command run per phone keeps its output whole, printed after."""

    def __init__(self, real: Any):
        import threading

        self.real, self.buffers, self._local = real, {}, threading.local()

    def capture(self) -> Any:
        import io

        self._local.buffer = buffer = io.StringIO()
        return buffer

    def write(self, text: str) -> int:
        return (getattr(self._local, "buffer", None) or self.real).write(text)

    def flush(self) -> None:
        if getattr(self._local, "buffer", None) is None:
            self.real.flush()

    def isatty(self) -> bool:
        return getattr(self._local, "buffer", None) is None and self.real.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def per_phone(lab: Any, job: Any, command: str, json_out: bool = False) -> None:
    """`job(phone)` (a whole command on one phone: gate, profile) on every phone of the lab at once. Each phone's
    output is printed whole after a `== PHONE: COMMAND exit N` line (its stderr lines prefixed by the phone);
    with --json, one object: {"devices": [{phone, device, exit_code, result: the phone's JSON}]}. The exit code
    is the worst phone's: 0 only when every phone succeeded."""
    import threading

    from ..errors import DeviceError
    from ..fanout import run_threads

    lab.check()
    outputs: dict[str, tuple[int, Any, Any]] = {}
    out, err = _PerThread(sys.stdout), _PerThread(sys.stderr)
    phones: list[Any] = []

    def one(phone: Any) -> None:
        stdout, stderr = out.capture(), err.capture()
        outputs[phone.label] = (_judged(job, phone), stdout, stderr)

    saved = sys.stdout, sys.stderr
    try:
        with lab.phones() as reserved:
            phones[:] = reserved
            sys.stdout, sys.stderr = out, err
            threads = [threading.Thread(target=one, args=(p,), daemon=True, name=f"{command} {p.label}")
                       for p in reserved]
            run_threads(threads, lab.release_all)
    except DeviceError as exc:
        sys.stdout, sys.stderr = saved
        sys.stderr.write(f"mobiledeploy: error: {' '.join(str(exc).split())}\n")
        raise SystemExit(1) from None
    finally:
        sys.stdout, sys.stderr = saved
        _print_per_phone([(p, *outputs[p.label]) for p in phones if p.label in outputs], command, json_out)
    if code := max((c for c, _, _ in outputs.values()), default=1):
        raise SystemExit(code)


def _print_per_phone(done: list[tuple[Any, int, Any, Any]], command: str, json_out: bool) -> None:
    import json

    for phone, code, _, stderr in done:
        sys.stderr.write("".join(f"{phone.label}: {line}\n" for line in stderr.getvalue().splitlines()))
    if json_out:
        items = []
        for phone, code, stdout, _ in done:
            try:
                result = json.loads(stdout.getvalue() or "null")
            except ValueError:
                result = stdout.getvalue()
            items.append({"phone": phone.label, "device": phone.uri, "identity": phone.identity, "exit_code": code,
                          "result": result})
        print_json({"command": command, "devices": items})
        return
    for phone, code, stdout, _ in done:
        sys.stdout.write(f"== {phone.label}: {command} exit {code}\n{stdout.getvalue()}")


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


@app.command("devices")
def devices_cmd(
    device: Annotated[Optional[str], typer.Option(
        "--device", "-d", help="A farm (stf:http://HOST:PORT/?FILTERS, token in $STF_TOKEN) or a list of phones "
        "(adb:A,adb:B); default: every phone the adb server sees.")] = None,
    adb_server: AdbServerOpt = None,
    json_out: Json = False,
) -> None:
    """What a farm (DeviceFarmer/STF) or the adb server offers: model, SoC, ABI, Android SDK and whether it is free.

    Example: mobiledeploy devices
    Example: STF_TOKEN=... mobiledeploy devices --device 'stf:https://farm.example/?abi=arm64-v8a' --json
    """
    from ..devices.lab import Lab
    from ..devices.stf import matches

    lab = Lab(device, adb_server=adb_server) if device is not None else None
    if lab is not None and lab.farm is not None:
        phones = lab.farm.phones()
        rows = [{"serial": p.serial, "model": p.fields.get("model"), "manufacturer": p.fields.get("manufacturer"),
                 "soc": p.fields.get("cpuPlatform"), "abi": p.fields.get("abi"), "sdk": p.fields.get("sdk"),
                 "free": p.free, "matches": matches(p.fields, lab.farm.query.filters)} for p in phones]
        source = lab.farm.query.describe()
    else:
        rows, source = _adb_phones(lab, adb_server), adb_server or "the adb server"
    if json_out:
        print_json({"source": source, "devices": rows})
        return
    _print_devices(rows, source)


def _adb_phones(lab: Any, adb_server: str | None) -> list[dict[str, Any]]:
    """Every phone the adb server lists (or the lab's), with its facts when it is in state `device`."""
    from ..devices.adb import AdbDevice
    from ..errors import MobiledeployError

    named = lab.serials if lab is not None else None
    seen = AdbDevice("list", adb_server=adb_server).devices()
    rows = []
    for serial in named or list(seen):
        state = seen.get(serial, "absent")
        row: dict[str, Any] = {"serial": serial, "state": state, "free": state == "device"}
        if state == "device":
            try:
                facts = AdbDevice(serial, adb_server=adb_server).open().info()
                row.update({k: facts.get(k) for k in ("model", "manufacturer", "soc", "abi")})
                row["sdk"] = facts.get("sdk") or facts.get("android_sdk")
            except MobiledeployError as exc:
                row.update(free=False, error=" ".join(str(exc).split()))
        rows.append(row)
    return rows


def _print_devices(rows: list[dict[str, Any]], source: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"phones offered by {escape(source)}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    columns = ["serial", "model", "manufacturer", "soc", "abi", "sdk", "free"] + (["matches"] if any(
        "matches" in r for r in rows) else []) + (["state"] if any("state" in r for r in rows) else [])
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(_cell(row.get(col))) for col in columns))
    stdout_console().print(table)
    if not rows:
        stdout_console().print("[dim]no phone[/]")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value in (None, "") else str(value)
