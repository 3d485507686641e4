"""benchmarks/bench_peers.py: round-robin timing and its ratios, on stand-in runtimes (no model, no export)."""

from __future__ import annotations

import time

import pytest

from benchmarks import bench_peers


def test_every_round_times_every_runtime_in_turn():
    order = []

    def runtime(name, seconds):
        def invoke():
            order.append(name)
            time.sleep(seconds)
        return invoke

    medians = bench_peers.interleaved({"ort_fp32": runtime("ort", 0.002), "tflite_fp32": runtime("tfl", 0.001)},
                                      rounds=3, per_round=2, warmup=1)
    assert order == ["ort", "tfl"] + ["ort", "ort", "tfl", "tfl"] * 3  # warm-up, then round-robin rounds
    assert [len(v) for v in medians.values()] == [3, 3]
    assert all(1900 < us < 20000 for us in medians["ort_fp32"]) and all(900 < us < 20000 for us in medians["tflite_fp32"])


def test_speeds_are_relative_to_onnx_runtime_fp32_per_round():
    medians = {"tflite_fp32": [5.0, 10.0, 5.0], "tflite_int8": [2.5, 5.0, 2.5], "ort_fp32": [4.0, 8.0, 4.0]}
    ratios = bench_peers.ratios(medians)
    assert ratios["tflite_fp32_speed_vs_ort_fp32"][0] == pytest.approx(0.8)  # t_ort / t_tflite: slower than ORT
    assert ratios["tflite_int8_speed_vs_ort_fp32"][0] == pytest.approx(1.6)
    assert ratios["tflite_int8_over_fp32_time"][0] == pytest.approx(0.5)
    assert "ort_fp32_speed_vs_ort_fp32" not in ratios


def test_the_table_has_a_row_per_model_and_the_arm_columns():
    row = {"model": "m", "median_ms": {"tflite_fp32": 5.0, "tflite_int8": 2.5, "ort_fp32": 4.0},
           "ratios": bench_peers.ratios({"tflite_fp32": [5.0], "tflite_int8": [2.5], "ort_fp32": [4.0]}),
           "arm": {"cortex-a76_fp32": 63.1e6, "cortex-a76_int8": 31.8e6, "cortex-a76_int8_over_fp32": 0.504}}
    table = bench_peers.markdown([row], ["cortex-a76"]).splitlines()
    assert len(table) == 3 and table[2].startswith("| m | 5.00 | 2.50 | 4.00 | 0.80 [")
    assert table[2].endswith("| 63.10M | 31.80M | 0.50 |")
