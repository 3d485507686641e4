"""`mobiledeploy profile`: where one model's time goes, per op type and layer, vs its mult-adds."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from .app import Json, app, print_json
from .console import print_attribution, progress_on_stderr, stdout_console
from .options import (AcceleratorOpt, AdbServerOpt, BinaryOpt, CpuMaskOpt, DbOpt, DeviceOpt, DispatchLibraryOpt,
                      FullDelegationOpt, ModelSelection, PhoneOpt, accelerator_options, model_options)


@app.command("profile")
@model_options()
def profile_cmd(
    selection: ModelSelection,
    device: DeviceOpt = "local",
    phone: PhoneOpt = None,
    resolution: Annotated[str, typer.Option("--resolution", "-r", help="Input size: N or HxW.")] = "224",
    format: Annotated[str, typer.Option("--format", help="fp32 or int8 (on local the fp32 ONNX model is profiled).")] = "fp32",
    runtime: Annotated[str, typer.Option("--runtime", help="litert (the .tflite) or executorch (the .pte: its ETDump "
                                         "on local, exact instructions per function on qemu:CPU).")] = "litert",
    threads: Annotated[int, typer.Option("--threads", help="Threads.")] = 1,
    runs: Annotated[int, typer.Option("--runs", help="Profiled runs (the op times are their medians / averages).")] = 20,
    top: Annotated[int, typer.Option("--top", help="Layers to list, worst gap first.")] = 10,
    cpu_mask: CpuMaskOpt = "auto",
    benchmark_binary: BinaryOpt = None,
    accelerator: AcceleratorOpt = "cpu",
    require_full_delegation: FullDelegationOpt = False,
    dispatch_library: DispatchLibraryOpt = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    json_out: Json = False,
) -> None:
    """Per-op attribution: share of time vs share of MACs per op type and layer, achieved GMAC/s and GB/s.

    On a phone, benchmark_model's op profiling (XNNPACK ops are typed, not named, so by op type);
    on local, ONNX Runtime's profiler on the exported model.onnx (1 thread), joined layer by layer;
    on qemu:CPU, exact Arm instructions per function (XNNPACK micro-kernels, TFLite's own kernels) and
    kernel kind, beside each kind's share of the mult-adds.

    Example: mobiledeploy profile --device local --arch v1 --g 3 --scale 0.5
    Example: mobiledeploy profile --device qemu:cortex-a76 --arch v1 --g 3 --scale 0.5 --format int8
    Example: mobiledeploy profile --device qemu:cortex-a53 --phone rpi3bplus --arch v1 --g 3   (+ estimated ms per kind)
    Example: mobiledeploy profile --device local --onnx mynet.onnx
    Example: mobiledeploy profile --device qemu:cortex-a76 --runtime executorch --arch v1 --g 3 --scale 0.5 -r 64
    Example: STF_TOKEN=... mobiledeploy profile --device 'stf:https://farm.example/?abi=arm64-v8a' --arch v1 --g 3
    """
    from ..analysis import parse_resolution
    from ..bench import BenchOptions
    from ..devices import canonical_uri
    from ..devices import check_device as check_emulated
    from ..devices.kinds import kind_of
    from ..errors import ConfigError
    from ..profile_session import ProfileRequest
    from ..registry import parse_model_ref
    from .lab import open_lab

    lab = open_lab(device, adb_server)  # several phones, or a farm's: each profiled at once, printed in turn
    if lab is not None:
        from ..devices.lab import KIND_URI

        device = KIND_URI
    device = canonical_uri(device)
    check_emulated(device)  # a qemu: core's environment, before any export
    precision = format.strip().lower()
    if precision not in ("fp32", "int8"):
        raise ConfigError(f"--format takes fp32 or int8 (got {format!r})")
    if runs < 1 or top < 1:
        raise ConfigError("--runs and --top must be at least 1")
    from ..profiling_pte import check_pte_profile

    check_pte_profile(runtime, device, phone)
    size = parse_resolution(resolution)
    chosen, given = selection.choice()
    label = ",".join(f"{k}={v}" for k, v in given.items())
    name, config = parse_model_ref(f"{chosen}:{label}")
    bench_options = BenchOptions(threads=threads, runs=runs, warmup=3, cpu_mask=cpu_mask,
                                 benchmark_binary=benchmark_binary,
                                 **accelerator_options(accelerator, require_full_delegation, dispatch_library)).validate()
    req = ProfileRequest(ref=f"{name}:{label}", name=name, config=config, precision=precision, size=size,
                         options=bench_options, runs=runs, runtime=runtime.strip().lower())
    if lab is not None:
        import functools

        from .lab import per_phone

        job = functools.partial(_profile_one, replace(req, runtime="litert"), adb_server, db, top, json_out)
        return per_phone(lab, job, "profile", json_out)
    _check(device, bench_options, threads, adb_server, db)
    if phone is not None:
        from ..estimate.phones import check_phone

        phone = check_phone(device, phone).name
    from ..profile_session import profile_session

    with progress_on_stderr() as progress:
        profile = profile_session(device, replace(req, phone=phone), adb_server, db, progress)
    if json_out:
        print_json({"device": device, **profile.to_dict()})
    elif kind_of(device).profiler == "arm":
        print_arm_profile(profile, device, top=top)
    else:
        print_attribution(profile, top=top)


def _profile_one(req: Any, adb_server: str | None, db: str | None, top: int, json_out: bool, phone: Any) -> None:
    """profile on one phone of a lab (`lab.per_phone` runs it in the phone's thread)."""
    from ..profile_session import phone_profile_session

    with progress_on_stderr() as progress:
        profile = phone_profile_session(phone.uri, req, adb_server, db, _warn, progress)
    if json_out:
        print_json({"device": phone.uri, "phone": phone.identity, **profile.to_dict()})
    else:
        print_attribution(profile, top=top)


def _warn(warning: str) -> None:
    sys.stderr.write(f"mobiledeploy: warning: {warning}\n")


def _check(device: str, options: Any, threads: int, adb_server: str | None, db: str | None) -> None:
    from ..profile_session import check_profile

    check_profile(device, options, threads, adb_server, db, _warn)


def print_arm_profile(profile: Any, device: str, top: int = 10) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    kinds = Table(title=f"{escape(profile.model)} ({profile.artifact}) on {escape(device)}: "
                  f"{profile.instructions / 1e6:.2f}M Arm instructions per inference, by kernel kind",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    est = profile.estimate
    for col in ("kind", "instructions", "share", "share of MACs", "instr/MAC", *(["est. ms"] if est else [])):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for k in profile.kinds:
        ms = k.get("estimated_ms")
        kinds.add_row(escape(k["kind"]), f"{k['instructions'] / 1e6:.3f}M", f"{k['share']:.1%}",
                      "—" if not k["mac_share"] else f"{k['mac_share']:.1%}",
                      "—" if k["instructions_per_mac"] is None else f"{k['instructions_per_mac']:.3f}",
                      *([("—" if ms is None else f"~{ms:.2f}")] if est else []))
    console.print(kinds)
    if est:
        console.print(f"ESTIMATED on {escape(est['phone_label'])}: ~{est['ms']:.1f} ms per inference "
                      f"[{est['low_ms']:.1f}–{est['high_ms']:.1f}], single thread at {est['clock_ghz']} GHz; "
                      f"pipeline model covers {est['coverage']:.1%} of the instructions; calibration: "
                      f"{escape(str(est['calibration']))} (estimates, not measured ms)")
    funcs = Table(title=f"top {top} functions", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("function", "kind", "instructions", "share"):
        funcs.add_column(col, justify="left" if col in ("function", "kind") else "right", overflow="fold")
    for k in profile.kernels[:top]:
        funcs.add_row(escape(k.function), escape(k.kind), f"{k.instructions / 1e6:.3f}M",
                      f"{k.instructions / profile.instructions:.1%}" if profile.instructions else "—")
    console.print(funcs)
    runtime = "ExecuTorch runtime (et_profile)" if profile.artifact.startswith("pte") else "LiteRT"
    console.print(f"[dim]exact counts of the aarch64 {runtime} under QEMU (XNNPACK picks kernels by the emulated core's "
                  "features); functions named from the libraries' symbol tables[/]")


