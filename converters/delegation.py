"""How an exported .tflite runs on the host: XNNPACK partitions and the ops left to TFLite's own kernels, and why.

Measured by loading the artifact in the host's ai-edge-litert Interpreter with its default delegate
(XNNPACK) and reading the executed plan with `mobiledeploy.qemu.guest.delegation`, the same reader
the Arm runs use. The delegate does not say why it refuses a node (its checks log only in builds with
XNNPACK_DELEGATE_ENABLE_LOGGING), so `why` restates the rule of the delegate's source that the
node's input types break, where one is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ATTRIBUTE_RULES", "FLOAT_ONLY", "XNNPACK_OPS", "delegation_summary", "explain", "fully_delegated", "host_delegation", "why"]

#: ops the XNNPACK delegate takes on float (fp32/fp16) tensors only, and the check that says so:
#: LiteRT tflite/delegates/xnnpack/xnnpack_delegate.cc at google-ai-edge/LiteRT f67457790c9c,
#: VisitAveragePool2DNode, VisitBinaryNode and VisitUnaryNode (type switches), each → CheckTensorFloatType.
FLOAT_ONLY = {
    "AVERAGE_POOL_2D": "VisitAveragePool2DNode",
    "SOFTMAX": "VisitSoftmaxNode",
    **{op: "VisitBinaryNode" for op in ("DIV", "MAXIMUM", "MINIMUM", "PRELU", "SQUARED_DIFFERENCE")},
    **{op: "VisitUnaryNode" for op in ("ABS", "CEIL", "COS", "EXP", "FLOOR", "GELU", "HARD_SWISH", "LOG", "NEG",
                                        "RELU", "RELU6", "RELU_N1_TO_1", "ROUND", "RSQRT", "SIN", "SQRT", "SQUARE")},
}
#: builtin ops with a case in the delegate's node switch (xnnpack_delegate.cc Subgraph::VisitNode, same commit);
#: any other op (GATHER, MIRROR_PAD, RELU_0_TO_1, ...) always runs on TFLite's own kernel
XNNPACK_OPS = frozenset("""
    ABS CEIL COS DEQUANTIZE ELU EXP FLOOR GELU HARD_SWISH LEAKY_RELU LOGISTIC LOG NEG QUANTIZE RELU RELU6
    RELU_N1_TO_1 ROUND RSQRT SIN SQRT SQUARE TANH ADD DIV MAXIMUM MINIMUM MUL PRELU SQUARED_DIFFERENCE SUB
    ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE EXPAND_DIMS
    FULLY_CONNECTED MAX_POOL_2D REDUCE_MIN REDUCE_MAX SUM MEAN PAD READ_VARIABLE RESHAPE RESIZE_BILINEAR SLICE
    SOFTMAX SPACE_TO_DEPTH SPLIT STRIDED_SLICE TRANSPOSE TRANSPOSE_CONV VAR_HANDLE STABLEHLO_COMPOSITE CUSTOM DENSIFY
""".split())
_QUANTIZED = {"int8", "uint8", "int16"}
#: ops the delegate takes only with some attributes, whatever the types (same commit); the executed plan does not
#: carry the attributes, so the reason names every condition
ATTRIBUTE_RULES = {
    "STRIDED_SLICE": "XNNPACK takes STRIDED_SLICE only with every stride 1 and no ellipsis, new-axis or shrink-axis mask "
                     "(xnnpack_delegate.cc VisitStridedSliceNode, \"Only support strides = 1\"); the export rewrites "
                     "a strided ONNX Slice of up to 4 dimensions as slices of stride 1 (converters/strided.py)",
}


#: quantised binary ops: the range the delegate allows for input scale / output scale (ADD, SUB) or the inputs'
#: scales' product / output scale (MUL): VisitBinaryNode → CheckTensorsInputOutputScale /
#: CheckTensorsInputProductOutputScale, same commit
SCALE_RANGE = {"ADD": (1 / 1024, 256.0), "SUB": (1 / 1024, 256.0), "MUL": (1 / 65536, 256.0)}


def _scale_rule(op: str, scales: list[list[float]]) -> str | None:
    """Why a quantised ADD/SUB/MUL is refused: the first scale ratio outside the delegate's range, else None."""
    if op not in SCALE_RANGE or len(scales) < 3 or not all(s for s, _ in scales[:3]):
        return None
    low, high = SCALE_RANGE[op]
    out = scales[-1][0]
    ratios = [scales[0][0] * scales[1][0] / out] if op == "MUL" else [s / out for s, _ in scales[:2]]
    what = "input scales' product / output scale" if op == "MUL" else "input scale / output scale"
    check = "CheckTensorsInputProductOutputScale" if op == "MUL" else "CheckTensorsInputOutputScale"
    for ratio in ratios:
        if not low <= ratio < high:
            return (f"int8 {op}: {what} {ratio:.3g} outside [{low:.3g}, {high:g}) (xnnpack_delegate.cc VisitBinaryNode → "
                    f"{check})")
    return None


