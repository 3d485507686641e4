"""ONNX rewrites that let onnx2tf's NCHW → NHWC conversion add no layout transposes.

onnx2tf holds 4-D activations NHWC. An NCHW channel shuffle, Reshape (N, g, C/g, H, W) →
Transpose (0, 2, 1, 3, 4) → Reshape (N, C, H, W), only means something in NCHW, so onnx2tf
wraps it in a transpose to NCHW and one back: three TRANSPOSE ops per shuffle. Written as its
NHWC equivalent between an explicit NCHW→NHWC and NHWC→NCHW pair, the pair cancels against
onnx2tf's own layout and each shuffle lowers to RESHAPE → TRANSPOSE → RESHAPE. A shuffle that feeds a
strided depthwise conv is moved after it, where it moves a quarter of the data, and a max pool's
padding becomes copies of the border (both exact; see each function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["NCHW_EXIT_SUFFIX", "maxpool_explicit_padding", "nhwc_channel_shuffles", "non_negative_test", "replace_nodes",
           "rewrite_each", "shuffle_after_strided_depthwise", "with_shapes"]

# Name suffix of the Transpose that hands a rewritten shuffle's result back in NCHW. onnx2tf keeps
# that tensor NCHW-shaped until the next layout-aware op transposes it; see tflite.depthwise_after_shuffles.
NCHW_EXIT_SUFFIX = "/nhwc_shuffle/to_nchw"
_SHUFFLE_PERM = [0, 2, 1, 3, 4]


def replace_nodes(graph: Any, nodes: list[Any]) -> None:
    """Make `nodes` the graph's node list, dropping the shape annotations inferred for the old one."""
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]


