"""Per-pixel work written channels-last between two transposes, as the same ops in NCHW: no transposes left.

ConvNeXt-style blocks (EdgeNeXt's conv encoder, timm edgenext.py ConvBlock; its LayerNorm2d) permute an NCHW map to
channels-last, work over the last axis (LayerNorm, Linear, GELU, a layer scale γ) and permute back:

    Transpose(0,2,3,1) → LayerNormalization(axis -1) → Reshape(-1, C) → Gemm → Reshape(N,H,W,4C) → GELU's ops →
    Reshape → Gemm → Reshape → Transpose(0,3,1,2) → residual Add

onnx2tf holds every 4-D tensor NHWC; a Reshape whose input it holds transposed has its target shape permuted as if it
were NCHW (onnx2tf 1.28.8 ops/Reshape.py, `convert_axis` on `reshape_shape`), so the (N, H, W, 4C) result of the
reshape after each Linear's Gemm comes out with its axes mixed and the residual Add meets (1,16,16,24) and
(1,16,24,16) (EdgeNeXt-XXS stopped at its first block; one block alone at 32x32 fails the same way).

`channels_last_as_nchw` finds each such island — the tensors reachable from a Transpose(0,2,3,1) of a 4-D map, or
from a Reshape of (N, H·W, C) tokens to (N, H, W, C) (EdgeNeXt's SDTA block before its MLP), through ops that act
per pixel over the last axis, read only by ops of the island or by a Transpose(0,3,1,2) — and writes it in NCHW,
where onnx2tf's own layout handling is exact, with no 4-D transpose left:
- Reshape(N·H·W, C) → Gemm (or MatMul) by a constant (C, O) → Reshape(N, H, W, O), and a MatMul of the 4-D map by a
  constant: a 1x1 Conv of weight (O, C, 1, 1) (the same sums of products);
- LayerNormalization over the last axis: its definition over axis 1 (ONNX LayerNormalization, opset 17:
  mean, x - mean, mean of its square, + epsilon, Sqrt, Div, then scale and bias), as ReduceMean/Sub/Mul/Add/Sqrt/Div
  (the TFLite converter makes Sqrt and Div one RSQRT and a MUL: XNNPACK's in fp32, float only in int8, like onnx2tf's
  own LayerNorm);
- a ReduceMean over the last axis: over axis 1;
- element-wise ops: as they are; a constant operand of shape (..., K) broadcast over the last axis becomes (1, K, 1, 1);
- a token Reshape that starts an island: Transpose(0,2,1) of the tokens, then Reshape(N, C, H, W) (a 3-D transpose,
  which onnx2tf keeps as it is).
The function computed is the same (fp32 sums may be ordered otherwise: float rounding only); an island with any
other op, or one whose tensor is a graph output, is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .layout import replace_nodes, with_shapes
from .modern import _Graph

__all__ = ["channels_last_as_nchw"]

_TO_NHWC, _TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
_UNARY = {"Erf", "Relu", "Sigmoid", "Tanh", "Gelu", "Sqrt", "Neg", "Abs", "Exp", "Log", "Identity", "HardSigmoid",
          "HardSwish", "LeakyRelu", "Elu", "Softplus", "Reciprocal", "Clip"}
_BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"}


def _perm(node: Any) -> list[int] | None:
    if node is None or node.op_type != "Transpose":
        return None
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@dataclass
class _Island:
    """One channels-last region: its entry and exit transposes, the nodes between, each rewritten unit by its
    last node (a Reshape → Gemm → Reshape is one unit), and its channels-last tensors."""

    entries: list[Any] = field(default_factory=list)
    exits: list[Any] = field(default_factory=list)
    units: dict[int, tuple[str, list[Any]]] = field(default_factory=dict)  # id(last node) → (kind, nodes)
    tensors: set[str] = field(default_factory=set)
    inner: set[int] = field(default_factory=set)  # id of every node the island replaces or drops


class _Finder:
    """Grows islands over one shape-inferred graph."""

    def __init__(self, graph: Any, shapes: dict[str, list[int]]) -> None:
        self.g, self.shapes = _Graph(graph), shapes

    def rank4(self, name: str) -> bool:
        shape = self.shapes.get(name, [])
        return len(shape) == 4 and min(shape) >= 1

    def broadcast_const(self, name: str, last: int) -> bool:
        """A constant that broadcasts over a (N, H, W, `last`) tensor along its last axis only (or a scalar)."""
        value = self.g.consts.get(name)
        if value is None or value.ndim > 4:
            return False
        shape = [1] * (4 - value.ndim) + list(value.shape)
        return value.size == 1 or (shape[:3] == [1, 1, 1] and shape[3] == last)

    def linear(self, node: Any) -> tuple[str, list[Any]] | None:
        """("linear", nodes) for Reshape(N·H·W, C) → Gemm/MatMul by a constant → Reshape(N, H, W, O) from `node`,
        or a MatMul of the 4-D map by a constant (C, O)."""
        shape = self.shapes.get(node.input[0], [])
        if node.op_type == "MatMul":
            weight = self.g.consts.get(node.input[1])
            return ("linear", [node]) if weight is not None and weight.ndim == 2 and weight.shape[0] == shape[3] else None
        if node.op_type != "Reshape" or self.shapes.get(node.output[0]) != [shape[0] * shape[1] * shape[2], shape[3]]:
            return None
        users = self.g.users.get(node.output[0], [])
        gemm = users[0] if len(users) == 1 and users[0].op_type in ("Gemm", "MatMul") else None
        if gemm is None or gemm.input[0] != node.output[0] or node.output[0] in self.g.outputs:
            return None
        attrs = _attrs(gemm)
        weight = self.g.consts.get(gemm.input[1])
        bias = self.g.consts.get(gemm.input[2]) if len(gemm.input) > 2 and gemm.input[2] else None
        if weight is None or weight.ndim != 2 or attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or \
                attrs.get("beta", 1.0) != 1.0:
            return None
        out = weight.shape[0] if attrs.get("transB", 0) else weight.shape[1]
        if (bias is not None and bias.size not in (1, out)) or (len(gemm.input) > 2 and gemm.input[2] and bias is None):
            return None
        back = self.g.only_user(gemm.output[0], "Reshape")
        if back is None or self.shapes.get(back.output[0]) != [*shape[:3], out]:
            return None
        return "linear", [node, gemm, back]

    def unit(self, node: Any, name: str, last: int) -> tuple[str, list[Any]] | None:
        """(kind, nodes) when the island tensor `name` (last axis `last`) may flow through `node`, else None."""
        others = [i for i in node.input[1:] if i] if node.input and node.input[0] == name else [i for i in node.input if i != name]
        if node.op_type == "LayerNormalization":
            axis = _attrs(node).get("axis", -1)
            ok = node.input[0] == name and axis in (-1, 3) and all(self.g.consts.get(i) is not None and
                                                                     self.g.consts[i].size == last for i in others)
            return ("layernorm", [node]) if ok and not any(node.output[1:]) else None
        if node.op_type == "ReduceMean":
            attrs = _attrs(node)
            ok = node.input[0] == name and len(node.input) == 1 and list(attrs.get("axes", [])) in ([-1], [3])
            return ("mean", [node]) if ok and attrs.get("keepdims", 1) == 1 else None
        if node.op_type in ("Reshape", "MatMul") and node.input[0] == name:
            return self.linear(node)
        if node.op_type in _UNARY and node.input[0] == name and all(self.g.scalar(i) is not None for i in others):
            return "same", [node]
        if node.op_type in _BINARY:
            return "same", [node]  # its other operand is checked once the island is whole
        return None

    def entry(self, node: Any) -> str | None:
        """"transpose" for a Transpose(0,2,3,1) of a 4-D map, "tokens" for a Reshape of (N, H·W, C) tokens to
        (N, H, W, C), else None: where an island may start."""
        if node is None:
            return None
        if _perm(node) == _TO_NHWC:
            return "transpose" if self.rank4(node.input[0]) else None
        src, dst = self.shapes.get(node.input[0], []), self.shapes.get(node.output[0], [])
        tokens = node.op_type == "Reshape" and len(src) == 3 and self.rank4(node.output[0]) and min(src) >= 1
        return "tokens" if tokens and src == [dst[0], dst[1] * dst[2], dst[3]] else None

    def enter(self, island: _Island, node: Any) -> bool:
        """Take `node`, an island's start, into `island` (a token Reshape is rewritten, a Transpose dropped)."""
        kind = self.entry(node)
        if kind == "transpose":
            island.entries.append(node)
        elif kind == "tokens":
            island.units[id(node)] = ("tokens", [node])
        island.inner.add(id(node))
        island.tensors.add(node.output[0])
        return kind is not None

    def grow(self, entry: Any) -> _Island | None:
        """The island `entry` starts (with any other start its ops also read), else None."""
        island = _Island()
        self.enter(island, entry)
        work = [entry.output[0]]
        while work:
            if not self.flood(island, work):
                return None
            missing = [i for kind, nodes in island.units.values() if kind == "same" for i in nodes[0].input
                       if i and i not in island.tensors and not self.broadcast_const(i, self.last(nodes[0]))]
            for name in dict.fromkeys(missing):
                if not self.enter(island, self.g.producer.get(name)):
                    return None  # a channels-last operand made outside the island
                work.append(name)
        return island

    def last(self, node: Any) -> int:
        return self.shapes[node.output[0]][3]

    def flood(self, island: _Island, work: list[str]) -> bool:
        """Take every reader of the island tensors in `work` into the island; False when one cannot be."""
        while work:
            name = work.pop()
            if name in self.g.outputs or not self.rank4(name):
                return False
            for user in self.g.users.get(name, []):
                if id(user) in island.inner:
                    continue
                if _perm(user) == _TO_NCHW:
                    island.exits.append(user)
                    island.inner.add(id(user))
                    continue
                found = self.unit(user, name, self.shapes[name][3])
                if found is None or not self.rank4(found[1][-1].output[0]):
                    return False
                island.units[id(found[1][-1])] = found
                island.inner |= {id(n) for n in found[1]}
                island.tensors.add(found[1][-1].output[0])
                work.append(found[1][-1].output[0])
        return True


