"""`mobiledeploy guidelines`: ShuffleNet v2's guidelines G1–G4 as micro-benchmarks on your device."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from ..sessions import GuidelinesPlan

from .app import ArtifactsRoot, CalibSamples, Calibration, Json, app, print_json
from .console import progress_on_stderr, stdout_console, warn_calibration
from .options import AdbServerOpt, BinaryOpt, CpuMaskOpt, DbOpt, DeviceOpt, PhoneOpt, ReportOpt


@app.command("guidelines")
def guidelines_cmd(
    device: DeviceOpt = "local",
    phone: PhoneOpt = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Comma list of guidelines, e.g. G1,G3 (default: all four).")] = None,
    resolution: Annotated[str, typer.Option("--resolution", "-r", help="Input size of the micro-nets (the paper: 56).")] = "56",
    formats: Annotated[str, typer.Option("--formats", help="Comma list of fp32, int8.")] = "fp32",
    threads: Annotated[int, typer.Option("--threads", help="Interpreter threads.")] = 1,
    rounds: Annotated[Optional[int], typer.Option("--rounds", help="Interleaved rounds over every variant (default 3; 1 on qemu:).")] = None,
    runs: Annotated[Optional[int], typer.Option("--runs", help="Timed runs per variant per round (default 30; 3 on qemu:).")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Untimed warm-up runs per variant per round (default 3; 1 on qemu:).")] = None,
    min_effect: Annotated[float, typer.Option("--min-effect", help="Smallest speed difference that counts (0.03 = 3%).")] = 0.03,
    cpu_mask: CpuMaskOpt = "auto",
    benchmark_binary: BinaryOpt = None,
    report: ReportOpt = None,
    calibration: Calibration = "synthetic",
    calib_samples: CalibSamples = 32,
    out: ArtifactsRoot = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    json_out: Json = False,
) -> None:
    """Micro-benchmark ShuffleNet v2's four guidelines at fixed MACs and say whether this device agrees.

    G1 channel ratio of 1x1 convs, G2 group count, G3 fragmentation (series / parallel), G4 ReLU and
    shortcut. Each variant is a registered model (family microbench), exported once and cached.

    Example: mobiledeploy guidelines --device local
    Example: mobiledeploy guidelines --device adb:R58M123ABC --only G2,G4 --json
    Example: mobiledeploy guidelines --device qemu:cortex-a53 --only G1,G3   (exact Arm instructions)
    Example: mobiledeploy guidelines --device qemu:cortex-a53 --phone rpi3bplus --only G4   (+ estimated ms)
    """
    plan = _plan(device, only, resolution, formats, threads, rounds, runs, warmup, min_effect, cpu_mask,
                 benchmark_binary, report, out, adb_server, db, phone)
    from ..bench import ExportInputs
    from ..sessions import guidelines_session

    with progress_on_stderr() as progress:
        verdicts, failures, db_path = guidelines_session(plan, ExportInputs(calibration, calib_samples, out), report,
                                                         adb_server, db, progress=progress, prepared=warn_calibration)
    _show(plan, verdicts, failures, db_path, report, json_out)


def _plan(device: str, only: str | None, resolution: str, formats: str, threads: int, rounds: int | None,
          runs: int | None, warmup: int | None, min_effect: float, cpu_mask: str, benchmark_binary: str | None,
          report: str | None, out: str | None, adb_server: str | None, db: str | None,
          phone: str | None = None) -> GuidelinesPlan:
    """Every check before any export: the guidelines, the sizes, the session's rounds, the paths and the device."""
    from ..analysis import parse_resolution
    from ..bench import BenchOptions, parse_precisions
    from ..errors import ConfigError
    from ..guidelines import PAPER_PLATFORMS, get_guidelines
    from .checks import preflight
    from ..sessions import GuidelinesPlan, resolve_ref, session_plan
    from ..preflight import check_output_dir

    device, rounds, runs, warmup = session_plan(device, rounds, runs, warmup, (3, 30, 3))
    if phone is not None:
        from ..estimate.phones import check_phone

        phone = check_phone(device, phone).name
    chosen = get_guidelines(only)
    if rounds < 1:
        raise ConfigError("--rounds must be at least 1")
    if not 0 <= min_effect < 1:
        raise ConfigError("--min-effect must be in [0, 1)")
    size = parse_resolution(resolution)
    options = BenchOptions(threads=threads, runs=runs, warmup=warmup, cpu_mask=cpu_mask,
                           benchmark_binary=benchmark_binary, phone=phone).validate()
    refs = [v.ref for g in chosen for v in g.variants]
    check_output_dir(report, "--report")
    check_output_dir(out, "--out")
    preflight(device, adb_server, db, threads, exports=True)
    meta = {"status": "complete", "device": device, "resolution": f"{size[0]}x{size[1]}", "threads": threads,
            "rounds": rounds, "runs per round": runs, "min effect": min_effect, "paper platforms": PAPER_PLATFORMS,
            "phone": phone or ""}
    return GuidelinesPlan(device=device, chosen=tuple(chosen), size=size, precisions=parse_precisions(formats),
                          options=options, rounds=rounds, refs=tuple(refs), keys={ref: resolve_ref(ref)[2] for ref in refs},
                          min_effect=min_effect, meta=meta)


