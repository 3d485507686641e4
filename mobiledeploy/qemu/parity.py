"""Arm parity: the aarch64 LiteRT on an emulated core computes what the host's LiteRT computes.

fp32 may differ in the last bits (NEON vs AVX kernels sum in another order): judged like the
export's fp32 step, by the largest error relative to the output range. int8 is integer arithmetic
with the same requantisation on both, so it is expected to match exactly; the largest difference
in quantisation steps is recorded and more than one step fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .env import Environment
from .run import run_guest

__all__ = ["host_outputs", "host_run", "seeded_inputs", "arm_parity", "compare_outputs", "FP32_ARM_TOLERANCE", "INT8_MAX_STEPS"]

FP32_ARM_TOLERANCE = 1e-5
INT8_MAX_STEPS = 1


def seeded_inputs(model: Path, seed: int = 0) -> list[Any]:
    """The seeded inputs `make_inputs` gives `model`, as arrays (fed identically to host and guest)."""
    from ai_edge_litert.interpreter import Interpreter

    from .guest import make_inputs

    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    make_inputs(interpreter, seed)
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_input_details()]


def host_outputs(model: Path, inputs: list[Any]) -> list[Any]:
    """The host LiteRT's raw outputs of `model` on `inputs` (already in the inputs' dtypes)."""
    return host_run(model, inputs)[0]


def host_run(model: Path, inputs: list[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """The host LiteRT's raw outputs and the output details (dtype, quantisation) to read them with."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    details = interpreter.get_output_details()
    return [interpreter.get_tensor(d["index"]).copy() for d in details], details


def arm_parity(env: Environment, cpu: str, model: Path, seed: int = 0) -> dict[str, Any]:
    """Run `model` on the host and on the emulated `cpu` with the same seeded inputs and compare."""
    inputs = seeded_inputs(model, seed)
    guest = run_guest(env, cpu, model, runs=1, warmup=0, inputs=inputs, want_outputs=True)
    return {"cpu": cpu, **compare_outputs(host_outputs(model, inputs), guest.outputs)}


def compare_outputs(host: list[Any], arm: list[Any]) -> dict[str, Any]:
    """int8: the largest difference in quantisation steps; float: the largest error relative to the range."""
    import numpy as np

    if len(arm) != len(host) or any(a.shape != h.shape for a, h in zip(arm, host)):
        return {"passed": False, "error": "the Arm outputs differ in number or shape from the host's"}
    if all(np.dtype(h.dtype).kind in "iu" for h in host):
        steps = max(int(np.max(np.abs(a.astype(np.int64) - h.astype(np.int64)))) for a, h in zip(arm, host))
        return {"dtype": str(host[0].dtype), "max_steps": steps, "identical": steps == 0,
                "tolerance_steps": INT8_MAX_STEPS, "passed": steps <= INT8_MAX_STEPS}
    rel = max_abs = 0.0
    for a, h in zip(arm, host):
        a64, h64 = a.astype(np.float64), h.astype(np.float64)
        diff = float(np.max(np.abs(a64 - h64)))
        span = float(np.max(h64) - np.min(h64)) or 1.0
        max_abs, rel = max(max_abs, diff), max(rel, diff / span)
    finite = all(bool(np.all(np.isfinite(a))) for a in arm)
    return {"dtype": str(host[0].dtype), "max_abs": max_abs, "max_rel": rel, "tolerance": FP32_ARM_TOLERANCE,
            "passed": finite and rel <= FP32_ARM_TOLERANCE}
