"""Devices as URIs behind one interface: `local` (this host), `adb:SERIAL` (a phone) and
`qemu:CPU` (an emulated Arm64 core that counts instructions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Device
from .kinds import kind_of, parse_device_uri

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["Device", "open_device", "parse_device_uri", "check_device", "check_options", "canonical_uri"]


def canonical_uri(uri: str) -> str:
    """'qemu' → 'qemu:cortex-a76' (the default core named); other URIs as given, stripped."""
    kind, serial = parse_device_uri(uri)
    return f"qemu:{serial}" if kind == "qemu" else uri.strip()


def check_device(uri: str, options: "BenchOptions | None" = None) -> None:
    """Cheap checks before any export: the URI parses, the options fit the device (accelerators are
    benchmark_model's, on adb devices), and an emulated core's environment is set up.

    Raises ConfigError, or EmulatorMissingError with the setup command (both exit 2 in the CLI).
    """
    kind, serial = parse_device_uri(uri)
    if options is not None:
        check_options(uri, options)
    if kind == "qemu":
        from .qemu import QemuDevice

        QemuDevice(serial)


def check_options(uri: str, options: "BenchOptions") -> None:
    """Accelerators and --benchmark-binary are benchmark_model's, so adb devices' only: ConfigError elsewhere."""
    kind = kind_of(uri).name
    if options.benchmark_binary is not None and "benchmark_model" not in kind_of(uri).runtimes:
        raise ConfigError(f"--benchmark-binary is for adb:SERIAL devices (benchmark_model); {kind} does not run it")
    if not kind_of(uri).accelerators and (options.accelerator != "cpu" or options.require_full_delegation):
        raise ConfigError(f"--accelerator {options.accelerator} and --require-full-delegation are for adb:SERIAL "
                          f"devices (benchmark_model); {kind} runs LiteRT on the CPU with XNNPACK")


def open_device(uri: str, adb_server: str | None = None) -> Device:
    """A ready device for `uri`. adb devices are checked (and host:port serials connected) here.

    `adb_server` ('host[:port]') reaches a remote adb server (a device farm); without it,
    $ANDROID_ADB_SERVER_ADDRESS is honoured. Raises the toolkit's DeviceError subclasses.
    """
    kind, serial = parse_device_uri(uri)
    if kind == "local":
        from .local import LocalDevice

        return LocalDevice()
    if kind == "qemu":
        from .qemu import QemuDevice

        return QemuDevice(serial)
    from .adb import AdbDevice

    return AdbDevice(serial or "", adb_server=adb_server).open()
