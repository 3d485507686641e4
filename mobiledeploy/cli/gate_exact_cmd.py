"""`mobiledeploy gate` on qemu: devices: exact Arm instruction counts against a committed baseline."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .app import print_json

#: the exact gate's threshold when none is given: counts repeat to ~1e-4, so 1% is far above noise
EXACT_DEFAULT_REGRESSION = "1%"


def wants_exact(baseline: str, device: str | None, update: bool) -> bool:
    """An instruction baseline file, or a new baseline recorded on qemu: devices."""
    from ..gate_exact import is_exact_baseline

    if Path(baseline).is_file():
        return is_exact_baseline(baseline)
    from ..devices.kinds import kind_of

    return update and bool(device) and all(kind_of(d).exact for d in (device or "").split(","))


def run_exact_gate(*, baseline: str, device: str | None, max_regression: str | None, update: bool,
                   models: list[str] | None, formats: str, resolution: str, db: str | None, junit: str | None,
                   markdown: str | None, out: str | None, json_out: bool, weights: str | None = None,
                   export: Any = None, collected: list[Any] | None = None, allow_outside_refs: bool = False) -> None:
    """Count (or record) every entry; `weights` and `export` are the gated models' export inputs, as `bench`
    takes them; `collected` receives each run as it ends (an interrupted gate reports them). The baseline's
    own file refs must lie in its repository unless `allow_outside_refs` (`baseline_refs`)."""
    from ..files import write_atomic
    from ..baseline_refs import check_baseline_refs
    from ..bench import parse_formats
    from ..devices import check_device, parse_device_uri
    from ..devices.kinds import device_uri, kind_of
    from ..errors import ConfigError
    from ..gate import Threshold
    from ..gate_exact import baseline_document, judge_exact, load_exact, merged_entries
    from ..results import git_commit
    from .preflight import check_db, check_output_file

    limit = Threshold.parse(max_regression or EXACT_DEFAULT_REGRESSION).fraction
    if update:
        check_output_file(baseline, "--baseline")  # where the counts will go: before anything is counted
    old = load_exact(baseline) if Path(baseline).is_file() else []
    if any(not kind_of(d).exact for d in (device or "").split(",") if d.strip()):
        raise ConfigError("an instruction baseline is judged on qemu:CPU devices only")
    cpus = [parse_device_uri(d)[1] for d in device.split(",") if d.strip()] if device else None
    if models and not update:
        raise ConfigError("--model sets the models of a new baseline: use it with --update-baseline")
    if models:
        fmts = parse_formats(formats)
        plan = [(_with_resolution(m, resolution), f, c) for m in models for f in fmts for c in (cpus or ["cortex-a76"])]
    elif old:
        plan = [(e.ref, e.format, e.cpu) for e in old if cpus is None or e.cpu in cpus]
        check_baseline_refs([ref for ref, _, _ in plan], baseline, allow_outside_refs)
    else:
        raise ConfigError(f"no instruction baseline at {baseline}: record one with --update-baseline --device "
                          "qemu:cortex-a76 --model REF")
    for cpu in dict.fromkeys(c for _, _, c in plan):
        check_device(device_uri("qemu", cpu))
    check_db(db)  # where the runs will go: before any export
    entries = _measure(plan, db, weights=weights, export=export, collected=collected)
    if update:
        failed = [e for e in entries if e.error]
        if failed:
            raise ConfigError(f"not writing {baseline}: {failed[0].key} failed: {failed[0].error}")
        written = merged_entries(old, entries)  # what was not measured now (another core, model) stays
        write_atomic(baseline, baseline_document(written, limit, git_commit()))
        kept = len(written) - len(entries)
        message = (f"wrote instruction baseline {baseline} ({len(entries)} artifact(s) measured"
                   + (f", {kept} kept as recorded" if kept else "") + ")")
        _status_reports("baseline written", message, device or "qemu:cortex-a76", junit=junit, markdown=markdown)
        sys.stderr.write(f"mobiledeploy: {message}\n")
        return
    judged = old if not cpus else [e for e in old if e.cpu in cpus]
    finish_exact(judge_exact(judged, entries, limit), baseline, junit=junit, markdown=markdown, out=out,
                 json_out=json_out)


def exact_devices(baseline: str) -> str:
    """The qemu: devices an instruction baseline's entries were counted on ('qemu:cortex-a76,qemu:cortex-a53'),
    for its reports; 'qemu' when it cannot be read (its own error says why)."""
    from ..devices.kinds import device_uri
    from ..errors import MobiledeployError
    from ..gate_exact import load_exact

    try:
        cpus = dict.fromkeys(e.cpu for e in load_exact(baseline))
    except MobiledeployError:
        return "qemu"
    return ",".join(device_uri("qemu", c) for c in cpus) or "qemu"


def _status_reports(status: str, message: str, device: str, *, junit: str | None, markdown: str | None) -> None:
    """The JUnit and Markdown reports of a gate that recorded instead of judging (exit 0), as the wall-clock
    gate writes them."""
    from ..files import write_atomic
    from ..gate import INSTRUCTIONS, status_junit, status_markdown

    if junit:
        write_atomic(junit, status_junit(status, device, message))
    if markdown:
        write_atomic(markdown, status_markdown(status, device, message, INSTRUCTIONS))


def finish_exact(verdict: Any, label: str, *, junit: str | None, markdown: str | None, out: str | None,
                 json_out: bool) -> None:
    """Reports (atomically), the table or JSON, one line on a failure, and the exit code."""
    import json

    from ..files import write_atomic
    from ..gate_exact import exact_junit, exact_markdown

    if junit:
        write_atomic(junit, exact_junit(verdict))
    if markdown:
        write_atomic(markdown, exact_markdown(verdict, label))
    if out:
        write_atomic(out, json.dumps({"verdict": verdict.to_dict(), "baseline": label}, indent=1) + "\n")
    if json_out:
        print_json(verdict.to_dict())
    else:
        _print(verdict, label)
    if verdict.exit_code:
        sys.stderr.write(f"mobiledeploy: {verdict.status}: {verdict.summary_line()}\n")
        raise SystemExit(verdict.exit_code)


def gate_progress(message: str) -> None:
    """A gate's progress: one line on stderr, also what an interrupt names as interrupted."""
    from .app import set_activity

    set_activity(message)
    sys.stderr.write(f"mobiledeploy: gate: {message}\n")


