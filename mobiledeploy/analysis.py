"""Complexity analysis: mult-adds, parameters and memory access cost, per layer and in total.

Units (batch size 1):
- `macs`: multiply-accumulates of convolution and fully-connected layers; one fused
  multiply-add counts as one. This is what the ShuffleNet/MobileNet papers call "FLOPs".
- `params`: learnable parameters the op reads (weights and biases).
- `memory_access`: memory access cost as ShuffleNet v2 (Ma et al., 2018) defines it, in
  elements: input activations read + output activations written + weights read.
- `elementwise`: outputs produced by element-wise ops (ReLU, add, BN, multiply, gates):
  few FLOPs but full memory traffic, the subject of guideline G4. Not part of `macs`.

Every torch call the model makes is traced (a `TorchFunctionMode`) and attributed to the
innermost module that made it. Shape-only calls cost nothing; a call without a handler is
listed in `ComplexityReport.unknown_ops`, never counted as zero in silence.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, NamedTuple

__all__ = ["LayerCost", "ComplexityReport", "analyse", "analyse_model", "parse_resolution"]


@dataclass
class LayerCost:
    name: str
    op: str
    in_shape: list[int]
    out_shape: list[int]
    macs: int = 0
    params: int = 0
    memory_access: int = 0
    elementwise: int = 0
    module: str = ""   # the module that made the call ("" for the model's own forward)


def layer_name(module: str, op: str, index: int, container: bool) -> str:
    """A layer's name: its module's path, or `module.op[index]` when the module made several such calls or
    has children of its own ('stage2.1.add', 'stage2.1.add1'). `layer_owner` reads the module back."""
    if index == 0 and not container:
        return module or op
    return f"{module}.{op}{index if index else ''}".lstrip(".")


def layer_owner(name: str, op: str) -> str:
    """The module of a layer named by `layer_name` ('stage2.1.add', op add → 'stage2.1'), for stored
    reports written before LayerCost recorded `module`."""
    import re

    return re.sub(rf"\.{re.escape(op)}\d*$", "", name)


@dataclass
class ComplexityReport:
    arch: str
    config: dict[str, Any]
    input_shape: list[int]
    layers: list[LayerCost]
    stages: list[dict[str, Any]] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    model_params: int = 0

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def memory_access(self) -> int:
        return sum(layer.memory_access for layer in self.layers)

    @property
    def elementwise(self) -> int:
        return sum(layer.elementwise for layer in self.layers)

    def by_op(self) -> dict[str, dict[str, int]]:
        """Totals per op type, e.g. {'conv2d_dw': {'count': 16, 'macs': ..., ...}}."""
        table: dict[str, dict[str, int]] = {}
        for layer in self.layers:
            row = table.setdefault(layer.op, {"count": 0, "macs": 0, "params": 0, "memory_access": 0, "elementwise": 0})
            row["count"] += 1
            for key in ("macs", "params", "memory_access", "elementwise"):
                row[key] += getattr(layer, key)
        return table

    def to_dict(self, per_layer: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "arch": self.arch,
            "config": self.config,
            "input_shape": self.input_shape,
            "macs": self.macs,
            "params": self.params,
            "memory_access": self.memory_access,
            "elementwise": self.elementwise,
            "units": {
                "macs": "multiply-accumulates of conv+linear (the papers' FLOPs)",
                "memory_access": "elements read and written (ShuffleNet v2 MAC)",
            },
            "unknown_ops": self.unknown_ops,
            "by_op": self.by_op(),
        }
        if self.stages:
            out["stages"] = self.stages
        if per_layer:
            out["layers"] = [asdict(layer) for layer in self.layers]
        return out


def parse_resolution(value: int | str | tuple[int, int]) -> tuple[int, int]:
    """224 → (224, 224); '480x640' → (480, 640) as (height, width)."""
    from .errors import ConfigError

    if isinstance(value, tuple):
        return value
    text = str(value).lower().strip()
    try:
        parts = [int(p) for p in text.split("x")] if "x" in text else [int(text)] * 2
    except ValueError:
        raise ConfigError(f"resolution {value!r} is not N or HxW (e.g. 224 or 480x640)") from None
    if len(parts) != 2 or min(parts) < 16 or max(parts) > 4096:
        raise ConfigError(f"resolution {value!r} must be N or HxW with sides from 16 to 4096")
    return parts[0], parts[1]


# --- handlers: (args, kwargs, out) -> (op, macs, params, memory_access, elementwise) -------------

def _numel(t: Any) -> int:
    return int(t.numel()) if hasattr(t, "numel") else 0


def _tensors(seq: Any) -> list[Any]:
    import torch

    if isinstance(seq, torch.Tensor):
        return [seq]
    if isinstance(seq, (list, tuple)):
        return [t for s in seq for t in _tensors(s)]
    return []


def _arg(args: tuple, kwargs: dict, i: int, name: str) -> Any:
    return args[i] if len(args) > i else kwargs.get(name)


class OpCost(NamedTuple):
    """What one traced call costs (a handler's answer; units as in the module docstring)."""

    op: str            # the op type it is reported as, e.g. conv2d_dw, relu, concat
    macs: int = 0
    params: int = 0
    memory_access: int = 0
    elementwise: int = 0


#: a handler: (args, kwargs, output) of a torch call -> its OpCost
Handler = Callable[[tuple, dict, Any], OpCost]


def _conv(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x, w, b = args[0], args[1], _arg(args, kwargs, 2, "bias")
    groups = _arg(args, kwargs, 6, "groups") or 1
    k = math.prod(w.shape[2:])
    macs = _numel(out) * (w.shape[1]) * k
    params = _numel(w) + _numel(b)
    op = "conv2d"
    if groups > 1:
        op = "conv2d_dw" if groups == x.shape[1] and w.shape[1] == 1 else "conv2d_group"
    elif k == 1:
        op = "conv2d_1x1"
    return OpCost(op, macs, params, _numel(x) + _numel(out) + params, 0)


def _linear(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x, w, b = args[0], args[1], _arg(args, kwargs, 2, "bias")
    params = _numel(w) + _numel(b)
    return OpCost("linear", _numel(out) * w.shape[1], params, _numel(x) + _numel(out) + params, 0)


def _batch_norm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x = args[0]
    params = _numel(_arg(args, kwargs, 3, "weight")) + _numel(_arg(args, kwargs, 4, "bias"))
    return OpCost("batch_norm", 0, params, _numel(x) + _numel(out) + params, _numel(out))


def _elementwise(op: str) -> Handler:
    """An element-wise op; an operand that is a parameter itself (a layer scale's per-channel factor) is its params."""

    def handle(args: tuple, kwargs: dict, out: Any) -> OpCost:
        import torch

        tensors = _tensors(args)
        params = sum(_numel(t) for t in tensors if isinstance(t, torch.nn.Parameter))
        return OpCost(op, 0, params, sum(_numel(t) for t in tensors) + _numel(out), _numel(out))

    return handle


def _movement(op: str) -> Handler:
    """Ops that read and write data without arithmetic (pooling, concat, shuffle copies); a parameter read (a table
    gathered from, like an attention bias) is the op's params."""

    def handle(args: tuple, kwargs: dict, out: Any) -> OpCost:
        import torch

        tensors = _tensors(args[0] if op == "concat" else args[:1])  # cat/stack: a list
        params = sum(_numel(t) for t in tensors if isinstance(t, torch.nn.Parameter))
        return OpCost(op, 0, params, sum(_numel(t) for t in tensors) + _numel(out), 0)

    return handle


def _matmul(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """matmul / bmm / mm / @: one multiply-add per output element per element of the reduced dimension."""
    a, b = _tensors(args)[:2]
    reduced = a.shape[-1] if a.dim() else 1
    return OpCost("matmul", _numel(out) * reduced, 0, _numel(a) + _numel(b) + _numel(out), 0)


def _baddbmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """baddbmm / addmm / addbmm (input + batch1 @ batch2): the product's multiply-adds; the add is element-wise."""
    c, a, b = _tensors(args)[:3]
    return OpCost("matmul", _numel(out) * a.shape[-1], 0, _numel(c) + _numel(a) + _numel(b) + _numel(out), _numel(out))


def _einsum(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """einsum of two operands: one multiply-add per point of the product of every index's extent (what the
    contraction computes, summed or kept); one operand: its element-wise count (a sum or a transpose)."""
    equation, operands = args[0], _tensors(args[1:])
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    extent: dict[str, int] = {}
    for letters, tensor in zip(inputs, operands):
        if "..." in letters:
            return OpCost("unknown:einsum(...)")
        extent.update(zip(letters, tensor.shape))
    reads = sum(_numel(t) for t in operands)
    if len(operands) < 2:
        return OpCost("einsum", 0, 0, reads + _numel(out), _numel(out))
    return OpCost("matmul", math.prod(extent.values()), 0, reads + _numel(out), 0)


def _attention(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """scaled_dot_product_attention(q, k, v): q @ kᵀ (L×S×E per batch and head) and p @ v (L×S×Ev) in
    `macs`; the scale, mask and softmax over the L×S scores are element-wise."""
    q, k, v = _tensors(args)[:3]
    heads = math.prod(q.shape[:-2])
    length, source, embed, value = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    scores = heads * length * source
    return OpCost("attention", scores * (embed + value), 0, _numel(q) + _numel(k) + _numel(v) + _numel(out), scores)


def _norm(op: str, weight_at: int) -> Handler:
    """layer_norm / group_norm: element-wise (mean, variance, normalise, affine), parameters the affine's."""

    def handle(args: tuple, kwargs: dict, out: Any) -> OpCost:
        params = _numel(_arg(args, kwargs, weight_at, "weight")) + _numel(_arg(args, kwargs, weight_at + 1, "bias"))
        return OpCost(op, 0, params, _numel(args[0]) + _numel(out) + params, _numel(out))

    return handle


HANDLERS: dict[str, Handler] = {
    "matmul": _matmul, "bmm": _matmul, "mm": _matmul, "__matmul__": _matmul, "__rmatmul__": _matmul,
    "baddbmm": _baddbmm, "addmm": _baddbmm, "einsum": _einsum,
    "scaled_dot_product_attention": _attention,
    "layer_norm": _norm("layer_norm", 2), "group_norm": _norm("group_norm", 2),
    "interpolate": _elementwise("resize"), "upsample": _elementwise("resize"), "pad": _movement("pad"),
    "conv2d": _conv,
    "linear": _linear,
    "batch_norm": _batch_norm,
    "cat": _movement("concat"),
    "stack": _movement("concat"),
    "concat": _movement("concat"),
    "max_pool2d": _movement("max_pool"),
    "_max_pool2d": _movement("max_pool"),
    "max_pool2d_with_indices": _movement("max_pool"),
    "avg_pool2d": _movement("avg_pool"),
    "adaptive_avg_pool2d": _movement("global_pool"),
    "mean": _movement("global_pool"),
    "dropout": _movement("dropout"),
    "index_select": _movement("gather"),
}
for _name, _op in {
    "relu": "relu", "relu_": "relu", "relu6": "relu6", "hardtanh": "relu6", "hardtanh_": "relu6",
    "hardswish": "hardswish", "hardswish_": "hardswish", "hardsigmoid": "hardsigmoid",
    "sigmoid": "sigmoid", "silu": "swish", "tanh": "tanh",
    "add": "add", "__add__": "add", "__iadd__": "add", "add_": "add", "__radd__": "add",
    "mul": "mul", "__mul__": "mul", "__rmul__": "mul", "mul_": "mul",
    "sub": "sub", "__sub__": "sub", "__rsub__": "sub", "sub_": "sub", "__isub__": "sub",
    "div": "div", "__truediv__": "div", "__rtruediv__": "div", "div_": "div",
    "softmax": "softmax", "log_softmax": "softmax", "gelu": "gelu", "silu_": "swish", "sigmoid_": "sigmoid",
    "hardswish_": "hardswish", "hardsigmoid_": "hardsigmoid", "leaky_relu": "leaky_relu", "elu": "elu",
    "exp": "exp", "sqrt": "sqrt", "rsqrt": "rsqrt", "pow": "pow", "__pow__": "pow", "neg": "neg", "__neg__": "neg",
    "clamp": "clamp", "clip": "clamp", "clamp_": "clamp", "mish": "mish",
    # EdgeNeXt's Fourier positional encoding and its XCA (timm edgenext.py): one count per output element
    "cumsum": "cumsum", "sin": "sin", "cos": "cos", "__rpow__": "pow", "__invert__": "not", "bitwise_not": "not",
    "logical_not": "not", "normalize": "normalize",
}.items():
    HANDLERS[_name] = _elementwise(_op)

# Calls that touch no data: views, metadata, shape arithmetic.
FREE = {
    "__get__", "size", "dim", "numel", "__len__", "view", "reshape", "flatten", "transpose",
    "permute", "unsqueeze", "squeeze", "chunk", "split", "narrow", "__getitem__", "t", "expand",
    "contiguous", "dtype", "shape", "device", "is_floating_point", "_has_compatible_shallow_copy_type",
    "__setstate__", "requires_grad_", "detach", "__format__", "__repr__",
    # asserts, shape checks and views that move no data (timm asserts its input size in every model)
    "_assert", "unbind", "split_with_sizes", "tensor_split", "movedim", "unflatten", "view_as", "expand_as",
    "reshape_as", "type_as", "to", "float", "__iter__", "__bool__", "__eq__", "__ne__", "__lt__", "__gt__",
    "__le__", "__ge__", "__index__", "__int__", "__float__", "item", "tolist", "is_contiguous", "stride",
    "dim_order", "storage_offset", "element_size", "new_zeros", "zeros_like", "ones_like",
    "tensor",  # a constant made from Python values (an index table)
    "zeros", "ones", "full", "arange", "empty",  # constants made from a shape (a positional encoding's grid)
}


#: modules counted as one op of their own (their inner calls are not traced): the channel shuffle
#: reads and writes every element once, whatever view/transpose calls implement it
LEAF_MODULES = {"ChannelShuffle": "channel_shuffle"}


class _Count:
    """One analysis in progress: the module scope of each traced call, and the layers recorded so far."""

    def __init__(self, model: Any, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.names = {id(m): n for n, m in model.named_modules()}
        self.modules = dict(model.named_modules())
        self.scope: list[str] = []
        self.inside_leaf = 0
        self.seen: dict[str, int] = {}
        self.layers: list[LayerCost] = []
        self.unknown: set[str] = set()
        self.stages: list[dict[str, Any]] = []

    def record(self, cost: OpCost, in_shape: list[int], out: Any) -> None:
        owner = self.scope[-1] if self.scope else ""
        key = f"{owner}:{cost.op}"
        self.seen[key] = n = self.seen.get(key, 0) + 1
        module = self.modules.get(owner)
        name = layer_name(owner, cost.op, n - 1, module is not None and any(True for _ in module.children()))
        self.layers.append(LayerCost(name, cost.op, in_shape, list(out.shape) if hasattr(out, "shape") else [],
                                     cost.macs, cost.params, cost.memory_access, cost.elementwise, owner))

    def enter(self, module: Any, inputs: Any) -> None:
        self.scope.append(self.names.get(id(module), ""))
        self.inside_leaf += type(module).__name__ in LEAF_MODULES

    def leave(self, module: Any, inputs: Any, output: Any) -> None:
        kind = type(module).__name__
        if kind in LEAF_MODULES:
            self.inside_leaf -= 1
            self.record(OpCost(LEAF_MODULES[kind], memory_access=2 * _numel(output)), list(inputs[0].shape), output)
        self.scope.pop()

    def call(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        fname = getattr(func, "__name__", str(func))
        if self.inside_leaf or fname in FREE:
            return
        first = _tensors(args[:1])
        in_shape = list(first[0].shape) if first else []
        handler = self.handlers.get(fname)
        if handler is None:
            self.unknown.add(fname)
            self.record(OpCost(f"unknown:{fname}"), in_shape, out)
        else:
            self.record(OpCost(*handler(args, kwargs, out)), in_shape, out)

    def hooks(self, model: Any) -> list[Any]:
        handles = [m.register_forward_pre_hook(self.enter) for m in model.modules()]
        handles += [m.register_forward_hook(self.leave) for m in model.modules()]
        for stage in getattr(model, "stage_names", ()):
            handles.append(getattr(model, stage).register_forward_hook(
                lambda m, i, o, s=stage: self.stages.append({"name": s, "out_channels": int(o.shape[1]),
                                                             "out_shape": list(o.shape)})))
        return handles


@functools.lru_cache(maxsize=1)
def _tracer_type() -> type:
    """A TorchFunctionMode that hands every torch call (and its output) to a _Count (torch imported lazily)."""
    from torch.overrides import TorchFunctionMode

    class OpTracer(TorchFunctionMode):
        def __init__(self, count: _Count) -> None:
            super().__init__()
            self.count = count

        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self.count.call(func, args, kwargs, out)
            return out

    return OpTracer


def analyse_model(model: Any, input_shape: tuple[int, ...], arch: str = "", config: dict[str, Any] | None = None,
                  handlers: dict[str, Handler] | None = None) -> ComplexityReport:
    """Run one batch-1 forward pass of `model` on zeros of `input_shape` and count every op.

    `handlers` adds or overrides handlers for this call only, by torch function name (as fvcore's
    `set_op_handle`): e.g. {"my_op": lambda args, kwargs, out: OpCost("my_op", macs=...)}.
    """
    import torch

    count = _Count(model, {**HANDLERS, **(handlers or {})})
    handles = count.hooks(model)
    was_training = model.training
    model.eval()
    x = torch.zeros(*input_shape)
    try:
        with torch.no_grad(), _tracer_type()(count):
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return ComplexityReport(arch=arch, config=dict(config or {}), input_shape=list(input_shape), layers=count.layers,
                            stages=count.stages, unknown_ops=sorted(count.unknown),
                            model_params=sum(p.numel() for p in model.parameters()))


def analyse(arch: str, resolution: int | str = 224, /, **config: Any) -> ComplexityReport:
    """Build a registered model and analyse it at `resolution` (N or HxW); `config` may name any option."""
    from .registry import build_from_config, get_spec

    spec = get_spec(arch)
    model = build_from_config(spec.name, config)
    h, w = parse_resolution(resolution)
    return analyse_model(model, (1, 3, h, w), arch=spec.name, config=model.mobiledeploy_config)
