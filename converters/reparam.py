"""`--reparameterize`: a model's own deployment form before export, by timm's convention.

Re-parameterisable models (MobileOne, RepViT, FastViT, RepVGG) train with parallel branches (conv-BN,
1x1 conv-BN, identity-BN) that fold into one conv for inference; the papers time and count that form. timm
deploys them with `timm.utils.model.reparameterize_model`: for each child module, depth first from the root,
`fuse()` (its result replaces the child), else `reparameterize()`, else `switch_to_deploy()` (in place),
then its own children. This does the same on the model in place (models/common.py `deploy_form`), checks that the deployed form computes
what the training form computed, and says what it called (the manifest's `reparameterized`).
"""

from __future__ import annotations

from typing import Any

from mobiledeploy.errors import ConfigError, ParityError
from mobiledeploy.models.common import DEPLOY_METHODS as METHODS
from mobiledeploy.models.common import deploy_form

__all__ = ["METHODS", "reparameterize", "REPARAM_TOLERANCE", "ROUNDING_FACTOR"]

#: largest error of the deployed form relative to the training form's output range (folding BN reorders sums) ...
REPARAM_TOLERANCE = 1e-4
#: ... or this many times the training form's own float32 rounding error (against its float64 run) on the same
#: inputs, when that is larger: a seeded network whose activations reach 1e6-1e15 (BN statistics at identity,
#: benchmarks/reparam_tolerance.py) amplifies float32 rounding alike in both forms
ROUNDING_FACTOR = 10.0


def reparameterize(model: Any, input_shape: tuple[int, ...], ref: str = "the model", seed: int = 0,
                   mean: Any = None, std: Any = None) -> dict[str, Any]:
    """Deploy `model` in place; {"convention", "calls": {method: n}, "inputs", "max_rel", "fp32_rounding", "tolerance"}
    or ConfigError when it has no such method, ParityError when the deployed form computes something else. Checked on
    2 synthetic images normalised with `mean`/`std` (the export's kind of input; N(0,1) noise without them)."""
    import copy

    import torch

    model.eval()
    x, inputs = _inputs(input_shape, seed, mean, std)
    with torch.no_grad():
        exact = _float64(copy.deepcopy(model), x)
        before = model(x)
        calls = deploy_form(model)
        after = model(x)
    if not any(calls.values()):
        raise ConfigError(f"--reparameterize: {ref} has no module with a fuse(), reparameterize() or switch_to_deploy() method")
    exact = before.double() if exact is None else exact  # no float64 run: the fixed tolerance alone
    span = float(exact.max() - exact.min()) or 1.0
    max_rel = float((after - before).abs().max()) / span
    rounding = float((before.double() - exact).abs().max()) / span
    tolerance = max(REPARAM_TOLERANCE, ROUNDING_FACTOR * rounding)
    if not max_rel <= tolerance:
        raise ParityError(f"--reparameterize: {ref}'s deployed form does not compute its training form's outputs: max error "
                          f"{max_rel:.3g} of the output range (tolerance {tolerance:.3g}; the training form's own "
                          f"float32 rounding {rounding:.3g})")
    return {"convention": "timm.utils.model.reparameterize_model (fuse, else reparameterize, else switch_to_deploy)",
            "calls": {m: n for m, n in calls.items() if n}, "inputs": inputs, "max_rel": max_rel,
            "fp32_rounding": rounding, "tolerance": tolerance}


def _float64(model: Any, x: Any) -> Any:
    """The model's output in float64, or None when it cannot run so (a float32 tensor made inside its forward)."""
    try:
        return model.double()(x.double())
    except (RuntimeError, TypeError):
        return None


def _inputs(input_shape: tuple[int, ...], seed: int, mean: Any, std: Any) -> tuple[Any, str]:
    """Two check inputs and what they are: synthetic images normalised as the model expects, else N(0,1) noise."""
    import torch

    if mean is None or std is None or len(input_shape) != 4 or input_shape[1] != 3:
        return torch.randn(2, *input_shape[1:], generator=torch.Generator().manual_seed(seed)), f"2 N(0,1) noise inputs (seed {seed})"
    from .calibration import normalise, synthetic_images

    images = normalise(synthetic_images(2, (input_shape[2], input_shape[3]), seed), mean, std)
    return torch.from_numpy(images), f"2 synthetic images (calibration.synthetic_images, seed {seed}), normalised"
