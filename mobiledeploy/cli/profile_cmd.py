"""`mobiledeploy profile`: where one model's time goes, per op type and layer, vs its mult-adds."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .app import Alpha, Arch, Groups, Json, Options, Scale, app, model_config, print_json
from .compare_cmd import AdbServerOpt, BinaryOpt, CpuMaskOpt, DbOpt, DeviceOpt, progress_on_stderr, stdout_console


@app.command("profile")
def profile_cmd(
    arch: Arch,
    device: DeviceOpt = "local",
    g: Groups = None,
    scale: Scale = None,
    alpha: Alpha = None,
    options: Options = None,
    resolution: Annotated[str, typer.Option("--resolution", "-r", help="Input size: N or HxW.")] = "224",
    format: Annotated[str, typer.Option("--format", help="fp32 or int8 (on local the fp32 ONNX model is profiled).")] = "fp32",
    threads: Annotated[int, typer.Option("--threads", help="Threads.")] = 1,
    runs: Annotated[int, typer.Option("--runs", help="Profiled runs (the op times are their medians / averages).")] = 20,
    top: Annotated[int, typer.Option("--top", help="Layers to list, worst gap first.")] = 10,
    cpu_mask: CpuMaskOpt = "auto",
    benchmark_binary: BinaryOpt = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    json_out: Json = False,
) -> None:
    """Per-op attribution: share of time vs share of MACs per op type and layer, achieved GMAC/s and GB/s.

    On a phone, benchmark_model's op profiling (XNNPACK ops are typed, not named, so by op type);
    on local, ONNX Runtime's profiler on the exported model.onnx (1 thread), joined layer by layer.

    Example: mobiledeploy profile --device local --arch v1 --g 3 --scale 0.5
    """
    from ..analysis import parse_resolution
    from ..bench import BenchOptions, prepare_targets
    from ..devices import parse_device_uri
    from ..errors import ConfigError
    from ..registry import config_slug, parse_model_ref
    from .compare_cmd import profile_target
    from .preflight import check_db, check_device, check_threads

    parse_device_uri(device)
    fmt = format.strip().lower()
    if fmt not in ("fp32", "int8"):
        raise ConfigError(f"--format takes fp32 or int8 (got {format!r})")
    if runs < 1 or top < 1:
        raise ConfigError("--runs and --top must be at least 1")
    size = parse_resolution(resolution)
    label = ",".join(f"{k}={v}" for k, v in model_config(g, scale, alpha, options).items())
    name, config = parse_model_ref(f"{arch}:{label}")
    bench_options = BenchOptions(threads=threads, runs=runs, warmup=3, cpu_mask=cpu_mask,
                                 benchmark_binary=benchmark_binary).validate()
    if warning := check_threads(threads, device):
        sys.stderr.write(f"mobiledeploy: warning: {warning}\n")
    if device.strip().startswith("adb:"):  # a phone's op profile is a stored run: its database and the phone, first
        check_db(db)
        check_device(device, adb_server)
    with progress_on_stderr() as progress:
        (target,) = prepare_targets([f"{name}:{label}"], (fmt,), size, progress)
        progress(f"op profile {target.name} on {device}")
        attribution = profile_target(device, target, name, config, config_slug(name, config), bench_options,
                                     adb_server, db, runs=runs)
    if json_out:
        print_json({"device": device, **attribution.to_dict()})
        return
    print_attribution(attribution, top=top)


def print_attribution(att: Any, top: int = 10) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    title = (f"{escape(att.model)} ({att.format}): share of time vs share of MACs per op type — "
             f"{att.time_ms:.2f} ms of op time")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("op type", "layers", "ops", "time", "MACs", "memory", "time − MACs", "GMAC/s", "GB/s", "MAC/byte"):
        table.add_column(col, justify="left" if col == "op type" else "right")
    for c in att.categories:
        if not (c.time_ms or c.macs):
            continue
        table.add_row(escape(c.label), str(c.layers), str(c.ops), f"{c.time_share:.1%}", f"{c.mac_share:.1%}",
                      f"{c.memory_share:.1%}", f"{c.gap * 100:+.1f} pt",
                      "—" if c.gmacs_per_s is None else f"{c.gmacs_per_s:.2f}",
                      "—" if c.gbytes_per_s is None else f"{c.gbytes_per_s:.2f}",
                      "—" if c.macs_per_byte is None else f"{c.macs_per_byte:.2f}")
    console.print(table)
    if att.layers:
        layers = Table(title=f"layers whose share of time most exceeds their share of MACs (top {top})",
                       title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("layer", "op type", "ms", "time", "MACs", "time − MACs", "GMAC/s", "GB/s"):
            layers.add_column(col, justify="left" if col in ("layer", "op type") else "right")
        for r in att.layers[:top]:
            layers.add_row(escape(r.name), r.category, f"{r.time_ms:.3f}", f"{r.time_share:.1%}", f"{r.mac_share:.1%}",
                           f"{r.gap * 100:+.1f} pt", "—" if r.gmacs_per_s is None else f"{r.gmacs_per_s:.2f}",
                           "—" if r.gbytes_per_s is None else f"{r.gbytes_per_s:.2f}")
        console.print(layers)
    console.print(f"[dim]times: {escape(att.source)}; memory = ShuffleNet v2 MAC x {att.bytes_per_element} "
                  f"byte(s)/element; low MAC/byte = memory-bound[/]")
    for note in att.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
