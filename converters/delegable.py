"""ONNX rewrites that keep fp32 and int8 graphs in one XNNPACK partition, exact in float.

XNNPACK's TFLite delegate (LiteRT tflite/delegates/xnnpack/xnnpack_delegate.cc, read at
google-ai-edge/LiteRT f67457790c9c) takes some ops on float tensors only: AVERAGE_POOL_2D
(VisitAveragePool2DNode → CheckTensorFloatType on input and output) and a standalone RELU
(VisitUnaryNode: RELU, RELU6, RELU_N1_TO_1 → CheckTensorFloatType). In an int8 graph each such op
runs on TFLite's own kernel and splits the graph into more partitions. The converter fuses a ReLU
into the conv or add before it, never into a CONCATENATION, so ShuffleNet v1's ReLU after the
stride-2 concat stays a RELU op. Other ops the delegate has no case for at all. Each rewrite below
computes the same function in float:

- `relu_through_concat`: Relu(Concat(a, b)) = Concat(Relu(a), Relu(b)); a branch already
  non-negative gets none, the others' ReLU fuses into the conv that makes them.
- `avgpool_as_depthwise`: an AveragePool is a depthwise Conv with constant weights 1/(kh*kw) over
  zero padding; with count_include_pad=0 the edge windows, which hold fewer real values, are scaled
  back by a constant Mul (kh*kw / real values in the window).
- `hardsigmoid_as_relu6`: HardSigmoid(x) = clip(alpha*x + beta, 0, 1) = clip(x + beta/alpha, 0, 1/alpha) * alpha
  (alpha > 0). onnx2tf's lowering ends in RELU_0_TO_1, an op the delegate has no case for at all
  (fp32 MobileNetV3 ran as 9-10 partitions); with torch's alpha = 1/6, beta = 1/2 this is
  relu6(x + 3) / 6: an ADD with a fused RELU6 and a MUL, both XNNPACK's in fp32 and int8.
- `relu_of_shared_add`: a ReLU of an Add whose sum is also used unrectified (Xception's blocks: the
  sum is the next skip and, through a ReLU, the next branch) cannot fuse into that ADD. It reads a
  1x1 depthwise Conv of weight 1 (x * 1 = x exactly) and fuses into it. (A second, operand-swapped
  Add does not work: the converter's CSE merges it back into the first.)
"""

from __future__ import annotations

from typing import Any

from .layout import non_negative_test, replace_nodes, rewrite_each, with_shapes

__all__ = ["avgpool_as_depthwise", "hardsigmoid_as_relu6", "relu_of_shared_add", "relu_through_concat"]


def _use_counts(graph: Any) -> dict[str, int]:
    """How many node inputs read each tensor."""
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    return users


