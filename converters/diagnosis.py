"""Why a parity check cannot judge: a model whose fp32 outputs vanish or do not depend on the input.

A randomly initialised network (torchvision's own init, BatchNorm statistics never estimated) can give logits of
~1e-10 for every input; int8 then has nothing to resolve and its cosine against fp32 is 0, which says nothing
about the conversion. The export says what it saw instead, in one line.
"""

from __future__ import annotations

import numpy as np

__all__ = ["degenerate_outputs", "VANISHING_ABS", "CONSTANT_SPREAD"]

VANISHING_ABS = 1e-6  # largest |output| below this: the outputs vanish
CONSTANT_SPREAD = 1e-4  # spread over inputs / size of the outputs below this: the same output for every input


def degenerate_outputs(outputs: np.ndarray) -> str | None:
    """A sentence when the fp32 outputs of several inputs vanish or are (nearly) the same for each; else None."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if out.size == 0 or not np.all(np.isfinite(out)):
        return None
    largest = float(np.max(np.abs(out)))
    hint = "untrained or randomly initialised weights? pass --weights (or re-estimate BatchNorm statistics)"
    if largest < VANISHING_ABS:
        return (f"the fp32 model's outputs vanish on the {len(out)} held-out inputs (largest |output| {largest:.1e}): "
                f"{hint}")
    spread = float(np.max(np.std(out, axis=0)))
    if len(out) > 1 and spread < CONSTANT_SPREAD * largest:
        return (f"the fp32 model gives (nearly) the same output for each of the {len(out)} held-out inputs (spread "
                f"{spread / largest:.1e} of the output's size): {hint}")
    return None
