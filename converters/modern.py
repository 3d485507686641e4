"""ONNX rewrites for today's mobile models (GELU) so they reach TFLite as ops XNNPACK runs.

torch exports GELU at opset 17 as its formula: exact, x * 0.5 * (1 + erf(x / √2)), and tanh,
x * 0.5 * (1 + tanh(√(2/π) * (x + 0.044715 x³))). onnx2tf lowers Erf to tf.math.erf, which TFLite has
no builtin for (the conversion fails), and the tanh form to nine ops. `gelu_as_builtin` replaces each
exact formula with one ONNX `Gelu` node (its `approximate` attribute "none", as the opset-20 op defines
it), which onnx2tf converts with tf.nn.gelu (onnx2tf 1.28.8 ops/Gelu.py) and the TFLite converter to its
builtin GELU: the same function, XNNPACK's in fp32; int8 GELU stays on TFLite's kernel (the delegate takes
GELU on float only: xnnpack_delegate.cc VisitUnaryNode → CheckTensorFloatType; LiteRT f67457790c9c).

Hard-swish is left as HARD_SWISH, which XNNPACK takes on float only (VisitUnaryNode → CheckTensorFloatType):
written (x * 1/6) * relu6(x + 3) (ADD with a fused RELU6 and two MULs; as x * (relu6(x + 3) / 6) the converter
fuses it back into HARD_SWISH) int8 MobileNetV3 ran as one partition, but the extra requantisations took
MobileNetV3-Large's int8 cosine against fp32 to 0.976, below the export's 0.98 floor (seeded weights, synthetic
calibration, 224x224), so that rewrite is not made. The error enters at x * 1/6 (mobiledeploy.quant_error per tensor:
2-9 dB added at each hard-swish, the product after it <= 0.5 dB, TFLite's int8 HARD_SWISH 0-2.6 dB): that tensor is
rounded to its own int8 grid over x's whole range, where the HARD_SWISH kernel works in 16-bit fixed point and rounds
once (LiteRT tflite/kernels/internal/reference/hard_swish.h). As (x * relu6(x + 3)) * 1/6 it is fused back too.
"""

from __future__ import annotations

import math
from typing import Any

from .layout import replace_nodes

__all__ = ["gelu_as_builtin"]

_SQRT2 = math.sqrt(2.0)
_TANH_SCALE = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


