"""Statistics of proportions (accuracy): pure functions, the standard library only.

`wilson_interval`: the Wilson score interval of a binomial proportion (Wilson 1927; Brown, Cai & DasGupta 2001,
"Interval Estimation for a Binomial Proportion", recommend it over the Wald interval for small n or p near 0/1).
`mcnemar_exact`: McNemar's test of two classifiers judged on the same images, exact form: under the null the
discordant pairs split as Binomial(b + c, 1/2); the two-sided p-value is min(1, 2 · P(X ≤ min(b, c)))
(as `statsmodels.stats.contingency_tables.mcnemar(exact=True)`).
`paired_difference`: the accuracy difference of two classifiers on the same images with its Wald interval
for paired proportions (Agresti, Categorical Data Analysis, 10.1.1) and McNemar's exact p-value.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Sequence

__all__ = ["wilson_interval", "mcnemar_exact", "paired_difference"]


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the proportion successes / n; (0.0, 1.0) when n is 0."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact p-value of b (only the first right) against c (only the second right); 1.0 for b = c = 0."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_difference(first: Sequence[bool], second: Sequence[bool], confidence: float = 0.95) -> dict[str, Any]:
    """second's accuracy minus first's, on the same items: {"difference", "low", "high", "only_first",
    "only_second", "p_value", "n"}; `only_first` (b) counts the items first got right and second wrong."""
    if len(first) != len(second):
        raise ValueError(f"paired results of different lengths: {len(first)} and {len(second)}")
    n = len(first)
    b = sum(1 for x, y in zip(first, second) if x and not y)
    c = sum(1 for x, y in zip(first, second) if y and not x)
    if n == 0:
        return {"difference": 0.0, "low": -1.0, "high": 1.0, "only_first": 0, "only_second": 0, "p_value": 1.0, "n": 0}
    diff = (c - b) / n
    var = ((b + c) / n - diff * diff) / n
    half = _z(confidence) * math.sqrt(max(var, 0.0))
    return {"difference": diff, "low": max(-1.0, diff - half), "high": min(1.0, diff + half), "only_first": b,
            "only_second": c, "p_value": mcnemar_exact(b, c), "n": n}
