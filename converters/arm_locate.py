"""When the Arm int8 output differs from the host's: which op's output differs first, and by how much.

The shipped file is rewritten with every op's output tensor as a graph output (the same ops, weights and
quantisation; the flatbuffer's subgraph outputs only), run once on the host's LiteRT and once on the
emulated core with the same input, and the outputs are compared in execution order. XNNPACK computes a
tensor that leaves its partition with the same kernels, so the first op whose int8 output differs is the
first kernel that computes differently on the two ISAs. A difference is a documented ISA difference only
when that op appears in `ISA_DIFFERENCES` (op → the largest step it may differ by and the source that says
why); otherwise it is a defect and the export fails, naming the op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ISA_DIFFERENCES", "all_outputs_model", "first_difference", "judge"]

#: op → (largest int8 step difference accepted, the documented reason). Every other op's difference fails until its
#: kernels are documented to round differently on Arm than on x86.
ISA_DIFFERENCES: dict[str, tuple[int, str]] = {
    # Found on RepViT-M1's SE gate (x * sigmoid(s)): 1 step in 107 of 37632 values, the first op to differ.
    "MUL": (1, "XNNPACK picks different int8 multiply kernels per ISA (src/configs/binary-elementwise-config.c, "
               "init_qs8_vmul_config, google/XNNPACK 08411adfa2bc): on arm64 xnn_qs8_vmul_minmax_rndnu_ukernel__neon "
               "(fixed-point requantisation, rounding half up), on x86 xnn_qs8_vmul_minmax_fp32_ukernel__sse2/sse41/avx "
               "(float requantisation, rounding half to even): a product on a rounding boundary lands one step apart"),
    # Found on MobileNetV4 Hybrid-M's and EfficientViT-M0's attention; reproduced on a model of one SOFTMAX
    # (tests/test_modern_ops.py): 7 of 8036 values 1 step apart, each side equal to its path below recomputed
    # (tests/softmax_int8.py).
    # One step is the bound for rows of up to ~500 values: the table's 0.5/65535 error per exp, summed over a row of L,
    # moves an output by at most about L/512 of a step before rounding (a derivation here, not the source's).
    "SOFTMAX": (1, "int8 SOFTMAX runs on TFLite's own kernel (not XNNPACK), which has a per-ISA path "
                   "(google-ai-edge/LiteRT f67457790c9c tflite/kernels/internal/optimized/optimized_ops.h:65-67 defines "
                   "TFLITE_SOFTMAX_USE_UINT16_LUT for __aarch64__ && __clang__; tflite/kernels/activations.cc:579-603, "
                   "1200-1222): on arm64 SoftmaxInt8LUT (exp from a uint16 table, integer sum, fixed-point multiplier, "
                   "optimized_ops.h:3603-3618, 3669-3834), elsewhere Softmax with a float exp table and float normalisation "
                   "(optimized_ops.h:3519-3566): an output near a rounding boundary lands one step apart"),
}


def all_outputs_model(path: Path, out: Path) -> list[dict[str, Any]]:
    """Write `path` with every op output as a graph output to `out`; [{"tensor", "op", "node"}] in execution order."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from .float_layers import op_kinds

    model = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    main = model.subgraphs[0]
    order: list[dict[str, Any]] = []
    for node, (op, name) in enumerate(zip(main.operators, op_kinds(model))):
        order += [{"tensor": int(t), "op": name, "node": node} for t in op.outputs if t >= 0]
    main.outputs = [entry["tensor"] for entry in order]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(builder.Output())
    return order


def first_difference(order: list[dict[str, Any]], host: list[Any], arm: list[Any]) -> dict[str, Any] | None:
    """The first op (execution order) whose integer output differs: {"op", "node", "tensor", "max_steps", "elements"}."""
    import numpy as np

    for entry, h, a in zip(order, host, arm):
        if np.dtype(h.dtype).kind not in "iu" or h.shape != a.shape:
            continue
        diff = np.abs(h.astype(np.int64) - a.astype(np.int64))
        if diff.max() > 0:
            return {**entry, "max_steps": int(diff.max()), "elements": int((diff > 0).sum()), "of": int(diff.size)}
    return None


def judge(found: dict[str, Any] | None) -> dict[str, Any]:
    """{"verdict": "isa_difference" | "defect" | "not_located", "tolerance_steps", "why"} for a located difference."""
    if found is None:
        return {"verdict": "not_located", "why": "every op's output matches when each is a graph output: the difference "
                "comes from how the ops are fused into partitions in the shipped file"}
    documented = ISA_DIFFERENCES.get(found["op"])
    if documented and found["max_steps"] <= documented[0]:
        return {"verdict": "isa_difference", "tolerance_steps": documented[0], "why": documented[1]}
    return {"verdict": "defect", "why": f"{found['op']} (node {found['node']}) is not documented to compute differently on "
            f"Arm (converters/arm_locate.py ISA_DIFFERENCES)"}
