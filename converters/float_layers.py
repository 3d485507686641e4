"""`--float-layers`: keep named int8 layers (or the N worst) in float, the rest full-integer.

Without the option an int8 export keeps every LayerNorm's ops in float (converters/layernorm.py, the pipeline's
default rule since revision 9); `none` gives full-integer int8; names, globs or `auto` replace the rule, and the
manifest records the names they matched (`match_layers`), not a glob as given.

TensorFlow's MLIR quantiser leaves an op in float when its output is in `denylisted_nodes` (what TFLite's
quantization debugger does for selective quantisation, tensorflow/lite/tools/optimize/debugging/python/debugger.py),
wrapping it in DEQUANTIZE → float op → QUANTIZE. Matched against the op's location, it ignored the names onnx2tf's
fused ops carry here ('model/tf.nn.relu_1/Relu;model/tf.math.add_1/Add;…', TF 2.21: the file came out unchanged)
and honoured a plain one ('Identity'); so the chosen op outputs are renamed `mobiledeploy_float_K` in the fp32
flatbuffer before calibration and denylisted under that name.

A layer kept in float keeps its output tensor in float: the op that makes it and the ops that read it (through
ops that only move values, as a channel shuffle's RESHAPE/TRANSPOSE, `MOVES_VALUES`) are denylisted (with the producer alone, QUANTIZE puts the tensor back on the same int8 grid before its readers:
the fragile model of tests/test_quant_error.py kept its 19.9 dB SQNR). A layer is named as the per-layer table shows it (`quant_error.layer_errors`: the output tensor's name up to
its first ';'), or the full tensor name, or a glob (`*layer_normalization*`: every op onnx2tf's LayerNorms became). `auto` keeps the op adding the most error in float, `auto:N` the N worst.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from mobiledeploy.errors import ConfigError

__all__ = ["parse_float_layers", "expand_globs", "match_layers", "op_outputs", "op_kinds", "rename_for_float", "worst_layers", "FLOAT_NAME",
           "NONE"]

FLOAT_NAME = "mobiledeploy_float_{}"
NONE = "none"  # `--float-layers none`: full-integer int8, no default rule


def parse_float_layers(text: str | None) -> tuple[str, Any] | None:
    """'auto' → ('auto', 1); 'auto:3' → ('auto', 3); 'a,b' → ('names', ['a', 'b']); 'none' → ('none', None), full
    integer; None/'' → None, the default rule (every LayerNorm in float, converters/layernorm.py)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text.lower() == NONE:
        return NONE, None
    if text == "auto" or text.startswith("auto:"):
        count = text.partition(":")[2] or "1"
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--float-layers auto:N takes a positive N, got {text!r}")
        return "auto", int(count)
    names = [n.strip() for n in text.split(",") if n.strip()]
    return "names", names


def worst_layers(rows: Sequence[dict[str, Any]], count: int) -> list[str]:
    """The tensor names of the `count` ops adding the most error (rows as `layer_errors` sorts them)."""
    return [r["tensor"] for r in rows if r["op"] != "INPUT" and r["added_db"] > 0][:count]


def expand_globs(names: Sequence[str], known: Iterable[str]) -> list[str]:
    """Each name as it is, or, one with * or ? (fnmatch), every known name (up to its first ';') it matches, in
    order: '*layer_normalization*' keeps every op of onnx2tf's decomposed LayerNorms in float. A pattern that
    matches nothing stays as it is (and is refused as an unknown layer)."""
    from fnmatch import fnmatchcase

    short = list(dict.fromkeys(k.split(";")[0] for k in known))
    out: list[str] = []
    for name in names:
        found = [k for k in short if fnmatchcase(k, name)] if any(c in name for c in "*?") else []
        out += [n for n in found or [name] if n not in out]
    return out


