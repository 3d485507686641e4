"""Devices as URIs behind one interface, one module per kind, declared in `devices.kinds.KINDS`: `local` (this
host), `adb:SERIAL` (a phone) and `qemu:CPU` (an emulated Arm64 core that counts instructions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Device
from .kinds import device_class, device_uri, kind_of, parse_device_uri

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["Device", "open_device", "parse_device_uri", "device_uri", "check_device", "check_options", "canonical_uri"]


def canonical_uri(uri: str) -> str:
    """'qemu' → 'qemu:cortex-a76' (the default core named), as the device's kind writes its URIs."""
    kind, arg = parse_device_uri(uri)
    return device_class(kind).uri_of(kind, arg)


def check_device(uri: str, options: "BenchOptions | None" = None) -> None:
    """Cheap checks before any export: the URI parses, the options fit the device (accelerators are
    benchmark_model's, on adb devices), and what the kind checks early (an emulated core's environment).

    Raises ConfigError, or EmulatorMissingError with the setup command (both exit 2 in the CLI).
    """
    kind, arg = parse_device_uri(uri)
    if options is not None:
        check_options(uri, options)
    device_class(kind).check_arg(arg)


def check_options(uri: str, options: "BenchOptions") -> None:
    """Accelerators and --benchmark-binary are benchmark_model's, so adb devices' only: ConfigError elsewhere."""
    kind = kind_of(uri).name
    if options.benchmark_binary is not None and "benchmark_model" not in kind_of(uri).runtimes:
        raise ConfigError(f"--benchmark-binary is for adb:SERIAL devices (benchmark_model); {kind} does not run it")
    if not kind_of(uri).accelerators and (options.accelerator != "cpu" or options.require_full_delegation):
        raise ConfigError(f"--accelerator {options.accelerator} and --require-full-delegation are for adb:SERIAL "
                          f"devices (benchmark_model); {kind} runs LiteRT on the CPU with XNNPACK")


def open_device(uri: str, adb_server: str | None = None) -> Device:
    """A ready device for `uri`, made by its kind's Device class (adb devices are checked, and host:port serials
    connected, here).

    `adb_server` ('host[:port]') reaches a remote adb server (a device farm); without it,
    $ANDROID_ADB_SERVER_ADDRESS is honoured. Raises the toolkit's DeviceError subclasses.
    """
    kind, arg = parse_device_uri(uri)
    return device_class(kind).from_uri(arg, adb_server=adb_server)
