"""The command-line options that several commands share, defined once (help texts included)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["DeviceOpt", "AdbServerOpt", "DbOpt", "ThreadsOpt", "RoundsOpt", "RunsOpt", "WarmupOpt", "CpuMaskOpt",
           "BinaryOpt", "ReportOpt"]

DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="Where to run: local, adb:SERIAL (SERIAL may be host:port), "
                                     "or qemu:CPU (an emulated Arm64 core, e.g. qemu:cortex-a76; counts instructions).")]
AdbServerOpt = Annotated[Optional[str], typer.Option(
    "--adb-server", help="A remote adb server as HOST[:PORT] (device farms); default $ANDROID_ADB_SERVER_ADDRESS.")]
DbOpt = Annotated[Optional[str], typer.Option(
    "--db", help="Results database (default $MOBILEDEPLOY_DB or ~/.local/share/mobiledeploy/results.db).")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="Interpreter threads (default: the suite's, else 1).")]
RoundsOpt = Annotated[Optional[int], typer.Option(
    "--rounds", help="Interleaved rounds: every model once per round (A B …, then … B A). Default 3; 1 on qemu: devices.")]
RunsOpt = Annotated[Optional[int], typer.Option("--runs", help="Timed runs per model per round (default 20; 3 on qemu:).")]
WarmupOpt = Annotated[Optional[int], typer.Option("--warmup", help="Untimed warm-up runs per model per round (default 3; 1 on qemu:).")]
CpuMaskOpt = Annotated[str, typer.Option("--cpu-mask", help="auto (the fastest cores) or a hex CPU mask like f0.")]
BinaryOpt = Annotated[Optional[str], typer.Option(
    "--benchmark-binary", help="arm64 benchmark_model for adb devices (default $MOBILEDEPLOY_BENCHMARK_MODEL).")]
ReportOpt = Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML + Markdown report with plots to DIR.")]
