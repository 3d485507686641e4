"""Statistics for latency samples: pure functions, numpy and the standard library only.

Units: whatever the caller passes, as long as both sides of a ratio share it (the toolkit
passes microseconds, `timings_us`). Ratios are unitless: `ratio_of_medians_ci(slow, fast)` of
2.0 means the medians differ by a factor of two.

Intervals are percentile bootstraps, deterministic for a given `seed`. BCa is deliberately not
used: its acceleration comes from a jackknife, which is inconsistent for the median.
The two-sided Mann–Whitney U test is exact for small samples without ties and otherwise uses
the normal approximation with tie and continuity corrections (as `scipy.stats.mannwhitneyu`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "median", "cv", "ratio_of_medians_ci", "paired_ratio_ci", "normalized_ratio_ci",
    "bootstrap_medians", "mann_whitney_u",
]

Samples = Sequence[float] | np.ndarray
_MAX_CHUNK = 4_000_000  # resampled values held at once (32 MB of float64)


def _array(values: Samples, name: str, min_size: int = 1) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size < min_size:
        raise ValueError(f"{name}: need at least {min_size} sample(s), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: samples must be finite numbers")
    return arr


def median(values: Samples) -> float:
    """The median (mean of the two middle values for an even count)."""
    return float(np.median(_array(values, "median")))


def cv(values: Samples) -> float:
    """Coefficient of variation: sample standard deviation (n-1) / mean; 0.0 for one value."""
    arr = _array(values, "cv")
    mean = float(arr.mean())
    if arr.size < 2 or mean == 0.0:
        return 0.0
    return float(arr.std(ddof=1)) / abs(mean)


def _check_confidence(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def bootstrap_medians(values: Samples, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` medians of resamples (with replacement, same size) of `values`."""
    arr = _array(values, "bootstrap")
    out = np.empty(n_boot)
    rows = max(1, _MAX_CHUNK // arr.size)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, arr.size, size=(stop - start, arr.size))
        out[start:stop] = np.median(arr[idx], axis=1)
    return out


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _positive_median(arr: np.ndarray, name: str) -> float:
    value = float(np.median(arr))
    if value <= 0.0:
        raise ValueError(f"{name}: the median must be positive for a ratio, got {value}")
    return value


def ratio_of_medians_ci(numer: Samples, denom: Samples, confidence: float = 0.95, n_boot: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """median(numer) / median(denom) and its percentile-bootstrap interval: (point, low, high).

    The two samples are independent: each is resampled on its own. Deterministic for a seed.
    """
    _check_confidence(confidence, n_boot)
    a, b = _array(numer, "numer"), _array(denom, "denom")
    point = median(a) / _positive_median(b, "denom")
    rng = np.random.default_rng(seed)
    boot_a, boot_b = bootstrap_medians(a, n_boot, rng), bootstrap_medians(b, n_boot, rng)
    with np.errstate(divide="ignore"):
        low, high = _interval(boot_a / boot_b, confidence)
    return point, low, high


def paired_ratio_ci(numer: Samples, denom: Samples, confidence: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> tuple[float, float, float]:
    """Median of the per-pair ratios numer[i] / denom[i] and its bootstrap interval: (point, low, high).

    For round-paired samples (round i timed numer and denom back to back): pairs are resampled
    together, so slow drift between rounds cancels in each ratio.
    """
    _check_confidence(confidence, n_boot)
    a, b = _array(numer, "numer"), _array(denom, "denom")
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    if np.any(b <= 0):
        raise ValueError("denom: paired ratios need positive values")
    ratios = a / b
    point = float(np.median(ratios))
    low, high = _interval(bootstrap_medians(ratios, n_boot, np.random.default_rng(seed)), confidence)
    return point, low, high


def normalized_ratio_ci(candidate: Samples, candidate_ref: Samples, baseline: Samples, baseline_ref: Samples,
                        confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(median(candidate)/median(candidate_ref)) / (median(baseline)/median(baseline_ref)) with its interval.

    Each of the four independent samples is resampled on its own (percentile bootstrap). A
    machine uniformly slower for candidate and its reference leaves the ratio at 1.
    """
    _check_confidence(confidence, n_boot)
    groups = [_array(v, n) for v, n in ((candidate, "candidate"), (candidate_ref, "candidate_ref"),
                                        (baseline, "baseline"), (baseline_ref, "baseline_ref"))]
    c, cr, b, br = (float(np.median(g)) for g in groups)
    for value, name in ((cr, "candidate_ref"), (b, "baseline"), (br, "baseline_ref")):
        if value <= 0.0:
            raise ValueError(f"{name}: the median must be positive for a ratio, got {value}")
    point = (c / cr) / (b / br)
    rng = np.random.default_rng(seed)
    bc, bcr, bb, bbr = (bootstrap_medians(g, n_boot, rng) for g in groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = _interval((bc / bcr) / (bb / bbr), confidence)
    return point, low, high


# --- Mann–Whitney U ---------------------------------------------------------------------------------

def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share the mean rank) and the sizes of the tie groups."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0  # 1-based mean of positions first+1 .. first+count
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks, counts


def _exact_u_cdf(n1: int, n2: int) -> np.ndarray:
    """P(U <= u) for u = 0 … n1*n2 under H0, no ties: counts of arrangements by recurrence."""
    # counts[i][j] = distribution of U for sample sizes i, j (as a polynomial in u)
    prev = [np.ones(1) for _ in range(n2 + 1)]  # i = 0: U is 0 whatever j
    for i in range(1, n1 + 1):
        row = [np.ones(1)]  # j = 0
        for j in range(1, n2 + 1):
            size = i * j + 1
            dist = np.zeros(size)
            left = prev[j]  # (i-1, j): the largest value belongs to sample 1 → adds j to U
            dist[j:j + left.size] += left
            up = row[j - 1]  # (i, j-1): the largest value belongs to sample 2 → adds 0
            dist[:up.size] += up
            row.append(dist)
        prev = row
    counts = prev[n2]
    return np.cumsum(counts) / counts.sum()


def mann_whitney_u(a: Samples, b: Samples, method: str = "auto") -> tuple[float, float]:
    """Mann–Whitney U of `a` against `b` and its two-sided p-value: (u, p_two_sided).

    `u` counts pairs (x in a, y in b) with x > y, ties counting one half (scipy's U1). `method`:
    "exact" (no ties only), "asymptotic" (normal approximation, tie-corrected variance,
    continuity correction), or "auto": exact when both samples have at most 8 values and no ties.
    """
    x, y = _array(a, "a"), _array(b, "b")
    n1, n2 = x.size, y.size
    ranks, ties = _ranks(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    has_ties = bool(np.any(ties > 1))
    if method == "auto":
        method = "exact" if max(n1, n2) <= 8 and not has_ties else "asymptotic"
    if method == "exact":
        if has_ties:
            raise ValueError("the exact Mann–Whitney distribution assumes no ties")
        cdf = _exact_u_cdf(n1, n2)
        k = int(round(u1))
        p_low = cdf[k]
        p_high = 1.0 - (cdf[k - 1] if k > 0 else 0.0)
        return u1, float(min(1.0, 2.0 * min(p_low, p_high)))
    if method != "asymptotic":
        raise ValueError(f"method must be auto, exact or asymptotic, got {method!r}")
    n = n1 + n2
    mu = n1 * n2 / 2.0
    tie_term = float(np.sum(ties.astype(float) ** 3 - ties)) / (n * (n - 1)) if n > 1 else 0.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0.0:  # every value equal: no evidence of a difference
        return u1, 1.0
    z = (max(u1, n1 * n2 - u1) - mu - 0.5) / math.sqrt(var)
    return u1, float(min(1.0, math.erfc(z / math.sqrt(2.0))))  # 2 * P(Z > z)
