"""The records every layer shares, and nothing else: a leaf module that imports none of the package.

`BenchTarget` (an artifact to run), `BenchOptions` (how), `ExportInputs` (how implicit exports are
made) and `RunResult`: what one benchmark of one artifact on one device produced.

Every device (the host's LiteRT interpreter, `benchmark_model` on a phone) returns this same
record, so storage, comparison and gating never care where the numbers came from.
Times are milliseconds in the `*_ms` fields; raw per-run timings, when the runner gives them,
are microseconds in `timings_us`.
"""

from __future__ import annotations

import enum
import math
import os
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError

__all__ = ["ErrorKind", "error_kind_of", "BenchTarget", "BenchOptions", "ExportInputs", "RunResult", "summarize_us", "percentile", "parse_cpu_mask",
           "ACCELERATORS"]


def summarize_us(timings_us: Sequence[float]) -> dict[str, float]:
    """Summary statistics (ms) of per-run timings (us): median, p90, mean, std, cv, min, max."""
    if not timings_us:
        raise ValueError("no timings to summarize")
    ms = sorted(t / 1000.0 for t in timings_us)
    mean = statistics.fmean(ms)
    std = statistics.stdev(ms) if len(ms) > 1 else 0.0
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 0.90),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean else 0.0,
        "min_ms": ms[0],
        "max_ms": ms[-1],
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 1]."""
    sorted_values = sorted(values)
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class ErrorKind(str, enum.Enum):
    """Why a run failed, as far as the runs after it are concerned (stored as its value)."""

    RUN = "run"            # this run only: the next one may succeed
    DEVICE = "device"      # the device cannot be used: later runs on it are not tried
    SETUP = "setup"        # something to install or pass first (exit 2); later runs are not tried either
    NOT_RUN = "not_run"    # not tried, after a device or setup error

    @property
    def ends_the_device(self) -> bool:
        return self in (ErrorKind.DEVICE, ErrorKind.SETUP)


def error_kind_of(exc: BaseException) -> str:
    """The ErrorKind value an exception means for its run (anything not the toolkit's: this run only)."""
    return ErrorKind(getattr(exc, "kind", "run")).value


@dataclass
class RunResult:
    """One benchmark of one artifact on one device: what was asked, then what was observed.

    Asked (the request): `model`, `precision`, `device`, `artifact`, `sha256`, `threads`, `warmup`, `runtime`,
    `round`, `session_id`, and `config` (the model's configuration and the run settings: resolution,
    runs_requested, min_secs, cpu_mask, op_profiling, accelerator, ...).
    Observed: `status`, `error`, `error_kind`, `runs` (timed runs done), the `*_ms`, memory and instruction
    figures, `timings_us`, `op_profile`, `cpu_share`, `device_info`, `versions`, `wall_s`, and `observed` (what
    the runner reported beyond those: delegation, error_type, runner, estimate, cpus, pushed binaries, ...).
    """

    model: str
    precision: str  # "fp32" | "int8" | "int16x8" (or "onnx"/"other" for a --model file of unknown kind)
    device: str  # the device URI: "local", "adb:SERIAL"
    artifact: str
    sha256: str
    threads: int
    runs: int
    warmup: int
    status: str = "ok"  # "ok" | "failed"
    error: str | None = None
    error_kind: str | None = None  # an ErrorKind value when failed
    median_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None  # benchmark_model reports p5/median/p95, not p90
    mean_ms: float | None = None
    std_ms: float | None = None
    cv: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    warmup_ms: float | None = None
    peak_memory_mb: float | None = None
    memory_delta_mb: float | None = None
    macs: int | None = None
    timings_us: list[float] | None = None
    op_profile: list[dict[str, Any]] | None = None
    # Exact Arm instruction counts per inference (qemu: devices; never milliseconds): the median
    # over timed runs, every timed run, model init (interpreter + allocate) and the first inference.
    instructions: float | None = None
    instruction_counts: list[int] | None = None
    init_instructions: float | None = None
    first_instructions: float | None = None
    runtime: str = ""  # how the artifact was timed (`runtimes.RUNTIMES`): litert, onnxruntime, benchmark_model, counted
    round: int = 0  # which interleaved round of its session (A B, then B A …)
    session_id: str | None = None  # the session (one bench, compare or gate) the run belongs to
    cpu_share: float | None = None  # in-process runtimes: thread CPU time / wall time of the timed loop (stability)
    config: dict[str, Any] = field(default_factory=dict)  # asked: model configuration and run settings
    observed: dict[str, Any] = field(default_factory=dict)  # reported by the runner (delegation, error_type, ...)
    device_info: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    started_at: str = ""
    wall_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def unit(self) -> str:
        """What this run's figures measure: 'instructions' (exact counts) or 'ms' (wall time)."""
        return "instructions" if self.instructions is not None or self.instruction_counts is not None else "ms"

    @property
    def gmacs_per_s(self) -> float | None:
        if not (self.ok and self.macs and self.median_ms):
            return None
        return self.macs / (self.median_ms / 1000.0) / 1e9

    def with_timings(self, timings_us: Sequence[float]) -> "RunResult":
        """Set `timings_us` and every summary field derived from them."""
        self.timings_us = [float(t) for t in timings_us]
        for key, value in summarize_us(self.timings_us).items():
            setattr(self, key, value)
        self.runs = len(self.timings_us)
        return self

    def failed(self, error: str) -> "RunResult":
        self.status, self.error = "failed", error
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gmacs_per_s"] = self.gmacs_per_s
        out["unit"] = self.unit
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        """A RunResult from `to_dict` output or a stored row; records written before round, session and
        cpu_share were fields kept them in `config` (results schema < 5, older --json files): they move over.
        Records written before `observed` (no such key) kept what the runner reported in `config`: the keys
        the runners wrote there then (`_OBSERVED_IN_CONFIG`) move to `observed`."""
        names = cls.__dataclass_fields__
        fields = {k: v for k, v in data.items() if k in names}
        if "precision" not in fields and "format" in data:  # written before `precision` (results schema < 7)
            fields["precision"] = data["format"]
        config = dict(fields.get("config") or {})
        for old, new in _FROM_CONFIG.items():
            if old in config:
                value = config.pop(old)
                if fields.get(new) is None:
                    fields[new] = value
        if "observed" not in data:
            fields["observed"] = {k: config.pop(k) for k in list(config) if k in _OBSERVED_IN_CONFIG}
        fields["observed"] = dict(fields.get("observed") or {})
        if "config" in fields:
            fields["config"] = config
        fields["round"] = int(fields.get("round") or 0)
        fields["runtime"] = fields.get("runtime") or ""
        return cls(**fields)


#: config keys that were a side channel for what are now RunResult fields
_FROM_CONFIG = {"round": "round", "session": "session_id", "cpu_share": "cpu_share"}
#: what the runners and devices wrote into `config` before `observed` existed (--json files and results
#: schema < 6); frozen as it was then, whatever the runners write now (results._v6 has its own copy)
_OBSERVED_IN_CONFIG = frozenset({
    "arm_parity", "benchmark_binary", "benchmark_binary_pushed", "benchmark_binary_sha256", "benchmark_binary_url",
    "benchmark_output_format", "benchmark_tool", "bracket_instructions", "cpu", "cpu_mask_used", "cpus", "delegate",
    "delegation", "emulated_wall_s", "error_type", "estimate", "etdump", "execution_provider", "graph_optimization",
    "guest_threads", "input_dtypes", "op_profile_source", "remote_dir", "result_file_error", "result_source",
    "runner", "runner_binary", "runner_pushed", "runner_sha256", "taskset", "threadpool_threads", "timing"})


@dataclass
class BenchTarget:
    """One artifact to time, by one runtime, at one precision: `name` (the export slug, or the file stem),
    `precision` fp32|int8|int16x8|other, `runtime` a `runtimes.RUNTIMES` name (None: the device kind's default)."""

    name: str
    artifact: Path
    precision: str
    sha256: str
    macs: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    resolution: tuple[int, int] | None = None
    runtime: str | None = None


@dataclass(frozen=True)
class ExportInputs:
    """How implicit exports are made, as `export` takes them: calibration source and size, artifacts root, and whether
    the model's deployment form is exported (`--reparameterize`)."""

    calibration: str = "synthetic"
    calib_samples: int = 32
    out: str | Path | None = None
    reparameterize: bool = False


ACCELERATORS = ("cpu", "gpu", "npu")


@dataclass
class BenchOptions:
    threads: int = 1
    runs: int = 50
    warmup: int = 5
    min_secs: float = 0.0
    cpu_mask: str = "auto"
    benchmark_binary: str | None = None
    keep_remote: bool = False
    op_profiling: bool = False
    accelerator: str = "cpu"  # cpu | gpu | npu (adb devices: what benchmark_model is asked to run on)
    require_full_delegation: bool = False
    dispatch_library: str | None = None  # npu: the vendor dispatch library (a host file, or a folder on the phone)
    phone: str | None = None  # qemu: devices: also estimate ms on this phone profile (mobiledeploy.estimate)
    runner: str | None = None  # adb devices, --runtime executorch: the user's own executor_runner build (a host file)

    def validate(self) -> "BenchOptions":
        if self.threads < 1 or self.runs < 1 or self.warmup < 0 or self.min_secs < 0:
            raise ConfigError("need --threads >= 1, --runs >= 1, --warmup >= 0 and --min-secs >= 0")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(f"--accelerator takes {', '.join(ACCELERATORS)} (got {self.accelerator!r})")
        if self.accelerator == "npu" and not self.dispatch_library:
            raise ConfigError("--accelerator npu needs --dispatch-library PATH (the vendor's libLiteRtDispatch_*.so "
                              "on this host, or the folder holding it on the phone)")
        try:
            parse_cpu_mask(self.cpu_mask)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.benchmark_binary is not None and not Path(self.benchmark_binary).expanduser().is_file():
            what = "is a directory" if Path(self.benchmark_binary).expanduser().is_dir() else "does not exist"
            raise ConfigError(f"--benchmark-binary {self.benchmark_binary} {what}: give the benchmark_model file")
        if self.runner is not None:
            path = Path(self.runner).expanduser()
            if not path.is_file() or not os.access(path, os.X_OK):
                what = "does not exist" if not path.exists() else "is not an executable file"
                raise ConfigError(f"--runner {self.runner} {what}: give ExecuTorch's executor_runner built for the "
                                  "phone (examples/portable/executor_runner)")
        return self


def parse_cpu_mask(mask: str) -> int | None:
    """'auto' → None; 'f0' / '0xF0' → 240. Raises ValueError on anything else."""
    text = mask.strip().lower()
    if text == "auto":
        return None
    if not re.fullmatch(r"(0x)?[0-9a-f]+", text) or int(text, 16) == 0:
        raise ValueError(f"cpu mask {mask!r} is not 'auto' or a non-zero hex mask like f0")
    return int(text, 16)
