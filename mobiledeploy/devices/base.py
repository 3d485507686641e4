"""The one interface every device implements, and what all of them share."""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ..records import BenchOptions, BenchTarget, RunResult, parse_cpu_mask

__all__ = ["Device", "new_result", "new_run_id", "parse_cpu_mask", "us_to_ms", "machine_class", "machine_slug"]


class Device(ABC):
    """A place that runs a .tflite artifact and times it: `local`, `adb:SERIAL`.

    `run` never raises for a failed run: it returns a RunResult with status "failed".
    """

    uri: str

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Device facts: model, soc, abi, cores, governors, temperatures…"""

    @abstractmethod
    def push(self, local: Path, remote: str) -> None:
        """Copy a host file to the device."""

    @abstractmethod
    def pull(self, remote: str, local: Path) -> None:
        """Copy a device file to the host."""

    @abstractmethod
    def run(self, target: "BenchTarget", options: "BenchOptions", run_id: str | None = None) -> RunResult:
        """Time one artifact; a failure is a RunResult with status 'failed', never an exception."""

    def cleanup(self) -> None:
        """Remove what this session left on the device (no-op where nothing is left)."""

    def close(self) -> None:
        """Release the device."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_run_id() -> str:
    """Sortable, unique, safe as a file name: '20250101T120000Z-1a2b3c4d'."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def new_result(target: "BenchTarget", options: "BenchOptions", device_uri: str, run_id: str | None = None) -> RunResult:
    """A RunResult with the target's and options' fields filled, status 'failed' until timed. `run_id` is
    the id the orchestrator allocated (and stored as a placeholder); a new one when there is none."""
    return RunResult(
        model=target.name,
        format=target.format,
        device=device_uri,
        artifact=str(target.artifact),
        sha256=target.sha256,
        threads=options.threads,
        runs=0,
        warmup=options.warmup,
        status="failed",
        error="not run",
        macs=target.macs,
        runtime=target.runtime or "",
        config={
            **dict(target.config or {}),
            "resolution": list(target.resolution) if target.resolution else None,
            "threads": options.threads,
            "runs_requested": options.runs,
            "warmup": options.warmup,
            "min_secs": options.min_secs,
            "cpu_mask": options.cpu_mask,
            "op_profiling": options.op_profiling,
        },
        run_id=run_id or new_run_id(),
        started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )


def machine_class(facts: dict[str, Any]) -> str | None:
    """What must match for two latency measurements to be compared: the kind of machine, not the unit.

    A host: ABI, CPU vendor, family and model, and the instruction sets XNNPACK picks kernels by
    (`facts["cpu"]`, read by `devices.local.cpu_identity`); two VMs that both call themselves
    "AMD EPYC" can differ here, and the ratio of an int8 to an fp32 model differs with them.
    A phone: product model, SoC and ABI. None when the facts do not say (older records).
    """
    cpu = facts.get("cpu")
    if facts.get("kind") == "host":
        if not isinstance(cpu, dict) or not cpu.get("vendor"):
            return None
        ident = f"{cpu['vendor']} family {cpu.get('family', '?')} model {cpu.get('model', '?')}"
        return f"{facts.get('abi') or '?'} {ident} [{' '.join(cpu.get('isa') or []) or 'baseline ISA'}]"
    parts = [facts.get(key) for key in ("model", "soc", "abi")]
    return " / ".join(str(p) for p in parts if p) or None


def machine_slug(device_uri: str, cls: str | None) -> str:
    """A file-name-safe name for a machine class: 'local-authenticamd-25-17-3f9a0c1d'."""
    import hashlib

    kind = device_uri.split(":", 1)[0]
    if cls is None:
        return kind
    words = re.findall(r"[a-z0-9]+", cls.split("[", 1)[0].lower())
    keep = [w for w in words if w not in ("family", "model", "x86", "64")][:4]
    return "-".join([kind, *keep, hashlib.sha256(cls.encode()).hexdigest()[:8]])


def us_to_ms(value_us: float | None) -> float | None:
    """Microseconds (as benchmark_model prints them) to milliseconds; None stays None."""
    return None if value_us is None else value_us / 1000.0


def read_text(path: str | os.PathLike, default: str | None = None) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default
