"""Per-layer attribution: where the time goes, set against where the mult-adds are.

Measured per-op times come from one of two sources:

- a phone: `benchmark_model --enable_op_profiling=true`, parsed into `RunResult.op_profile` by
  `mobiledeploy.benchmark_output` (`op_times_from_profile`). With the XNNPACK delegate its rows
  are XNNPACK operators ("Convolution (NHWC, F32) GEMM", "… DWConv", "Transpose …"), typed but
  not named after layers, so the join is by op type; without it, TFLite builtins, whose convs
  are told apart (1x1 / group / dense) through the .tflite file;
- this host: LiteRT's Python API has no per-op profiler, so `onnx_op_times` runs the exported
  model.onnx in ONNX Runtime's CPU provider with its profiler on, one thread, graph optimisation
  level EXTENDED (conv+activation fused, node names kept). A different runtime from the LiteRT
  latency, so read its shares of time as indicative of the operators, not of LiteRT.

Both become `OpTime`s with a category, joined (`attribute`) to the complexity analysis' per-layer
MACs and memory access (ShuffleNet v2's MAC, in elements; bytes = elements x bytes per element):
per op category the share of time vs the share of MACs, achieved GMAC/s and GB/s, and MACs per
byte (arithmetic intensity: low means memory-bound). BatchNorm and dropout are left out of the
analysis side: export folds BN into the conv before it and drops dropout.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .analysis import layer_owner

__all__ = [
    "CATEGORY_LABELS", "OpTime", "OpProfile", "CategoryRow", "LayerRow", "Attribution",
    "analysis_category", "conv_category", "onnx_category", "tflite_category", "module_path_of_onnx_node",
    "attribute", "onnx_op_times", "parse_ort_profile", "op_times_from_profile", "tflite_op_categories",
]

CATEGORY_LABELS = {
    "conv": "conv kxk (dense)",
    "conv1x1": "1x1 conv",
    "group_conv": "group conv",
    "depthwise": "depthwise conv",
    "pointwise": "1x1 conv (dense or group)",
    "conv_any": "conv (any)",
    "fc": "fully connected",
    "shuffle": "channel shuffle",
    "add": "add",
    "concat": "concat",
    "pool": "pooling",
    "elementwise": "element-wise (ReLU, mul, …)",
    "reshape": "reshape / split / copy",
    "quantize": "(de)quantize",
    "other": "other",
}
# Categories a time source may not be able to split: a coarse one absorbs its fine ones.
_COARSE = {"pointwise": ("conv1x1", "group_conv"), "conv_any": ("conv", "conv1x1", "group_conv", "pointwise")}

_ANALYSIS = {
    "conv2d": "conv", "conv2d_1x1": "conv1x1", "conv2d_group": "group_conv", "conv2d_dw": "depthwise",
    "linear": "fc", "channel_shuffle": "shuffle", "add": "add", "concat": "concat",
    "max_pool": "pool", "avg_pool": "pool", "global_pool": "pool", "gather": "reshape",
    "batch_norm": None, "dropout": None,
}


def analysis_category(op: str) -> str | None:
    """Category of an analysis op ('conv2d_dw' → 'depthwise'); None for ops export removes (BN, dropout)."""
    if op in _ANALYSIS:
        return _ANALYSIS[op]
    return "other" if op.startswith("unknown:") else "elementwise"


def conv_category(in_channels: int, out_channels: int, kernel: Sequence[int], in_per_group: int) -> str:
    """'depthwise', 'group_conv', 'conv1x1' or 'conv', as the analysis classifies torch convs."""
    groups = max(1, in_channels // max(1, in_per_group))
    if groups > 1:
        return "depthwise" if groups == in_channels and in_per_group == 1 else "group_conv"
    return "conv1x1" if all(k == 1 for k in kernel) else "conv"


_ONNX = {
    "Gemm": "fc", "MatMul": "fc", "FusedGemm": "fc", "FusedMatMul": "fc", "QLinearMatMul": "fc",
    "Transpose": "shuffle", "Add": "add", "Sum": "add", "Concat": "concat",
    "MaxPool": "pool", "AveragePool": "pool", "GlobalAveragePool": "pool", "GlobalMaxPool": "pool",
    "ReduceMean": "pool", "Reshape": "reshape", "Flatten": "reshape", "Squeeze": "reshape",
    "Unsqueeze": "reshape", "Split": "reshape", "Slice": "reshape", "Gather": "reshape", "Pad": "reshape",
    "Identity": "reshape", "QuantizeLinear": "quantize", "DequantizeLinear": "quantize",
}
_ONNX_CONV = ("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv")


def onnx_category(op_type: str, input_shapes: Sequence[Sequence[int]] = ()) -> str:
    """Category of an ONNX Runtime node; convs are classified from input and weight shapes (NCHW, OIHW)."""
    if op_type in _ONNX_CONV:
        shapes = [s for s in input_shapes if len(s) == 4]
        if len(shapes) >= 2:
            x, w = shapes[0], shapes[1]
            return conv_category(int(x[1]), int(w[0]), [int(k) for k in w[2:]], int(w[1]))
        return "conv_any"
    if op_type in _ONNX:
        return _ONNX[op_type]
    return "elementwise"


_TFLITE = {
    "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "fc", "TRANSPOSE": "shuffle", "ADD": "add",
    "CONCATENATION": "concat", "MAX_POOL_2D": "pool", "AVERAGE_POOL_2D": "pool", "MEAN": "pool",
    "RESHAPE": "reshape", "SQUEEZE": "reshape", "PAD": "reshape", "PADV2": "reshape", "SPLIT": "reshape",
    "SPLIT_V": "reshape", "SLICE": "reshape", "STRIDED_SLICE": "reshape", "GATHER": "reshape",
    "QUANTIZE": "quantize", "DEQUANTIZE": "quantize", "CONV_2D": "conv_any",
}
_XNNPACK = (  # (substring of an XNNPACK operator name, category): first match wins
    ("DWConv", "depthwise"), ("Deconvolution", "other"), ("Convolution", None), ("Fully Connected", "fc"),
    ("Transpose", "shuffle"), ("Add", "add"), ("Concatenate", "concat"), ("Pooling", "pool"), ("Mean", "pool"),
    ("Copy", "reshape"), ("Constant Pad", "reshape"), ("Slice", "reshape"), ("Split", "reshape"),
    ("Convert", "quantize"),
)


def tflite_category(node_type: str) -> str:
    """Category of a benchmark_model op-profile row: a TFLite builtin or an XNNPACK operator.

    XNNPACK runs dense and grouped 1x1 convs as GEMM ('pointwise'), other convs as IGEMM
    ('conv'), depthwise as DWConv. A builtin CONV_2D is 'conv_any' unless the model says more
    (`tflite_op_categories`).
    """
    if node_type in _TFLITE:
        return _TFLITE[node_type]
    for needle, category in _XNNPACK:
        if needle in node_type:
            if category is None:  # a convolution: which microkernel
                return "conv" if "IGEMM" in node_type else "pointwise" if "GEMM" in node_type else "conv_any"
            return category
    if node_type.upper() in ("TFLITEXNNPACKDELEGATE", "DELEGATE", "INVOKE") or "Delegate" in node_type:
        return "other"
    return "elementwise"


def module_path_of_onnx_node(name: str) -> str | None:
    """'/stage2/stage2.0/gconv1/Conv' → 'stage2.0.gconv1' (torch's exporter names nodes by module scope).

    '/stage2/stage2.0/branch1/branch1.0/branch1.0.0/Conv' → 'stage2.0.branch1.0.0'.
    """
    name = name.removeprefix("fused ")  # ONNX Runtime's fused nodes: 'fused /classifier/classifier.1/Gemm'
    parts = [p for p in name.split("/") if p]
    if len(parts) < 2 or not name.startswith("/"):
        return None
    path, prev = "", ""
    for seg in parts[:-1]:  # a container's children show as '<container scope>.<index>'
        if prev and seg.startswith(prev + "."):
            path += seg[len(prev):]
        else:
            path = f"{path}.{seg}" if path else seg
        prev = seg
    return path


# --- measured op times -----------------------------------------------------------------------------

@dataclass
class OpTime:
    name: str
    op_type: str
    category: str
    time_ms: float  # per inference
    module: str | None = None  # the torch module path, when the source names ops after modules


@dataclass
class OpProfile:
    ops: list[OpTime]
    source: str
    run_ms: float | None = None  # median whole-inference time under the profiler
    extra: dict[str, Any] = field(default_factory=dict)


def onnx_op_times(onnx_path: str | Path, *, runs: int = 20, warmup: int = 3, threads: int = 1, seed: int = 0) -> OpProfile:
    """Per-node times of an ONNX model in ONNX Runtime's CPU provider, profiler on (see module doc)."""
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from .errors import RunnerError

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-ort-") as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable models
            raise RunnerError(f"ONNX Runtime cannot load {onnx_path}: {' '.join(str(exc).split())[:300]}") from None
        rng = np.random.default_rng(seed)
        feeds = {}
        for inp in session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
        for _ in range(warmup + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    profile = parse_ort_profile(events, skip=warmup)
    profile.source = f"onnxruntime {ort.__version__} CPU, {threads} thread(s), ORT_ENABLE_EXTENDED"
    return profile


def parse_ort_profile(events: Iterable[dict[str, Any]], skip: int = 0) -> OpProfile:
    """ONNX Runtime profile events → per-node median time (ms) over runs after the first `skip`."""
    durations: dict[str, list[float]] = {}
    kinds: dict[str, tuple[str, list[list[int]]]] = {}
    runs: list[float] = []
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            runs.append(float(event["dur"]) / 1000.0)
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        args = event.get("args") or {}
        shapes = [next(iter(d.values())) for d in args.get("input_type_shape") or [] if isinstance(d, dict) and d]
        kinds.setdefault(name, (str(args.get("op_name", "")), shapes))
        durations.setdefault(name, []).append(float(event["dur"]) / 1000.0)
    ops = []
    for name, durs in durations.items():
        kept = durs[skip:] or durs
        op_type, shapes = kinds[name]
        ops.append(OpTime(name, op_type, onnx_category(op_type, shapes), statistics.median(kept),
                          module_path_of_onnx_node(name)))
    kept_runs = runs[skip:] or runs
    return OpProfile(ops, "onnxruntime", statistics.median(kept_runs) if kept_runs else None)


def tflite_op_categories(path: str | Path) -> dict[int, str]:
    """Op index → category for a .tflite file, convs classified by their filter shapes (OHWI)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    out: dict[int, str] = {}
    for op in interpreter._get_ops_details():  # noqa: SLF001  (the only per-op listing LiteRT has)
        kind = op["op_name"]
        category = tflite_category(kind)
        inputs = [i for i in op["inputs"] if i >= 0]
        if kind == "CONV_2D" and len(inputs) >= 2:
            x, w = tensors[inputs[0]]["shape"], tensors[inputs[1]]["shape"]
            if len(x) == 4 and len(w) == 4:
                category = conv_category(int(x[3]), int(w[0]), [int(w[1]), int(w[2])], int(w[3]))
        out[int(op["index"])] = category
    return out


def op_times_from_profile(rows: Sequence[dict[str, Any]], tflite_path: str | Path | None = None) -> OpProfile:
    """benchmark_model's 'Run Order' rows (RunResult.op_profile) → OpTimes.

    Given the .tflite file, builtin ops are classified through it (the Name column ends in ':index').
    """
    categories: dict[int, str] = {}
    if tflite_path is not None:
        try:
            categories = tflite_op_categories(tflite_path)
        except Exception:  # an unreadable file only costs the finer conv classes
            categories = {}
    ops = []
    for row in rows:
        kind = str(row.get("node_type", "?"))
        name = str(row.get("name", kind))
        category = tflite_category(kind)
        match = re.search(r":(\d+)$", name)
        if match and not name.startswith("Delegate/") and int(match[1]) in categories:
            category = categories[int(match[1])]
        ops.append(OpTime(name, kind, category, float(row.get("avg_ms") or 0.0)))
    return OpProfile(ops, "benchmark_model --enable_op_profiling")


# --- the join --------------------------------------------------------------------------------------

@dataclass
class CategoryRow:
    category: str
    label: str
    layers: int
    ops: int
    time_ms: float
    time_share: float
    macs: int
    mac_share: float
    memory_bytes: int
    memory_share: float
    gap: float  # time share - MAC share: > 0 means slower than its mult-adds predict
    gmacs_per_s: float | None
    gbytes_per_s: float | None
    macs_per_byte: float | None


@dataclass
class LayerRow:
    name: str
    category: str
    time_ms: float
    time_share: float
    macs: int
    mac_share: float
    memory_bytes: int
    gap: float
    gmacs_per_s: float | None
    gbytes_per_s: float | None


@dataclass
class Attribution:
    model: str
    source: str
    precision: str
    bytes_per_element: int
    time_ms: float  # sum of the op times
    run_ms: float | None
    macs: int
    memory_bytes: int
    categories: list[CategoryRow]
    layers: list[LayerRow]
    unmatched_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def top_categories(self, n: int | None = None) -> list[CategoryRow]:
        """Op types whose share of time most exceeds their share of MACs, worst first."""
        return sorted(self.categories, key=lambda r: -r.gap)[:n]


def _layer_fields(layer: Any) -> tuple[str, str, str, int, int]:
    """(name, module, op, macs, memory access) of a LayerCost or its dict."""
    get = layer.get if isinstance(layer, dict) else lambda key, default=None: getattr(layer, key, default)
    name, op = get("name"), get("op")
    module = get("module") or layer_owner(name, op)  # stored before LayerCost recorded it
    return name, module, op, int(get("macs", 0) or 0), int(get("memory_access", 0) or 0)


def _merge_map(op_categories: set[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for coarse, fine in _COARSE.items():
        if coarse in op_categories or coarse in mapping.values():
            for f in fine:
                mapping[f] = coarse
    for key in list(mapping):  # conv1x1 → pointwise → conv_any
        while mapping[key] in mapping:
            mapping[key] = mapping[mapping[key]]
    return mapping


def _rate(amount: float, time_ms: float) -> float | None:
    return amount / (time_ms / 1000.0) / 1e9 if amount and time_ms > 0 else None


def attribute(layers: Sequence[Any], profile: OpProfile | Sequence[OpTime], *, bytes_per_element: int = 4,
              model: str = "", precision: str = "fp32") -> Attribution:
    """Join per-op times to the analysis' layers (LayerCost or their dicts) by category and, where
    the times name their modules, layer by layer."""
    if isinstance(profile, OpProfile):
        ops, source, run_ms = list(profile.ops), profile.source, profile.run_ms
    else:
        ops, source, run_ms = list(profile), "", None
    analysed = []  # (name, owner, category, macs, memory bytes)
    for layer in layers:
        name, owner, op, macs, memory = _layer_fields(layer)
        category = analysis_category(op)
        if category is not None:
            analysed.append((name, owner, category, macs, memory * bytes_per_element))
    shuffle_owners = {path for name, owner, cat, _, _ in analysed if cat == "shuffle" for path in (name, owner)}
    for op in ops:  # the reshapes around a shuffle's transpose are part of the shuffle
        if op.module in shuffle_owners and op.category in ("reshape", "shuffle"):
            op.category = "shuffle"
    merge = _merge_map({op.category for op in ops})
    time_total = sum(op.time_ms for op in ops)
    mac_total = sum(a[3] for a in analysed)
    mem_total = sum(a[4] for a in analysed)
    share = lambda part, whole: part / whole if whole else 0.0  # noqa: E731

    cats: dict[str, dict[str, float]] = {}
    for _, _, category, macs, memory in analysed:
        row = cats.setdefault(merge.get(category, category), dict.fromkeys(("layers", "ops", "time", "macs", "mem"), 0))
        row["layers"] += 1
        row["macs"] += macs
        row["mem"] += memory
    for op in ops:
        row = cats.setdefault(merge.get(op.category, op.category), dict.fromkeys(("layers", "ops", "time", "macs", "mem"), 0))
        row["ops"] += 1
        row["time"] += op.time_ms
    categories = [
        CategoryRow(cat, CATEGORY_LABELS.get(cat, cat), int(r["layers"]), int(r["ops"]), r["time"],
                    share(r["time"], time_total), int(r["macs"]), share(r["macs"], mac_total), int(r["mem"]),
                    share(r["mem"], mem_total), share(r["time"], time_total) - share(r["macs"], mac_total),
                    _rate(r["macs"], r["time"]), _rate(r["mem"], r["time"]),
                    r["macs"] / r["mem"] if r["mem"] else None)
        for cat, r in cats.items()
    ]
    categories.sort(key=lambda r: -r.gap)
    layer_rows, unmatched = _join_layers(analysed, ops, time_total, mac_total)
    notes = []
    if merge:
        notes.append("this profile cannot tell " + ", ".join(sorted(set(merge))) + " apart: merged into "
                     + ", ".join(sorted(set(merge.values()))))
    if not any(op.module for op in ops):
        notes.append("op times carry no layer names: attribution is by op type only")
    return Attribution(model, source, precision, bytes_per_element, time_total, run_ms, mac_total, mem_total,
                       categories, layer_rows, unmatched, notes)


def _join_layers(analysed: list[tuple[str, str, str, int, int]], ops: list[OpTime], time_total: float,
                 mac_total: int) -> tuple[list[LayerRow], list[str]]:
    """Layer by layer, where op times name their module: key (module, category, n-th occurrence)."""
    if not any(op.module for op in ops):
        return [], []
    by_name: dict[tuple[str, str, int], tuple[str, int, int]] = {}
    by_owner: dict[tuple[str, str, int], tuple[str, int, int]] = {}
    counts: dict[tuple[str, str, str], int] = {}
    for name, owner, category, macs, memory in analysed:
        for index, path, tag in ((by_name, name, "n"), (by_owner, owner, "o")):
            n = counts.get((tag, path, category), 0)
            counts[(tag, path, category)] = n + 1
            index[(path, category, n)] = (name, macs, memory)
    times: dict[str, list[Any]] = {}
    unmatched = []
    seen: dict[tuple[str, str], int] = {}
    for op in ops:
        module = op.module or ""
        n = seen.get((module, op.category), 0)
        seen[(module, op.category)] = n + 1
        hit = by_name.get((module, op.category, n)) or by_owner.get((module, op.category, n))
        if hit is None and op.category == "shuffle":  # the reshapes and transpose of one shuffle
            hit = by_name.get((module, "shuffle", 0)) or by_owner.get((module, "shuffle", 0))
        if hit is None:
            if op.time_ms > 0 and op.category != "reshape":
                unmatched.append(op.name)
            continue
        name, macs, memory = hit
        entry = times.setdefault(name, [op.category, 0.0, macs, memory])
        entry[1] += op.time_ms
    rows = []
    for name, (category, time_ms, macs, memory) in times.items():
        t_share = time_ms / time_total if time_total else 0.0
        m_share = macs / mac_total if mac_total else 0.0
        rows.append(LayerRow(name, category, time_ms, t_share, macs, m_share, memory, t_share - m_share,
                             _rate(macs, time_ms), _rate(memory, time_ms)))
    rows.sort(key=lambda r: -r.gap)
    return rows, unmatched
