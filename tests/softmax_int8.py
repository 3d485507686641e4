"""A .tflite of one int8 SOFTMAX, and TFLite's two int8 softmax kernels recomputed in numpy.

TFLite runs int8 SOFTMAX on its own kernel (XNNPACK takes float SOFTMAX only), and the kernel has two paths
(google-ai-edge/LiteRT f67457790c9c, tflite/kernels/internal/optimized/optimized_ops.h): on arm64 built with clang
`SoftmaxInt8LUT` (lines 3603-3618, 3669-3834), elsewhere `Softmax` with a float table (lines 3519-3566). Each
function below follows its path's arithmetic step by step, so a test can show which path each machine ran.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def softmax_model(path: Path, shape: tuple[int, ...], input_scale: float) -> Path:
    """Write a model of one SOFTMAX (beta 1) over the last axis: int8 in (`input_scale`, zero point 0), int8 out
    (1/256, -128, the only output quantisation TFLite's int8 softmax accepts)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(name: str, scale: float, zero_point: int) -> object:
        t = schema.TensorT()
        t.shape, t.type, t.name, t.buffer = list(shape), schema.TensorType.INT8, name, 0
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SOFTMAX
    code.version = 2  # int8
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.SoftmaxOptions, schema.SoftmaxOptionsT()
    op.builtinOptions.beta = 1.0
    graph = schema.SubGraphT()
    graph.tensors = [tensor("logits", input_scale, 0), tensor("softmax", 1 / 256, -128)]
    graph.inputs, graph.outputs, graph.operators = [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())
    return path


def float_table_softmax(x: np.ndarray, input_scale: float) -> np.ndarray:
    """optimized_ops::Softmax<int8, int8>: exp from a float32 table, a float32 sum in order, 1 / (sum * 1/256),
    std::round (half away from zero), zero point -128."""
    val = np.arange(256)
    table = np.empty(256, np.float32)
    table[255 - val] = np.exp(np.float32(-input_scale) * val.astype(np.float32), dtype=np.float32)
    rows = x.astype(np.int32)
    exp = table[255 - rows.max(-1, keepdims=True) + rows]
    total = np.cumsum(exp, axis=-1, dtype=np.float32)[..., -1:]  # sequential, as the C loop adds
    prob = exp * (np.float32(1.0) / (total * np.float32(1 / 256)))
    rounded = np.sign(prob) * np.floor(np.abs(prob) + np.float32(0.5))
    return np.clip(rounded.astype(np.int32) - 128, -128, 127).astype(np.int8)


def _quantize_multiplier(m: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: m = q * 2^shift with q in [2^30, 2^31), rounded half away from zero."""
    fraction, shift = math.frexp(m)
    q = int(math.floor(abs(fraction) * (1 << 31) + 0.5))
    return (q // 2, shift + 1) if q == 1 << 31 else (q, shift)


def uint16_table_softmax(x: np.ndarray, input_scale: float) -> np.ndarray:
    """optimized_ops::SoftmaxInt8LUT: exp(scale * (v - 255)) * 65535 + 0.5 truncated to a uint16 table, an integer
    sum, QuantizeMultiplier(1 / (sum * 1/256)) and gemmlowp's double rounding (saturating rounding doubling high
    multiply, then rounding divide by a power of two; TFLITE_SINGLE_ROUNDING is off), zero point -128."""
    val = np.arange(256)
    exp = np.exp(np.float32(input_scale) * (val - 255).astype(np.float32), dtype=np.float32)
    table = np.minimum(65535, ((exp * np.float32(65535)).astype(np.float64) + 0.5).astype(np.int64))
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    out = np.empty(rows.shape, np.int64)
    for i, row in enumerate(rows):
        looked_up = table[255 - row.max() + row]
        q, shift = _quantize_multiplier(float(np.float32(1.0) / (np.float32(looked_up.sum()) * np.float32(1 / 256))))
        high = (looked_up * (1 << max(shift, 0)) * q + (1 << 30)) >> 31  # products are positive: >> truncates
        right = max(-shift, 0)
        mask = (1 << right) - 1
        out[i] = (high >> right) + ((high & mask) > (mask >> 1))
    return np.clip(out - 128, -128, 127).astype(np.int8).reshape(x.shape)