def _batch_matmul_rule(types: list[str], scales: list[list[float]]) -> str | None:
    """Why a quantised BATCH_MATMUL is refused: its right operand is an activation with a non-zero zero point."""
    if len(types) < 2 or types[1] not in _QUANTIZED:
        return None
    zero_point = scales[1][1] if len(scales) > 1 else None
    return (f"int8 BATCH_MATMUL: XNNPACK needs the right operand quantised symmetrically (zero point 0, as weights are); "
            f"here it is an activation with zero point {zero_point} (xnnpack_delegate.cc VisitBatchMatMulNode): "
            "attention's q·kᵀ and p·v multiply two activations, which full-integer quantisation makes asymmetric")


def why(node: dict[str, Any]) -> str:
    """The delegate's reason for leaving one node (from `delegation()["kernel_nodes"]`) to TFLite."""
    op, types, scales = node["op"], node.get("inputs") or [], node.get("scales") or []
    if types and types[0] == "int16":
        return (f"int16 input: XNNPACK takes no int16 tensor (int16x8 runs on TFLite's own kernels): xnnpack_delegate.cc "
                "has no case kTfLiteInt16; its type checks (CheckTensorFloat32OrQUInt8Type and the like) take "
                "float32/float16, int8 and uint8 only")
    if op in FLOAT_ONLY and types and types[0] in _QUANTIZED:
        return f"{types[0]} input: XNNPACK takes {op} on float only (xnnpack_delegate.cc {FLOAT_ONLY[op]} → CheckTensorFloatType)"
    special = _batch_matmul_rule(types, scales) if op == "BATCH_MATMUL" else _scale_rule(op, scales)
    if special:
        return special
    if op in ATTRIBUTE_RULES:
        return ATTRIBUTE_RULES[op]
    if op not in XNNPACK_OPS:
        return f"XNNPACK's delegate has no {op} (no case for it in xnnpack_delegate.cc Subgraph::VisitNode)"
    shown = "/".join(types) or "no"
    return f"refused by the XNNPACK delegate on {shown} inputs; no known rule recorded (see Visit*Node in xnnpack_delegate.cc)"


def explain(found: dict[str, Any]) -> dict[str, Any]:
    """`delegation()`'s result with its "kernel_nodes" folded into "why": {op: reason}."""
    found = dict(found)
    reasons: dict[str, list[str]] = {}
    for node in found.pop("kernel_nodes", []):
        reason = why(node)
        if reason not in reasons.setdefault(node["op"], []):
            reasons[node["op"]].append(reason)
    return {**found, "why": {op: "; ".join(r) for op, r in reasons.items()}}


def host_delegation(path: str | Path) -> dict[str, Any]:
    """{"runtime", "partitions", "nodes", "delegated_nodes", "not_delegated": {op: n}, "why": {op: reason}}."""
    from importlib import metadata

    from ai_edge_litert.interpreter import Interpreter

    from mobiledeploy.qemu.guest import delegation

    interpreter = Interpreter(model_path=str(path), num_threads=1)  # the default resolver applies XNNPACK
    interpreter.allocate_tensors()
    runtime = f"ai-edge-litert {metadata.version('ai-edge-litert')} on the host, XNNPACK delegate"
    return {"runtime": runtime, **explain(delegation(interpreter))}


def fully_delegated(entry: dict[str, Any]) -> bool:
    """One XNNPACK partition and nothing on TFLite's own kernels."""
    return entry.get("partitions") == 1 and not entry.get("not_delegated")


def delegation_summary(entry: dict[str, Any], reasons: bool = False) -> str:
    """'7 XNNPACK partitions; TFLite kernels: AVERAGE_POOL_2D×3, RELU×3', each op's reason after it if `reasons`."""
    parts = entry.get("partitions", 0)
    text = f"{parts} XNNPACK partition" + ("s" if parts != 1 else "")
    left = entry.get("not_delegated") or {}
    why_of = entry.get("why") or {} if reasons else {}
    if left:
        text += "; TFLite kernels: " + ", ".join(
            f"{op}×{n}" + (f" ({why_of[op]})" if op in why_of else "") for op, n in left.items())
    return text
