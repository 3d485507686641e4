"""ShuffleNet v2's four guidelines as micro-benchmarks, and a verdict on whether a device agrees.

Ma et al., ShuffleNet V2, ECCV 2018 (arXiv:1807.11164), Sec. 2: on a GTX 1080Ti and a
Snapdragon 810 (ARM, batch 1), networks of (nearly) equal mult-adds ran at different speeds:

- G1 equal channel width minimises memory access cost (Table 1: 1x1 convs at c1:c2 ratios);
- G2 excessive group convolution increases memory access cost (Table 2: 1x1 group convs);
- G3 network fragmentation reduces the degree of parallelism (Table 3: 1/2/4 fragments);
- G4 element-wise operations are non-negligible (Table 4: bottleneck without ReLU/shortcut;
  about 20% faster on both GPU and ARM once both are removed).

The micro-networks are registered models (family "microbench", `models/microbench.py`), so they go
through the same export and benchmark pipeline as any model. This module is pure: it defines the
variants and judges RunResults; the CLI runs them.

Speeds are compared per mult-add where a family's MACs differ slightly (G1, G2, G3: channel
counts are whole numbers), so "relative throughput" is (t_ref / t) · (macs / macs_ref).
"""

from __future__ import annotations

import statistics

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .compare import group_runs, pooled_timings_us
from .records import RunResult

__all__ = ["Variant", "Guideline", "GUIDELINES", "VariantResult", "ClaimResult", "GuidelineResult", "evaluate",
           "get_guidelines", "claim_verdict", "overall_verdict"]

PAPER_PLATFORMS = "GPU: GTX 1080Ti (batch 8); ARM: Qualcomm Snapdragon 810 (batch 1, one thread)"


@dataclass(frozen=True)
class Variant:
    label: str
    ref: str  # model reference: 'g1_ratio:ratio=2'
    paper: str  # the paper's direction for this variant, relative to the reference


@dataclass(frozen=True)
class Guideline:
    id: str
    title: str
    claim: str
    source: str
    variants: tuple[Variant, ...]
    claims: tuple[tuple[str, str], ...]  # (expected faster label, expected slower label): what decides the verdict
    per_mac: bool = True  # compare throughput per mult-add (MACs differ slightly between variants)

    @property
    def reference(self) -> Variant:
        return self.variants[0]


def _ranked(label: str, ref: str, values: tuple[int, ...]) -> tuple[Variant, ...]:
    """A sweep the paper ranks fastest (the first value, the reference) to slowest: `label` and `ref` are formatted
    with each value."""
    ranks = ("fastest (reference)", "slower", "slower still", "slowest")
    return tuple(Variant(label.format(v), ref.format(v), paper) for v, paper in zip(values, ranks, strict=True))


GUIDELINES: tuple[Guideline, ...] = (
    Guideline(
        "G1", "equal channel width minimises memory access cost",
        "1x1 convs are fastest at c1:c2 = 1:1 and slow down as the ratio grows",
        "ShuffleNet v2, Table 1",
        _ranked("1:{}", "g1_ratio:ratio={}", (1, 2, 6, 12)),
        (("1:1", "1:6"), ("1:1", "1:12")),
    ),
    Guideline(
        "G2", "excessive group convolution increases memory access cost",
        "at equal MACs, 1x1 convs slow down as the group count grows",
        "ShuffleNet v2, Table 2",
        _ranked("g={}", "g2_groups:groups={}", (1, 2, 4, 8)),
        (("g=1", "g=4"), ("g=1", "g=8")),
    ),
    Guideline(
        "G3", "network fragmentation reduces the degree of parallelism",
        "at equal MACs, one conv per block beats 2 or 4 smaller ones, in series or in parallel",
        "ShuffleNet v2, Table 3",
        (Variant("1-fragment", "g3_fragments:fragments=1,layout=series", "fastest (reference)"),
         Variant("2-series", "g3_fragments:fragments=2,layout=series", "slower"),
         Variant("4-series", "g3_fragments:fragments=4,layout=series", "slower still"),
         Variant("2-parallel", "g3_fragments:fragments=2,layout=parallel", "slower"),
         Variant("4-parallel", "g3_fragments:fragments=4,layout=parallel", "slower still")),
        (("1-fragment", "4-series"), ("1-fragment", "4-parallel")),
    ),
    Guideline(
        "G4", "element-wise operations are non-negligible",
        "removing ReLU and the shortcut add from a bottleneck makes it faster (~20% on GPU and ARM)",
        "ShuffleNet v2, Table 4",
        (Variant("ReLU+shortcut", "g4_elementwise:relu=True,shortcut=True", "slowest (reference)"),
         Variant("no ReLU", "g4_elementwise:relu=False,shortcut=True", "faster"),
         Variant("no shortcut", "g4_elementwise:relu=True,shortcut=False", "faster"),
         Variant("neither", "g4_elementwise:relu=False,shortcut=False", "fastest (~20%)")),
        (("neither", "ReLU+shortcut"),),
        per_mac=False,
    ),
)