def _show(plan: GuidelinesPlan, verdicts: list[Any], failures: list[dict[str, Any]], db_path: str,
          report: str | None, json_out: bool) -> None:
    """The table or JSON, the report, one warning per failed export; exit 1 when nothing could be judged."""
    meta = {**plan.meta, "results db": db_path}
    if json_out:
        print_json({**{k.replace(" ", "_"): v for k, v in meta.items()}, "guidelines": [v.to_dict() for v in verdicts],
                    "export_failures": failures})
    else:
        print_guidelines(verdicts, plan.device)
    if report:
        from ..report import write_guidelines_report

        written = write_guidelines_report(report, verdicts, meta=meta)
        sys.stderr.write(f"mobiledeploy: report written to {written['html']}\n")
    for failure in failures:
        sys.stderr.write(f"mobiledeploy: warning: {failure['key']} {failure['precision']}: {failure['error']}\n")
    if all(v.verdict == "no data" for v in verdicts):
        sys.stderr.write("mobiledeploy: error: no guideline could be measured\n")
        raise SystemExit(1)


def print_guidelines(verdicts: list[Any], device: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    colour = {"agrees": "green", "disagrees": "red", "partly": "yellow"}
    for v in verdicts:
        mark = colour.get(v.verdict, "dim")
        table = Table(title=f"{v.id} ({v.precision}) {escape(v.title)}: [{mark}]{v.verdict}[/]",
                      title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, caption=escape(f"paper: {v.claim}"),
                      caption_justify="left")
        counted = any(r.median_instructions is not None for r in v.variants)
        for col in ("variant", "MACs", "Arm instr" if counted else "median ms", "relative speed", "per MAC", "95% CI (per MAC)", "paper"):
            table.add_column(col, justify="left" if col in ("variant", "paper") else "right")
        for r in v.variants:
            if r.status != "ok":
                table.add_row(escape(r.label), "—" if not r.macs else f"{r.macs / 1e6:.1f}M", "[red]FAILED[/]", "", "",
                              "", escape(r.paper))
                continue
            ci = r.relative_throughput_ci or r.relative_speed_ci
            table.add_row(escape(r.label), "—" if not r.macs else f"{r.macs / 1e6:.1f}M",
                          f"{r.median_instructions / 1e6:.3f}M" if counted else f"{r.median_ms:.3f}",
                          "—" if r.relative_speed is None else f"{r.relative_speed:.2f}x",
                          "—" if r.relative_throughput is None else f"{r.relative_throughput:.2f}x",
                          "—" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]", escape(r.paper))
        console.print(table)
        print_estimated(console, v)
        console.print(f"  {escape(v.summary)}\n")
    console.print(f"[dim]relative speed = reference median / variant median (> 1: faster than the first variant); "
                  f"per MAC scales it by the variants' MACs ratio. Device: {escape(device)}[/]")


def print_estimated(console: Any, verdict: Any) -> None:
    """A guideline's estimated ms (--phone on a qemu: device) in a table of its own: estimates, not measured, and
    not what decided the verdict."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    rows = [r for r in verdict.variants if r.estimated_ms is not None]
    if not rows:
        return
    table = Table(title=f"  {verdict.id} ESTIMATED ms (not measured; the verdict is on the counted figures)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("variant", "estimated ms", "band", "estimated relative speed"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(escape(r.label), f"{r.estimated_ms:.3f}", f"±{r.estimated_band_pct:.0f}%",
                      "—" if r.estimated_relative_speed is None else f"{r.estimated_relative_speed:.2f}x")
    console.print(table)
