"""`mobiledeploy calibrate`: fit a phone profile to the user's own phone (timed through the bench harness)."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, Optional

import typer

from .app import Json, Resolution, app, print_json
from .console import progress_on_stderr, stdout_console
from .options import AdbServerOpt, BinaryOpt, DbOpt, DeviceOpt


@app.command("calibrate")
def calibrate_cmd(
    device: DeviceOpt = "local",
    phone: Annotated[str, typer.Option("--phone", help="The profile to start from: the phone's SoC (see the list "
                                       "an unknown name prints), which gives the emulated core and the caches.")] = "",
    name: Annotated[Optional[str], typer.Option("--name", help="Name of the saved profile (default: PHONE-SERIAL).")] = None,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma list of model refs or .tflite files "
                                                  "(default: 4 small zoo models).")] = None,
    resolution: Resolution = "224",
    runs: Annotated[int, typer.Option("--runs", help="Timed runs per model on the phone.")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs per model on the phone.")] = 3,
    benchmark_binary: BinaryOpt = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    json_out: Json = False,
) -> None:
    """Time a small suite (fp32, one thread) on your phone, estimate the same artifacts on the profile's emulated
    core, fit the profile's free parameter (cycle_scale), print each model's held-out error and save the profile;
    then `--phone NAME` estimates any model for this phone without it.

    Example: mobiledeploy calibrate --device adb:R58M123ABC --phone pixel4
    Example: mobiledeploy calibrate --device adb:R58M123ABC --phone sd8gen3 --name myphone --models mobilenet_v2,alexnet
    """
    from ..bench import BenchOptions
    from ..devices.kinds import kind_of, parse_device_uri
    from ..errors import ConfigError
    from ..estimate.calibrate import SUITE
    from ..estimate.phones import phone as phone_profile
    from ..preflight import ask_phone, check_db

    serial = parse_device_uri(device)[1]
    if not kind_of(device).reached_by_adb:
        raise ConfigError(f"calibrate times the suite on your phone: use --device adb:SERIAL (not {device})")
    base = phone_profile(phone or "?")
    name = (name or f"{base.name}-{re.sub(r'[^a-z0-9]+', '-', str(serial).lower())}").strip("-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ConfigError(f"--name {name!r}: use lower-case letters, digits, '-' and '_'")
    refs = [m.strip() for m in (models.split(",") if models else SUITE) if m.strip()]
    if len(refs) < 2:
        raise ConfigError("--models needs at least two models (one is held out at a time)")
    options = BenchOptions(threads=1, runs=runs, warmup=warmup, benchmark_binary=benchmark_binary).validate()
    check_db(db)
    ask_phone(device, adb_server)
    result, path = _calibrate(device, base, name, refs, resolution, options, adb_server, db)
    if json_out:
        print_json({"device": device, "phone": name, "base": base.name, "profile": str(path), "cycle_scale": result.scale,
                    "band_pct": result.band_pct, "models": result.rows})
    else:
        _print(result, name, str(path))


def _calibrate(device: str, base: Any, name: str, refs: list[str], resolution: str, options: Any,
               adb_server: str | None, db: str | None) -> Any:
    from ..calibrate_session import calibrate_session

    with progress_on_stderr() as progress:
        return calibrate_session(device, base, name, refs, resolution, options, adb_server, db, progress)


def _print(result: Any, name: str, path: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"calibration of {escape(name)}: cycle_scale {result.scale:.3f}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("model", "measured ms", "estimated (uncalibrated)", "held-out estimate", "held-out error"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in result.rows:
        held = row["held_out_ms"]
        table.add_row(escape(row["model"]), f"{row['measured_ms']:.2f}", f"{row['raw_ms']:.2f}",
                      "—" if held is None else f"{held:.2f}",
                      "—" if held is None else f"{row['held_out_error_pct']:+.1f}%")
    console.print(table)
    console.print(f"saved {escape(path)} (band ±{result.band_pct:.0f}%, the largest held-out error); "
                  f"use it with --phone {escape(name)}")
    sys.stdout.flush()
