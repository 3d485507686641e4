"""A command on a lab (several phones, or a DeviceFarmer farm's): reserve, export once, time every target on
every phone at once, release; and each phone's results grouped and compared against the baseline timed on
that same phone. The CLI prints what these return (`cli/lab.py`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["open_lab", "run_lab", "lab_targets", "bench_on_lab", "runs_of", "stored_by_device", "by_device",
           "side_by_side", "lab_report", "db_path", "failure_lines", "uncompared", "PhoneJob", "per_phone_jobs",
           "offered_phones"]


def open_lab(device: str, adb_server: str | None, say: Callable[[str], None]) -> Any:
    """The Lab of `--device` when it names several phones or a farm; None for one device."""
    from .devices.lab import Lab, is_lab

    return Lab(device, adb_server=adb_server, say=say) if is_lab(device) else None


def run_lab(lab: Any, targets: list[Any], options: Any, rounds: int, db: str | None, progress: Any,
            collected: list[Any] | None = None) -> list[Any]:
    """Reserve (a farm), time every target on every phone at once, release: one PhoneRun per phone. NoPhoneError
    (exit 1) when no phone is to be had."""
    from .errors import DeviceError
    from .fanout import fan_out

    try:
        with lab.phones() as phones:
            progress(f"{len(phones)} phone(s): {', '.join(p.label for p in phones)}")
            return fan_out(phones, targets, options, rounds=rounds, db=db, adb_server=lab.adb_server,
                           progress=progress, collected=collected, release=lab.release_all)
    except DeviceError as exc:
        raise no_phone(exc) from None


def no_phone(exc: Exception) -> Exception:
    """A lab's DeviceError as the one-line NoPhoneError (exit 1)."""
    from .errors import NoPhoneError

    return exc if isinstance(exc, NoPhoneError) else NoPhoneError(" ".join(str(exc).split()))


def lab_targets(lab: Any, refs: list[str], precisions: Any, resolution: Any, runtimes: Any, db: str | None,
                inputs: dict[str, Any], progress: Any) -> list[Any]:
    """`bench` on a lab, before any phone is reserved: the database and the farm checked, the models exported
    once for every phone."""
    from .measure import prepare_targets
    from .preflight import check_db

    check_db(db)
    lab.check()  # the farm answers, takes the token and has a matching phone: before any export
    return prepare_targets(refs, precisions, resolution, progress, runtimes=runtimes, **inputs)


def bench_on_lab(lab: Any, refs: list[str], options: Any, precisions: Any, resolution: Any, runtimes: Any, rounds: int,
                 db: str | None, inputs: dict[str, Any], progress: Any,
                 prepared: Callable[[list[Any]], None] | None = None) -> list[Any]:
    """`bench` on every phone of the lab: export once (`lab_targets`), then time every target on every phone at
    once (`run_lab`): one PhoneRun per phone. `prepared` sees the targets before any phone is reserved."""
    targets = lab_targets(lab, refs, precisions, resolution, runtimes, db, inputs, progress)
    if prepared is not None:
        prepared(targets)
    return run_lab(lab, targets, options, rounds, db, progress)


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


def by_device(groups: list[tuple[Any, list[Any]]], plan: Any,
              failures: list[dict[str, Any]]) -> list[tuple[Any, list[Any]]]:
    """Each phone's compare rows: its models set against the baseline timed on that phone (`plan`: a
    `sessions.SessionPlan`)."""
    from .compare import compare

    return [(run, compare(results, plan.baseline, labels=plan.labels, paper=plan.paper, failures=failures)
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


@dataclass(frozen=True)
class PhoneJob:
    """What a whole command did on one phone of a lab: its exit code and what it wrote."""

    phone: Any  # devices.lab.Phone
    exit_code: int
    stdout: str
    stderr: str


class _PerThread:
    """sys.stdout / sys.stderr that send what a phone's thread writes to that phone's buffer (the others, and
    the main thread, write through): a command run per phone keeps its output whole, printed after."""

    def __init__(self, real: Any):
        import threading

        self.real, self._local = real, threading.local()

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


def per_phone_jobs(lab: Any, job: Callable[[Any], int], command: str, done: list[PhoneJob]) -> list[PhoneJob]:
    """`job(phone) -> exit code` (a whole command on one phone: gate, profile) on every phone of the lab at once,
    one thread each, what each writes to stdout/stderr kept apart (the caller asks the farm first, `lab.check()`);
    its phones released whatever happens (an interrupt releases them all). `done` receives each phone's
    PhoneJob, in the lab's order, also when the jobs end by an error or an interrupt. NoPhoneError when no phone is to be had."""
    import threading

    from .errors import DeviceError
    from .fanout import run_threads

    ended: dict[str, tuple[int, Any, Any]] = {}
    out, err = _PerThread(sys.stdout), _PerThread(sys.stderr)
    phones: list[Any] = []

    def one(phone: Any) -> None:
        stdout, stderr = out.capture(), err.capture()
        ended[phone.label] = (job(phone), stdout, stderr)

    saved = sys.stdout, sys.stderr
    try:
        with lab.phones() as reserved:
            phones[:] = reserved
            sys.stdout, sys.stderr = out, err
            threads = [threading.Thread(target=one, args=(p,), daemon=True, name=f"{command} {p.label}")
                       for p in reserved]
            run_threads(threads, lab.release_all)
    except DeviceError as exc:
        raise no_phone(exc) from None
    finally:
        sys.stdout, sys.stderr = saved
        done[:] = [PhoneJob(p, code, stdout.getvalue(), stderr.getvalue())
                   for p in phones if p.label in ended for code, stdout, stderr in [ended[p.label]]]
    return done


def offered_phones(device: str | None, adb_server: str | None) -> tuple[list[dict[str, Any]], str]:
    """`mobiledeploy devices`: (a row per phone, where they come from): a farm's phones (model, SoC, ABI, SDK, free,
    whether they match its filters), else every phone the adb server lists (or the `--device` list's), with its
    facts when it is in state `device`."""
    from .devices.lab import Lab
    from .devices.stf import matches

    lab = Lab(device, adb_server=adb_server) if device is not None else None
    if lab is not None and lab.farm is not None:
        rows = [{"serial": p.serial, "model": p.fields.get("model"), "manufacturer": p.fields.get("manufacturer"),
                 "soc": p.fields.get("cpuPlatform"), "abi": p.fields.get("abi"), "sdk": p.fields.get("sdk"),
                 "free": p.free, "matches": matches(p.fields, lab.farm.query.filters)} for p in lab.farm.phones()]
        return rows, lab.farm.query.describe()
    return _adb_phones(lab, adb_server), adb_server or "the adb server"


def _adb_phones(lab: Any, adb_server: str | None) -> list[dict[str, Any]]:
    """Every phone the adb server lists (or the lab's), with its facts when it is in state `device`."""
    from .devices.adb import AdbDevice
    from .errors import MobiledeployError

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
