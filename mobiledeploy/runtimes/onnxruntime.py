"""ONNX Runtime in this process: the `local` device's second runtime. It times an artifact's model.onnx (fp32,
NCHW) on the CPU execution provider with the same phases, timed loop and statistics as LiteRT
(`runtimes.inprocess`), so one model can be timed by both, interleaved, in one session."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact_kinds import artifacts_read_as
from ..errors import RunnerError
from .inprocess import InProcessRuntime, time_phases

if TYPE_CHECKING:
    from ..records import BenchOptions, RunResult

__all__ = ["OnnxRuntimeRuntime", "onnx_session", "bind_inputs", "time_onnx"]

_FLOATS = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


class OnnxRuntimeRuntime(InProcessRuntime):
    """Times a .onnx in this process (CPUExecutionProvider, every graph optimisation); reports per-run timings
    and memory growth. The export's fp32 ONNX model is what it times: no int8 ONNX model is exported."""

    name = "onnxruntime"
    artifacts = artifacts_read_as(".onnx")

    def time_file(self, model: Path, **how: Any) -> dict[str, Any]:
        return time_onnx(model, **how)

    def describe(self, model: Path, options: "BenchOptions", result: "RunResult", timing: dict[str, Any]) -> None:
        import onnxruntime

        result.observed.update(runner="onnxruntime", execution_provider="CPUExecutionProvider",
                               graph_optimization="all", input_dtypes=timing["input_dtypes"])
        result.versions["onnxruntime"] = onnxruntime.__version__


def onnx_session(model: Path, threads: int = 1) -> Any:
    """An InferenceSession of `model` on the CPU: `threads` intra-op threads (1: the calling thread only),
    operators run one after another, every graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a file it cannot load
        raise RunnerError(f"onnxruntime cannot load {model.name}: {' '.join(str(exc).split())}") from None


def bind_inputs(session: Any, seed: int = 0) -> tuple[Any, dict[str, Any], list[str]]:
    """Seeded inputs (as LiteRT's runs get: standard normal, a batch of one where the batch is dynamic) bound
    once, outputs bound to arrays allocated once: (io_binding, {input name: array}, input dtypes)."""
    import numpy as np
    import onnxruntime as ort

    from ..qemu.guest import input_data

    rng = np.random.default_rng(seed)
    binding, feeds, dtypes = session.io_binding(), {}, []
    for node in session.get_inputs():
        if node.type not in _FLOATS:
            raise RunnerError(f"onnxruntime runtime: input {node.name} is {node.type}; only float inputs are fed")
        dtype = np.dtype(_FLOATS[node.type])
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in node.shape]
        feeds[node.name] = np.ascontiguousarray(input_data(rng, dtype, shape, None))
        binding.bind_cpu_input(node.name, feeds[node.name])
        dtypes.append(dtype.name)
    for node in session.get_outputs():
        static = all(isinstance(d, int) and d > 0 for d in node.shape)
        if static and node.type in _FLOATS:
            out = ort.OrtValue.ortvalue_from_numpy(np.empty(node.shape, dtype=_FLOATS[node.type]))
            binding.bind_ortvalue_output(node.name, out)
        else:
            binding.bind_output(node.name, "cpu")
    return binding, feeds, dtypes


def time_onnx(model: Path, *, threads: int = 1, runs: int = 50, warmup: int = 5, min_secs: float = 0.0,
              cpu_mask: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Load `model` in ONNX Runtime and time it (`inprocess.time_phases`: init = session creation, graph
    optimisation included; first, warm-up, the timed loop of run_with_iobinding, cpu_share, memory growth)."""
    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")

    def prepare(session: Any) -> tuple[Any, dict[str, Any]]:
        binding, _, dtypes = bind_inputs(session, seed)
        return partial(session.run_with_iobinding, binding), {"input_dtypes": dtypes}

    return time_phases(lambda: onnx_session(model, threads), prepare, threads=threads, runs=runs, warmup=warmup,
                       min_secs=min_secs, cpu_mask=cpu_mask)
