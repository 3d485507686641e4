"""The one interface every device implements, and what all of them share."""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MobiledeployError
from ..records import BenchOptions, BenchTarget, RunResult, error_kind_of, parse_cpu_mask
from .kinds import NotThisForm, runtime_for

if TYPE_CHECKING:
    from ..runtimes import Runtime

__all__ = ["Device", "new_result", "new_run_id", "fail_result", "parse_cpu_mask", "us_to_ms", "machine_class",
           "machine_slug"]


class Device(ABC):
    """A place that runs an artifact and times it: `local`, `adb:SERIAL`, `qemu:CPU` (`devices.kinds`).

    A device is a transport; how a model is timed there is a runtime's business. `run` builds the runtime
    `target.runtime` names (`runtimes.RUNTIMES`, checked against the device kind's; its default when None)
    as `runtime_class(name, kind)(self)`, once per device, and never raises for a failed run: any Exception
    becomes a RunResult with status "failed" whose `error_kind` (the error's `kind`) says whether the
    device can go on. A device adds its own facts around a run in `start_run` / `end_run`.
    """

    uri: str
    _runtimes: dict[str, "Runtime"]

    # ---- its kind's URIs ('KIND' or 'KIND:ARG'): read, written and opened here, not by the callers
    @classmethod
    def parse_arg(cls, arg: str | None) -> str | None:
        """The URI's part after 'KIND:' (None: there was none), checked and normalised. This default: a kind
        that takes no argument. Raises NotThisForm for text of another form, ConfigError to say more."""
        if arg is not None:
            raise NotThisForm(arg)
        return None

    @classmethod
    def uri_of(cls, kind: str, arg: str | None) -> str:
        """The canonical URI of a device of this kind with `arg` (as `parse_arg` returns it)."""
        return kind if arg is None else f"{kind}:{arg}"

    @classmethod
    def check_arg(cls, arg: str | None) -> None:
        """Cheap checks before any export (a set-up environment); raises the toolkit's errors."""

    @classmethod
    def from_uri(cls, arg: str | None, *, adb_server: str | None = None) -> "Device":
        """A ready device for `arg` (as `parse_arg` returns it); raises the toolkit's DeviceError subclasses."""
        return cls()

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Device facts: model, soc, abi, cores, governors, temperatures…"""

    @abstractmethod
    def push(self, local: Path, remote: str) -> None:
        """Copy a host file to the device."""

    @abstractmethod
    def pull(self, remote: str, local: Path) -> None:
        """Copy a device file to the host."""

    def run(self, target: "BenchTarget", options: "BenchOptions", run_id: str | None = None) -> RunResult:
        """Time one artifact; a failure is a RunResult with status 'failed', never an exception."""
        result = new_result(target, options, self.uri, run_id)
        start = time.perf_counter()
        runtime, workdir = None, ""
        try:
            workdir = self.start_run(result, options)
            runtime = self.runtime_named(target.runtime)
            result.runtime = runtime.name
            runtime.run(target, options, result, workdir)
        except Exception as exc:  # a broken artifact, a runtime's or the device's error: this run failed
            fail_result(result, exc)
        finally:
            self.end_run(result, options, workdir, runtime)
            result.wall_s = time.perf_counter() - start
        return result

    def runtime_named(self, name: str | None = None) -> "Runtime":
        """The runtime called `name` on this device (its kind's default when None), built once: every runtime
        is constructed the same way, from the device it runs on."""
        from ..runtimes import runtime_class
        from .kinds import kind_of

        name = runtime_for(self.uri, name)
        cache = self.__dict__.setdefault("_runtimes", {})
        if name not in cache:
            cache[name] = runtime_class(name, kind_of(self.uri).name)(self)
        return cache[name]

    def start_run(self, result: RunResult, options: "BenchOptions") -> str:
        """Fill what this device records of every run (facts, versions) before it; returns the run's working
        folder on the device ('' where the runtime needs none). Raising fails the run."""
        return ""

    def end_run(self, result: RunResult, options: "BenchOptions", workdir: str, runtime: "Runtime | None") -> None:
        """After every run, failed or not (facts read after it, the working folder removed)."""

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
        precision=target.precision,
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


def fail_result(result: RunResult, exc: BaseException) -> RunResult:
    """`result` failed with `exc`: its one-line message (the toolkit's own as written, another library's cut to
    300 characters), its type in observed.error_type and its ErrorKind."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, MobiledeployError) and len(text) > 300:
        text = text[:297] + "..."
    result.observed["error_type"] = type(exc).__name__
    result.error_kind = error_kind_of(exc)
    return result.failed(text)


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
