"""`mobiledeploy compare`: theory vs measurement — speedups over a baseline, the paper's Table 8 beside ours."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from ..sessions import CompareOutcome, SessionPlan

from .app import ArtifactsRoot, CalibSamples, Calibration, Json, app, print_json
from .console import progress_on_stderr, stdout_console, warn_calibration
from .options import (AcceleratorOpt, AdbServerOpt, BinaryOpt, CpuMaskOpt, DbOpt, DeviceOpt, DispatchLibraryOpt,
                      FullDelegationOpt, ReportOpt, RoundsOpt, RunsOpt, RuntimesOpt, ThreadsOpt, WarmupOpt,
                      PhoneOpt, accelerator_options)
from ..sessions import interrupted_status, resolve_ref, session_plan  # noqa: F401 (the CLI's names)


def split_refs(values: list[str] | None) -> list[str]:
    """--models takes model refs, repeated or separated by ';' or spaces (refs hold commas)."""
    return [ref for value in values or [] for ref in re.split(r"[;\s]+", value) if ref]


@app.command("compare")
def compare_cmd(
    device: DeviceOpt = "local",
    phone: PhoneOpt = None,
    runtimes: RuntimesOpt = None,
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", help="Model refs to compare, e.g. v1:g=3,scale=0.5 (repeat, or separate with ';'). "
        "Default: the suite's models.")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", "-b", help="The model speedups are relative to (default: the suite's).")] = None,
    suite: Annotated[str, typer.Option("--suite", help="A shipped suite name or a suite .json file.")] = "paper-table8",
    resolutions: Annotated[Optional[str], typer.Option("--resolutions", "-r", help="Comma list of HxW (default: the suite's).")] = None,
    formats: Annotated[Optional[str], typer.Option("--formats", help="Comma list of fp32, int8 (default: the suite's).")] = None,
    threads: ThreadsOpt = None,
    rounds: RoundsOpt = None,
    runs: RunsOpt = None,
    warmup: WarmupOpt = None,
    cpu_mask: CpuMaskOpt = "auto",
    benchmark_binary: BinaryOpt = None,
    accelerator: AcceleratorOpt = "cpu",
    require_full_delegation: FullDelegationOpt = False,
    dispatch_library: DispatchLibraryOpt = None,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="Also attribute time per op type and layer (op profiling).")] = False,
    report: ReportOpt = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="A state_dict for the --models (not the baseline) instead of seeded init.")] = None,
    calibration: Calibration = "synthetic",
    calib_samples: CalibSamples = 32,
    out: ArtifactsRoot = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    results: Annotated[Optional[list[str]], typer.Option(
        "--results", help="Judge stored runs instead of measuring: bench --json or results --json files "
        "(repeatable); --models/--baseline/--suite name what to set against what.")] = None,
    arm: Annotated[Optional[str], typer.Option(
        "--arm", help="With several --runtimes: the emulated cores to count every model on as well, comma list "
        "(qemu:CPU; default cortex-a76; 'none': host ms only).")] = None,
    by_device: Annotated[bool, typer.Option(
        "--by-device", help="The speedups side by side per phone (each against the baseline timed on the same phone); "
        "always so when --device names several phones or a farm; with --results, stored runs grouped by phone.")] = False,
    json_out: Json = False,
) -> None:
    """Theory vs measurement: speedups over a baseline, measured in one interleaved session.

    Per model: MACs, median latency, theoretical speedup (MAC ratio), measured speedup with a 95%
    confidence interval, efficiency = measured / theoretical, and the suite's published figures
    (default suite paper-table8: the ShuffleNet paper's Table 8 on a Snapdragon 820).

    Example: mobiledeploy compare --device local --formats fp32 --resolutions 224x224
    Example: mobiledeploy compare --device adb:R58M123ABC --models 'v1:g=3,scale=0.5' --baseline alexnet --json
    Example: mobiledeploy compare --device qemu:cortex-a53 --resolutions 224x224   (Table 8 in exact Arm instructions)
    Example: mobiledeploy compare --device qemu:cortex-a57 --phone sd820 --resolutions 224x224   (+ Table 8 in estimated ms)
    Example: mobiledeploy compare --runtimes litert,onnxruntime --formats fp32 --resolutions 224x224   (both, interleaved)
    Example: mobiledeploy compare --runtimes litert,executorch,onnxruntime --models 'v1:g=3,scale=0.5' -r 64x64 --arm cortex-a76,cortex-a53   (one table)
    Example: mobiledeploy results --json > runs.json && mobiledeploy compare --results runs.json   (stored runs)
    Example: mobiledeploy compare --device adb:R58M123ABC,adb:192.168.1.7:5555 --formats fp32   (per phone, side by side)
    Example: STF_TOKEN=... mobiledeploy compare --device 'stf:https://farm.example/?sdk=>=30&count=3' --formats fp32
    """
    from ..bench import BenchOptions, ExportInputs
    from ..devices import check_options
    from ..devices.kinds import runtimes_for
    from .checks import preflight
    from ..preflight import check_output_dir

    started = time.perf_counter()
    if results and phone:
        from ..errors import ConfigError

        raise ConfigError("--phone estimates a session on a qemu: device; with --results the stored runs show the "
                          "estimates they carry")
    if results:
        return _judge_stored(results, _plan(suite, models, baseline, resolutions, formats, 1), json_out, by_device)
    from .lab import open_lab

    lab = open_lab(device, adb_server)  # several phones, or a farm's: the speedups side by side per phone
    if lab is not None:
        from ..devices.lab import KIND_URI

        device = KIND_URI
    device, rounds, runs, warmup = session_plan(device, rounds, runs, warmup, (3, 20, 3))
    if phone is not None:
        from ..estimate.phones import check_phone

        phone = check_phone(device, phone).name
    plan = replace(_plan(suite, models, baseline, resolutions, formats, rounds), runtimes=runtimes_for(device, runtimes))
    options = BenchOptions(threads=threads or plan.suite.threads, runs=runs, warmup=warmup, cpu_mask=cpu_mask,
                           benchmark_binary=benchmark_binary, phone=phone,
                           **accelerator_options(accelerator, require_full_delegation, dispatch_library)).validate()
    check_options(device, options)
    check_output_dir(report, "--report")
    check_output_dir(out, "--out")
    export = ExportInputs(calibration, calib_samples, out)
    weights_of = {r: weights for r in plan.refs if plan.keys[r] != plan.baseline} if weights else None
    if lab is not None:
        return _compare_on_lab(lab, plan, options, rounds, runs, export, weights_of, report, db, json_out)
    preflight(device, adb_server, db, options.threads, exports=True)
    if len(plan.runtimes) > 1:  # several runtimes: ONE table of them side by side (cli/compare_runtimes.py)
        from .compare_runtimes import compare_runtimes

        return compare_runtimes(plan, device, options, rounds, export, arm, db, adb_server, json_out, split_refs(models))
    from ..sessions import compare_session

    with progress_on_stderr() as progress:
        done = compare_session(plan, device, options, rounds, export, weights_of, per_layer or bool(report), report,
                               adb_server, db, progress=progress, prepared=warn_calibration)
    _finish(done, plan, device, options, rounds, runs, phone, started, per_layer, json_out, report)


def _finish(done: CompareOutcome, plan: SessionPlan, device: str, options: Any, rounds: int, runs: int,
            phone: str | None, started: float, per_layer: bool, json_out: bool, report: Path | None) -> None:
    """Print (and write the report of) a finished compare session, then its warnings and verdict."""
    spec, base_label = plan.suite, plan.baseline_label
    bench, results, rows = done.bench, done.results, done.rows
    meta = {"status": "complete", "device": device, "suite": spec.name, "baseline": base_label,
            "threads": options.threads, "rounds": rounds, "runs per round": runs,
            "paper source": spec.source if plan.paper else "",
            "paper device": spec.reference_device if plan.paper else "",
            "results db": str(bench.db_path) if bench else "", "session": bench.session_id if bench else "",
            "phone": phone or "",
            "elapsed_s": round(time.perf_counter() - started, 1)}
    _show(rows, results, done.attributions, meta, spec if plan.paper else None, per_layer, json_out)
    if report:
        from ..report import write_compare_report

        written = write_compare_report(report, rows, attributions=done.attributions, meta=meta,
                                       title=f"Theory vs measurement on {device}")
        sys.stderr.write(f"mobiledeploy: report written to {written['html']}\n")
    _conclude(rows)


def _compare_on_lab(lab: Any, plan: SessionPlan, options: Any, rounds: int, runs: int, export: Any,
                    weights_of: dict[str, str] | None, report: Path | None, db: str | None, json_out: bool) -> None:
    """compare on every phone of a lab at once (`sessions.lab_compare_session`), printed by `cli/lab.py`."""
    from .lab import compare_lab

    spec = plan.suite
    meta = {"device": lab.describe(), "suite": spec.name, "baseline": plan.baseline_label,
            "threads": options.threads, "rounds": rounds, "runs per round": runs,
            "paper source": spec.source if plan.paper else ""}
    compare_lab(lab, plan, options, rounds, export, weights_of, db, report, json_out, meta)


def _conclude(rows: list[Any]) -> None:
    for line in dict.fromkeys(f"{r.model} {r.precision} {r.resolution}: {r.error}" for r in rows if r.status != "ok"):
        sys.stderr.write(f"mobiledeploy: warning: {line}\n")
    if not any(r.measured_speedup for r in rows if not r.baseline):
        sys.stderr.write("mobiledeploy: error: no model could be compared with the baseline\n")
        raise SystemExit(1)


def _judge_stored(files: list[str], plan: SessionPlan, json_out: bool, by_device: bool = False) -> None:
    """compare --results: the same table from runs already stored (`sessions.judge_stored`)."""
    from ..sessions import judge_stored

    judged = judge_stored(files, plan, by_device)
    spec = plan.suite
    if by_device:
        from .lab import show_stored_by_device

        meta = {"status": "stored runs", "suite": spec.name, "baseline": plan.baseline_label,
                "results files": list(files)}
        return show_stored_by_device(judged.per_phone or [], plan, json_out, meta)
    meta = {"status": "stored runs", "device": ", ".join(judged.devices), "suite": spec.name,
            "baseline": plan.baseline_label, "results files": list(files),
            "paper source": spec.source if plan.paper else ""}
    _show(judged.rows, judged.runs, [], meta, spec if plan.paper else None, False, json_out)
    _conclude(judged.rows)


def _plan(suite: str, models: list[str] | None, baseline: str | None, resolutions: str | None, formats: str | None,
          rounds: int) -> SessionPlan:
    """The suite, the models (keys, labels, published figures), sizes and precisions of one compare session."""
    from ..analysis import parse_resolution
    from ..bench import parse_precisions
    from ..compare import load_suite
    from ..errors import ConfigError
    from ..sessions import plan_compare

    spec = load_suite(suite)
    if rounds < 1:
        raise ConfigError("--rounds must be at least 1")
    plan = plan_compare(spec, split_refs(models) or [m.ref for m in spec.models], baseline or spec.baseline)
    sizes = [parse_resolution(r) for r in (resolutions.split(",") if resolutions else spec.resolutions) if r.strip()]
    if not sizes:
        raise ConfigError("--resolutions needs at least one HxW")
    return replace(plan, sizes=tuple(sizes), precisions=tuple(parse_precisions(formats or ",".join(spec.precisions))))


def _show(rows: list[Any], results: list[Any], attributions: list[Any], meta: dict[str, Any], suite: Any,
          per_layer: bool, json_out: bool) -> None:
    from ..stability import flagged, flagged_line

    if json_out:
        print_json({**{k.replace(" ", "_"): v for k, v in meta.items()}, "rows": [r.to_dict() for r in rows],
                    "unstable_runs": flagged([r for r in results if r.ok]),
                    "attribution": [a.to_dict() for a in attributions]})
        return
    print_compare(rows, meta["baseline"], meta["device"], suite)
    print_estimated(rows, meta["baseline"], suite)
    if unstable := flagged_line(results):
        sys.stdout.write(f"unstable: {unstable}; `mobiledeploy results --json` names them\n")
    if per_layer:
        from .console import print_attribution

        for att in attributions:
            print_attribution(att, top=8)


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _cost(row: Any) -> str:
    if row.unit == "instructions":
        return "—" if row.median_instructions is None else f"{row.median_instructions / 1e6:.2f}M"
    return _ms(row.median_ms)


def _per_mac(row: Any) -> str:
    value = row.extra.get("instructions_per_mac")
    return "—" if value is None else f"{value:.2f}"


def print_compare(rows: list[Any], baseline_label: str, device: str, suite: Any) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    cells = list(dict.fromkeys((r.resolution, r.precision, r.runtime) for r in rows))
    show_paper = any(r.paper_ms for r in rows)
    several = len({r.runtime for r in rows}) > 1
    for res, precision, runtime in cells:
        table = Table(title=f"{res} {precision}{f' {escape(runtime)}' if several else ''} on {escape(device)}: speedup over "
                      f"{escape(baseline_label)}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        in_cell = [r for r in rows if (r.resolution, r.precision, r.runtime) == (res, precision, runtime)]
        counted = any(r.unit == "instructions" for r in in_cell)
        for col in ("model", "MACs", "Arm instr" if counted else "median ms", "instr/MAC" if counted else "GMAC/s", "theoretical", "measured", "95% CI", "efficiency",
                    *(("paper ms", "paper measured", "paper theoretical", "paper eff.") if show_paper else ())):
            table.add_column(col, justify="left" if col == "model" else "right")
        for r in in_cell:
            if r.status != "ok":
                table.add_row(escape(r.model), "—" if not r.macs else f"{r.macs / 1e6:.1f}M",
                              "[red]FAILED[/]", "", "", "", "", "",
                              *((_ms(r.paper_ms), _x(r.paper_measured_speedup), _x(r.paper_theoretical_speedup),
                                 "—" if r.paper_efficiency is None else f"{r.paper_efficiency:.0%}") if show_paper else ()))
                continue
            ci = "—" if not r.measured_speedup_ci else f"[{r.measured_speedup_ci[0]:.2f}, {r.measured_speedup_ci[1]:.2f}]"
            table.add_row(
                escape(r.model) + (" [dim](baseline)[/]" if r.baseline else ""),
                "—" if not r.macs else f"{r.macs / 1e6:.1f}M", _cost(r),
                _per_mac(r) if r.unit == "instructions" else "—" if r.gmacs_per_s is None else f"{r.gmacs_per_s:.2f}",
                _x(r.theoretical_speedup), _x(r.measured_speedup), ci,
                "—" if r.efficiency is None else f"{r.efficiency:.0%}",
                *((_ms(r.paper_ms), _x(r.paper_measured_speedup), _x(r.paper_theoretical_speedup),
                   "—" if r.paper_efficiency is None else f"{r.paper_efficiency:.0%}") if show_paper else ()))
        console.print(table)
    console.print("[dim]theoretical = baseline MACs / MACs; measured = baseline median / median (95% bootstrap CI); "
                  "efficiency = measured / theoretical[/]")
    if any(r.unit == "instructions" for r in rows):
        console.print("[dim]on qemu: devices the cost is exact Arm instructions per inference (aarch64 LiteRT on the "
                      "emulated core), not time; the paper's columns are its phone's milliseconds[/]")
    if suite is not None:
        console.print(f"[dim]paper: {escape(suite.source)}; {escape(suite.reference_device)}[/]")


def print_estimated(rows: list[Any], baseline_label: str, suite: Any) -> None:
    """The estimated milliseconds (a phone profile applied to the counted runs) in tables of their own, beside
    the exact instruction ratio and the paper's ms: never a column of the measured table."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    estimated = [r for r in rows if r.estimated_ms is not None]
    if not estimated:
        return
    console = stdout_console()
    for res, precision, runtime in dict.fromkeys((r.resolution, r.precision, r.runtime) for r in estimated):
        phone = estimated[0].extra.get("estimate_phone_label") or estimated[0].estimate_phone
        table = Table(title=f"{res} {precision} on {escape(str(phone))}: ESTIMATED ms (not measured), single thread; "
                      f"speedup over {escape(baseline_label)}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("model", "estimated ms", "band", "estimated speedup", "instruction ratio",
                    *(("paper ms", "paper speedup") if suite is not None else ())):
            table.add_column(col, justify="left" if col == "model" else "right")
        for r in (r for r in estimated if (r.resolution, r.precision, r.runtime) == (res, precision, runtime)):
            table.add_row(escape(r.model) + (" [dim](baseline)[/]" if r.baseline else ""), _ms(r.estimated_ms),
                          f"±{r.estimated_band_pct:.0f}%", _x(r.estimated_speedup), _x(r.measured_speedup),
                          *((_ms(r.paper_ms), _x(r.paper_measured_speedup)) if suite is not None else ()))
        console.print(table)
    calibration = "; ".join(dict.fromkeys(str(r.estimate_calibration or "") for r in estimated))
    console.print(f"[dim]estimated = the phone profile's timing model on the counted run (llvm-mca cycles per hot "
                  f"block, bounded by memory bandwidth; mobiledeploy.estimate); calibration: {escape(calibration)}; "
                  "instruction ratio = baseline instructions / instructions (exact)[/]")
