"""Devices as URIs behind one interface: `local` (this host) and `adb:SERIAL` (a phone)."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Device

__all__ = ["Device", "open_device", "parse_device_uri"]


def parse_device_uri(uri: str) -> tuple[str, str | None]:
    """'local' → ('local', None); 'adb:SERIAL' → ('adb', 'SERIAL'). Raises ConfigError otherwise."""
    text = uri.strip()
    if text == "local":
        return "local", None
    kind, sep, serial = text.partition(":")
    if kind == "adb" and sep and serial:
        return "adb", serial
    raise ConfigError(f"unknown device {uri!r}: use local or adb:SERIAL (e.g. adb:R58M123ABC, adb:192.168.1.20:5555)")


def open_device(uri: str, adb_server: str | None = None) -> Device:
    """A ready device for `uri`. adb devices are checked (and host:port serials connected) here.

    `adb_server` ('host[:port]') reaches a remote adb server (a device farm); without it,
    $ANDROID_ADB_SERVER_ADDRESS is honoured. Raises the toolkit's DeviceError subclasses.
    """
    kind, serial = parse_device_uri(uri)
    if kind == "local":
        from .local import LocalDevice

        return LocalDevice()
    from .adb import AdbDevice

    return AdbDevice(serial or "", adb_server=adb_server).open()
