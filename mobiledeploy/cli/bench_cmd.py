"""`mobiledeploy bench`: time exported models on this host or a phone, and store every run."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .app import ArtifactsRoot, CalibSamples, Calibration, Json, Resolution, Weights, app, print_json
from .checks import preflight
from .console import count_text, ms_text, progress_on_stderr, stdout_console, warn_calibration
from .options import (AcceleratorOpt, AdbServerOpt, BinaryOpt, RunnerOpt, DbOpt, DeviceOpt, DispatchLibraryOpt, FullDelegationOpt,
                      ModelSelection, PhoneOpt, RuntimeOpt, accelerator_options, model_options)

@app.command("bench")
@model_options(arch_help="Architecture to export and time (see `mobiledeploy models`).")
def bench_cmd(
    device: DeviceOpt = "local",
    phone: PhoneOpt = None,
    runtime: RuntimeOpt = None,
    selection: ModelSelection = ModelSelection(),
    resolution: Resolution = "224",
    weights: Weights = None,
    calibration: Calibration = "synthetic",
    calib_samples: CalibSamples = 32,
    out: ArtifactsRoot = None,
    reparameterize: Annotated[bool, typer.Option("--reparameterize", help="Export and time the deployment form: the "
                              "model's own fuse() / reparameterize() / switch_to_deploy() first (timm's convention), "
                              "recorded with every run.")] = False,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Time this .tflite file instead of exporting "
                                                 "--arch (an .onnx or .pt2 file is exported first).")] = None,
    formats: Annotated[Optional[str], typer.Option(
        "--formats", help="With --arch: which precisions to time, e.g. fp32,int8 (default: all the runtime times).")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Interpreter threads.")] = 1,
    runs: Annotated[Optional[int], typer.Option(
        "--runs", help="Timed runs (at least); default 50, 5 on qemu: devices (their counts repeat exactly).")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs.")] = 5,
    min_secs: Annotated[float, typer.Option("--min-secs", help="Keep timing until at least this many seconds passed.")] = 0.0,
    rounds: Annotated[int, typer.Option("--rounds", help="Repeat all targets, interleaved (A B, then B A …).")] = 1,
    cpu_mask: Annotated[str, typer.Option("--cpu-mask", help="auto (the fastest cores) or a hex CPU mask like f0.")] = "auto",
    benchmark_binary: BinaryOpt = None,
    runner: RunnerOpt = None,
    accelerator: AcceleratorOpt = "cpu",
    require_full_delegation: FullDelegationOpt = False,
    dispatch_library: DispatchLibraryOpt = None,
    keep_remote: Annotated[bool, typer.Option("--keep-remote", help="Leave the run's files on the phone.")] = False,
    op_profiling: Annotated[bool, typer.Option("--op-profiling", help="Also record per-operator times (benchmark_model; executorch: per kernel from its ETDump).")] = False,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    json_out: Json = False,
) -> None:
    """Time fp32/int8 artifacts on a device; print latency, memory and achieved GMAC/s; store every run.

    Example: mobiledeploy bench --device local --arch v1 --g 3
    Example: mobiledeploy bench --device local --runtime onnxruntime --arch v1 --g 3   (model.onnx in ONNX Runtime)
    Example: mobiledeploy bench --device adb:R58M123ABC --arch v1 --g 3 --scale 0.5 --threads 4
    Example: mobiledeploy bench --device qemu:cortex-a53 --arch v1 --g 3 --scale 0.5   (exact Arm instructions)
    Example: mobiledeploy bench --device adb:R58M123ABC --runtime executorch --runner ./executor_runner --arch v1 --g 3
    Example: mobiledeploy bench --device qemu:cortex-a76 --phone pixel4 --arch v1 --g 3 --formats fp32   (+ estimated ms)
    Example: mobiledeploy bench --device local --model-fn mynet.py:build --input-shape 1x3x224x224
    Example: mobiledeploy bench --device qemu:cortex-a76 --arch repvit_m1 --reparameterize --formats fp32
    Example: STF_TOKEN=... mobiledeploy bench --device 'stf:https://farm.example/?abi=arm64-v8a&count=3' --arch v1 --g 3
    """
    from ..artifact_kinds import DEFAULT_PRECISIONS
    from ..bench import BenchOptions, ExportInputs, parse_precisions
    from ..measure import measure
    from ..devices import canonical_uri, check_device
    from ..devices.kinds import kind_of, runtimes_for
    from ..errors import ConfigError
    from ..runtimes import runtime_class
    from ..preflight import check_output_dir

    model, ref = what_to_time(model, selection)
    if rounds < 1:
        raise ConfigError("--rounds must be at least 1")
    from .lab import open_lab

    lab = open_lab(device, adb_server)  # several phones, or a farm's: each timed like one adb device
    if lab is not None:
        from ..devices.lab import KIND_URI

        device = KIND_URI
    kind = kind_of(device)
    device = canonical_uri(device)
    runtimes = runtimes_for(device, runtime)
    if runs is None:
        runs = kind.bench_runs
    if kind.one_thread and threads != 1:
        raise ConfigError(f"{kind.name}: devices count the instructions of one thread: use --threads 1")
    if phone is not None:
        from ..estimate.phones import check_phone

        phone = check_phone(device, phone).name
    bench_options = BenchOptions(threads=threads, runs=runs, warmup=warmup, min_secs=min_secs, cpu_mask=cpu_mask,
                                 benchmark_binary=benchmark_binary, runner=runner, keep_remote=keep_remote,
                                 op_profiling=op_profiling, phone=phone,
                                 **accelerator_options(accelerator, require_full_delegation, dispatch_library)).validate()
    check_device(device, bench_options)
    precisions = parse_precisions(formats or [f for f in DEFAULT_PRECISIONS if any(f in runtime_class(r).artifacts for r in runtimes)])
    check_output_dir(out, "--out")
    if reparameterize and model is not None:
        raise ConfigError(f"--reparameterize applies to a model that is exported first (--arch, --model-fn); {model} is "
                          "exported already")
    inputs = {} if model is not None else {"weights": weights,
                                           "export": ExportInputs(calibration, calib_samples, out, reparameterize)}
    if lab is not None:
        from .lab import bench_lab

        return bench_lab(lab, [model or ref], bench_options, precisions, resolution, runtimes, rounds, db, inputs, json_out)
    preflight(device, adb_server, db, threads, exports=ref is not None)
    with progress_on_stderr() as progress:
        report = measure([model or ref], device, bench_options, precisions=precisions, resolution=resolution, runtimes=runtimes,
                         rounds=rounds, db=db, adb_server=adb_server, progress=progress, prepared=warn_calibration,
                         **inputs)
    if json_out:
        print_json({"device": device, "db": str(report.db_path), "session_id": report.session_id,
                    "results": [_json_item(r) for r in report.results]})
    else:
        print_results(report.results, str(report.db_path))
    for line in _failure_lines(report):
        sys.stderr.write(f"mobiledeploy: error: {line}\n")
    if not report.ok:
        raise SystemExit(report.exit_code)


def what_to_time(model: str | None, selection: ModelSelection) -> tuple[str | None, str | None]:
    """(the .tflite file to time, the model ref to export first): one of them. `--model` with an .onnx or .pt2
    file means `--onnx` / `--exported-program`."""
    from dataclasses import replace

    from ..errors import ConfigError

    if model is not None and model.lower().endswith(".onnx") and selection.onnx is None:
        selection, model = replace(selection, onnx=model), None
    elif model is not None and model.lower().endswith(".pt2") and selection.exported_program is None:
        selection, model = replace(selection, exported_program=model), None
    given = (selection.arch, selection.model_fn, selection.onnx, selection.exported_program)
    if model is not None:
        if any(v is not None for v in given):
            raise ConfigError("give either --model FILE.tflite, or a model to export (--arch, --model-fn, --onnx, "
                              "--exported-program)")
        return model, None
    if all(v is None for v in given):
        raise ConfigError("give --model FILE.tflite to time, or a model to export first: --arch NAME, "
                          "--model-fn FILE.py:NAME, --onnx FILE.onnx or --exported-program FILE.pt2")
    name, config = selection.choice()
    label = ",".join(f"{k}={v}" for k, v in config.items())
    return None, f"{name}:{label}"


def _json_item(result: Any) -> dict[str, Any]:
    item = result.to_dict()
    if item.get("status") == "ok":
        item.pop("error", None)
    return item


def _failure_lines(report: Any) -> list[str]:
    """One line per distinct failure: a lost device fails every target the same way, said once."""
    lines: dict[str, None] = {}
    for r in report.results:
        message = r.error or "failed"
        if r.ok or message.startswith("not run:"):
            continue
        lines[message if message == report.device_error else f"{r.model} {r.precision}: {message}"] = None
    return list(lines)


def print_warnings(console: Any, results: list[Any], multi_round: bool = False) -> None:
    """One line per stability warning (`mobiledeploy.stability`), then what to do about them."""
    from rich.markup import escape

    from ..stability import assess

    lines = [f"[yellow]unstable:[/] {escape(r.model)} {escape(r.precision)}"
             + (f" (round {r.round})" if multi_round else "") + f": {escape(w.message)}"
             for r in results for w in assess(r)]
    for line in lines:
        console.print(line)
    if lines:
        console.print("[dim]re-run on a quiet machine, or compare models with --rounds (interleaved) / "
                      "`mobiledeploy compare`, which cancel slow drift[/]")


def delegation_text(observed: dict[str, Any]) -> str:
    """'1 partition' / '7 partitions; own kernels: AVERAGE_POOL_2D×3, RELU×3' from a run's delegation;
    'GPU 118/130, CPU 12' for a run that asked for an accelerator (benchmark_model on a phone)."""
    d = observed.get("delegation") or {}
    if not d:
        return "—"
    if "accelerator" in d:
        return where_text(d)
    text = f"{d.get('partitions', 0)} partition" + ("s" if d.get("partitions") != 1 else "")
    left = d.get("not_delegated") or {}
    return text + ("; own kernels: " + ", ".join(f"{op}×{n}" for op, n in left.items()) if left else "")


def where_text(d: dict[str, Any]) -> str:
    """What ran where: 'GPU 118/130, CPU 12' (delegate's unit, its nodes of all, nodes left on the CPU)."""
    asked = str(d.get("accelerator") or "cpu").upper()
    if not d.get("nodes"):
        return f"{asked}: no delegation logged"
    unit = "XNNPACK" if "xnnpack" in str(d.get("delegate", "")).lower() else asked
    text = f"{unit} {d['delegated_nodes']}/{d['nodes']}, CPU {d['nodes'] - d['delegated_nodes']}"
    left = d.get("not_delegated") or {}
    return text + (" (" + ", ".join(f"{op}×{n}" for op, n in left.items()) + ")" if left else "")


def print_counts(results: list[Any], db_path: str) -> None:
    """The table of an emulated Arm core: exact instructions per inference, never milliseconds."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"{escape(results[0].device)}: Arm instructions per inference (exact, counted by QEMU)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("model", "precision", "", "instructions", "spread", "init", "first", "MACs", "instr/MAC", "XNNPACK"):
        table.add_column(col, justify="left" if col in ("model", "precision", "XNNPACK") else "right", overflow="fold",
                         no_wrap=col == "precision")
    for r in results:
        counts = r.instruction_counts or []
        spread = "—" if not counts else f"{max(counts) - min(counts):,}"
        per_mac = "—" if not (r.instructions and r.macs) else f"{r.instructions / r.macs:.3f}"
        table.add_row(escape(r.model), escape(r.precision), "[green]ok[/]" if r.ok else "[red]FAIL[/]",
                      count_text(r.instructions), spread, count_text(r.init_instructions), count_text(r.first_instructions),
                      "—" if not r.macs else f"{r.macs / 1e6:.1f}M", per_mac, escape(delegation_text(r.observed)))
    console.print(table)
    print_estimates(console, results)
    console.print(f"[dim]stored in {escape(db_path)}; spread = max − min over the timed runs (0 = exact repeat); "
                  "wall time under emulation is not a latency and is not shown[/]")


def print_estimates(console: Any, results: list[Any]) -> None:
    """Estimated ms (a phone profile applied to the counted run), in a table of their own, never beside measured ms."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    estimated = [r for r in results if r.ok and r.observed.get("estimate")]
    if not estimated:
        return
    first = estimated[0].observed["estimate"]
    table = Table(title=f"ESTIMATED ms on {escape(first['phone_label'])} ({first['clock_ghz']} GHz, single thread; "
                  "not measured)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("model", "precision", "estimated ms", "band", "memory-bound", "coverage", "calibration"):
        table.add_column(col, justify="left" if col in ("model", "precision", "calibration") else "right",
                         no_wrap=col == "precision")
    for r in estimated:
        e = r.observed["estimate"]
        table.add_row(escape(r.model), escape(r.precision), f"~{e['ms']:.1f}", f"{e['low_ms']:.1f}–{e['high_ms']:.1f}",
                      f"{e['memory_bound_cycles'] / e['cycles'] * e['cycle_scale']:.0%}" if e["cycles"] else "—",
                      f"{e['coverage']:.1%}", escape(str(e["calibration"])))
    console.print(table)
    console.print("[dim]estimate = llvm-mca cycles per hot block x executions, bounded by the phone's bandwidth for "
                  "simulated cache misses, / clock; leaves out " + escape(", ".join(first["leaves_out"])) + "[/]")


def print_results(results: list[Any], db_path: str) -> None:
    if results and all(r.unit == "instructions" for r in results):
        print_counts(results, db_path)
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    multi_round = len({r.round for r in results}) > 1
    table = Table(title=f"{escape(results[0].device) if results else ''}: latency in ms", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # 17 columns: one space between
    where = any("accelerator" in (r.observed.get("delegation") or {}) for r in results)
    columns = ["model", "precision", "runtime", *(["round"] if multi_round else []), "", "median", "p90", "mean", "std", "CV",
               "min", "init", "first", "mem MB", "MACs", "GMAC/s", *(["ran on"] if where else [])]
    for col in columns:
        left = col in ("model", "precision", "runtime", "ran on")
        table.add_column(col, justify="left" if left else "right", overflow="fold", no_wrap=col == "precision")
    for r in results:
        memory = r.peak_memory_mb if r.peak_memory_mb is not None else r.memory_delta_mb
        memory_text = "—" if memory is None else (f"{memory:.1f}" if r.peak_memory_mb is not None else f"Δ{memory:.1f}")
        table.add_row(
            escape(r.model), escape(r.precision), escape(r.runtime or "—"),
            *([str(r.round)] if multi_round else []),
            "[green]ok[/]" if r.ok else "[red]FAIL[/]", ms_text(r.median_ms), ms_text(r.p90_ms), ms_text(r.mean_ms),
            ms_text(r.std_ms), "—" if r.cv is None else f"{r.cv:.1%}", ms_text(r.min_ms), ms_text(r.init_ms),
            ms_text(r.first_ms), memory_text, "—" if not r.macs else f"{r.macs / 1e6:.1f}M",
            "—" if r.gmacs_per_s is None else f"{r.gmacs_per_s:.2f}",
            *([escape(delegation_text(r.observed))] if where else []))
    console.print(table)
    print_warnings(console, results, multi_round)
    if any(r.ok and r.p90_ms is None for r in results):
        console.print("[dim]p90 needs per-run times, which benchmark_model does not print (its p95 is in --json "
                      "and the store).[/]")
    console.print(f"[dim]stored in {escape(db_path)}; mem Δ = resident-memory growth while timing[/]")