def get_guidelines(ids: str | Sequence[str] | None = None) -> list[Guideline]:
    """Guidelines by id ('G1,G3' or ['g2']); all four when `ids` is empty."""
    from .errors import ConfigError

    if not ids:
        return list(GUIDELINES)
    wanted = [i.strip().upper() for i in (ids.split(",") if isinstance(ids, str) else ids) if i.strip()]
    known = {g.id: g for g in GUIDELINES}
    bad = [i for i in wanted if i not in known]
    if bad or not wanted:
        raise ConfigError(f"unknown guideline {', '.join(bad) or '(none)'} (choose from {', '.join(known)})")
    return [known[i] for i in dict.fromkeys(wanted)]


@dataclass
class VariantResult:
    label: str
    ref: str
    key: str
    paper: str
    macs: int | None = None
    median_ms: float | None = None
    runs: int = 0
    relative_speed: float | None = None  # t_ref / t: > 1 means faster than the reference
    relative_speed_ci: list[float] | None = None
    relative_throughput: float | None = None  # per mult-add: (t_ref / t) * (macs / macs_ref)
    relative_throughput_ci: list[float] | None = None
    status: str = "ok"
    error: str | None = None
    median_instructions: float | None = None  # qemu: devices: exact Arm instructions, and median_ms is None
    # estimated, never measured (qemu: devices with --phone): the phone profile's ms for the counted runs, and
    # reference estimated ms / this one; the verdicts stay on the counted (or timed) figures
    estimated_ms: float | None = None
    estimated_band_pct: float | None = None
    estimated_relative_speed: float | None = None


@dataclass
class ClaimResult:
    faster: str
    slower: str
    ratio: float | None  # how many times faster `faster` is than `slower` (per MAC where the guideline says)
    ci: list[float] | None
    verdict: str  # "agrees" | "disagrees" | "no clear difference" | "no data"


@dataclass
class GuidelineResult:
    id: str
    title: str
    claim: str
    source: str
    precision: str
    variants: list[VariantResult]
    claims: list[ClaimResult]
    verdict: str
    summary: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def claim_verdict(ratio: float | None, ci: Sequence[float] | None, min_effect: float) -> str:
    """'agrees' when the expected-faster variant is faster by at least `min_effect` and its CI excludes 1."""
    if ratio is None or ci is None:
        return "no data"
    low, high = ci
    if low > 1.0 and ratio >= 1.0 + min_effect:
        return "agrees"
    if high < 1.0 and ratio <= 1.0 / (1.0 + min_effect):
        return "disagrees"
    return "no clear difference"


def overall_verdict(verdicts: Sequence[str]) -> str:
    """agrees (every deciding claim), disagrees (any), partly, no clear difference, or no data."""
    if not verdicts or all(v == "no data" for v in verdicts):
        return "no data"
    if any(v == "disagrees" for v in verdicts):
        return "disagrees"
    if all(v == "agrees" for v in verdicts):
        return "agrees"
    if any(v == "agrees" for v in verdicts):
        return "partly"
    return "no clear difference"


