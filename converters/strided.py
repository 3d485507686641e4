"""A strided Slice as ops XNNPACK's delegate takes: slices of stride 1 over a reshape, exact in every type.

The delegate takes STRIDED_SLICE only with every stride 1 and no ellipsis, new-axis or shrink-axis mask
(LiteRT f67457790c9c tflite/delegates/xnnpack/xnnpack_delegate.cc VisitStridedSliceNode, lines 6245-6286:
"Only support strides = 1"). LeViT's attention subsample, `x.view(B, r, r, C)[:, ::2, ::2]` (timm levit.py
Subsample), exports as an ONNX Slice of steps 2, which onnx2tf lowers to a STRIDED_SLICE of strides 2: two such
nodes left LeViT-128S's fp32 graph in 3 partitions. `strided_slice_as_reshape` writes each such Slice as:

  Slice of step 1 to the `count * step` values the strided one reads from (a zero Pad at the end when the last
  window runs past the input: 7 values at step 2 read 0, 2, 4, 6 of 8), Reshape that splits each strided axis
  into (count, step) and Slice [0:1] of the new step axis, one strided axis at a time, Reshape to the strided
  Slice's output shape.

Element i of a strided axis is input element start + i * step either way; nothing is computed, so it is exact in
fp32 and int8 (RESHAPE, SLICE and PAD are the delegate's in both). Each reshaped tensor has one axis more than the
input; a Slice is rewritten only when that stays within 5 dimensions, the most TFLite's own STRIDED_SLICE kernel
takes (tensorflow/lite/kernels/strided_slice.cc, "only supports 1D-5D input arrays"; the int8 converter runs it
while calibrating), under XNNPACK's 6 (XNN_MAX_TENSOR_DIMS).
"""

from __future__ import annotations

from typing import Any

from .layout import replace_nodes, rewrite_each

__all__ = ["strided_slice_as_reshape"]

_MAX_DIMS = 5  # TFLite's STRIDED_SLICE kernel; XNNPACK takes 6 (XNN_MAX_TENSOR_DIMS, google/XNNPACK include/xnnpack.h)


def _ints(graph: Any, name: str) -> list[int] | None:
    """The values of a constant int tensor (initializer or Constant node), else None."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).reshape(-1)]
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name and node.attribute[0].name == "value":
            return [int(v) for v in numpy_helper.to_array(node.attribute[0].t).reshape(-1)]
    return None


def _plan(graph: Any, node: Any, shapes: dict[str, list[int]]) -> dict[str, Any] | None:
    """{"src", "dst", "starts", "ends", "pads", "steps"} (per axis, step 1 where not sliced) of a Slice with a
    constant step > 1 on some axis, its shapes known, else None."""
    src, dst = shapes.get(node.input[0], []), shapes.get(node.output[0], [])
    if len(node.input) < 5 or not src or len(src) != len(dst) or min(src + dst) < 1:
        return None
    starts, ends = _ints(graph, node.input[1]), _ints(graph, node.input[2])
    axes = _ints(graph, node.input[3]) if node.input[3] else list(range(len(starts or [])))
    steps = _ints(graph, node.input[4])
    if None in (starts, ends, axes, steps) or max(steps) <= 1 or min(steps) < 1 or len(src) + 1 > _MAX_DIMS:
        return None
    plan = {"src": src, "dst": dst, "starts": [0] * len(src), "ends": list(src), "pads": [0] * len(src),
            "steps": [1] * len(src)}
    for axis, start, end, step in zip(axes, starts, ends, steps):
        axis, n = axis % len(src), src[axis % len(src)]
        start = min(max(start + n if start < 0 else start, 0), n)
        end = min(max(end + n if end < 0 else end, 0), n)
        count = max(0, -(-(end - start) // step))
        if count != dst[axis] or count == 0:
            return None
        plan["starts"][axis], plan["ends"][axis] = start, min(n, start + count * step)
        plan["pads"][axis], plan["steps"][axis] = start + count * step - plan["ends"][axis], step
    return plan


def _nodes(graph: Any, node: Any, plan: dict[str, Any]) -> list[Any]:
    """The step-1 Slice, Pad (if needed), Reshape, Slice, Reshape that replace `node`."""
    import numpy as np
    from onnx import helper, numpy_helper

    prefix = f"{node.name or node.output[0]}/as_reshape"

    def const(name: str, values: list[int]) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), f"{prefix}/{name}"))
        return f"{prefix}/{name}"

    rank, strided = len(plan["src"]), [a for a, s in enumerate(plan["steps"]) if s > 1]
    nodes = [helper.make_node("Slice", [node.input[0], const("starts", plan["starts"]), const("ends", plan["ends"])],
                              [f"{prefix}/window"], name=f"{prefix}/window")]
    current = f"{prefix}/window"
    if any(plan["pads"]):
        nodes.append(helper.make_node("Pad", [current, const("pads", [0] * rank + plan["pads"])], [f"{prefix}/padded"],
                                      name=f"{prefix}/pad"))
        current = f"{prefix}/padded"
    sizes = [size * step for size, step in zip(plan["dst"], plan["steps"])]  # the window, padded
    for axis in strided:  # one axis at a time: rank + 1 at most (TFLite's own STRIDED_SLICE kernel takes 5-D)
        split = [*sizes[:axis], plan["dst"][axis], plan["steps"][axis], *sizes[axis + 1:]]
        sizes[axis] = plan["dst"][axis]
        nodes += [
            helper.make_node("Reshape", [current, const(f"split_shape{axis}", split)], [f"{prefix}/split{axis}"],
                             name=f"{prefix}/split{axis}"),
            helper.make_node("Slice", [f"{prefix}/split{axis}", const(f"zero{axis}", [0]), const(f"one{axis}", [1]),
                                       const(f"step_axis{axis}", [axis + 1])], [f"{prefix}/picked{axis}"],
                             name=f"{prefix}/pick{axis}"),
        ]
        current = f"{prefix}/picked{axis}"
    nodes.append(helper.make_node("Reshape", [current, const("shape", plan["dst"])], list(node.output),
                                  name=f"{prefix}/merge"))
    return nodes


def strided_slice_as_reshape(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` with each Slice of constant steps > 1 (and step 1 elsewhere) as slices of step 1
    over a reshape, and how many."""
    def replacement(graph: Any, node: Any, shapes: dict[str, list[int]]) -> list[Any] | None:
        plan = _plan(graph, node, shapes) if node.op_type == "Slice" else None
        return None if plan is None else _nodes(graph, node, plan)

    model, count = rewrite_each(model, replacement)
    if count:  # the replaced Slices' Constant inputs go with them
        read = {name for n in model.graph.node for name in n.input}
        replace_nodes(model.graph, [n for n in model.graph.node if n.op_type != "Constant" or
                                    any(o in read for o in n.output)])
    return model, count
