"""The exact gate's run on qemu: devices: count (or record) Arm instructions against a committed baseline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .reports import GateReports
from .request import GateOutput, GateRequest

__all__ = ["EXACT_DEFAULT_REGRESSION", "ExactItem", "wants_exact", "run_exact_gate", "exact_devices", "finish_exact",
           "with_resolution", "exact_kind"]

#: the exact gate's threshold when none is given: counts repeat to ~1e-4, so 1% is far above noise
EXACT_DEFAULT_REGRESSION = "1%"


@dataclass(frozen=True)
class ExactItem:
    """One artifact to count: a model ref, its precision, and the emulated core."""

    ref: str
    precision: str
    cpu: str


def exact_kind() -> str:
    """The device kind whose figures are exact counts (`DeviceKind.exact` in the table): the exact gate's."""
    from ..devices.kinds import KINDS

    return next(name for name, kind in KINDS.items() if kind.exact)


def _default_cpu() -> str:
    """The exact kind's default core, as its Device class names it when none is given."""
    from ..devices.kinds import device_uri, parse_device_uri

    return parse_device_uri(device_uri(exact_kind()))[1]


def wants_exact(baseline: str, device: str | None, update: bool) -> bool:
    """An instruction baseline file, or a new baseline recorded on qemu: devices."""
    from ..devices.kinds import kind_of
    from .exact import is_exact_baseline

    if Path(baseline).is_file():
        return is_exact_baseline(baseline)
    return update and bool(device) and all(kind_of(d).exact for d in (device or "").split(","))


def _plan(req: GateRequest, old: list[Any], cpus: list[str] | None) -> list[ExactItem]:
    """The new models on every core asked (default: the exact kind's default core), or the baseline's entries."""
    from ..bench import parse_precisions
    from ..devices.kinds import device_uri
    from ..errors import ConfigError
    from .baseline_refs import check_baseline_refs

    if req.models and not req.update_baseline:
        raise ConfigError("--model sets the models of a new baseline: use it with --update-baseline")
    if req.models:
        precisions = parse_precisions(req.precisions)
        return [ExactItem(with_resolution(m, req.resolution), p, c) for m in req.models for p in precisions
                for c in (cpus or [_default_cpu()])]
    if old:
        items = [ExactItem(e.ref, e.precision, e.cpu) for e in old if cpus is None or e.cpu in cpus]
        check_baseline_refs([i.ref for i in items], req.baseline, req.allow_outside_refs)
        return items
    raise ConfigError(f"no instruction baseline at {req.baseline}: record one with --update-baseline --device "
                      f"{device_uri(exact_kind())} --model REF")


def run_exact_gate(req: GateRequest, reports: GateReports, out: GateOutput) -> int:
    """Count (or record) every entry; the exit code. The gated models are exported from `req.weights` and
    `req.export`, as `bench` takes them; each run goes into `reports.measured` as it ends (an interrupted gate
    reports them). The baseline's own file refs must lie in its repository unless `req.allow_outside_refs`."""
    from ..devices import check_device, parse_device_uri
    from ..devices.kinds import device_uri, kind_of
    from ..errors import ConfigError
    from ..preflight import check_db, check_output_file
    from .exact import judge_exact, load_exact
    from .wallclock import Threshold

    limit = Threshold.parse(req.max_regression or EXACT_DEFAULT_REGRESSION).fraction
    if req.update_baseline:
        check_output_file(req.baseline, "--baseline")  # where the counts will go: before anything is counted
    old = load_exact(req.baseline) if Path(req.baseline).is_file() else []
    device = req.device
    if any(not kind_of(d).exact for d in (device or "").split(",") if d.strip()):
        raise ConfigError("an instruction baseline is judged on qemu:CPU devices only")
    cpus = [parse_device_uri(d)[1] for d in device.split(",") if d.strip()] if device else None
    items = _plan(req, old, cpus)
    for cpu in dict.fromkeys(i.cpu for i in items):
        check_device(device_uri(exact_kind(), cpu))
    check_db(req.db)  # where the runs will go: before any export
    entries = _measure(items, req, reports.measured, out)
    if req.update_baseline:
        return _record(req, old, entries, limit, out)
    judged = old if not cpus else [e for e in old if e.cpu in cpus]
    return finish_exact(judge_exact(judged, entries, limit), req.baseline, req, out)