class _Writer:
    """The NCHW nodes of the islands: each island tensor T becomes `T/nchw` (an entry's output: its input)."""

    def __init__(self, graph: Any, finder: _Finder, islands: list[_Island]) -> None:
        self.graph, self.g, self.shapes = graph, finder.g, finder.shapes
        self.tensors = set().union(*(i.tensors for i in islands))
        self.entry_inputs = {e.output[0]: e.input[0] for i in islands for e in i.entries}
        self.added: set[str] = set()

    def nchw(self, name: str) -> str:
        return self.entry_inputs.get(name, f"{name}/nchw")

    def const(self, name: str, values: Any) -> str:
        from onnx import numpy_helper

        if name not in self.added:
            self.added.add(name)
            self.graph.initializer.append(numpy_helper.from_array(values, name))
        return name

    def operand(self, name: str) -> str:
        """An input of an element-wise op: an island tensor's NCHW twin, a (..., K) constant as (1, K, 1, 1)."""
        if name in self.tensors:
            return self.nchw(name)
        value = self.g.consts.get(name)
        if value is None or value.size == 1:
            return name
        return self.const(f"{name}/nchw", value.reshape(1, -1, 1, 1))

    def unit(self, kind: str, nodes: list[Any]) -> list[Any]:
        import numpy as np
        from onnx import helper

        first, last = nodes[0], nodes[-1]
        out = self.nchw(last.output[0])
        if kind == "same":
            return [helper.make_node(first.op_type, [self.operand(i) if i else "" for i in first.input], [out],
                                     name=f"{first.name}/nchw", **_attrs(first))]
        if kind == "mean":
            return [helper.make_node("ReduceMean", [self.nchw(first.input[0])], [out], name=f"{first.name}/nchw",
                                     axes=[1], keepdims=1)]
        if kind == "linear":
            return [self.conv(nodes, out)]
        if kind == "tokens":  # (N, H·W, C) → (N, C, H·W) → (N, C, H, W)
            n, h, w, c = self.shapes[first.output[0]]
            shape = self.const(f"{first.name or out}/nchw/shape", np.array([n, c, h, w], np.int64))
            return [helper.make_node("Transpose", [first.input[0]], [f"{out}/channels_first"], name=f"{out}/channels_first",
                                     perm=[0, 2, 1]),
                    helper.make_node("Reshape", [f"{out}/channels_first", shape], [out], name=f"{first.name or out}/nchw")]
        return self.layernorm(first, out)

    def conv(self, nodes: list[Any], out: str) -> Any:
        """The 1x1 Conv a Linear over the last axis is: weight (O, C, 1, 1), the Gemm's bias if any."""
        import numpy as np
        from onnx import helper

        matmul = nodes[0] if len(nodes) == 1 else nodes[1]
        weight = self.g.consts[matmul.input[1]]
        if matmul.op_type == "MatMul" or not _attrs(matmul).get("transB", 0):
            weight = weight.T
        prefix = f"{matmul.name or matmul.output[0]}/conv1x1"
        inputs = [self.nchw(nodes[0].input[0]), self.const(f"{prefix}/weight", np.ascontiguousarray(weight)[:, :, None, None])]
        if matmul.op_type == "Gemm" and len(matmul.input) > 2 and matmul.input[2]:
            bias = np.broadcast_to(self.g.consts[matmul.input[2]].reshape(-1), (weight.shape[0],))
            inputs.append(self.const(f"{prefix}/bias", np.ascontiguousarray(bias, dtype=weight.dtype)))
        return helper.make_node("Conv", inputs, [out], name=prefix, kernel_shape=[1, 1])

    def layernorm(self, node: Any, out: str) -> list[Any]:
        """LayerNormalization over the channels of an NCHW map, as ONNX defines it (opset 17): (x - mean) /
        sqrt(mean((x - mean)²) + epsilon) · scale + bias."""
        import numpy as np
        from onnx import helper

        p = f"{node.name or node.output[0]}/nchw"
        eps = self.const(f"{p}/epsilon", np.array(_attrs(node).get("epsilon", 1e-5), np.float32))
        steps = [("ReduceMean", [self.nchw(node.input[0])], "mean"), ("Sub", [self.nchw(node.input[0]), f"{p}/mean"], "centred"),
                 ("Mul", [f"{p}/centred", f"{p}/centred"], "square"), ("ReduceMean", [f"{p}/square"], "variance"),
                 ("Add", [f"{p}/variance", eps], "shifted"), ("Sqrt", [f"{p}/shifted"], "std"),
                 ("Div", [f"{p}/centred", f"{p}/std"], "normed"), ("Mul", [f"{p}/normed", self.operand(node.input[1])], "scaled")]
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if has_bias:
            steps.append(("Add", [f"{p}/scaled", self.operand(node.input[2])], "out"))
        nodes = [helper.make_node(op, ins, [f"{p}/{name}"], name=f"{p}/{name}", **({"axes": [1], "keepdims": 1}
                 if op == "ReduceMean" else {})) for op, ins, name in steps]
        nodes[-1].output[0] = out
        return nodes


