"""android_harness/run.sh, the POSIX-sh script pushed to a phone, and the key=value block it prints.

The block carries the device's facts (getprop, cpufreq, thermal zones) and, after a run, the core
mask used and the runner's exit status. The adb transport reads facts from it (`info`); the
benchmark_model runtime reads the run's part.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import RunnerError

__all__ = ["harness_script", "split_harness_output", "parse_harness_block", "facts_from_block", "BEGIN", "END"]

BEGIN, END = "MOBILEDEPLOY-BEGIN", "MOBILEDEPLOY-END"


def harness_script() -> Path:
    """android_harness/run.sh as installed (package data of mobiledeploy.android_harness)."""
    try:
        path = Path(str(resources.files("mobiledeploy.android_harness") / "run.sh"))
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[2] / "android_harness" / "run.sh"
    if not path.is_file():
        raise RunnerError(f"the device harness script is missing: {path}")
    return path


def split_harness_output(stdout: str) -> tuple[dict[str, str] | None, str]:
    """(the key=value block, everything the runner printed) from the harness's stdout."""
    begin = stdout.rfind(BEGIN)
    end = stdout.find(END, begin + 1) if begin >= 0 else -1
    if begin < 0 or end < 0:
        return None, stdout
    return parse_harness_block(stdout[begin + len(BEGIN):end]), stdout[:begin]


def parse_harness_block(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _celsius(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value / 1000.0 if abs(value) >= 1000 else value  # sysfs: millidegrees (a few report degrees)


def facts_from_block(block: dict[str, str]) -> dict[str, Any]:
    """The harness's key=value block → device facts in the toolkit's vocabulary."""
    prop = lambda name: block.get(f"prop.{name}") or None  # noqa: E731
    facts: dict[str, Any] = {
        "kind": "android",
        "model": prop("ro.product.model"),
        "manufacturer": prop("ro.product.manufacturer"),
        "device": prop("ro.product.device"),
        "soc": prop("ro.soc.model") or prop("ro.board.platform"),
        "board_platform": prop("ro.board.platform"),
        "abi": prop("ro.product.cpu.abi"),
        "android_release": prop("ro.build.version.release"),
        "sdk": prop("ro.build.version.sdk"),
        "cores": int(block["cores"]) if block.get("cores", "").isdigit() else None,
        "cpu_max_khz": {}, "governors": {}, "thermal_zones": {}, "thermal_before": {}, "thermal_after": {},
    }
    for key, value in block.items():
        _fact_from_key(facts, key.split("."), value)
    if "cpu_mask" in block:
        facts["cpu_mask"] = block["cpu_mask"]
        facts["taskset"] = block.get("taskset") == "1"
    facts["harness_version"] = block.get("harness_version")
    return facts


def _fact_from_key(facts: dict[str, Any], parts: list[str], value: str) -> None:
    if parts[0] == "cpu" and len(parts) == 3:
        if parts[2] == "max_khz":
            facts["cpu_max_khz"][parts[1]] = int(value) if value.isdigit() else value
        elif parts[2] == "governor":
            facts["governors"][parts[1]] = value
    elif parts[0] == "thermal" and len(parts) == 3 and parts[2] == "type":
        facts["thermal_zones"][parts[1]] = value
    elif parts[0] in ("thermal_before", "thermal_after") and len(parts) == 2:
        if (celsius := _celsius(value)) is not None:
            facts[parts[0]][parts[1]] = celsius