def with_shapes(model: Any) -> tuple[Any, dict[str, list[int]]]:
    """A shape-inferred copy of `model` and every tensor's shape (-1 where unknown) by name."""
    import onnx

    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    return model, {
        v.name: [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        for v in [*graph.value_info, *graph.input, *graph.output]
    }


def rewrite_each(model: Any, replacement: Callable[[Any, Any, dict[str, list[int]]], list[Any] | None]) -> tuple[Any, int]:
    """A shape-inferred copy of `model` with each node for which `replacement(graph, node, shapes)` gives a list
    replaced by those nodes (it may add initializers to the graph), and how many were replaced."""
    model, shapes = with_shapes(model)
    graph = model.graph
    nodes: list[Any] = []
    count = 0
    for node in graph.node:
        new = replacement(graph, node, shapes)
        nodes += [node] if new is None else new
        count += new is not None
    if count:
        replace_nodes(graph, nodes)
    return model, count


@dataclass
class _Shuffle:
    """One NCHW channel shuffle: Reshape (N, g, C/g, H, W) → Transpose (0, 2, 1, 3, 4) → Reshape (N, C, H, W)."""

    split: Any
    transpose: Any
    merge: Any
    shape: list[int]  # (N, C, H, W)
    groups: int


def _consumers(graph: Any) -> Callable[[str, str], Any]:
    """A lookup: the one node of `op_type` that reads tensor `name` (not a graph output), else None."""
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    outputs = {v.name for v in graph.output}

    def only_consumer(name: str, op_type: str) -> Any:
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type and name not in outputs else None

    return only_consumer


def _channel_shuffles(graph: Any, shapes: dict[str, list[int]]) -> list[_Shuffle]:
    only_consumer = _consumers(graph)
    found = []
    for node in graph.node:
        if node.op_type != "Reshape":
            continue
        transpose = only_consumer(node.output[0], "Transpose")
        perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"] if transpose is not None else []
        back = only_consumer(transpose.output[0], "Reshape") if perm == [_SHUFFLE_PERM] else None
        if back is None:
            continue
        src, split = shapes.get(node.input[0], []), shapes.get(node.output[0], [])
        if len(src) != 4 or min(src) < 1 or len(split) != 5 or shapes.get(back.output[0]) != src:
            continue
        n, c, h, w = src
        groups = split[1]
        if split == [n, groups, c // groups, h, w] and groups * (c // groups) == c:
            found.append(_Shuffle(node, transpose, back, src, groups))
    return found


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def nhwc_channel_shuffles(model: Any) -> tuple[Any, int]:
    """Return a copy of the ONNX `model` with every channel shuffle in NHWC form, and how many."""
    import numpy as np
    from onnx import helper, numpy_helper

    model, shapes = with_shapes(model)
    graph = model.graph
    shuffles = _channel_shuffles(graph, shapes)
    replaced: dict[int, list[Any]] = {}
    for shuffle in shuffles:
        (n, c, h, w), groups = shuffle.shape, shuffle.groups
        base = shuffle.split.name or shuffle.split.output[0]
        prefix = f"{base}/nhwc_shuffle"
        graph.initializer.extend([
            numpy_helper.from_array(np.array([n, h, w, groups, c // groups], dtype=np.int64), f"{prefix}/split_shape"),
            numpy_helper.from_array(np.array([n, h, w, c], dtype=np.int64), f"{prefix}/merge_shape"),
        ])
        replaced[id(shuffle.split)] = [
            helper.make_node("Transpose", [shuffle.split.input[0]], [f"{prefix}/nhwc"], perm=[0, 2, 3, 1], name=f"{prefix}/to_nhwc"),
            helper.make_node("Reshape", [f"{prefix}/nhwc", f"{prefix}/split_shape"], [f"{prefix}/split"], name=f"{prefix}/split"),
            helper.make_node("Transpose", [f"{prefix}/split"], [f"{prefix}/swapped"], perm=[0, 1, 2, 4, 3], name=f"{prefix}/swap"),
            helper.make_node("Reshape", [f"{prefix}/swapped", f"{prefix}/merge_shape"], [f"{prefix}/merged"], name=f"{prefix}/merge"),
            helper.make_node("Transpose", [f"{prefix}/merged"], [shuffle.merge.output[0]], perm=[0, 3, 1, 2],
                             name=f"{base}{NCHW_EXIT_SUFFIX}"),
        ]
    if shuffles:
        dropped = {id(node) for shuffle in shuffles for node in (shuffle.transpose, shuffle.merge)}
        replace_nodes(graph, [new for node in graph.node if id(node) not in dropped for new in replaced.get(id(node), [node])])
        _drop_unused_initializers(graph)
    return model, len(shuffles)


def shuffle_after_strided_depthwise(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` where each channel shuffle read only by a strided depthwise Conv comes after
    that conv instead (the conv's weights and bias permuted to match), and how many were moved.

    A depthwise conv works on each channel alone, so permuting channels before it equals permuting them
    after it with the weights permuted: exact in float, the same products and sums per channel. After a
    stride-2 conv the shuffle moves a quarter of the data: ShuffleNet v1's first unit of each stage shuffled
    56x56x60, 28x28x120 and 14x14x240 values, 49% of all its shuffles' data; the transposes were 15.8% of
    the int8 graph's instructions on cortex-a76.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    model, shapes = with_shapes(model)
    graph = model.graph
    only_consumer = _consumers(graph)
    constants = {i.name: i for i in graph.initializer}
    replaced: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for shuffle in _channel_shuffles(graph, shapes):
        conv = only_consumer(shuffle.merge.output[0], "Conv")
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute} if conv is not None else {}
        (n, c, _, _), groups = shuffle.shape, shuffle.groups
        out = shapes.get(conv.output[0], []) if conv is not None else []
        if (conv is None or attrs.get("group") != c or max(attrs.get("strides", [1, 1])) < 2 or len(out) != 4
                or any(name not in constants for name in conv.input[1:] if name)):
            continue
        # shuffled channel j is input channel source[j]: the conv's channel j moves to source[j]
        source = np.array([(j % groups) * (c // groups) + j // groups for j in range(c)])
        prefix = f"{conv.name or conv.output[0]}/before_shuffle"
        inputs = [shuffle.split.input[0]]
        for k, name in enumerate(conv.input[1:]):
            if name:
                values = numpy_helper.to_array(constants[name])
                moved = np.empty_like(values)
                moved[source] = values
                graph.initializer.append(numpy_helper.from_array(moved, f"{prefix}/{('weights', 'bias')[k]}"))
                inputs.append(f"{prefix}/{('weights', 'bias')[k]}")
        graph.initializer.extend([
            numpy_helper.from_array(np.array([n, groups, c // groups, *out[2:]], dtype=np.int64), f"{prefix}/split_shape"),
            numpy_helper.from_array(np.array(out, dtype=np.int64), f"{prefix}/merge_shape"),
        ])
        replaced[id(shuffle.split)] = [
            helper.make_node("Conv", inputs, [f"{prefix}/out"], name=conv.name, **attrs),
            helper.make_node("Reshape", [f"{prefix}/out", f"{prefix}/split_shape"], list(shuffle.split.output),
                             name=shuffle.split.name),
            shuffle.transpose,
            helper.make_node("Reshape", [shuffle.transpose.output[0], f"{prefix}/merge_shape"], list(conv.output),
                             name=shuffle.merge.name),
        ]
        dropped |= {id(shuffle.transpose), id(shuffle.merge), id(conv)}
    if replaced:
        replace_nodes(graph, [new for node in graph.node if id(node) not in dropped for new in replaced.get(id(node), [node])])
        _drop_unused_initializers(graph)
    return model, len(replaced)


_NON_NEGATIVE_OPS = {"Relu", "Sigmoid", "HardSigmoid", "Softmax", "Abs"}
_PRESERVES_SIGN_OPS = {"Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape",
                       "Transpose", "Flatten", "Identity", "Split", "Slice", "Squeeze", "Unsqueeze"}


def non_negative_test(graph: Any) -> Callable[[str], bool]:
    """A test telling whether a tensor of `graph` is provably non-negative: made by a ReLU-like op, a
    Clip with a non-negative floor, or an op that keeps the sign of non-negative inputs."""
    from onnx import numpy_helper

    producers = {out: node for node in graph.node for out in node.output}
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    memo: dict[str, bool] = {}

    def non_negative(name: str, depth: int = 0) -> bool:
        if name in memo:
            return memo[name]
        node = producers.get(name)
        result = False
        if node is not None and depth < 64:
            if node.op_type in _NON_NEGATIVE_OPS:
                result = True
            elif node.op_type == "Clip":
                low = constants.get(node.input[1]) if len(node.input) > 1 and node.input[1] else None
                result = low is not None and float(low) >= 0.0
            elif node.op_type in _PRESERVES_SIGN_OPS:
                data = [node.input[0]] if node.op_type != "Concat" else list(node.input)
                result = all(non_negative(i, depth + 1) for i in data)
        memo[name] = result
        return result

    return non_negative


def _edge_pad(graph: Any, name: str, begin: list[int], end: list[int], prefix: str) -> list[Any]:
    """Nodes making `{prefix}/out`: `name` (NCHW) edge-padded by `begin`/`end` rows and columns, as
    copies of its first/last row (column) concatenated around it: Slice and Concat only."""
    import numpy as np
    from onnx import helper, numpy_helper

    nodes: list[Any] = []
    for axis, before, after in ((2, begin[0], end[0]), (3, begin[1], end[1])):
        if not before and not after:
            continue
        at = f"{prefix}/axis{axis}"
        consts = {"first_start": 0, "first_end": 1, "last_start": -1, "last_end": np.iinfo(np.int64).max, "axes": axis}
        graph.initializer.extend(numpy_helper.from_array(np.array([v], dtype=np.int64), f"{at}/{k}") for k, v in consts.items())
        for side in [side for side, n in (("first", before), ("last", after)) if n]:
            nodes.append(helper.make_node("Slice", [name, f"{at}/{side}_start", f"{at}/{side}_end", f"{at}/axes"],
                                          [f"{at}/{side}"], name=f"{at}/{side}"))
        parts = [f"{at}/first"] * before + [name] + [f"{at}/last"] * after
        nodes.append(helper.make_node("Concat", parts, [f"{at}/padded"], axis=axis, name=f"{at}/padded"))
        name = f"{at}/padded"
    nodes[-1].output[0] = f"{prefix}/out"
    return nodes


def maxpool_explicit_padding(model: Any) -> tuple[Any, int]:
    """Return a copy of `model` where each padded (or ceil-mode) MaxPool pads explicitly with real
    values, only where a window reads the padding, and how many were rewritten.

    ONNX pads a MaxPool with -inf, and onnx2tf emits that as PADV2 with -FLT_MAX. Calibration then
    sees -3.4e38 in the padded tensor, which shares its quantisation with its producers: their int8
    scale becomes ~1e36 and XNNPACK refuses the graph (ResNet, ShuffleNet v2 and SqueezeNet 1.0
    stems) or aborts the process (Xception). Every window holds at least one real element, so edge
    padding (copies of the border, which every window touching the padding also contains) gives the
    same maxima, over any input. It is written as border Slices concatenated around the input:
    - a Pad would lower to MIRROR_PAD, which XNNPACK's delegate does not have (Xception ran as 5
      partitions in fp32, 16 in int8); a zero PAD, exact after a ReLU, is XNNPACK's but is not fused
      into a max pool (XNNPACK fuses a constant pad into convolutions only: src/subgraph.c,
      xnn_subgraph_fusion, google/XNNPACK 75db3c093b6d): ShuffleNet v1's stem pool took 187 us
      behind a PAD against 93 us behind slices and concats (x86 host, 1 thread, 112x112x24);
    - padding that no window reads is dropped (a 3x3 stride-2 pool of an even size never reads
      its bottom and right pad), so only the rows and columns that matter are copied.
    """
    from onnx import helper

    model, shapes = with_shapes(model)
    graph = model.graph

    count = 0
    nodes: list[Any] = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        src, dst = shapes.get(node.input[0], []) if node.input else [], shapes.get(node.output[0], [])
        pads = list(attrs.get("pads", []))
        if (node.op_type != "MaxPool" or len(src) != 4 or len(dst) != 4 or min(src + dst) < 1
                or not (any(pads) or attrs.get("ceil_mode", 0)) or any(d != 1 for d in attrs.get("dilations", [1, 1]))
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
            nodes.append(node)
            continue
        kernel, strides = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
        begin = pads[:2] if pads else [0, 0]
        # The end padding the last window reads (ceil mode: what floor mode needs for the same output size).
        end = [max(0, (o - 1) * s + k - (n + b)) for o, s, k, n, b in zip(dst[2:], strides, kernel, src[2:], begin)]
        source = node.input[0]  # ceil mode that gives the floor-mode size pads nothing
        if any(begin) or any(end):
            prefix = f"{node.name or node.output[0]}/edge_pad"
            nodes.extend(_edge_pad(graph, source, begin, end, prefix))
            source = f"{prefix}/out"
        nodes.append(helper.make_node("MaxPool", [source], list(node.output), name=node.name,
                                      kernel_shape=kernel, strides=strides))
        count += 1
    if count:
        replace_nodes(graph, nodes)
    return model, count
