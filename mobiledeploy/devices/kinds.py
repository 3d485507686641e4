"""Device kinds: what each kind of device is and what it can do, declared once, and its URI.

Commands ask the kind of a device URI for their defaults and capabilities instead of comparing the
URI with "local", "adb" or "qemu" themselves. A kind's Device class (`device_class`, imported when
first needed) is its factory and reads and writes its URIs: `Device.parse_arg` checks the part after
'KIND:', `Device.uri_of` prints it, `Device.from_uri` opens one. Adding a device kind is one device
module plus one entry in `KINDS`; the CLI's --device help is written from the entries.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["DeviceKind", "NotThisForm", "KINDS", "GATE_DEFAULTS", "parse_device_uri", "kind_of", "kind_name", "uri_arg",
           "device_uri", "device_class", "device_help", "runtimes_help", "gate_options", "runtime_for", "runtimes_for"]


class NotThisForm(Exception):
    """Raised by a Device class's `parse_arg`: the text is not its kind's URI form (`parse_device_uri` then
    names the forms there are)."""


@dataclass(frozen=True)
class DeviceKind:
    name: str
    device_class: str              # "module:Class" of its Device: opens one, parses and prints its URIs
    form: str                      # its URI form in help and errors: "adb:SERIAL"
    about: str                     # what it is, for --device's help
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
    examples: str = ""             # URIs of this form, for help and errors

    def described(self, *, about: bool) -> str:
        """'adb:SERIAL (a phone; …, e.g. adb:R58M123ABC)'; without `about`, only the examples, if any."""
        words = [self.about] if about else []
        words += [f"e.g. {self.examples}"] if self.examples else []
        return f"{self.form} ({', '.join(words)})" if words else self.form

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
    "local": DeviceKind("local", "mobiledeploy.devices.local:LocalDevice", form="local", about="this host",
                        unit="ms", exact=False, bench_runs=50, runtimes=("litert", "onnxruntime", "executorch"), host_cpus=True),
    # On a phone every round is a new benchmark_model process (init, warm-up): fewer, longer rounds.
    "adb": DeviceKind("adb", "mobiledeploy.devices.adb:AdbDevice", form="adb:SERIAL",
                      about="a phone; SERIAL may be host:port", examples="adb:R58M123ABC, adb:192.168.1.20:5555",
                      unit="ms", exact=False, bench_runs=50, runtimes=("benchmark_model", "executorch"),
                      gate_options={"runs": 30, "warmup": 5, "rounds": 20}, accelerators=True,
                      profiler="benchmark_model", reached_by_adb=True),
    # Exact counts repeat: one short round of 3 runs says all there is.
    "qemu": DeviceKind("qemu", "mobiledeploy.devices.qemu:QemuDevice", form="qemu:CPU",
                       about="an emulated Arm64 core; counts instructions", examples="qemu:cortex-a76",
                       unit="instructions", exact=True, bench_runs=5, runtimes=("counted", "executorch", "onnxruntime"), session_plan=(1, 3, 1),
                       one_thread=True, profiler="arm"),
}


def kind_name(uri: str) -> str:
    """The kind part of a device URI as written ('adb:X' → 'adb'), unchecked: for stored records."""
    return uri.strip().partition(":")[0]


def uri_arg(uri: str) -> str | None:
    """The part of a device URI after its kind as written ('qemu:cortex-a53' → 'cortex-a53'), unchecked."""
    _, sep, arg = uri.strip().partition(":")
    return arg if sep else None


def device_class(kind: str) -> Any:
    """The Device class of a kind in `KINDS`."""
    module, _, name = KINDS[kind].device_class.partition(":")
    return getattr(importlib.import_module(module), name)


def parse_device_uri(uri: str) -> tuple[str, str | None]:
    """'local' → ('local', None); 'adb:SERIAL' → ('adb', 'SERIAL'); 'qemu[:CPU]' → ('qemu', CPU): the kind and
    its argument as the kind's Device class reads it (`parse_arg`).

    Raises ConfigError otherwise, naming the forms there are (an unknown emulated CPU names the ones there are).
    """
    name = kind_name(uri)
    if name in KINDS:
        try:
            return name, device_class(name).parse_arg(uri_arg(uri))
        except NotThisForm:
            pass
    forms = [k.described(about=False) for k in KINDS.values()]
    raise ConfigError(f"unknown device {uri!r}: use {', '.join(forms[:-1])} or {forms[-1]}")


def device_uri(kind: str, arg: str | None = None) -> str:
    """The URI of a device of `kind` with its argument, read and written by that kind's Device class ('qemu', None →
    'qemu:cortex-a76'); ConfigError when the kind does not take that argument."""
    cls = device_class(kind)
    try:
        return cls.uri_of(kind, cls.parse_arg(arg))
    except NotThisForm:
        raise ConfigError(f"a {kind} device is written {KINDS[kind].described(about=False)}, not with {arg!r}") from None


def device_help() -> str:
    """--device's help: every kind's URI form and what it is, from `KINDS`."""
    forms = [k.described(about=True) for k in KINDS.values()]
    return f"Where to run: {', '.join(forms[:-1])} or {forms[-1]}."


def kind_of(uri: str) -> DeviceKind:
    """The kind of a device URI (ConfigError, naming the forms there are, for an unknown one)."""
    return KINDS[parse_device_uri(uri)[0]]


def runtimes_help() -> str:
    """'local: litert (default), onnxruntime; adb: benchmark_model; qemu: counted', from `KINDS`."""
    def offered(kind: DeviceKind) -> str:
        rest = kind.runtimes[1:]
        return ", ".join([f"{kind.default_runtime} (default)" if rest else kind.default_runtime, *rest])

    return "; ".join(f"{kind.name}: {offered(kind)}" for kind in KINDS.values())


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
