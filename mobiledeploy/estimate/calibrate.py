"""Calibrating a phone profile from the user's own phone: the one free parameter (cycle_scale) fitted on a
suite timed on the phone, every model of the suite also predicted from a fit that left it out (held out), and
the profile saved where `phone()` finds it (<cache>/phones/NAME.json)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .phones import PACKAGED, PhoneProfile

__all__ = ["SUITE", "Fit", "fit_scale", "fit", "save_profile"]

#: the default suite: small models of the zoo's kinds (1x1/dense convs, depthwise, shuffles, fire modules)
SUITE = ("shufflenet_v1:g=3,scale=0.5", "mobilenet_v1:alpha=0.25", "mobilenet_v2:alpha=0.35", "squeezenet1_1")


@dataclass
class Fit:
    scale: float                         # cycle_scale fitted on every model
    rows: list[dict[str, Any]]           # model, measured_ms, raw_ms, held_out_ms, held_out_error_pct
    band_pct: float                      # the largest held-out error (at least 5%)


def fit_scale(pairs: list[tuple[float, float]]) -> float:
    """(measured ms, raw estimated ms) pairs → the scale whose estimates err least in ratio (geometric mean)."""
    if not pairs or any(m <= 0 or r <= 0 for m, r in pairs):
        raise ConfigError("calibration needs at least one model measured and estimated above 0 ms")
    return math.exp(sum(math.log(m / r) for m, r in pairs) / len(pairs))


def fit(models: list[str], measured_ms: list[float], raw_ms: list[float]) -> Fit:
    pairs = list(zip(measured_ms, raw_ms))
    rows = []
    for i, (name, (m, r)) in enumerate(zip(models, pairs)):
        rest = pairs[:i] + pairs[i + 1:]
        held = r * fit_scale(rest) if rest else None
        rows.append({"model": name, "measured_ms": m, "raw_ms": r, "held_out_ms": held,
                     "held_out_error_pct": None if held is None else 100.0 * (held / m - 1.0)})
    errors = [abs(row["held_out_error_pct"]) for row in rows if row["held_out_error_pct"] is not None]
    return Fit(fit_scale(pairs), rows, max([5.0, *errors]))


def save_profile(base: PhoneProfile, name: str, result: Fit, source: str, folder: Path | None = None) -> Path:
    """The base profile's entry with the fitted calibration, as <folder or cache/phones>/NAME.json (atomic)."""
    from ..files import write_atomic
    from .phones import saved_folder

    entries = {**json.loads(PACKAGED.read_text())["phones"]}
    if base.origin and Path(base.origin) != PACKAGED:
        entries.update(json.loads(Path(base.origin).read_text())["phones"])
    entry = dict(entries[base.name])
    entry["label"] = f"{base.label}, calibrated ({name})"
    entry["calibration"] = {"cycle_scale": round(result.scale, 4), "band_pct": round(result.band_pct, 1),
                            "source": source, "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "held_out": result.rows}
    path = (folder or saved_folder()) / f"{name}.json"
    write_atomic(path, json.dumps({"schema": 1, "phones": {name: entry}}, indent=1) + "\n")
    return path
