"""A command on a lab (several phones, or a DeviceFarmer farm's): reserve, export once, time every target on
every phone at once, release; and each phone's results grouped and compared against the baseline timed on
that same phone. The CLI prints what these return (`cli/lab_cmd.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

__all__ = ["open_lab", "run_lab", "lab_targets", "runs_of", "stored_by_device", "by_device", "side_by_side",
           "lab_report", "db_path", "failure_lines", "uncompared"]


def open_lab(device: str, adb_server: str | None, say: Callable[[str], None]) -> Any:
    """The Lab of `--device` when it names several phones or a farm; None for one device."""
    from .devices.lab import Lab, is_lab

    return Lab(device, adb_server=adb_server, say=say) if is_lab(device) else None


def run_lab(lab: Any, targets: list[Any], options: Any, rounds: int, db: str | None, progress: Any,
            collected: list[Any] | None = None) -> list[Any]:
    """Reserve (a farm), time every target on every phone at once, release: one PhoneRun per phone. DeviceError
    when no phone is to be had."""
    from .fanout import fan_out

    with lab.phones() as phones:
        progress(f"{len(phones)} phone(s): {', '.join(p.label for p in phones)}")
        return fan_out(phones, targets, options, rounds=rounds, db=db, adb_server=lab.adb_server,
                       progress=progress, collected=collected, release=lab.release_all)


def lab_targets(lab: Any, refs: list[str], precisions: Any, resolution: Any, runtimes: Any, db: str | None,
                inputs: dict[str, Any], progress: Any) -> list[Any]:
    """`bench` on a lab, before any phone is reserved: the database and the farm checked, the models exported
    once for every phone."""
    from .measure import prepare_targets
    from .preflight import check_db

    check_db(db)
    lab.check()  # the farm answers, takes the token and has a matching phone: before any export
    return prepare_targets(refs, precisions, resolution, progress, runtimes=runtimes, **inputs)


def db_path(runs: list[Any], db: str | None) -> Any:
    """The results database the runs went to."""
    from .results import default_db_path

    return next((run.bench.db_path for run in runs if run.bench), db or default_db_path())


def failure_lines(runs: list[Any]) -> list[str]:
    """One line per phone that did not succeed."""
    return [f"{run.phone.label}: {' '.join(line.split())}" for run in runs if (line := run.failure()) is not None]


def runs_of(collected: list[Any]) -> list[tuple[Any, list[Any]]]:
    """The results an interrupted fan-out stored so far, grouped by the phone they ran on."""
    from .devices.lab import Phone
    from .fanout import PhoneRun

    groups: dict[str, tuple[Any, list[Any]]] = {}
    for result in collected:
        ident = (result.config or {}).get("phone") or {"label": result.device}
        run = PhoneRun(Phone(result.device, ident), ident.get("machine_class"), error="interrupted")
        groups.setdefault(str(ident.get("label")), (run, []))[1].append(result)
    return list(groups.values())


def stored_by_device(runs: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Stored runs grouped by the phone they ran on (`config.phone`, else the device URI), one PhoneRun each."""
    from .bench import BenchRun
    from .devices.lab import Phone
    from .fanout import PhoneRun

    groups: dict[str, tuple[Any, list[Any]]] = {}
    for result in runs:
        ident = (result.config or {}).get("phone") or {"label": result.device}
        label = str(ident.get("label"))
        if label not in groups:
            groups[label] = (PhoneRun(Phone(result.device, ident), ident.get("machine_class")), [])
        groups[label][1].append(result)
    for run, results in groups.values():
        run.bench = BenchRun(results, Path(""), str(results[0].session_id or ""))
    return list(groups.values())


def by_device(groups: list[tuple[Any, list[Any]]], plan: dict[str, Any],
              failures: list[dict[str, Any]]) -> list[tuple[Any, list[Any]]]:
    """Each phone's compare rows: its models set against the baseline timed on that phone."""
    from .compare import compare

    return [(run, compare(results, plan["baseline"], labels=plan["labels"], paper=plan["paper"], failures=failures)
             if results else []) for run, results in groups]


def uncompared(per_phone: list[tuple[Any, list[Any]]]) -> bool:
    """On some phone no model could be compared with the baseline."""
    return any(not any(r.measured_speedup for r in rows if not r.baseline) for _, rows in per_phone)


def side_by_side(per_phone: list[tuple[Any, list[Any]]]) -> dict[tuple[Any, ...], list[Any]]:
    """(model, precision, resolution, theoretical) → each phone's row (None where that phone has none)."""
    cells: dict[tuple[Any, ...], list[Any]] = {}
    for index, (_, rows) in enumerate(per_phone):
        for row in rows:
            key = (row.model, row.precision, row.resolution, row.theoretical_speedup)
            cells.setdefault(key, [None] * len(per_phone))[index] = row
    return cells


def lab_report(report: Any, per_phone: list[tuple[Any, list[Any]]], meta: dict[str, Any]) -> dict[str, Any]:
    """The by-device HTML/Markdown report of a lab compare."""
    from .report_lab import write_by_device_report

    return write_by_device_report(report, [(run.to_dict(), rows) for run, rows in per_phone], meta=meta)
