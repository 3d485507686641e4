"""Complexity of an ONNX graph, for models that come without a PyTorch module (an ONNX file, an
ExportedProgram): the same `ComplexityReport` and units as `analysis.analyse_model`, counted per node
from the shapes ONNX shape inference gives. Ops with no handler are listed in `unknown_ops` (a layer
'unknown:<op>' each), never counted as zero work silently.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from .analysis import ComplexityReport, LayerCost, OpCost

__all__ = ["analyse_onnx", "ONNX_HANDLERS"]

# (node, input shapes, output shapes, initializer sizes by name) -> (op, macs, params, memory_access, elementwise)
Handler = Callable[[Any, list[list[int]], list[list[int]], dict[str, int]], tuple]


def _n(shape: list[int] | None) -> int:
    return math.prod(shape) if shape else 0


def _params(node: Any, sizes: dict[str, int]) -> int:
    return sum(sizes.get(name, 0) for name in node.input[1:])


def _conv(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
    """Conv: one multiply-add per output element per weight of its group (kernel × in-channels / group)."""
    w = ins[1]
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    k = math.prod(w[2:])
    op = "conv2d"
    if group > 1:
        op = "conv2d_dw" if group == ins[0][1] and w[1] == 1 else "conv2d_group"
    elif k == 1:
        op = "conv2d_1x1"
    params = _params(node, sizes)
    return OpCost(op, _n(outs[0]) * w[1] * k, params, _n(ins[0]) + _n(outs[0]) + params, 0)


def _matmul(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
    """Gemm / MatMul: output elements × the reduced dimension."""
    a = ins[0]
    trans_a = next((a_.i for a_ in node.attribute if a_.name == "transA"), 0)
    reduced = a[-2] if trans_a and len(a) >= 2 else a[-1]
    params = _params(node, sizes)
    return OpCost("linear", _n(outs[0]) * reduced, params, _n(a) + _n(outs[0]) + params, 0)


def _batch_norm(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
    params = sum(sizes.get(name, 0) for name in node.input[1:3])
    return OpCost("batch_norm", 0, params, _n(ins[0]) + _n(outs[0]) + params, _n(outs[0]))


def _elementwise(op: str) -> Handler:
    def handle(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
        return OpCost(op, 0, 0, sum(_n(s) for s in ins) + _n(outs[0]), _n(outs[0]))

    return handle


def _movement(op: str) -> Handler:
    def handle(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
        reads = sum(_n(s) for s in ins) if op == "concat" else _n(ins[0])
        return OpCost(op, 0, 0, reads + _n(outs[0]), 0)

    return handle


def _free(node: Any, ins: list, outs: list, sizes: dict[str, int]) -> OpCost:
    return OpCost("")


ONNX_HANDLERS: dict[str, Handler] = {
    "Conv": _conv, "Gemm": _matmul, "MatMul": _matmul, "BatchNormalization": _batch_norm,
    "Concat": _movement("concat"), "MaxPool": _movement("max_pool"), "AveragePool": _movement("avg_pool"),
    "GlobalAveragePool": _movement("global_pool"), "ReduceMean": _movement("global_pool"),
    "Dropout": _movement("dropout"), "Gather": _movement("gather"), "Split": _movement("split"),
    "Slice": _movement("slice"), "Pad": _movement("pad"),
    **{op: _free for op in ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Shape", "Constant",
                            "Identity", "ConstantOfShape", "Cast")},
    **{op: _elementwise(name) for op, name in {
        "Relu": "relu", "Clip": "relu6", "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid",
        "Sigmoid": "sigmoid", "Tanh": "tanh", "Add": "add", "Mul": "mul", "Sub": "sub", "Div": "div",
        "PRelu": "prelu", "LeakyRelu": "leaky_relu", "Softmax": "softmax"}.items()},
}


def analyse_onnx(path: str | Path, arch: str = "", config: dict[str, Any] | None = None) -> ComplexityReport:
    """Count every node of the (static-shaped) ONNX model at `path`."""
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    sizes = {i.name: int(numpy_helper.to_array(i).size) for i in graph.initializer}
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*graph.input, *graph.value_info, *graph.output]}
    shapes.update({i.name: list(i.dims) for i in graph.initializer})
    layers, unknown = [], set()
    for index, node in enumerate(graph.node):
        ins = [shapes.get(name, []) for name in node.input if name]
        outs = [shapes.get(name, []) for name in node.output]
        handler = ONNX_HANDLERS.get(node.op_type)
        name = node.name or f"{node.op_type}_{index}"
        if handler is None:
            unknown.add(node.op_type)
            layers.append(LayerCost(name, f"unknown:{node.op_type}", ins[0] if ins else [], outs[0] if outs else []))
            continue
        op, macs, params, mac, ew = handler(node, ins, outs, sizes)
        if op:
            layers.append(LayerCost(name, op, ins[0] if ins else [], outs[0] if outs else [], macs, params, mac, ew))
    graph_input = next(v for v in graph.input if v.name not in sizes)
    return ComplexityReport(arch=arch, config=dict(config or {}), input_shape=shapes[graph_input.name], layers=layers,
                            unknown_ops=sorted(unknown), model_params=sum(sizes.values()))
