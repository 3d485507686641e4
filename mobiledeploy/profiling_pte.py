"""`profile --runtime executorch`: where a .pte's work goes, beside LiteRT's profile of the same model.

- on `qemu:CPU`: exact Arm instructions per function of the timed runs (`qemu.et_profile`), by kernel kind beside
  each kind's share of the mult-adds, as `profile` gives for the .tflite on the same core (an `ArmProfile`);
- on `local`: ExecuTorch's ETDump of the .pte (`runtimes.executorch.pte_op_profile`), its rows joined to the
  model's layers by op type (`attribution.attribute`), as benchmark_model's XNNPACK rows of a .tflite are: the
  delegate's operators carry XNNPACK's operator names ("Convolution (NHWC, F32) IGEMM #3"), not the layers'.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_pte_profile", "pte_profile", "pte_arm_profile", "pte_local_profile", "pte_op_times", "PTE_NOTE"]

#: what the ETDump rows can and cannot be joined by
PTE_NOTE = ("ExecuTorch's ETDump names XNNPACK's operators, not the model's layers: joined by op type; portable "
            "ops (not delegated) by their names")


def check_pte_profile(runtime: str, device: str, phone: str | None) -> None:
    """ConfigError (one line, before any export) for a runtime `profile` does not take, or ExecuTorch where its
    profile is not made: a phone (`bench --runtime executorch --runner … --op-profiling` gives its ETDump rows)
    or `--phone` (the estimate is LiteRT's)."""
    from .devices.kinds import kind_of
    from .errors import ConfigError

    key = runtime.strip().lower()
    if key not in ("litert", "executorch"):
        raise ConfigError(f"--runtime takes litert or executorch (got {runtime!r})")
    if key == "executorch":
        from .converters.executorch import require_executorch

        require_executorch()
        if kind_of(device).profiler not in ("onnxruntime", "arm"):
            raise ConfigError(f"profile --runtime executorch runs on local and qemu:CPU, not {device} (on a phone: "
                              "bench --runtime executorch --runner PATH --op-profiling)")
        if phone is not None:
            raise ConfigError("--phone estimates LiteRT's instructions; it does not take --runtime executorch")


def pte_profile(device: str, ref: str, name: str, config: dict[str, Any], precision: str, size: Any, threads: int,
                runs: int, progress: Any) -> Any:
    """Export (reusing) the model's .pte of `precision`, then its profile on `device` (local or qemu:CPU)."""
    from .devices import parse_device_uri
    from .devices.kinds import kind_of
    from .measure import prepare_targets
    from .registry import config_slug

    (target,) = prepare_targets([ref], (precision,), size, progress, runtimes=("executorch",))
    progress(f"op profile {target.name} ({target.precision}) on {device}")
    if kind_of(device).profiler == "arm":
        return pte_arm_profile(parse_device_uri(device)[1], target, name, config, runs=min(runs, 2))
    label = config_slug(name, {k: v for k, v in config.items() if k != "input_shape"})
    return pte_local_profile(target, name, config, label, threads=threads, runs=runs)


def pte_arm_profile(cpu: str, target: Any, name: str, config: dict[str, Any], runs: int = 2) -> Any:
    """Exact instructions per function and kernel kind of the .pte `target` on the emulated `cpu` (an
    `qemu.profile.ArmProfile`); RunnerError when the profiled run counted nothing."""
    from pathlib import Path

    from .errors import RunnerError
    from .profiling import macs_by_op
    from .qemu.env import environment
    from .qemu.et_profile import run_pte_profile
    from .qemu.executorch_env import executorch_guest
    from .qemu.profile import attribute
    from .runtimes import artifact_for

    env = environment()
    blocks, maps, per_run = run_pte_profile(env, executorch_guest(env.root), cpu, Path(target.artifact), runs=runs)
    if not blocks or not maps:
        raise RunnerError(f"the profiled ExecuTorch run of {target.name} on {cpu} recorded no blocks")
    profile = attribute(blocks, maps, len(per_run), model=target.name, precision=target.precision,
                        artifact=artifact_for("executorch", target.precision), cpu=cpu,
                        macs_by_op=macs_by_op(name, config, target))
    return profile


def pte_local_profile(target: Any, name: str, config: dict[str, Any], label: str, threads: int = 1,
                      runs: int = 20) -> Any:
    """The .pte's ETDump on this host joined to the layers by op type (an `attribution.Attribution`)."""
    from pathlib import Path

    from .attribution import attribute
    from .profiling import target_analysis
    from .runtimes.executorch import pte_op_profile

    rows = pte_op_profile(Path(target.artifact), runs=runs, threads=threads)
    width = 1 if target.precision.endswith("int8") else 4
    report = attribute(target_analysis(name, config, target).layers, pte_op_times(rows),
                       bytes_per_element=width, model=label, precision=target.precision)
    report.notes.append(PTE_NOTE)
    return report


def pte_op_times(rows: list[dict[str, Any]]) -> Any:
    """ETDump rows (`runtimes.pte_profile.rows_from_etdump`) → an `attribution.OpProfile` (median ms per op)."""
    from .attribution import OpProfile, op_times_from_profile

    ops = op_times_from_profile([dict(r, avg_ms=r["median_ms"]) for r in rows]).ops
    for op, row in zip(ops, rows):
        op.category = _pte_category(row, op.category)
    return OpProfile(ops, "ExecuTorch ETDump (Inspector)")


def _pte_category(row: dict[str, Any], category: str) -> str:
    """The category of one ETDump row: 'outside kernels' is the runtime's ('other'); a portable op by its aten
    name; XNNPACK's IGEMM / GEMM convolutions as 'conv_any', because XNNPACK runs 1x1 and grouped convs as
    either (ShuffleNet's grouped 1x1 convs are IGEMM), so the operator's name does not say the layer's kind."""
    if row["node_type"] == "outside kernels":
        return "other"
    if not row["delegated"]:
        return _portable_category(row["name"])
    if "Convolution" in row["node_type"] and "DWConv" not in row["node_type"]:
        return "conv_any"
    return category


def _portable_category(op_name: str) -> str:
    """'native_call_avg_pool2d.out' → 'pool', and so on (ExecuTorch's portable op names are aten's)."""
    for needle, category in (("pool", "pool"), ("convolution", "conv_any"), ("add", "add"), ("cat", "concat"),
                             ("permute", "shuffle"), ("view", "reshape"), ("clone", "reshape"), ("mm", "fc"),
                             ("quantize", "quantize")):
        if needle in op_name:
            return category
    return "elementwise"
