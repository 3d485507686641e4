"""Parity: does each converted model compute the function of its reference?

fp32 steps (ONNX Runtime vs PyTorch, TFLite fp32 vs PyTorch) are judged by the largest absolute
error relative to the reference's output range (`max_rel`), passing at or below `FP32_TOLERANCE`.
int8 is judged against fp32 on held-out inputs by cosine similarity (mean over samples, passing
at or above a floor), with SQNR and top-1 / top-5 agreement recorded alongside.

Inputs are normalised NCHW arrays, what the torch model takes; TFLite models are fed the same
data transposed to NHWC, and int8 ones quantised with their input's scale and zero point.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mobiledeploy.errors import ExportError

__all__ = [
    "FP32_TOLERANCE",
    "INT8_COSINE_FLOOR",
    "error_stats",
    "torch_outputs",
    "onnx_outputs",
    "tflite_outputs",
    "int8_parity",
]

FP32_TOLERANCE = 1e-4
INT8_COSINE_FLOOR = 0.98


def error_stats(reference: np.ndarray, output: np.ndarray, tolerance: float = FP32_TOLERANCE) -> dict[str, Any]:
    """max_abs, and max_rel = max_abs / (max - min of the reference); passed when max_rel <= tolerance."""
    reference = np.asarray(reference, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if reference.shape != output.shape:
        return {"max_abs": None, "max_rel": None, "tolerance": tolerance, "samples": len(reference), "passed": False,
                "error": f"output shape {list(output.shape)} != reference {list(reference.shape)}"}
    max_abs = float(np.max(np.abs(reference - output)))
    span = float(np.max(reference) - np.min(reference)) or 1.0
    max_rel = max_abs / span
    finite = bool(np.all(np.isfinite(output)))
    return {"max_abs": max_abs, "max_rel": max_rel, "tolerance": tolerance, "samples": len(reference),
            "passed": finite and max_rel <= tolerance}


def torch_outputs(model: Any, inputs: np.ndarray) -> np.ndarray:
    """The model's outputs, one sample at a time, as exported (an ExportedProgram is fixed to batch 1), on one thread.

    One thread: torch's OpenMP workers spin-wait for each other, and on a 2-core host shared with other jobs
    8 samples of ShuffleNet v1 1x took 2.8-7.1 s on 2 threads against 0.26-0.39 s on one."""
    import torch

    model.eval()
    batch = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return np.concatenate([model(x[None]).numpy() for x in batch])
    finally:
        torch.set_num_threads(threads)


def onnx_outputs(onnx_path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """Run the ONNX model one sample at a time (it is exported for batch 1)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None].astype(np.float32)})[0] for x in inputs])


def tflite_outputs(tflite_path: str | Path, inputs: np.ndarray, threads: int = 2) -> np.ndarray:
    """Run a .tflite file in the LiteRT interpreter on NCHW `inputs`; float outputs, NCHW if 4-D.

    The toolkit's side of the layout contract: TFLite models take NHWC, so inputs are transposed
    here; int8/uint8 inputs are quantised and outputs dequantised with the tensors' own params.
    """
    from ai_edge_litert.interpreter import Interpreter

    from .tflite import captured_output

    with captured_output(os.devnull):  # LiteRT announces its XNNPACK delegate on stderr
        interpreter = Interpreter(model_path=str(tflite_path), num_threads=threads)
        try:
            interpreter.allocate_tensors()
        except RuntimeError as exc:
            raise ExportError(f"LiteRT cannot prepare {Path(tflite_path).name}: {' '.join(str(exc).split())}"
                              f"{_zero_range_hint(interpreter)}") from None
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for x in np.asarray(inputs, dtype=np.float32):
        interpreter.set_tensor(inp["index"], feed_tensor(inp, x))
        try:
            interpreter.invoke()
        except RuntimeError as exc:  # a kernel's own check, e.g. an int8 DIV by a divisor quantised to zero
            raise ExportError(f"LiteRT cannot run {Path(tflite_path).name}: {' '.join(str(exc).split())}") from None
        results.append(read_output(out, interpreter.get_tensor(out["index"])))
    return np.concatenate(results).astype(np.float32)


def _zero_range_hint(interpreter: Any) -> str:
    """Why XNNPACK may refuse an int8 model: activations quantised to a range of almost nothing (scale < 1e-7),
    which calibration gives a tensor it never saw non-zero."""
    dead = [t["name"].split(";")[0] for t in interpreter.get_tensor_details()
            if t["dtype"].__name__ == "int8" and 0.0 < t["quantization"][0] < 1e-7]
    if not dead:
        return ""
    return (f" ({len(dead)} int8 activation(s) with a range near zero, e.g. {dead[0]}: the calibration inputs never "
            "made them non-zero, as with a ReLU dead for them; calibrate with real images, --calibration DIR)")


def feed_tensor(detail: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """One NCHW sample as the TFLite input `detail` takes it: a batch of one, NHWC, quantised if integer."""
    from mobiledeploy.qemu.guest import quantize

    x = x[None].transpose(0, 2, 3, 1) if x.ndim == 3 else x[None]
    if np.issubdtype(detail["dtype"], np.integer):
        return quantize(x, np.dtype(detail["dtype"]), detail["quantization"])
    return x.astype(detail["dtype"])


def read_output(detail: dict[str, Any], y: np.ndarray) -> np.ndarray:
    """A TFLite output as float (dequantised with its own params), NCHW if 4-D."""
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        y = (y.astype(np.float32) - zero_point) * scale
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def int8_parity(fp32: np.ndarray, int8: np.ndarray, floor: float = INT8_COSINE_FLOOR) -> dict[str, Any]:
    """int8 outputs vs fp32 outputs of the same held-out inputs.

    cosine: mean over samples of the cosine similarity of the output vectors (passes at or above
    `floor`); cosine_min: the worst sample; sqnr_db: 10·log10(Σ fp32² / Σ (fp32 − int8)²);
    top1_agreement: share of samples with the same arg-max; top5_agreement: mean share of the
    fp32 top-5 classes found in the int8 top-5.
    """
    a = np.asarray(fp32, dtype=np.float64).reshape(len(fp32), -1)
    b = np.asarray(int8, dtype=np.float64).reshape(len(int8), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosines = np.where(norms > 0, np.sum(a * b, axis=1) / np.where(norms > 0, norms, 1.0), 0.0)
    noise = float(np.sum((a - b) ** 2))
    sqnr = math.inf if noise == 0 else 10.0 * math.log10(float(np.sum(a**2)) / noise)
    k = min(5, a.shape[1])
    top_a, top_b = np.argsort(-a, axis=1)[:, :k], np.argsort(-b, axis=1)[:, :k]
    top5 = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top_a, top_b)]))
    cosine = float(np.mean(cosines))
    return {
        "reference": "fp32",
        "cosine": cosine,
        "cosine_min": float(np.min(cosines)),
        "sqnr_db": sqnr if math.isfinite(sqnr) else None,
        "top1_agreement": float(np.mean(top_a[:, 0] == top_b[:, 0])),
        "top5_agreement": top5,
        "floor": floor,
        "samples": len(a),
        "passed": bool(np.all(np.isfinite(b))) and cosine >= floor,
    }