def op_outputs(fp32: bytes) -> list[str]:
    """The full names of every op's output tensors in the fp32 flatbuffer, in graph order."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT.InitFromPackedBuf(fp32, 0).subgraphs[0]
    return [graph.tensors[int(i)].name.decode() for op in graph.operators for i in op.outputs]


def op_kinds(model: Any) -> list[str]:
    """The builtin name of every op of a parsed flatbuffer's (`schema.ModelT`) main graph, in graph order ('CUSTOM'
    for custom ops; the larger of the two code fields, as the schema keeps old codes in the deprecated one)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") for c in model.operatorCodes]
    return [codes[op.opcodeIndex] for op in model.subgraphs[0].operators]


def match_layers(fp32: bytes, names: Sequence[str]) -> list[str]:
    """The layers `names` (globs expanded) denote in the fp32 flatbuffer, as the manifest records them: each known
    name as given, each glob as the names (up to their first ';') it matched; ConfigError naming a layer that is no
    op's output (with a few that are)."""
    return _matched(op_outputs(fp32), names)


def _matched(known: list[str], names: Sequence[str]) -> list[str]:
    """`match_layers` against the op outputs `known` (full names, graph order)."""
    full_or_short = set(known) | {k.split(";")[0] for k in known}
    matched = expand_globs(names, known)
    for name in matched:
        if name not in full_or_short:
            examples = ", ".join(sorted({n.split(";")[0] for n in known})[:5])
            raise ConfigError(f"--float-layers: no layer named {name!r} (names as `accuracy --per-layer` shows them, "
                              f"e.g. {examples})")
    return matched


def rename_for_float(fp32: bytes, names: Sequence[str], readers: bool = True) -> tuple[bytes, list[str]]:
    """The fp32 flatbuffer with the output tensor of each named op (globs expanded, `match_layers`) renamed
    FLOAT_NAME.format(k), and those new names. `readers`: also the outputs of the ops that read them
    (`_float_chain`); without, the named ops alone (a LayerNorm's ops: QUANTIZE puts its output on int8's grid)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(fp32, 0)
    graph = model.subgraphs[0]
    outputs = [int(i) for op in graph.operators for i in op.outputs]
    known = [graph.tensors[index].name.decode() for index in outputs]
    by_name: dict[str, int] = {}
    for full, index in zip(known, outputs):
        by_name.setdefault(full, index)
        by_name.setdefault(full.split(";")[0], index)
    chosen: list[int] = []
    for name in _matched(known, names):  # the flatbuffer parsed once, not again by match_layers
        found = _float_chain(model, by_name[name]) if readers else [by_name[name]]
        chosen += [i for i in found if i not in chosen]
    renamed = []
    for k, index in enumerate(chosen):
        graph.tensors[index].name = FLOAT_NAME.format(k).encode()
        renamed.append(FLOAT_NAME.format(k))
    builder = flatbuffers.Builder(len(fp32) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), renamed


#: ops that only move values (a channel shuffle's RESHAPE → TRANSPOSE → RESHAPE): a float tensor stays float through them
MOVES_VALUES = ("RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "GATHER", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH")


def _float_chain(model: Any, start: int) -> list[int]:
    """`start` and the outputs of the ops that read it, followed through ops that only move values up to the ops
    that compute with them: a layer's outliers reach the op that scales them back down in float (the digits
    model of benchmarks/digits.py `make_fragile`: its outlier ReLU output goes through a channel shuffle to the
    depthwise conv; with the shuffle's TRANSPOSE left int8 the error moved there, top-1 stayed at 50%)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    moves = {code for code, name in names.items() if name in MOVES_VALUES}
    graph = model.subgraphs[0]
    chain, frontier = [start], [start]
    while frontier:
        tensor = frontier.pop()
        for op in graph.operators:
            if tensor not in [int(i) for i in op.inputs]:
                continue
            code = model.operatorCodes[op.opcodeIndex]
            for out in (int(o) for o in op.outputs):
                if out not in chain:
                    chain.append(out)
                    if max(code.builtinCode, code.deprecatedBuiltinCode) in moves:
                        frontier.append(out)
    return chain
