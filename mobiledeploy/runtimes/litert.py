"""In-process LiteRT: the `local` device's runtime. The interpreter (XNNPACK, given threads) is loaded in
this process and every run is timed here with perf_counter_ns, nothing but the clock around invoke()."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunnerError
from ..qemu.guest import delegation, make_inputs  # one definition each, shared with the emulated Arm runs
from ..artifact_kinds import artifacts_read_as
from .inprocess import InProcessRuntime, big_cores, time_phases, timed_loop

if TYPE_CHECKING:
    from ..records import BenchOptions, RunResult

__all__ = ["LiteRTRuntime", "input_details", "time_tflite", "timed_loop", "big_cores", "make_inputs", "delegation_record"]


def input_details(model: str | Path) -> list[dict[str, Any]]:
    """The input tensors of a .tflite (name, shape, dtype, quantisation), read without allocating it."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(model)).get_input_details()


class LiteRTRuntime(InProcessRuntime):
    """Times a .tflite in this process; reports per-run timings, memory growth and XNNPACK's delegation."""

    name = "litert"
    artifacts = artifacts_read_as(".tflite")

    def time_file(self, model: Path, **how: Any) -> dict[str, Any]:
        return time_tflite(model, **how)

    def describe(self, model: Path, options: "BenchOptions", result: "RunResult", timing: dict[str, Any]) -> None:
        result.observed.update(runner="litert-interpreter", delegate="xnnpack (LiteRT default)",
                               input_dtypes=timing["input_dtypes"], delegation=delegation_record(timing["delegation"]))


def time_tflite(model: Path, *, threads: int = 1, runs: int = 50, warmup: int = 5, min_secs: float = 0.0,
                cpu_mask: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Load `model` in the LiteRT interpreter and time it (`inprocess.time_phases`: init = interpreter creation +
    allocate_tensors, first, warm-up, the timed loop, cpu_share, memory growth, CPUs), plus the input dtypes
    and XNNPACK's delegation."""
    from ai_edge_litert.interpreter import Interpreter

    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")

    def load() -> Any:
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        interpreter.allocate_tensors()
        return interpreter

    def prepare(interpreter: Any) -> tuple[Any, dict[str, Any]]:
        return interpreter.invoke, {"input_dtypes": make_inputs(interpreter, seed), "delegation": delegation(interpreter)}

    return time_phases(load, prepare, threads=threads, runs=runs, warmup=warmup, min_secs=min_secs, cpu_mask=cpu_mask)


def delegation_record(found: dict[str, Any]) -> dict[str, Any]:
    """XNNPACK's share of the graph in the record adb runs use (config.delegation): nodes, partitions, and the
    nodes TFLite runs with its own kernels, by op type."""
    return {"accelerator": "cpu", "delegate": "TfLiteXNNPackDelegate", **found,
            "cpu_nodes": found["nodes"] - found["delegated_nodes"]}


