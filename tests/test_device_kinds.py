"""Device kinds are declared once (devices/kinds.py); commands ask them instead of comparing URIs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from mobiledeploy.devices.base import Device
from mobiledeploy.devices.kinds import GATE_DEFAULTS, KINDS, gate_options, kind_of, runtime_for
from mobiledeploy.errors import ConfigError
from mobiledeploy.artifact_kinds import ARTIFACT_KINDS
from mobiledeploy.runtimes import RUNTIMES, runtime_class

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_names_a_device_class(name):
    module, _, cls = KINDS[name].device_class.partition(":")
    assert issubclass(getattr(importlib.import_module(module), cls), Device)


def test_uris_map_to_their_kind_and_its_defaults():
    assert kind_of("local").host_cpus and not kind_of("local").exact
    assert kind_of("adb:192.168.1.20:5555").accelerators and kind_of("adb:X").reached_by_adb
    emulated = kind_of("qemu:cortex-a53")
    assert emulated.exact and emulated.one_thread and emulated.unit == "instructions" and emulated.session_plan
    assert gate_options("local") == GATE_DEFAULTS and gate_options("adb:X")["rounds"] < GATE_DEFAULTS["rounds"]
    with pytest.raises(ConfigError, match="unknown device"):
        kind_of("ssh:board")


def test_each_kind_offers_registered_runtimes_and_refuses_others_in_one_line():
    assert all(set(kind.runtimes) <= set(RUNTIMES) and kind.runtimes for kind in KINDS.values())
    assert (runtime_for("local"), runtime_for("adb:X"), runtime_for("qemu:cortex-a53")) == (
        "litert", "benchmark_model", "counted")
    assert runtime_for("local", " LiteRT ") == "litert"
    with pytest.raises(ConfigError, match=r"^--runtime litert is not available on adb devices \(runtimes there: "
                                          r"benchmark_model, executorch\)$"):
        runtime_for("adb:X", "litert")
    with pytest.raises(ConfigError, match="--runtime tensorrt is not available on local devices"):
        runtime_for("local", "tensorrt")


#: a URI compared with a kind name; a device URI split or partitioned by hand; a URI written by hand
URI_LEAKS = re.compile(r"""(==|!=)\s*["'](local|adb|qemu)["']|startswith\(\s*["'](local|adb|qemu)"""
                       r"""|\w*(device|uri)\w*\)?\.(r?split|r?partition)\(\s*["']:"""
                       r"""|f["'](local|adb|qemu):\{""", re.IGNORECASE)


@pytest.mark.parametrize("line", ['if uri == "adb":', 'kind = device.split(":", 1)[0]', 'b.device.partition(":")',
                                  'result.device.rsplit(":")[-1]', 'device_uri.rpartition(":")', 'f"qemu:{cpu}"'])
def test_the_leak_pattern_sees_uri_splitting_and_building(line):
    assert URI_LEAKS.search(line)
    assert not URI_LEAKS.search('ref.partition(":")') and not URI_LEAKS.search('kind_name(b.device) == kind')


def test_no_module_outside_devices_compares_splits_or_builds_a_device_uri():
    offenders = []
    for folder in ("mobiledeploy", "converters", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            if "devices" in path.relative_to(REPO).parts:
                continue
            offenders += [f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                          if URI_LEAKS.search(line)]
    assert offenders == [], offenders


@pytest.mark.parametrize("entry", sorted(RUNTIMES))
def test_every_runtime_is_registered_under_its_name_and_times_artifact_kinds_of_their_precision(entry):
    name, _, kind = entry.partition("@")  # NAME@KIND: the class that runs under that name on that kind
    runtime = runtime_class(name, kind or None)
    assert runtime.name == name and runtime.artifacts and callable(runtime.run)
    assert all(ARTIFACT_KINDS[key].precision == precision for precision, key in runtime.artifacts.items())
    with pytest.raises(ConfigError, match="unknown runtime"):
        runtime_class("onnxruntime-mobile")
