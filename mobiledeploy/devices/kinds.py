"""Device kinds: what each kind of device is and what it can do, declared once.

Commands ask the kind of a device URI for their defaults and capabilities instead of comparing the
URI with "local", "adb" or "qemu" themselves. Adding a device kind is one device module plus one
entry here (its URI form is parsed in `devices.parse_device_uri`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["DeviceKind", "KINDS", "GATE_DEFAULTS", "parse_device_uri", "kind_of", "gate_options", "runtime_for",
           "runtimes_for"]


@dataclass(frozen=True)
class DeviceKind:
    name: str
    device_class: str              # "module:Class" of its Device, imported when one is opened
    unit: str                      # what a run measures: "ms" or "instructions"
    exact: bool                    # figures repeat exactly: one short round suffices, the gate compares counts
    bench_runs: int                # `bench` runs per artifact when not given
    runtimes: tuple[str, ...]      # how models can be timed there (`runtimes.RUNTIMES` names); the first is the default
    session_plan: tuple[int, int, int] | None = None  # compare/guidelines (rounds, runs, warm-up); None: theirs
    gate_options: dict[str, Any] = field(default_factory=dict)  # the wall-clock gate's bench options over the defaults
    one_thread: bool = False       # counts are of one thread: --threads must be 1
    accelerators: bool = False     # --accelerator / --require-full-delegation (benchmark_model on a phone)
    profiler: str = "onnxruntime"  # who attributes time per op: onnxruntime (host), benchmark_model, arm (counts)
    host_cpus: bool = False        # runs on this host's CPUs: --threads is checked against them
    reached_by_adb: bool = False   # needs the adb client and a reachable phone before any export

    @property
    def default_runtime(self) -> str:
        return self.runtimes[0]


# The wall-clock gate's bench options on every kind, before the kind's own (gate_options). Many short
# rounds: on shared machines latency jumps between states (±30% here) that last ~0.1-1 s, so a round
# must be short for model and reference to land in the same state; the ratio of the two then cancels
# it. Measured on the 2-core CI host: 150 rounds of 5 runs give a ±3% 99% interval on a 3 ms model,
# where 20 rounds of 30 give ±10%.
GATE_DEFAULTS = {"threads": 1, "runs": 5, "warmup": 1, "cpu_mask": "auto", "rounds": 150}

KINDS: dict[str, DeviceKind] = {
    "local": DeviceKind("local", "mobiledeploy.devices.local:LocalDevice", "ms", exact=False, bench_runs=50,
                        runtimes=("litert", "onnxruntime", "executorch"), host_cpus=True),
    # On a phone every round is a new benchmark_model process (init, warm-up): fewer, longer rounds.
    "adb": DeviceKind("adb", "mobiledeploy.devices.adb:AdbDevice", "ms", exact=False, bench_runs=50,
                      runtimes=("benchmark_model",), gate_options={"runs": 30, "warmup": 5, "rounds": 20},
                      accelerators=True, profiler="benchmark_model", reached_by_adb=True),
    # Exact counts repeat: one short round of 3 runs says all there is.
    "qemu": DeviceKind("qemu", "mobiledeploy.devices.qemu:QemuDevice", "instructions", exact=True, bench_runs=5,
                       runtimes=("counted", "executorch"), session_plan=(1, 3, 1), one_thread=True, profiler="arm"),
}


def parse_device_uri(uri: str) -> tuple[str, str | None]:
    """'local' → ('local', None); 'adb:SERIAL' → ('adb', 'SERIAL'); 'qemu[:CPU]' → ('qemu', CPU).

    Raises ConfigError otherwise (an unknown emulated CPU names the ones there are).
    """
    text = uri.strip()
    if text == "local":
        return "local", None
    kind, sep, serial = text.partition(":")
    if kind == "adb" and sep and serial:
        return "adb", serial
    if kind == "qemu":
        return "qemu", parse_cpu(serial or None)
    raise ConfigError(f"unknown device {uri!r}: use local, adb:SERIAL (e.g. adb:R58M123ABC, adb:192.168.1.20:5555) "
                      "or qemu:CPU (e.g. qemu:cortex-a76)")


def parse_cpu(name: str | None) -> str:
    """An emulated core's name ('cortex-a76'; None: the default one); ConfigError naming the ones there are."""
    from ..qemu.env import CPUS, DEFAULT_CPU

    cpu = (name or DEFAULT_CPU).strip().lower()
    if cpu not in CPUS:
        raise ConfigError(f"unknown emulated CPU {name!r}: choose one of {', '.join(CPUS)}")
    return cpu


def kind_of(uri: str) -> DeviceKind:
    """The kind of a device URI (ConfigError, naming the forms there are, for an unknown one)."""
    return KINDS[parse_device_uri(uri)[0]]


def gate_options(uri: str) -> dict[str, Any]:
    """The wall-clock gate's bench options on this device when neither the baseline nor a flag sets them."""
    return {**GATE_DEFAULTS, **kind_of(uri).gate_options}


def runtime_for(uri: str, runtime: str | None = None) -> str:
    """The runtime that times models on this device: `runtime` when the device kind offers it, its default
    when None; ConfigError (one line, naming the ones there are) otherwise."""
    kind = kind_of(uri)
    if runtime is None:
        return kind.default_runtime
    name = runtime.strip().lower()
    if name not in kind.runtimes:
        raise ConfigError(f"--runtime {name} is not available on {kind.name} devices (runtimes there: "
                          f"{', '.join(kind.runtimes)})")
    return name


def runtimes_for(uri: str, text: str | None = None) -> tuple[str, ...]:
    """'litert,onnxruntime' → the runtimes named (each checked by `runtime_for`); None → the kind's default."""
    names = [n for n in (text or "").split(",") if n.strip()]
    return tuple(dict.fromkeys(runtime_for(uri, n) for n in names)) or (runtime_for(uri),)
