"""Runtimes: how a model is timed — the `benchmark_model` binary (phones, over a transport), LiteRT and
ONNX Runtime in this process (`local`), and LiteRT counted on an emulated Arm64 core (`qemu:CPU`). A registry of name → class, loaded by name on first use."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Runtime, Transport

__all__ = ["Runtime", "Transport", "RUNTIMES", "runtime_class", "artifact_for"]

#: name → "module:Class"; adding a runtime is one file plus one line here. "NAME@KIND" is the class that runs under
#: that name on devices of that kind (ExecuTorch and ONNX Runtime in this process on local, counted under emulation on qemu)
RUNTIMES: dict[str, str] = {
    "benchmark_model": "mobiledeploy.runtimes.benchmark_model:BenchmarkModelRuntime",
    "litert": "mobiledeploy.runtimes.litert:LiteRTRuntime",
    "counted": "mobiledeploy.runtimes.counted:CountedRuntime",
    "onnxruntime": "mobiledeploy.runtimes.onnxruntime:OnnxRuntimeRuntime",
    "executorch": "mobiledeploy.runtimes.executorch:ExecuTorchRuntime",
    "executorch@qemu": "mobiledeploy.runtimes.counted_executorch:CountedExecuTorchRuntime",
    "executorch@adb": "mobiledeploy.runtimes.executor_runner:ExecutorRunnerRuntime",
    "onnxruntime@qemu": "mobiledeploy.runtimes.counted_onnxruntime:CountedOnnxRuntimeRuntime",
}


def runtime_class(name: str, kind: str | None = None) -> Any:
    """The class of runtime `name` (on devices of `kind`, where it has one of its own there)."""
    from ..errors import ConfigError

    if "@" in name or name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}: {', '.join(n for n in RUNTIMES if '@' not in n)}")
    module, _, cls = RUNTIMES.get(f"{name}@{kind}", RUNTIMES[name]).partition(":")
    return getattr(importlib.import_module(module), cls)


def artifact_for(runtime: str | None, precision: str) -> str:
    """The manifest artifact (`artifacts.<key>`: onnx, fp32, int8) that `runtime` times at `precision`; None, the
    device's default runtime, times the .tflite of that precision. ConfigError when the runtime has none."""
    if runtime is None:
        return precision
    from ..errors import ConfigError

    table = runtime_class(runtime).artifacts
    if precision not in table:
        raise ConfigError(f"{runtime} times {', '.join(table)} models, not {precision}: use --formats "
                          f"{','.join(table)}")
    return table[precision]
