"""What runs inside the emulated Arm64 userland: load a .tflite in LiteRT, bracket each phase with a
marker syscall that the `insn_count` QEMU plugin turns into an exact instruction count.

This file is copied into the emulated run and executed by the aarch64 Python there, which has
only the standard library, numpy and ai-edge-litert: nothing of mobiledeploy is importable, so
this module imports nothing else of it. The host imports the same functions (`make_inputs`,
`delegation`) so both sides feed a model the same seeded data and read its delegation the same way.

    python3.11 guest.py REQUEST.json      (in the guest; the reply is REQUEST.json's "reply" path)

Request keys: model, threads, runs, warmup, seed, marker (syscall number), profile (bool),
inputs (optional .npy list file of input tensors to feed instead of seeded data), outputs (optional
path of an .npz to write the first run's outputs to), reply (JSON path written at the end).
Marker a1 codes: 1 = phase boundary (a2 names the phase), 2/3 = profile window open/close.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARK = 1
PROFILE_BEGIN = 2
PROFILE_END = 3

#: a2 of the phase markers, in the order they are issued
PHASES = {"null": 0, "init": 1, "first": 2, "warmup": 3, "run": 4}


def make_inputs(interpreter: Any, seed: int = 0) -> list[str]:
    """Set every input to seeded data of its dtype; integer inputs through their quantization."""
    import numpy as np

    rng = np.random.default_rng(seed)
    dtypes = []
    for detail in interpreter.get_input_details():
        dtype, shape = np.dtype(detail["dtype"]), detail["shape"]
        interpreter.set_tensor(detail["index"], input_data(rng, dtype, shape, detail.get("quantization")))
        dtypes.append(dtype.name)
    return dtypes


def input_data(rng: Any, dtype: Any, shape: Any, quant: Any) -> Any:
    """Roughly what a mean/std-normalised image looks like, in `dtype` (quantised when integer)."""
    import numpy as np

    real = rng.standard_normal(shape)
    if dtype.kind == "f":
        return real.astype(dtype)
    if dtype.kind == "b":
        return real > 0
    if quant and quant[0]:
        return quantize(real, dtype, quant)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def quantize(real: Any, dtype: Any, quant: Any) -> Any:
    """Real values into an integer tensor's (scale, zero_point), rounded and clipped to its dtype: the one
    input quantisation, on the host (parity feeds) and in the guest alike."""
    import numpy as np

    scale, zero_point = quant
    info = np.iinfo(dtype)
    return np.clip(np.round(real / scale) + zero_point, info.min, info.max).astype(dtype)


def delegation(interpreter: Any) -> dict[str, Any]:
    """How the loaded graph runs: delegate partitions and the nodes left to TFLite's own kernels.

    The interpreter lists every node, the replaced ones included, so the executed plan is found by
    walking back from the outputs: a tensor made by a DELEGATE node needs that partition; any other
    producer is a node TFLite runs itself.
    """
    ops = interpreter._get_ops_details()
    producer: dict[int, dict[str, Any]] = {}
    for op in ops:  # a DELEGATE node, listed after the nodes it replaced, wins over them
        for tensor in op["outputs"]:
            producer[int(tensor)] = op
    needed = [int(t) for t in interpreter._interpreter.OutputIndices()]
    seen_tensors: set[int] = set()
    executed: dict[int, dict[str, Any]] = {}
    while needed:
        tensor = needed.pop()
        if tensor in seen_tensors or tensor < 0:
            continue
        seen_tensors.add(tensor)
        op = producer.get(tensor)
        if op is None or op["index"] in executed:
            continue
        executed[op["index"]] = op
        needed.extend(int(t) for t in op["inputs"])
    partitions = [op for op in executed.values() if op["op_name"] == "DELEGATE"]
    own = sorted((op for op in executed.values() if op["op_name"] != "DELEGATE"), key=lambda op: op["index"])
    left: dict[str, int] = {}
    for op in own:
        left[op["op_name"]] = left.get(op["op_name"], 0) + 1
    graph_nodes = sum(op["op_name"] != "DELEGATE" for op in ops)
    return {"partitions": len(partitions), "nodes": graph_nodes, "delegated_nodes": graph_nodes - len(own),
            "not_delegated": left, "kernel_nodes": [_node_types(interpreter, op) for op in own]}


def _node_types(interpreter: Any, op: dict[str, Any]) -> dict[str, Any]:
    """{"node", "op", "inputs": [dtype of each input], "scales": [[scale, zero point] of each input, then the
    output]} of a node TFLite runs itself (scale 0.0: not quantised)."""
    import numpy as np

    details = [interpreter._get_tensor_details(int(t), 0) for t in [*op["inputs"], *op["outputs"][:1]] if int(t) >= 0]
    types = [np.dtype(d["dtype"]).name for d in details[:-1]]
    scales = [[float(d["quantization"][0]), int(d["quantization"][1])] for d in details]
    return {"node": int(op["index"]), "op": op["op_name"], "inputs": types, "scales": scales}


def _marker(number: int) -> Any:
    import ctypes

    syscall = ctypes.CDLL(None, use_errno=True).syscall
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_long]

    def mark(code: int, arg: int = 0) -> None:
        syscall(number, code, arg)

    return mark


def open_marks(request: dict[str, Any]) -> Any:
    """The marker function of the request, after three empty brackets: the cost of the bracket itself, which
    the host subtracts."""
    mark = _marker(int(request["marker"]))
    for _ in range(3):
        mark(MARK, PHASES["null"])
        mark(MARK, PHASES["null"])
    return mark


def run_phases(mark: Any, request: dict[str, Any], save_outputs: Any, invoke: Any, *args: Any) -> None:
    """`invoke(*args)` bracketed: the first inference (then `save_outputs(path)` when the request names one), the
    warm-up runs, the measured runs (inside the profile window when the request asks for a profile)."""
    mark(MARK, PHASES["first"])
    invoke(*args)
    mark(MARK, PHASES["first"])
    if request.get("outputs"):
        save_outputs(request["outputs"])
    for _ in range(int(request.get("warmup", 0))):
        mark(MARK, PHASES["warmup"])
        invoke(*args)
        mark(MARK, PHASES["warmup"])
    profile = bool(request.get("profile"))
    if profile:
        mark(PROFILE_BEGIN, 0)
    for _ in range(int(request.get("runs", 1))):
        mark(MARK, PHASES["run"])
        invoke(*args)
        mark(MARK, PHASES["run"])
    if profile:
        mark(PROFILE_END, 0)


def with_maps(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """The reply, with the guest's memory map when profiled (the host attributes addresses with it)."""
    if request.get("profile"):
        with open("/proc/self/maps") as f:
            reply["maps"] = f.read()
    return reply


