"""Per-layer quantisation error: each int8 op's output against the same tensor of the fp32 model, same inputs.

Both .tflite files of an export come from one graph (the int8 file is quantised from the fp32 one), so a tensor
keeps its name; each is read with LiteRT's builtin kernels and every intermediate tensor kept
(`experimental_preserve_all_tensors`), no delegate rewriting the graph. For every int8 op output that has an fp32
twin, over all inputs:

- `nsr_db`: noise-to-signal ratio per channel (the last, NHWC axis), 10·log10 of the mean over channels of
  Σ(int8 − fp32)² / Σ fp32²: the error accumulated up to here. Per channel, because an outlier channel sets a
  per-tensor int8 scale so coarse that the other channels round to nothing, which the whole tensor's ratio,
  dominated by the outlier, would not show;
- `added_db`: `nsr_db` minus the worst `nsr_db` of the op's own activation inputs: the damage this op adds.
  Rows are sorted by it: a layer whose activations have outliers (a range the int8 grid spreads over values it
  hardly ever takes) shows a large jump where the error enters, which accumulated error alone would hide
  behind every later layer;
- `rmse_over_scale`: RMSE in the tensor's quantisation steps, the metric of TFLite's quantization debugger
  ("rmse/scale", tensorflow/lite/tools/optimize/debugging; ~0.29 = 1/sqrt(12) is pure rounding).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["layer_errors", "LAYER_COLUMNS"]

LAYER_COLUMNS = [("op_index", "op", ""), ("op", "type", ""), ("tensor", "tensor", ""), ("added_db", "added dB", ""),
                 ("nsr_db", "NSR dB", ""), ("rmse_over_scale", "RMSE/scale", ""), ("scale", "scale", "")]


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter: Any, x: np.ndarray) -> None:
    from .converters.parity import feed_tensor

    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], feed_tensor(detail, x))
    interpreter.invoke()


def _real(interpreter: Any, detail: dict[str, Any]) -> np.ndarray | None:
    try:
        value = interpreter.get_tensor(detail["index"])
    except ValueError:
        return None
    if np.issubdtype(value.dtype, np.integer):
        scale, zero_point = detail["quantization"]
        if not scale:
            return None
        return (value.astype(np.float64) - zero_point) * scale
    return value.astype(np.float64)


def _pairs(fp32: Any, int8: Any) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(int8 op, its output tensor, the fp32 tensor of the same name) for every op output with a twin."""
    by_name = {t["name"]: t for t in fp32.get_tensor_details()}
    tensors = {t["index"]: t for t in int8.get_tensor_details()}
    pairs = []
    inputs = [{"index": -1, "op_name": "INPUT", "inputs": [], "outputs": [d["index"]]} for d in int8.get_input_details()]
    for op in inputs + list(int8._get_ops_details()):
        for index in op["outputs"]:
            tensor = tensors.get(int(index))
            twin = by_name.get(tensor["name"]) if tensor else None
            if twin is not None and tuple(twin["shape"]) == tuple(tensor["shape"]):
                pairs.append((op, tensor, twin))
    return pairs


def layer_errors(fp32_path: str | Path, int8_path: str | Path, inputs: np.ndarray) -> list[dict[str, Any]]:
    """One row per int8 op output with an fp32 twin, worst added damage first (see the module's docstring).
    `inputs`: normalised NCHW samples, as the export's parity checks take them."""
    fp32, int8 = _interpreter(Path(fp32_path)), _interpreter(Path(int8_path))
    pairs = _pairs(fp32, int8)
    noise: list[Any] = [0.0] * len(pairs)
    signal: list[Any] = [0.0] * len(pairs)
    for x in np.asarray(inputs, dtype=np.float32):
        _run(fp32, x)
        _run(int8, x)
        for i, (_, tensor, twin) in enumerate(pairs):
            q, f = _real(int8, tensor), _real(fp32, twin)
            if q is not None and f is not None:
                axes = tuple(range(f.ndim - 1))
                noise[i] = noise[i] + np.sum((q - f) ** 2, axis=axes)
                signal[i] = signal[i] + np.sum(f ** 2, axis=axes)
    rows = [_row(op, tensor, n, s, len(inputs)) for (op, tensor, _), n, s in zip(pairs, noise, signal)]
    _added(rows, pairs, int8)
    return sorted(rows, key=lambda r: -r["added_db"])


def _row(op: dict[str, Any], tensor: dict[str, Any], noise: Any, signal: Any, samples: int) -> dict[str, Any]:
    noise, signal = np.atleast_1d(np.asarray(noise, dtype=np.float64)), np.atleast_1d(np.asarray(signal, dtype=np.float64))
    live = signal > 0
    ratio = float(np.mean(noise[live] / signal[live])) if live.any() else 0.0
    nsr_db = 10.0 * math.log10(ratio) if ratio > 0 else -math.inf
    elements = samples * int(np.prod(tensor["shape"]))
    scale = float(tensor["quantization"][0]) if tensor["quantization"][0] else None
    rmse = math.sqrt(float(noise.sum()) / elements) if elements else 0.0
    return {"op_index": int(op["index"]), "op": op["op_name"], "tensor": tensor["name"].split(";")[0],
            "tensor_index": int(tensor["index"]), "shape": [int(d) for d in tensor["shape"]], "scale": scale,
            "rmse": rmse, "rmse_over_scale": rmse / scale if scale else None, "nsr_db": nsr_db}


FLOOR_DB = -60.0  # the error an op with no measured input starts from (8-bit rounding alone is about -48 dB)


def _added(rows: list[dict[str, Any]], pairs: list[Any], int8: Any) -> None:
    """added_db: the row's nsr_db minus the worst nsr_db among the op's inputs that are rows (the graph input is
    a row: its own quantisation), or FLOOR_DB; 0 for an output without error."""
    by_tensor = {r["tensor_index"]: r for r in rows}
    for row, (op, _, _) in zip(rows, pairs):
        before = [by_tensor[int(t)]["nsr_db"] for t in op["inputs"] if int(t) in by_tensor]
        base = max([FLOOR_DB, *before])
        if op["op_name"] == "INPUT" or row["nsr_db"] == -math.inf:  # the input's rounding: no op's doing
            row["added_db"] = 0.0
        else:
            row["added_db"] = min(row["nsr_db"], 60.0) - base
