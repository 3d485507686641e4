"""Runtimes: how a model is timed — the `benchmark_model` binary (phones, over a transport) and LiteRT
in this process (`local`) and LiteRT counted on an emulated Arm64 core (`qemu:CPU`). A registry of name → class, loaded by name on first use."""

from __future__ import annotations

import importlib
from typing import Any

from .base import REPORTS, Runtime, Transport

__all__ = ["Runtime", "Transport", "REPORTS", "RUNTIMES", "runtime_class"]

#: name → "module:Class"; adding a runtime is one file plus one line here
RUNTIMES: dict[str, str] = {
    "benchmark_model": "mobiledeploy.runtimes.benchmark_model:BenchmarkModelRuntime",
    "litert": "mobiledeploy.runtimes.litert:LiteRTRuntime",
    "counted": "mobiledeploy.runtimes.counted:CountedRuntime",
}


def runtime_class(name: str) -> Any:
    from ..errors import ConfigError

    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}: {', '.join(RUNTIMES)}")
    module, _, cls = RUNTIMES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