class _Graph:
    """Lookups over one ONNX graph: producers, consumers and scalar constants by tensor name."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.producer = {out: node for node in graph.node for out in node.output}
        self.users: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.users.setdefault(name, []).append(node)
        self.outputs = {v.name for v in graph.output}
        self.consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def scalar(self, name: str) -> float | None:
        value = self.consts.get(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def only_user(self, name: str, op_type: str) -> Any:
        """The one node reading `name` (an inner tensor, not a graph output) when it is an `op_type`."""
        found = self.users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type and name not in self.outputs else None

    def other(self, node: Any, name: str) -> str | None:
        """The input of a two-input `node` that is not `name`."""
        rest = [i for i in node.input if i != name]
        return rest[0] if len(node.input) == 2 and len(rest) == 1 else (name if list(node.input) == [name, name] else None)

    def const_operand(self, node: Any, value: float, rel: float = 1e-6) -> str | None:
        """The non-constant input of a binary `node` whose other input is the scalar `value`, else None."""
        for i, j in ((0, 1), (1, 0)):
            c = self.scalar(node.input[j]) if len(node.input) == 2 else None
            if c is not None and math.isclose(c, value, rel_tol=rel):
                return node.input[i]
        return None


def _half_x_times(g: _Graph, one_plus: Any, x: str) -> list[Any] | None:
    """The nodes after `one_plus` (1 + erf or 1 + tanh) that make 0.5 * x * it, in either order, else None."""
    mul = g.only_user(one_plus.output[0], "Mul")
    if mul is None:
        return None
    other = g.other(mul, one_plus.output[0])
    if other == x:
        half = g.only_user(mul.output[0], "Mul")
        return [mul, half] if half is not None and g.const_operand(half, 0.5) == mul.output[0] else None
    halved = g.producer.get(other or "")
    if halved is not None and halved.op_type == "Mul" and g.const_operand(halved, 0.5) == x and \
            g.only_user(halved.output[0], "Mul") is mul:
        return [halved, mul]
    return None


def _erf_gelu(g: _Graph, erf: Any) -> tuple[str, list[Any]] | None:
    """(x, the nodes of x * 0.5 * (1 + erf(x / √2))) for an Erf node that ends such a formula."""
    scaled = g.producer.get(erf.input[0])
    if scaled is None or g.only_user(scaled.output[0], "Erf") is not erf:
        return None
    if scaled.op_type == "Div" and g.scalar(scaled.input[1]) is not None and \
            math.isclose(g.scalar(scaled.input[1]), _SQRT2, rel_tol=1e-6):
        x = scaled.input[0]
    elif scaled.op_type == "Mul":
        x = g.const_operand(scaled, 1.0 / _SQRT2)
    else:
        return None
    one_plus = g.only_user(erf.output[0], "Add")
    if x is None or one_plus is None or g.const_operand(one_plus, 1.0) != erf.output[0]:
        return None
    tail = _half_x_times(g, one_plus, x)
    return (x, [scaled, erf, one_plus, *tail]) if tail else None


def _cube_of(g: _Graph, name: str) -> tuple[str, list[Any]] | None:
    """(x, nodes) when `name` is x³ as Mul(x, Mul(x, x)) (either order) or Pow(x, 3)."""
    node = g.producer.get(name)
    if node is not None and node.op_type == "Pow" and g.scalar(node.input[1]) == 3.0:
        return node.input[0], [node]
    if node is None or node.op_type != "Mul":
        return None
    for a, b in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        square = g.producer.get(b)
        if square is not None and square.op_type == "Mul" and list(square.input) == [a, a] and \
                g.only_user(square.output[0], "Mul") is node:
            return a, [square, node]
    return None


def _tanh_gelu(g: _Graph, tanh: Any) -> tuple[str, list[Any]] | None:
    """(x, the nodes of x * 0.5 * (1 + tanh(√(2/π) (x + 0.044715 x³)))) for a Tanh node that ends one."""
    scaled = g.producer.get(tanh.input[0])
    inner = g.const_operand(scaled, _TANH_SCALE, rel=1e-5) if scaled is not None and scaled.op_type == "Mul" else None
    add = g.producer.get(inner or "")
    if add is None or add.op_type != "Add" or g.only_user(scaled.output[0], "Tanh") is not tanh:
        return None
    for x, rest in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        times = g.producer.get(rest)
        cubed = g.const_operand(times, _CUBIC, rel=1e-4) if times is not None and times.op_type == "Mul" else None
        found = _cube_of(g, cubed) if cubed else None
        if found and found[0] == x:
            one_plus = g.only_user(tanh.output[0], "Add")
            if one_plus is None or g.const_operand(one_plus, 1.0) != tanh.output[0]:
                return None
            tail = _half_x_times(g, one_plus, x)
            return (x, [*found[1], times, add, scaled, tanh, one_plus, *tail]) if tail else None
    return None


def gelu_as_builtin(model: Any, forms: tuple[str, ...] = ("none",)) -> tuple[Any, int]:
    """Return a copy of `model` with each GELU formula of the given `forms` ("none": exact, "tanh") as one
    `Gelu` node, and how many. The export rewrites the exact form only: the tanh form's nine ops (MUL, ADD,
    TANH) already convert and run in one partition in fp32 and int8 (TANH: VisitUnaryNode →
    CheckTensorFloatOrQUInt8Type), where a GELU builtin would leave int8 to TFLite's kernel."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    g = _Graph(graph)
    found: dict[int, tuple[str, str, list[Any]]] = {}  # id(last node) → (x, approximate, nodes)
    for node in graph.node:
        match = _erf_gelu(g, node) if node.op_type == "Erf" else _tanh_gelu(g, node) if node.op_type == "Tanh" else None
        if match is not None and ("none" if node.op_type == "Erf" else "tanh") in forms:
            found[id(match[1][-1])] = (match[0], "none" if node.op_type == "Erf" else "tanh", match[1])
    dropped = {id(n) for _, _, nodes in found.values() for n in nodes}
    inner = [out for _, _, nodes in found.values() for n in nodes[:-1] for out in n.output]
    if any(out in g.outputs or any(id(u) not in dropped for u in g.users.get(out, [])) for out in inner):
        return model, 0  # an intermediate is read elsewhere: not a GELU of its own (never seen from torch)
    nodes = []
    for node in graph.node:
        if id(node) in found:
            x, approximate, _ = found[id(node)]
            nodes.append(helper.make_node("Gelu", [x], list(node.output), name=f"{node.name or node.output[0]}/gelu",
                                          approximate=approximate))
        elif id(node) not in dropped:
            nodes.append(node)
    if found:
        replace_nodes(graph, nodes)
    return model, len(found)