def _with_resolution(ref: str, resolution: str) -> str:
    from ..sources import split_source_ref

    if "resolution=" in ref or ref.endswith(".tflite") or split_source_ref(ref) is not None:
        return ref  # a user's own model has its own input shape
    return f"{ref}{',' if ':' in ref else ':'}resolution={resolution}"


def _measure(plan: list[tuple[str, str, str]], db: str | None, *, weights: str | None = None, export: Any = None,
             collected: list[Any] | None = None) -> list[Any]:
    """Export (reusing) and count every (ref, format, core); every run is stored like a bench run."""
    from ..bench import BenchOptions, run_bench
    from ..devices.kinds import device_uri
    from ..measure import prepare_targets
    from ..gate_exact import entry_from_result
    from .console import warn_calibration

    options = BenchOptions(threads=1, runs=3, warmup=2).validate()
    say = gate_progress
    formats: dict[str, list[str]] = {}
    for ref, fmt, _ in plan:
        formats.setdefault(ref, []).append(fmt)
    targets = {ref: {t.format: t for t in prepare_targets([ref], list(dict.fromkeys(fmts)), progress=say,
                                                           weights=weights, export=export)}
               for ref, fmts in formats.items()}
    warn_calibration([t for found in targets.values() for t in found.values()])

    def count(n: int, ref: str, fmt: str, cpu: str) -> list[Any]:
        say(f"[{n}/{len(plan)}] {ref} {fmt} on qemu:{cpu}")
        report = run_bench(device_uri("qemu", cpu), [targets[ref][fmt]], options, db=db, collected=collected)
        return [entry_from_result(ref, r) for r in report.results]

    # Counts do not depend on what else the host runs, so the entries are counted on every core at once
    # (each is one emulator process); the entries keep the plan's order.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, min(len(plan), len(os.sched_getaffinity(0)))))
    try:
        futures = [pool.submit(count, n, *item) for n, item in enumerate(plan, 1)]
        entries = [entry for future in futures for entry in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an interrupt: nothing new starts; running ones end
    return entries


def _print(verdict: Any, baseline: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .console import stdout_console

    console = stdout_console()
    table = Table(title=f"Arm instruction gate against {escape(baseline)} (exact counts, +{verdict.max_regression * 100:g}% allowed)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("model", "format", "core", "baseline", "candidate", "change", "verdict"):
        table.add_column(col, justify="left" if col in ("model", "format", "core", "verdict") else "right")
    colour = {"regression": "red", "improvement": "green", "unchanged": "green"}
    for e in verdict.entries:
        fmt = lambda x: "—" if x is None else f"{x / 1e6:.4f}M"  # noqa: E731
        table.add_row(escape(e.ref), e.format, e.cpu, fmt(e.baseline), fmt(e.candidate),
                      "—" if e.ratio is None else f"{(e.ratio - 1) * 100:+.3f}%",
                      f"[{colour.get(e.status, 'yellow')}]{e.status}[/]")
    console.print(table)
    console.print(verdict.summary_line())