def evaluate(guideline: Guideline, results: Sequence[RunResult], keys: dict[str, str], *, precision: str = "fp32",
             min_effect: float = 0.03, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> GuidelineResult:
    """Judge one guideline from results of its variants; `keys` maps variant labels to model keys."""
    from .stats import ratio_of_medians_ci

    by_key: dict[str, list[RunResult]] = {}
    for (key, run_precision, _res, _runtime), runs in group_runs(results).items():
        if run_precision == precision:
            by_key.setdefault(key, []).extend(runs)
    timings = {v.label: pooled_timings_us(by_key.get(keys.get(v.label, ""), [])) for v in guideline.variants}
    macs = {v.label: next((r.macs for r in by_key.get(keys.get(v.label, ""), []) if r.macs), None)
            for v in guideline.variants}

    def ratio(fast: str, slow: str) -> tuple[float | None, list[float] | None]:
        """How many times faster `fast` runs than `slow` (per MAC if the guideline says), with its CI."""
        a, b = timings[slow], timings[fast]
        if len(a) < 2 or len(b) < 2:
            return None, None
        point, low, high = ratio_of_medians_ci(a, b, confidence=confidence, n_boot=n_boot, seed=seed)
        scale = 1.0
        if guideline.per_mac and macs[fast] and macs[slow]:
            scale = macs[fast] / macs[slow]
        return float(point) * scale, [float(low) * scale, float(high) * scale]

    ref = guideline.reference.label
    variants = []
    for v in guideline.variants:
        t = timings[v.label]
        counted = any(r.instruction_counts for r in by_key.get(keys.get(v.label, ""), []))
        row = VariantResult(v.label, v.ref, keys.get(v.label, ""), v.paper, macs[v.label],
                            statistics.median(t) / 1000.0 if t and not counted else None, len(t))
        if counted and t:
            row.median_instructions = statistics.median(t)
        if not t:
            failed = [r for r in by_key.get(row.key, []) if not r.ok]
            row.status, row.error = "failed", (failed[0].error if failed else "no result")
        elif timings[ref]:
            point, low, high = ratio_of_medians_ci(timings[ref], t, confidence=confidence, n_boot=n_boot, seed=seed)
            row.relative_speed, row.relative_speed_ci = float(point), [float(low), float(high)]
            if macs[v.label] and macs[ref]:
                scale = macs[v.label] / macs[ref]
                row.relative_throughput = row.relative_speed * scale
                row.relative_throughput_ci = [low * scale, high * scale]
        variants.append(row)
    _estimated(variants, by_key)
    claims = []
    for fast, slow in guideline.claims:
        r, ci = ratio(fast, slow)
        claims.append(ClaimResult(fast, slow, r, ci, claim_verdict(r, ci, min_effect)))
    verdict = overall_verdict([c.verdict for c in claims])
    return GuidelineResult(guideline.id, guideline.title, guideline.claim, guideline.source, precision, variants,
                           claims, verdict, _summary(guideline, claims, verdict))


def _estimated(variants: list[VariantResult], by_key: dict[str, list[RunResult]]) -> None:
    """Each variant's estimate (observed["estimate"] of its ok runs, all of them, one phone), and its speed relative
    to the reference's estimate."""
    for row in variants:
        estimates = [(r.observed or {}).get("estimate") for r in by_key.get(row.key, []) if r.ok]
        if estimates and all(estimates) and len({e["phone"] for e in estimates}) == 1:
            row.estimated_ms = statistics.median(float(e["ms"]) for e in estimates)
            row.estimated_band_pct = max(float(e["band_pct"]) for e in estimates)
    ref = variants[0] if variants else None
    for row in variants:
        if ref is not None and ref.estimated_ms and row.estimated_ms:
            row.estimated_relative_speed = ref.estimated_ms / row.estimated_ms


def _summary(guideline: Guideline, claims: list[ClaimResult], verdict: str) -> str:
    unit = " per MAC" if guideline.per_mac else ""
    parts = []
    for c in claims:
        if c.ratio is None:
            parts.append(f"{c.faster} vs {c.slower}: no data")
        else:
            parts.append(f"{c.faster} is {c.ratio:.2f}x as fast{unit} as {c.slower} "
                         f"[{c.ci[0]:.2f}, {c.ci[1]:.2f}]: {c.verdict}")
    head = {"agrees": "this device agrees with the paper", "disagrees": "this device disagrees with the paper",
            "partly": "this device partly agrees with the paper",
            "no clear difference": "no clear difference on this device (the effect is within noise or below the threshold)",
            "no data": "no data"}[verdict]
    return f"{guideline.id}: {head}; " + "; ".join(parts)

