"""A lab: several phones for one command — `adb:A,adb:B,…` (phones adb already reaches, local or remote) or
`stf:URL?FILTERS` (phones reserved from a DeviceFarmer farm, `devices.stf`).

`Lab.phones()` is a context manager yielding the phones as adb URIs with their identity; a farm's are
released on the way out whatever happens. The phones are then timed by the adb transport, one thread each
(`mobiledeploy.fanout`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import ConfigError
from .kinds import parse_device_uri

__all__ = ["Phone", "Lab", "is_lab", "KIND_URI"]

KIND_URI = "adb:lab"  # every phone of a lab is an adb device: its kind's defaults and checks apply


@dataclass
class Phone:
    """One phone of a lab: the adb URI that reaches it and what its runs record about it (`config.phone`)."""

    uri: str
    identity: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.identity.get("label") or self.uri)


def is_lab(text: str) -> bool:
    """A farm (stf:…), or a ',' list naming a phone: a fan-out, not one device. (A list of qemu: cores is the
    exact gate's own, not a lab.)"""
    text = text.strip()
    if text.startswith("stf:"):
        return True
    if "," not in text:
        return False
    kinds = set()
    for part in text.split(","):
        try:
            kinds.add(parse_device_uri(part)[0])
        except ConfigError:
            kinds.add("?")
    return "adb" in kinds


class Lab:
    """The phones of `--device adb:A,adb:B` or `--device stf:URL?…`."""

    def __init__(self, text: str, *, adb_server: str | None = None, say: Callable[[str], None] | None = None):
        self.text = text.strip()
        self.adb_server = adb_server
        self.farm: Any = None
        self.serials: list[str] = []
        if self.text.startswith("stf:"):
            from .stf import Farm

            self.farm = Farm.open(self.text, adb_server=adb_server, say=say)
        else:
            self.serials = _adb_serials(self.text)

    def describe(self) -> str:
        return self.farm.query.describe() if self.farm else ", ".join(f"adb:{s}" for s in self.serials)

    def check(self) -> None:
        """Before any export: a farm answers, takes the token and has a phone matching the query."""
        if self.farm is not None:
            self.farm.candidates()

    @contextlib.contextmanager
    def phones(self) -> Iterator[list[Phone]]:
        if self.farm is None:
            yield [Phone(f"adb:{s}", {"label": s, "serial": s}) for s in self.serials]
            return
        with self.farm.reserve() as reserved:
            yield [Phone(p.uri, p.identity()) for p in reserved]

    def release_all(self) -> None:
        """Give every reserved phone back now (an interrupt: the runs on them then fail fast)."""
        if self.farm is not None:
            self.farm.release_all()


def _adb_serials(text: str) -> list[str]:
    serials = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, serial = parse_device_uri(part)
        if kind != "adb" or not serial:
            raise ConfigError(f"a list of devices takes phones only (adb:SERIAL,adb:SERIAL…), not {part!r}; "
                              "a farm is one stf:URL")
        if serial not in serials:
            serials.append(serial)
    if not serials:
        raise ConfigError("--device lists no phone (adb:SERIAL,adb:SERIAL…)")
    return serials
