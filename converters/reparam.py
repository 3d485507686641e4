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

__all__ = ["METHODS", "reparameterize", "REPARAM_TOLERANCE"]

#: largest error of the deployed form relative to the training form's output range (folding BN reorders sums)
REPARAM_TOLERANCE = 1e-4


def reparameterize(model: Any, input_shape: tuple[int, ...], ref: str = "the model", seed: int = 0) -> dict[str, Any]:
    """Deploy `model` in place; {"convention", "calls": {method: n}, "max_rel", "tolerance"} or ConfigError when it has
    no such method, ParityError when the deployed form computes something else."""
    import torch

    model.eval()
    x = torch.randn(2, *input_shape[1:], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        before = model(x)
        calls = deploy_form(model)
        after = model(x)
    if not any(calls.values()):
        raise ConfigError(f"--reparameterize: {ref} has no module with a fuse(), reparameterize() or switch_to_deploy() method")
    span = float(before.max() - before.min()) or 1.0
    max_rel = float((after - before).abs().max()) / span
    if not max_rel <= REPARAM_TOLERANCE:
        raise ParityError(f"--reparameterize: {ref}'s deployed form does not compute its training form's outputs: max error "
                          f"{max_rel:.3g} of the output range (tolerance {REPARAM_TOLERANCE})")
    return {"convention": "timm.utils.model.reparameterize_model (fuse, else reparameterize, else switch_to_deploy)",
            "calls": {m: n for m, n in calls.items() if n}, "max_rel": max_rel, "tolerance": REPARAM_TOLERANCE}
