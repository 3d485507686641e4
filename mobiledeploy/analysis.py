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

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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


def _conv(args: tuple, kwargs: dict, out: Any) -> tuple:
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
    return op, macs, params, _numel(x) + _numel(out) + params, 0


def _linear(args: tuple, kwargs: dict, out: Any) -> tuple:
    x, w, b = args[0], args[1], _arg(args, kwargs, 2, "bias")
    params = _numel(w) + _numel(b)
    return "linear", _numel(out) * w.shape[1], params, _numel(x) + _numel(out) + params, 0


def _batch_norm(args: tuple, kwargs: dict, out: Any) -> tuple:
    x = args[0]
    params = _numel(_arg(args, kwargs, 3, "weight")) + _numel(_arg(args, kwargs, 4, "bias"))
    return "batch_norm", 0, params, _numel(x) + _numel(out) + params, _numel(out)


def _elementwise(op: str) -> Callable[[tuple, dict, Any], tuple]:
    def handle(args: tuple, kwargs: dict, out: Any) -> tuple:
        reads = sum(_numel(t) for t in _tensors(args))
        return op, 0, 0, reads + _numel(out), _numel(out)

    return handle


def _movement(op: str) -> Callable[[tuple, dict, Any], tuple]:
    """Ops that read and write data without arithmetic (pooling, concat, shuffle copies)."""

    def handle(args: tuple, kwargs: dict, out: Any) -> tuple:
        reads = sum(_numel(t) for t in _tensors(args[0] if op == "concat" else args[:1]))
        return op, 0, 0, reads + _numel(out), 0

    return handle


HANDLERS: dict[str, Callable[[tuple, dict, Any], tuple]] = {
    "conv2d": _conv,
    "linear": _linear,
    "batch_norm": _batch_norm,
    "cat": _movement("concat"),
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
}.items():
    HANDLERS[_name] = _elementwise(_op)

# Calls that touch no data: views, metadata, shape arithmetic.
FREE = {
    "__get__", "size", "dim", "numel", "__len__", "view", "reshape", "flatten", "transpose",
    "permute", "unsqueeze", "squeeze", "chunk", "split", "narrow", "__getitem__", "t", "expand",
    "contiguous", "dtype", "shape", "device", "is_floating_point", "_has_compatible_shallow_copy_type",
    "__setstate__", "requires_grad_", "detach", "__format__", "__repr__",
}


def analyse_model(
    model: Any, input_shape: tuple[int, ...], arch: str = "", config: dict[str, Any] | None = None
) -> ComplexityReport:
    """Run one batch-1 forward pass of `model` on zeros of `input_shape` and count every op."""
    import torch
    from torch.overrides import TorchFunctionMode

    scope: list[str] = []
    names = {id(m): n for n, m in model.named_modules()}
    leaf_ops = {"ChannelShuffle": "channel_shuffle"}
    layers: list[LayerCost] = []
    unknown: set[str] = set()
    suppressed = [0]
    counters: dict[str, int] = {}

    def record(op: str, in_shape: list[int], out: Any, macs: int, params: int, mac: int, ew: int) -> None:
        owner = scope[-1] if scope else ""
        key = f"{owner}:{op}"
        counters[key] = counters.get(key, 0) + 1
        name = owner or op
        if counters[key] > 1 or _is_container_op(owner, op):
            name = f"{owner}.{op}{counters[key] - 1 if counters[key] > 1 else ''}".lstrip(".")
        layers.append(LayerCost(name, op, in_shape, list(out.shape) if hasattr(out, "shape") else [], macs, params, mac, ew))

    def _is_container_op(owner: str, op: str) -> bool:
        module = modules.get(owner)
        return module is not None and len(list(module.children())) > 0

    modules = dict(model.named_modules())

    def pre_hook(module: Any, inputs: Any) -> None:
        scope.append(names.get(id(module), ""))
        if type(module).__name__ in leaf_ops:
            suppressed[0] += 1

    def post_hook(module: Any, inputs: Any, output: Any) -> None:
        kind = type(module).__name__
        if kind in leaf_ops:
            suppressed[0] -= 1
            n = _numel(output)
            record(leaf_ops[kind], list(inputs[0].shape), output, 0, 0, 2 * n, 0)
        scope.pop()

    class Tracer(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if suppressed[0]:
                return out
            fname = getattr(func, "__name__", str(func))
            if fname in FREE:
                return out
            handler = HANDLERS.get(fname)
            first = _tensors(args[:1])
            in_shape = list(first[0].shape) if first else []
            if handler is None:
                unknown.add(fname)
                record(f"unknown:{fname}", in_shape, out, 0, 0, 0, 0)
                return out
            op, macs, params, mac, ew = handler(args, kwargs, out)
            record(op, in_shape, out, macs, params, mac, ew)
            return out

    handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()]
    handles += [m.register_forward_hook(post_hook) for m in model.modules()]
    stages: list[dict[str, Any]] = []
    stage_names = getattr(model, "stage_names", ())
    stage_hooks = [
        getattr(model, s).register_forward_hook(
            lambda m, i, o, s=s: stages.append({"name": s, "out_channels": int(o.shape[1]), "out_shape": list(o.shape)})
        )
        for s in stage_names
    ]
    was_training = model.training
    model.eval()
    x = torch.zeros(*input_shape)
    try:
        with torch.no_grad(), Tracer():
            model(x)
    finally:
        for h in handles + stage_hooks:
            h.remove()
        model.train(was_training)
    return ComplexityReport(
        arch=arch,
        config=dict(config or {}),
        input_shape=list(input_shape),
        layers=layers,
        stages=stages,
        unknown_ops=sorted(unknown),
        model_params=sum(p.numel() for p in model.parameters()),
    )


def analyse(arch: str, resolution: int | str = 224, **config: Any) -> ComplexityReport:
    """Build a registered model and analyse it at `resolution` (N or HxW)."""
    from .registry import build_model, get_spec

    spec = get_spec(arch)
    model = build_model(spec.name, **config)
    h, w = parse_resolution(resolution)
    return analyse_model(model, (1, 3, h, w), arch=spec.name, config=model.mobiledeploy_config)