def relu_through_concat(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` with each ReLU after a Concat moved onto the Concat's inputs, and how many."""
    from onnx import helper

    model, _ = with_shapes(model)
    graph = model.graph
    non_negative = non_negative_test(graph)
    users = _use_counts(graph)
    outputs = {v.name for v in graph.output}
    concats = {node.output[0]: node for node in graph.node if node.op_type == "Concat"}
    moved: dict[int, Any] = {}  # id(Concat) → the Relu it absorbs
    for node in graph.node:
        source = concats.get(node.input[0]) if node.op_type == "Relu" else None
        if source is not None and users.get(source.output[0]) == 1 and source.output[0] not in outputs:
            moved[id(source)] = node
    absorbed = {id(relu) for relu in moved.values()}
    nodes: list[Any] = []
    for node in graph.node:
        relu = moved.get(id(node))
        if id(node) in absorbed:
            continue
        if relu is None:
            nodes.append(node)
            continue
        inputs = []
        for j, name in enumerate(node.input):
            if non_negative(name):
                inputs.append(name)
                continue
            inputs.append(f"{relu.name or relu.output[0]}/branch{j}")
            nodes.append(helper.make_node("Relu", [name], [inputs[-1]], name=inputs[-1]))
        node.output[0] = relu.output[0]
        del node.input[:]
        node.input.extend(inputs)
        nodes.append(node)
    if moved:
        replace_nodes(graph, nodes)
    return model, len(moved)


def _pool_geometry(node: Any, shapes: dict[str, list[int]]) -> dict[str, Any] | None:
    """Kernel, strides, pads and sizes of a 2-D AveragePool this module can rewrite, else None.

    Ceil mode is taken only when it gives the floor-mode output size (no window past the padding)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    src, dst = shapes.get(node.input[0], []), shapes.get(node.output[0], [])
    if (len(src) != 4 or len(dst) != 4 or min(src + dst) < 1 or "kernel_shape" not in attrs
            or any(d != 1 for d in attrs.get("dilations", [1, 1]))
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return None
    kernel, strides = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    floor = [(n + b + e - k) // s + 1 for n, b, e, k, s in zip(src[2:], pads[:2], pads[2:], kernel, strides)]
    if floor != dst[2:] or len(kernel) != 2:
        return None
    return {"kernel": kernel, "strides": strides, "pads": pads, "channels": src[1], "src": src[2:], "dst": dst[2:],
            "include_pad": bool(attrs.get("count_include_pad", 0))}


def _edge_correction(geo: dict[str, Any]) -> Any:
    """(1, 1, Ho, Wo) float32: kh*kw over the real (unpadded) values in each output's window."""
    import numpy as np

    real = []
    for n, o, k, s, b in zip(geo["src"], geo["dst"], geo["kernel"], geo["strides"], geo["pads"][:2]):
        start = np.arange(o) * s - b
        real.append(np.minimum(start + k, n) - np.maximum(start, 0))
    counts = np.outer(real[0], real[1]).astype(np.float64)
    return (geo["kernel"][0] * geo["kernel"][1] / counts).astype(np.float32)[None, None]


def _pool_as_depthwise(graph: Any, node: Any, shapes: dict[str, list[int]]) -> list[Any] | None:
    """The depthwise Conv (and edge Mul) that replace a 2-D AveragePool, their weights added to `graph`, else None."""
    import numpy as np
    from onnx import helper, numpy_helper

    geo = _pool_geometry(node, shapes) if node.op_type == "AveragePool" else None
    if geo is None:
        return None
    (kh, kw), channels = geo["kernel"], geo["channels"]
    prefix = f"{node.name or node.output[0]}/as_depthwise"
    graph.initializer.append(numpy_helper.from_array(
        np.full((channels, 1, kh, kw), 1.0 / (kh * kw), dtype=np.float32), f"{prefix}/weights"))
    correction = None if geo["include_pad"] or not any(geo["pads"]) else _edge_correction(geo)
    needs_mul = correction is not None and bool(np.any(correction != 1.0))
    conv_out = f"{prefix}/sum" if needs_mul else node.output[0]
    nodes = [helper.make_node("Conv", [node.input[0], f"{prefix}/weights"], [conv_out], name=prefix,
                              group=channels, kernel_shape=[kh, kw], strides=geo["strides"], pads=geo["pads"])]
    if needs_mul:
        graph.initializer.append(numpy_helper.from_array(correction, f"{prefix}/edge_scale"))
        nodes.append(helper.make_node("Mul", [conv_out, f"{prefix}/edge_scale"], list(node.output), name=f"{prefix}/edges"))
    return nodes


def avgpool_as_depthwise(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` with each 2-D AveragePool as a depthwise Conv of constant weights, and how many."""
    return rewrite_each(model, _pool_as_depthwise)


def _hardsigmoid_as_relu6(graph: Any, node: Any, _shapes: dict[str, list[int]]) -> list[Any] | None:
    """The Add, Clip(0, 1/alpha), Mul that replace a HardSigmoid of alpha > 0, their constants added, else None."""
    import numpy as np
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    if node.op_type != "HardSigmoid" or alpha <= 0.0:
        return None
    prefix = f"{node.name or node.output[0]}/as_relu6"
    consts = {"shift": beta / alpha, "low": 0.0, "high": 1.0 / alpha, "scale": alpha}
    graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype=np.float32), f"{prefix}/{k}") for k, v in consts.items())
    return [
        helper.make_node("Add", [node.input[0], f"{prefix}/shift"], [f"{prefix}/shifted"], name=f"{prefix}/add"),
        helper.make_node("Clip", [f"{prefix}/shifted", f"{prefix}/low", f"{prefix}/high"], [f"{prefix}/clipped"],
                         name=f"{prefix}/clip"),
        helper.make_node("Mul", [f"{prefix}/clipped", f"{prefix}/scale"], list(node.output), name=f"{prefix}/mul"),
    ]


def hardsigmoid_as_relu6(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` with each HardSigmoid (alpha > 0) as Add, Clip(0, 1/alpha), Mul, and how many."""
    return rewrite_each(model, _hardsigmoid_as_relu6)


def relu_of_shared_add(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` where each ReLU of a shared Add reads an identity depthwise Conv of the sum
    (its ReLU fuses into that conv), and how many."""
    import numpy as np
    from onnx import helper, numpy_helper

    model, shapes = with_shapes(model)
    graph = model.graph
    users = _use_counts(graph)
    outputs = {v.name for v in graph.output}
    adds = {node.output[0] for node in graph.node if node.op_type == "Add"}
    nodes: list[Any] = []
    count = 0
    for node in graph.node:
        shape = shapes.get(node.input[0], []) if node.op_type == "Relu" else []
        if (node.input and node.input[0] in adds and len(shape) == 4 and min(shape) > 0
                and (users.get(node.input[0], 0) > 1 or node.input[0] in outputs)):
            own = f"{node.name or node.output[0]}/identity"
            graph.initializer.append(numpy_helper.from_array(np.ones((shape[1], 1, 1, 1), np.float32), f"{own}/weights"))
            nodes.append(helper.make_node("Conv", [node.input[0], f"{own}/weights"], [own], name=own, group=shape[1],
                                          kernel_shape=[1, 1]))
            node.input[0] = own
            count += 1
        nodes.append(node)
    if count:
        replace_nodes(graph, nodes)
    return model, count
