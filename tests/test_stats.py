"""`mobiledeploy.stats` against hand-computed values and synthetic samples with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobiledeploy.stats import (
    cv, mann_whitney_u, median, normalized_ratio_ci, paired_ratio_ci, ratio_of_medians_ci,
)


def test_median_and_cv_by_hand():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    # mean 5, sum of squared deviations 32, sample variance 32/7
    assert cv([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(math.sqrt(32 / 7) / 5)
    assert cv([7.0]) == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        median([])
    with pytest.raises(ValueError, match="finite"):
        cv([1.0, float("nan")])


def test_ratio_of_medians_constant_samples_is_exact():
    assert ratio_of_medians_ci([200.0] * 5, [100.0] * 7) == (2.0, 2.0, 2.0)


def test_ratio_of_medians_two_point_bootstrap_by_hand():
    # median of a resample of [1, 3]: 1 (p 1/4), 2 (p 1/2), 3 (p 1/4); the denominator is always 1,
    # so the 2.5% and 97.5% quantiles are 1 and 3 and the point is 2.
    assert ratio_of_medians_ci([1.0, 3.0], [1.0, 1.0], confidence=0.95, n_boot=4000) == (2.0, 1.0, 3.0)


def test_ratio_of_medians_is_deterministic_for_a_seed_and_covers_the_truth():
    rng = np.random.default_rng(42)
    slow, fast = rng.normal(1100.0, 30.0, 300), rng.normal(1000.0, 30.0, 300)
    first = ratio_of_medians_ci(slow, fast, seed=7)
    assert first == ratio_of_medians_ci(slow, fast, seed=7)
    assert first != ratio_of_medians_ci(slow, fast, seed=8)
    point, low, high = first
    assert low < 1.1 < high and low < point < high
    assert high - low < 0.03
    wide = ratio_of_medians_ci(slow, fast, confidence=0.99, seed=7)
    assert wide[1] <= low and wide[2] >= high


def test_ratio_of_medians_rejects_bad_input():
    with pytest.raises(ValueError, match="positive"):
        ratio_of_medians_ci([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="confidence"):
        ratio_of_medians_ci([1.0], [1.0], confidence=1.0)


def test_paired_ratio_cancels_drift_between_rounds():
    # the machine slows down round after round; the model is always twice the reference
    ref = [100.0, 120.0, 150.0, 200.0, 260.0]
    model = [2 * r for r in ref]
    assert paired_ratio_ci(model, ref) == (2.0, 2.0, 2.0)
    # unpaired, the same numbers give a wide interval
    _, low, high = ratio_of_medians_ci(model, ref)
    assert high / low > 2.0
    with pytest.raises(ValueError, match="length"):
        paired_ratio_ci([1.0, 2.0], [1.0])


def test_normalized_ratio_ignores_a_uniformly_slower_machine():
    rng = np.random.default_rng(0)
    base, base_ref = rng.normal(1000, 20, 200), rng.normal(500, 10, 200)
    cand, cand_ref = 1.3 * rng.normal(1000, 20, 200), 1.3 * rng.normal(500, 10, 200)
    point, low, high = normalized_ratio_ci(cand, cand_ref, base, base_ref, confidence=0.99)
    assert low < 1.0 < high and abs(point - 1.0) < 0.02
    raw = ratio_of_medians_ci(cand, base)
    assert raw[1] > 1.25


def test_mann_whitney_exact_by_hand():
    # complete separation, 3 vs 3: 1 arrangement of C(6,3) = 20 per tail → p = 2/20
    assert mann_whitney_u([1, 2, 3], [4, 5, 6]) == (0.0, pytest.approx(0.1))
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]) == (9.0, pytest.approx(0.1))
    # U = 1 (only 4 > 3): P(U <= 1) = 2/20, two-sided 0.2
    assert mann_whitney_u([1, 4, 2], [3, 5, 6]) == (1.0, pytest.approx(0.2))
    # 4 vs 4 separated: 2 / C(8,4) = 2/70
    assert mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8])[1] == pytest.approx(2 / 70)


def test_mann_whitney_normal_approximation_with_ties_by_hand():
    # pooled ranks: 1→1, the three 2s→3, 3→5, 4..6→6..8; R1 = 12, U1 = 2
    # var = 4*4/12 * (9 - (27-3)/(8*7)); z = (14 - 8 - 0.5)/sqrt(var)
    u, p = mann_whitney_u([1, 2, 2, 3], [2, 4, 5, 6])
    var = 16 / 12 * (9 - 24 / 56)
    z = (14 - 8 - 0.5) / math.sqrt(var)
    assert u == 2.0
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert p == pytest.approx(0.10375, abs=1e-5)
    # separation 3 vs 3 without the exact method: z = (9 - 4.5 - 0.5) / sqrt(9*7/12)
    assert mann_whitney_u([1, 2, 3], [4, 5, 6], method="asymptotic")[1] == pytest.approx(0.080856, abs=1e-6)


def test_mann_whitney_edge_cases():
    assert mann_whitney_u([1.0, 1.0], [1.0, 1.0]) == (2.0, 1.0)
    with pytest.raises(ValueError, match="ties"):
        mann_whitney_u([1, 2], [2, 3], method="exact")
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 8), rng.normal(0.5, 1, 8)
    exact, approx = mann_whitney_u(a, b, "exact")[1], mann_whitney_u(a, b, "asymptotic")[1]
    assert abs(exact - approx) < 0.03
    assert mann_whitney_u(rng.normal(0, 1, 200), rng.normal(1, 1, 200))[1] < 1e-10