def channels_last_as_nchw(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` with each channels-last island (see the module's docstring) written in NCHW without
    its transposes, and how many islands."""
    from onnx import helper

    model, shapes = with_shapes(model)
    graph = model.graph
    finder = _Finder(graph, shapes)
    islands: list[_Island] = []
    taken: set[int] = set()
    for node in graph.node:
        if finder.entry(node) and id(node) not in taken:
            island = finder.grow(node)
            if island is not None and not taken & island.inner:
                islands.append(island)
                taken |= island.inner
    if not islands:
        return model, 0
    writer = _Writer(graph, finder, islands)
    units = {key: unit for island in islands for key, unit in island.units.items()}
    exits = {id(e): e for island in islands for e in island.exits}
    rename = {e.output[0]: writer.nchw(e.input[0]) for e in exits.values() if e.output[0] not in finder.g.outputs}
    nodes: list[Any] = []
    for node in graph.node:
        if id(node) in units:
            nodes += writer.unit(*units[id(node)])
        elif id(node) in exits and node.output[0] not in rename:  # a graph output: named as it was
            nodes.append(helper.make_node("Identity", [writer.nchw(node.input[0])], list(node.output), name=node.name))
        elif id(node) not in taken:
            node.input[:] = [rename.get(i, i) for i in node.input]
            nodes.append(node)
    read = {i for n in nodes for i in n.input}
    replace_nodes(graph, [n for n in nodes if n.op_type != "Constant" or any(o in read for o in n.output)])
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model, len(islands)
