"""Pieces shared by the model families: seeded init, channel shuffle, small named layers.

Element-wise ops (add, concat, multiply) stay functional in the blocks: the complexity analysis
traces every torch call, so they are counted and named after the module that makes them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "init_weights",
    "channel_shuffle",
    "ChannelShuffle",
    "ConvBN",
    "make_divisible",
    "SqueezeExcite",
    "load_weights",
    "DEPLOY_METHODS",
    "deploy_method",
    "deploy_form",
]


def init_weights(model: nn.Module, seed: int) -> None:
    """Deterministic init: Kaiming-normal (fan_out) convs, N(0, 0.01) linears, BN to identity.

    BN running statistics are set to mean 0 / var 1 so an untrained model in eval mode is a
    well-conditioned function (outputs neither vanish nor explode), which matters for parity
    and int8 calibration on random weights. A module whose architecture needs more (e.g. dense
    connectivity, where BN at identity does not normalise) defines `seeded_init(generator)`,
    called afterwards with the same generator.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.01, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
        for m in model.modules():
            if callable(getattr(m, "seeded_init", None)):
                m.seeded_init(gen)


def load_weights(model: nn.Module, path: str) -> None:
    """Load a user's state_dict (or a checkpoint holding one under 'state_dict'/'model')."""
    from mobiledeploy.errors import WeightsError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        if _pickled_module(path):
            raise WeightsError(f"{path} holds a whole pickled nn.Module (torch.save(model)), which is not loaded "
                               "because unpickling it can run code: save its weights with "
                               "torch.save(model.state_dict(), PATH) and pass that file") from None
        raise WeightsError(f"cannot read weights file {path}: {type(exc).__name__}") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state_dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of wrong shape (e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)})")
        raise WeightsError(f"weights in {path} do not fit the model: " + "; ".join(parts))
    model.load_state_dict(state)


def _pickled_module(path: str) -> bool:
    """Whether a checkpoint holds a whole nn.Module: its pickle names the attributes every module has.
    Read with pickletools, which only lists opcodes, so nothing in the file is executed."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"), None)
                data = archive.read(name) if name else b""
        else:
            with open(path, "rb") as handle:
                data = handle.read()
        strings = {arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)}
    except Exception:  # not a pickle we can list
        return False
    return {"_modules", "_parameters"} <= strings


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: view channels as (g, n), transpose to (n, g), flatten back."""
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w)
    x = x.transpose(1, 2)
    return x.reshape(b, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm, optionally followed by an activation module."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int] = 1,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU,
        padding: int | tuple[int, int] | None = None,
    ) -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        pad = padding if padding is not None else (k[0] // 2, k[1] // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.Hardswish) else act())
        super().__init__(*layers)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of `divisor`, never more than 10% below `value` (MobileNet rule)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation: global pool → FC(C/r) → act → FC(C) → gate → channel-wise scale."""

    def __init__(
        self,
        channels: int,
        reduced: int,
        act: type[nn.Module] = nn.ReLU,
        gate: type[nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * s


def count_depthwise_convs(model: nn.Module) -> int:
    """Convs with one input channel per group (groups = in channels, any channel multiplier), the
    analysis' `conv2d_dw` and onnx2tf's test alike: what TFLite should run as DEPTHWISE_CONV_2D, a
    kernel of its own, not a CONV_2D with that many groups."""
    return sum(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())


#: a module's own deployment form, in timm's order of preference (timm.utils.model.reparameterize_model)
DEPLOY_METHODS = ("fuse", "reparameterize", "switch_to_deploy")


def deploy_method(module: nn.Module, method: str) -> bool:
    """Whether `module` has the deployment method `method`: a callable attribute that is not a submodule (MobileViT's
    block keeps its fusion conv as `self.fuse`, a module, which is no fuse() method)."""
    found = getattr(module, method, None)
    return callable(found) and not isinstance(found, nn.Module)


def deploy_form(module: nn.Module, calls: dict[str, int] | None = None) -> dict[str, int]:
    """Re-parameterise in place by timm's convention: for each child, depth first from the root, `fuse()` (its result
    replaces the child), else `reparameterize()`, else `switch_to_deploy()` (in place), then its own children. Returns
    how often each method was called."""
    calls = calls if calls is not None else {method: 0 for method in DEPLOY_METHODS}
    for name, child in list(module.named_children()):
        for method in DEPLOY_METHODS:
            if deploy_method(child, method):
                result = getattr(child, method)()
                if method == "fuse":
                    setattr(module, name, result)
                    child = result
                calls[method] += 1
                break
        deploy_form(child, calls)
    return calls
