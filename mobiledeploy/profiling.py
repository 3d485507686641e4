"""Per-op attribution of measured time to the analysed layers: which ops take the time their MACs do not explain.

Locally ONNX Runtime's profiler times the fp32 ONNX model; on a phone benchmark_model's op profiling
times each precision. Both are joined to the layer analysis by `mobiledeploy.attribution`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["attribute_models", "macs_by_op", "profile_target", "target_analysis"]


def attribute_models(device: str, targets: list[Any], configs: dict[str, tuple[str, dict[str, Any]]],
                     labels: dict[str, str], options: Any, adb_server: str | None, db: str | None,
                     progress: Any) -> list[Any]:
    """Per-op attribution of every model at the smallest size: ONNX Runtime's profiler locally
    (fp32 ONNX), benchmark_model's op profiling on a phone (each precision)."""
    from .compare import format_resolution, slug_key
    from .errors import MobiledeployError

    smallest = min({tuple(t.resolution) for t in targets}, key=lambda r: r[0] * r[1])
    chosen = [t for t in targets if tuple(t.resolution) == smallest]
    from .devices.kinds import kind_of

    if kind_of(device).profiler == "onnxruntime":  # ONNX Runtime profiles the fp32 ONNX model, once per model
        chosen = list({slug_key(t.name): t for t in chosen}.values())
    out = []
    for target in chosen:
        key = slug_key(target.name)
        arch, config = configs.get(key, (None, None))
        if arch is None:
            continue
        progress(f"op profile {labels.get(key, key)} {target.precision} {format_resolution(smallest)}")
        try:
            out.append(profile_target(device, target, arch, config, labels.get(key, key), options, adb_server, db))
        except MobiledeployError as exc:
            sys.stderr.write(f"mobiledeploy: warning: no per-layer attribution for {labels.get(key, key)}: {exc}\n")
    return out


def target_analysis(arch: str, config: dict[str, Any], target: Any) -> Any:
    """The layer analysis of a benchmarked target: per module for the zoo and a user's callable, per node of
    the exported model.onnx beside it for an ONNX file or an ExportedProgram (no modules to count)."""
    from .analysis import analyse
    from .registry import get_spec

    spec = get_spec(arch)
    options = {k: v for k, v in config.items() if k != "input_shape"}
    if spec.source and spec.source["kind"] != "callable":
        from .analysis_onnx import analyse_onnx

        return analyse_onnx(Path(target.artifact).parent / "model.onnx", arch=spec.name, config=options)
    return analyse(arch, f"{target.resolution[0]}x{target.resolution[1]}", **options)


def macs_by_op(arch: str, config: dict[str, Any], target: Any) -> dict[str, int]:
    """The target's mult-adds summed per op type (conv, dwconv, linear, ...): what an Arm profile's kernel kinds
    are set beside."""
    from collections import Counter

    macs: Counter = Counter()
    for layer in target_analysis(arch, config, target).layers:
        macs[layer.op] += layer.macs
    return dict(macs)


def profile_target(device: str, target: Any, arch: str, config: dict[str, Any], label: str, options: Any,
                   adb_server: str | None, db: str | None, runs: int = 20) -> Any:
    """One model's attribution: op times (ORT locally / benchmark_model on adb) joined to its analysis."""
    from dataclasses import replace

    from .attribution import attribute, onnx_op_times, op_times_from_profile
    from .errors import RunnerError

    from .devices.kinds import kind_of

    report = target_analysis(arch, config, target)
    if kind_of(device).profiler == "onnxruntime":
        from .converters.manifest import read_manifest

        folder = Path(target.artifact).parent
        onnx_path = folder / read_manifest(folder).artifacts["onnx"].path
        profile = onnx_op_times(onnx_path, runs=runs, threads=options.threads)
        precision, width = "fp32", 4
    else:
        from .bench import run_bench

        prof_options = replace(options, op_profiling=True, runs=runs)
        run = run_bench(device, [target], prof_options, rounds=1, db=db, adb_server=adb_server)
        result = run.results[0]
        if not result.ok or not result.op_profile:
            raise RunnerError(f"op profiling of {label} gave no per-op table: {result.error or 'empty profile'}")
        profile = op_times_from_profile(result.op_profile, target.artifact)
        precision, width = target.precision, (1 if target.precision == "int8" else 4)
    return attribute(report.layers, profile, bytes_per_element=width, model=label, precision=precision)
