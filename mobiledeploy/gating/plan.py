"""What the wall-clock gate runs: the models to export and time (`PlanItem`s) and the bench options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .baseline import Baseline
from .request import ACCELERATOR_OPTIONS

__all__ = ["PlanItem", "bench_options", "plan"]


@dataclass
class PlanItem:
    """One model ref to export in `precisions` at `resolution` and time; `reference`: it normalises the others."""

    ref: str
    precisions: tuple[str, ...]
    resolution: tuple[int, ...] | None
    reference: bool = False


def bench_options(old: Baseline | None, device: str, **given: int | None) -> dict[str, Any]:
    """The baseline's bench options (measure the candidate the same way), overridden by the flags given."""
    from ..devices.kinds import GATE_DEFAULTS, gate_options

    defaults = gate_options(device)
    kept = (*GATE_DEFAULTS, *ACCELERATOR_OPTIONS)
    options = {**defaults, **{k: v for k, v in (old.bench_options if old else {}).items() if k in kept}}
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def plan(old: Baseline | None, models: list[str] | None, precisions: str, resolution: str,
         reference: str | None, normalise: bool) -> list[PlanItem]:
    """What to export and time: the new models (and the reference), or the baseline's."""
    from ..analysis import parse_resolution
    from ..bench import parse_precisions

    if models:
        asked = tuple(parse_precisions(precisions))
        res = tuple(parse_resolution(resolution))
        items = [PlanItem(ref, asked, res) for ref in models]
        ref_ref = reference or (_baseline_reference_ref(old) if old and normalise else None)
        if ref_ref and normalise:
            items.append(PlanItem(ref_ref, asked, res, reference=True))
        return items
    assert old is not None
    items = _baseline_plan(old)
    if not normalise:
        items = [p for p in items if not p.reference]
    if reference is not None and normalise:  # --update-baseline with another reference
        for p in items:
            p.reference = False
        named = [m.ref for m in old.models.values() if reference in (m.name, m.key, m.ref)]
        match = next((p for p in items if p.ref in named), None)
        if match is not None:
            match.reference = True
        else:
            items.append(PlanItem(reference, items[0].precisions, items[0].resolution, reference=True))
    return items


def _baseline_plan(old: Baseline) -> list[PlanItem]:
    """One item per (ref, resolution) of the baseline, with every precision it has."""
    from ..errors import ConfigError

    by_ref: dict[tuple[str, tuple[int, ...]], PlanItem] = {}
    for m in old.models.values():
        if not m.ref:
            raise ConfigError(f"the baseline does not say how to rebuild {m.key} (no 'ref'): pass --results, "
                              "or recreate it with --update-baseline --model REF")
        key = (m.ref, tuple(m.resolution or ()))
        item = by_ref.setdefault(key, PlanItem(m.ref, (), tuple(m.resolution) if m.resolution else None,
                                               reference=m.name == old.reference))
        item.precisions = tuple(dict.fromkeys([*item.precisions, m.precision]))
    return list(by_ref.values())


def _baseline_reference_ref(old: Baseline) -> str | None:
    return next((m.ref for m in old.models.values() if m.name == old.reference and m.ref), None)
