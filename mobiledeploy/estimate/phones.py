"""Phone profiles as data (phones.json beside this file, and the user's own files): what the timing model needs
of a phone, each figure with its source. Loading validates every field and names the first bad one."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["PhoneProfile", "load_phones", "phone", "check_phone", "user_phone_files", "PACKAGED"]

PACKAGED = Path(__file__).with_name("phones.json")
_KEYS = ("label", "soc", "big", "little", "caches_kib", "memory", "qemu_cpu", "llvm_mcpu", "calibration", "sources")


@dataclass(frozen=True)
class PhoneProfile:
    name: str
    label: str
    soc: str
    big_uarch: str
    clock_ghz: float
    little: dict[str, Any]
    l1_kib: int
    l2_kib: int
    l3_kib: int
    peak_gbs: float
    single_core_gbs: float
    latency_ns: float
    qemu_cpu: str
    llvm_mcpu: str
    cycle_scale: float
    band_pct: float
    calibration_source: str
    sources: dict[str, str] = field(default_factory=dict)
    origin: str = ""

    @property
    def levels(self) -> int:
        """Cache levels present (the last one's misses go to memory)."""
        return 3 if self.l3_kib else 2

    def bytes_per_cycle(self) -> float:
        """Memory bandwidth of one core in bytes per core cycle."""
        return self.single_core_gbs / self.clock_ghz

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _number(where: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and value <= 0) or value < 0:
        raise ConfigError(f"phone profile {where}: expected a {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"phone profile {where}: expected a non-empty string, got {value!r}")
    return value


def _section(where: str, entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"phone profile {where}.{key}: missing or not an object")
    return value


def parse_profile(name: str, entry: Any, origin: str = "") -> PhoneProfile:
    """One profile from its JSON object; ConfigError naming the first missing or bad field."""
    from ..devices.qemu import parse_cpu

    if not isinstance(entry, dict):
        raise ConfigError(f"phone profile {name}: expected an object")
    for key in _KEYS:
        if key not in entry:
            raise ConfigError(f"phone profile {name}.{key}: missing")
    big, caches = _section(name, entry, "big"), _section(name, entry, "caches_kib")
    memory, calibration = _section(name, entry, "memory"), _section(name, entry, "calibration")
    sources = _section(name, entry, "sources")
    try:
        qemu_cpu = parse_cpu(_text(f"{name}.qemu_cpu", entry["qemu_cpu"]))
    except ConfigError as exc:
        raise ConfigError(f"phone profile {name}.qemu_cpu: {exc}") from None
    return PhoneProfile(
        name=name, label=_text(f"{name}.label", entry["label"]), soc=_text(f"{name}.soc", entry["soc"]),
        big_uarch=_text(f"{name}.big.uarch", big.get("uarch")), clock_ghz=_number(f"{name}.big.clock_ghz", big.get("clock_ghz")),
        little=_section(name, entry, "little"),
        l1_kib=int(_number(f"{name}.caches_kib.l1", caches.get("l1"))),
        l2_kib=int(_number(f"{name}.caches_kib.l2", caches.get("l2"))),
        l3_kib=int(_number(f"{name}.caches_kib.l3", caches.get("l3", 0), positive=False)),
        peak_gbs=_number(f"{name}.memory.peak_gbs", memory.get("peak_gbs")),
        single_core_gbs=_number(f"{name}.memory.single_core_gbs", memory.get("single_core_gbs")),
        latency_ns=_number(f"{name}.memory.latency_ns", memory.get("latency_ns")),
        qemu_cpu=qemu_cpu, llvm_mcpu=_text(f"{name}.llvm_mcpu", entry["llvm_mcpu"]),
        cycle_scale=_number(f"{name}.calibration.cycle_scale", calibration.get("cycle_scale")),
        band_pct=_number(f"{name}.calibration.band_pct", calibration.get("band_pct")),
        calibration_source=_text(f"{name}.calibration.source", calibration.get("source")),
        sources={str(k): str(v) for k, v in sources.items()}, origin=origin)


def user_phone_files() -> list[Path]:
    """The user's profile files: the profiles `calibrate` saved (saved_folder()/*.json), then $MOBILEDEPLOY_PHONES
    (paths separated by os.pathsep). A user's profile replaces a packaged one of the same name."""
    named = [Path(p).expanduser() for p in os.environ.get("MOBILEDEPLOY_PHONES", "").split(os.pathsep) if p]
    saved = sorted(saved_folder().glob("*.json"))
    return [*saved, *named]


def saved_folder() -> Path:
    """Where `calibrate` saves profiles: $MOBILEDEPLOY_PHONES_DIR, else <cache>/phones."""
    from ..files import cache_dir

    folder = os.environ.get("MOBILEDEPLOY_PHONES_DIR")
    return Path(folder).expanduser() if folder else cache_dir() / "phones"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read phone profiles {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"phone profiles {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("phones"), dict):
        raise ConfigError(f"phone profiles {path}: expected an object with a \"phones\" object")
    return data["phones"]


def load_phones(files: list[Path] | None = None) -> dict[str, PhoneProfile]:
    """Every profile: the packaged ones, then `files` (default: user_phone_files())."""
    profiles: dict[str, PhoneProfile] = {}
    for path in [PACKAGED, *(user_phone_files() if files is None else files)]:
        for name, entry in _read(path).items():
            profiles[name] = parse_profile(name, entry, origin=str(path))
    return profiles


def phone(name: str, files: list[Path] | None = None) -> PhoneProfile:
    """The profile called `name`; ConfigError listing the profiles there are."""
    profiles = load_phones(files)
    key = name.strip().lower()
    if key not in profiles:
        raise ConfigError(f"unknown phone {name!r}: choose one of {', '.join(sorted(profiles))} "
                          "(or add your own profile file with MOBILEDEPLOY_PHONES)")
    return profiles[key]


def check_phone(device: str, name: str) -> PhoneProfile:
    """The profile for `--phone NAME` on `device`, before any export: only a qemu: device whose core is the
    phone's runs that phone's kernels (ConfigError, one line, otherwise)."""
    from ..devices.kinds import device_uri, kind_of, parse_device_uri

    from .pipeline import require_tools

    profile = phone(name)
    cpu = parse_device_uri(device)[1]
    its_core = device_uri("qemu", profile.qemu_cpu)
    if kind_of(device).profiler != "arm":  # the emulated Arm cores' kind
        raise ConfigError(f"--phone estimates milliseconds from an emulated run: use --device {its_core} (not {device})")
    if cpu != profile.qemu_cpu:
        raise ConfigError(f"phone {profile.name} runs the kernels of {its_core}: use --device {its_core} (not {device})")
    require_tools()
    return profile
