"""The ops of every LayerNorm in a TFLite fp32 graph: what int8 exports keep in float by default.

TFLite has no LayerNorm builtin; onnx2tf lowers one to about ten ops, either Keras's (MEAN, SQUARED_DIFFERENCE,
MEAN, ADD ε, RSQRT, three MULs, SUB, ADD: names `…/layer_normalization/…`) or, for a channels-last region written
in NCHW (converters/channels_last.py), ONNX's definition (MEAN, SUB, MUL, MEAN, ADD ε, RSQRT, MULs, ADD: names
`tf.math.…`, nothing says LayerNorm). So a LayerNorm is found by its structure, not its name: a MEAN of a tensor X
whose output is subtracted from X (SUB or SQUARED_DIFFERENCE reading both), followed through the element-wise ops of
a norm (`NORM_OPS`) up to an RSQRT; its ops are that MEAN and every norm op it reaches through norm ops alone whose
inputs are X (but for an ADD), constants or the region's own outputs: a residual ADD of the norm's output and X or
another branch is not the norm's.

Full-integer, the RSQRT of a variance near zero adds 29 dB of error each in MobileViT-XXS (RMSE 178 int8 steps,
benchmarks/results/int8_sensitivity.md, README "int8 below the 0.98 floor"): int8 cosine 0.90 against fp32.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NORM_OPS", "layernorm_outputs"]

#: what a lowered LayerNorm is made of: its mean and variance, ε, the reciprocal square root, the affine γ and β
NORM_OPS = ("MEAN", "SUB", "SQUARED_DIFFERENCE", "MUL", "ADD", "RSQRT")


def layernorm_outputs(fp32: bytes) -> list[list[str]]:
    """Each LayerNorm of the flatbuffer as the full names of its ops' output tensors, in graph order; [] without one."""
    from ai_edge_litert import schema_py_generated as schema

    from .float_layers import op_kinds

    model = schema.ModelT.InitFromPackedBuf(fp32, 0)
    graph = model.subgraphs[0]
    kinds = op_kinds(model)
    ins = [[int(i) for i in op.inputs if int(i) >= 0] for op in graph.operators]
    outs = [[int(o) for o in op.outputs] for op in graph.operators]
    readers: dict[int, list[int]] = {}
    for k, tensors in enumerate(ins):
        for t in tensors:
            readers.setdefault(t, []).append(k)
    found: list[list[int]] = []
    taken: set[int] = set()
    for k, kind in enumerate(kinds):
        if kind != "MEAN" or k in taken or not _centres(k, ins, outs, kinds, readers):
            continue
        region = _region(k, ins, outs, kinds, readers)
        if any(kinds[r] == "RSQRT" for r in region):
            found.append(region)
            taken.update(region)
    return [[graph.tensors[t].name.decode() for r in region for t in outs[r]] for region in found]


def _centres(mean: int, ins: list[list[int]], outs: list[list[int]], kinds: list[str],
             readers: dict[int, list[int]]) -> bool:
    """Whether MEAN op `mean`'s output is subtracted from its own input (x − mean(x), or its square)."""
    x = ins[mean][0]
    return any(kinds[r] in ("SUB", "SQUARED_DIFFERENCE") and x in ins[r]
               for t in outs[mean] for r in readers.get(t, []))


def _region(start: int, ins: list[list[int]], outs: list[list[int]], kinds: list[str],
            readers: dict[int, list[int]]) -> list[int]:
    """`start` and every NORM_OPS op reached from it through NORM_OPS ops that read only the norm's input, constants
    (no op's output) and the region's outputs, in graph order."""
    made = {t for tensors in outs for t in tensors}
    x = ins[start][0]
    region, frontier, inside = {start}, [start], {x, *outs[start]}
    while frontier:
        op = frontier.pop()
        for t in outs[op]:
            for r in readers.get(t, []):
                if r in region or kinds[r] not in NORM_OPS:
                    continue
                allowed = inside - {x} if kinds[r] == "ADD" else inside  # x + norm(x) is a residual, not the norm
                if all(i in allowed or i not in made for i in ins[r]):
                    region.add(r)
                    inside.update(outs[r])
                    frontier.append(r)
    return sorted(region)
