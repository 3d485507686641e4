"""What runs inside the emulated Arm64 userland for ONNX Runtime: load a .onnx on the CPU execution provider
(one thread, operators in sequence, every graph optimisation: as `runtimes.onnxruntime` on the host), bracket
each phase with the marker syscall that the `insn_count` plugin turns into an exact instruction count.

Run by the aarch64 Python with the onnxruntime wheel on PYTHONPATH (`qemu/onnxruntime_env.py`); it imports
only the standard library, numpy, onnxruntime and `guest` beside it (its markers and seeded inputs), so the
request and reply are those of `guest.py`:

    python3.11 guest_onnx.py REQUEST.json
"""

from __future__ import annotations

import os
import sys
from typing import Any

# ONNX Runtime's Linux build carries Microsoft's 1DS telemetry (libonnxruntime.so: OneDsTelemetry, the
# ORT_DISABLE_TELEMETRY switch, the offline store ~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db):
# `import onnxruntime` starts its worker thread, which wakes on timers, writes that SQLite file (the host's own,
# shared by every process) and tries HTTPS uploads on more threads (2 to 8 guest threads seen). The plugin sums every
# thread's instructions, and that state moves the main thread's heap, so two processes counted different medians
# (324,037 / 324,043 / 324,051 in 15 processes beside a CPU hog). Read when the library loads: set before importing.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from guest import MARK, PHASES, input_data, main, open_marks, run_phases, with_maps  # noqa: E402

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _session(model: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _feeds(session: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The request's inputs, or seeded ones as the host's ONNX Runtime runs get (a batch of one where dynamic)."""
    import numpy as np

    nodes = session.get_inputs()
    if request.get("inputs"):
        given = list(np.load(request["inputs"], allow_pickle=False).values())
        return {node.name: np.ascontiguousarray(value, dtype=_DTYPES.get(node.type, "float32"))
                for node, value in zip(nodes, given)}
    rng = np.random.default_rng(int(request.get("seed", 0)))
    return {node.name: np.ascontiguousarray(input_data(
        rng, np.dtype(_DTYPES.get(node.type, "float32")), [d if isinstance(d, int) and d > 0 else 1 for d in node.shape],
        None)) for node in nodes}


def measure(request: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import onnxruntime  # before the first marker, as guest.py imports LiteRT (its loading is not a phase)

    mark = open_marks(request)
    mark(MARK, PHASES["init"])
    session = _session(request["model"], int(request.get("threads", 1)))
    mark(MARK, PHASES["init"])
    feeds = _feeds(session, request)
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    for node in session.get_outputs():
        binding.bind_output(node.name, "cpu")

    def save_outputs(path: str) -> None:
        np.savez(path, **{f"o{i}": out for i, out in enumerate(binding.copy_outputs_to_cpu())})

    run_phases(mark, request, save_outputs, session.run_with_iobinding, binding)
    return with_maps(request, {"input_dtypes": [str(v.dtype) for v in feeds.values()],
                               "delegation": {"execution_providers": session.get_providers()},
                               "version": onnxruntime.__version__})


if __name__ == "__main__":
    sys.exit(main(sys.argv, measure))