def measure(request: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    mark = open_marks(request)
    mark(MARK, PHASES["init"])
    interpreter = Interpreter(model_path=request["model"], num_threads=int(request.get("threads", 1)))
    interpreter.allocate_tensors()
    mark(MARK, PHASES["init"])
    if request.get("inputs"):
        feeds = list(np.load(request["inputs"], allow_pickle=False).values())
        details = interpreter.get_input_details()
        for detail, value in zip(details, feeds):
            interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
        dtypes = [np.dtype(d["dtype"]).name for d in details]
    else:
        dtypes = make_inputs(interpreter, int(request.get("seed", 0)))

    def save_outputs(path: str) -> None:
        np.savez(path, **{f"o{i}": interpreter.get_tensor(d["index"])
                          for i, d in enumerate(interpreter.get_output_details())})

    run_phases(mark, request, save_outputs, interpreter.invoke)
    return with_maps(request, {"input_dtypes": dtypes, "delegation": delegation(interpreter)})


def main(argv: list[str], measure_request: Any = None) -> int:
    """Read the request file argv[1], measure (`measure`, or another guest's), write the reply it names."""
    with open(argv[1]) as f:
        request = json.load(f)
    reply = (measure_request or measure)(request)
    with open(request["reply"], "w") as f:
        json.dump(reply, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