def _record(req: GateRequest, old: list[Any], entries: list[Any], limit: float, out: GateOutput) -> int:
    """Write the instruction baseline: the entries counted now, the others kept as recorded."""
    from ..devices.kinds import device_uri
    from ..errors import ConfigError
    from ..files import write_atomic
    from ..results import git_commit
    from .exact import baseline_document, merged_entries

    failed = [e for e in entries if e.error]
    if failed:
        raise ConfigError(f"not writing {req.baseline}: {failed[0].key} failed: {failed[0].error}")
    written = merged_entries(old, entries)  # what was not measured now (another core, model) stays
    write_atomic(req.baseline, baseline_document(written, limit, git_commit()))
    kept = len(written) - len(entries)
    message = (f"wrote instruction baseline {req.baseline} ({len(entries)} artifact(s) measured"
               + (f", {kept} kept as recorded" if kept else "") + ")")
    _status_reports(message, req.device or device_uri(exact_kind()), junit=req.junit, markdown=req.markdown)
    out.note(message)
    return 0


def exact_devices(baseline: str) -> str:
    """The qemu: devices an instruction baseline's entries were counted on ('qemu:cortex-a76,qemu:cortex-a53'),
    for its reports; 'qemu' when it cannot be read (its own error says why)."""
    from ..devices.kinds import device_uri
    from ..errors import MobiledeployError
    from .exact import load_exact

    try:
        cpus = dict.fromkeys(e.cpu for e in load_exact(baseline))
    except MobiledeployError:
        return exact_kind()
    return ",".join(device_uri(exact_kind(), c) for c in cpus) or exact_kind()


def _status_reports(message: str, device: str, *, junit: str | None, markdown: str | None) -> None:
    """The JUnit and Markdown reports of a gate that recorded instead of judging (exit 0), as the wall-clock
    gate writes them."""
    from ..files import write_atomic
    from .reports import INSTRUCTIONS, status_junit, status_markdown
    from .status import BASELINE_WRITTEN

    if junit:
        write_atomic(junit, status_junit(BASELINE_WRITTEN, device, message))
    if markdown:
        write_atomic(markdown, status_markdown(BASELINE_WRITTEN, device, message, INSTRUCTIONS))


def finish_exact(verdict: Any, label: str, req: GateRequest, out: GateOutput) -> int:
    """Reports (atomically), the verdict shown, one line on a failure; the exit code."""
    import json

    from ..files import write_atomic
    from .reports import exact_junit, exact_markdown

    if req.junit:
        write_atomic(req.junit, exact_junit(verdict))
    if req.markdown:
        write_atomic(req.markdown, exact_markdown(verdict, label))
    if req.out:
        write_atomic(req.out, json.dumps({"verdict": verdict.to_dict(), "baseline": label}, indent=1) + "\n")
    out.exact(verdict, label)
    if verdict.exit_code:
        out.note(f"{verdict.status}: {verdict.summary_line()}")
    return verdict.exit_code


def with_resolution(ref: str, resolution: str) -> str:
    """A zoo ref with the input size given when it names none ('v1:g=3' → 'v1:g=3,resolution=224')."""
    from ..sources import split_source_ref

    if "resolution=" in ref or ref.endswith(".tflite") or split_source_ref(ref) is not None:
        return ref  # a user's own model has its own input shape
    return f"{ref}{',' if ':' in ref else ':'}resolution={resolution}"


def _measure(items: list[ExactItem], req: GateRequest, collected: list[Any], out: GateOutput) -> list[Any]:
    """Export (reusing) and count every (ref, precision, core); every run is stored like a bench run."""
    from ..bench import BenchOptions, run_bench
    from ..devices.kinds import device_uri
    from ..measure import prepare_targets
    from .exact import entry_from_result

    options = BenchOptions(threads=1, runs=3, warmup=2).validate()
    precisions_of: dict[str, list[str]] = {}
    for item in items:
        precisions_of.setdefault(item.ref, []).append(item.precision)
    targets = {ref: {t.precision: t for t in prepare_targets([ref], list(dict.fromkeys(precisions)), progress=out.say,
                                                           weights=req.weights, export=req.export)}
               for ref, precisions in precisions_of.items()}
    out.calibration([t for found in targets.values() for t in found.values()])

    def count(n: int, item: ExactItem) -> list[Any]:
        uri = device_uri(exact_kind(), item.cpu)
        out.say(f"[{n}/{len(items)}] {item.ref} {item.precision} on {uri}")
        report = run_bench(uri, [targets[item.ref][item.precision]], options, db=req.db, collected=collected)
        return [entry_from_result(item.ref, r) for r in report.results]

    # Counts do not depend on what else the host runs, so the entries are counted on every core at once
    # (each is one emulator process); the entries keep the plan's order.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, min(len(items), len(os.sched_getaffinity(0)))))
    try:
        futures = [pool.submit(count, n, item) for n, item in enumerate(items, 1)]
        entries = [entry for future in futures for entry in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an interrupt: nothing new starts; running ones end
    return entries
