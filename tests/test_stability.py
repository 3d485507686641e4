"""Stability warnings: the pure checks on synthetic runs, and preemption detected on a real run."""

from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pytest

from mobiledeploy.cli import main
from mobiledeploy.results import ResultsStore
from mobiledeploy.records import RunResult
from mobiledeploy.stability import MIN_CPU_SHARE, assess, described, drift, flagged, flagged_line, max_temperature_rise, spread


def run(timings_us=None, *, threads=1, cpu_share=None, config=None, device_info=None, status="ok") -> RunResult:
    result = RunResult(model="m", precision="fp32", device="local", artifact="m.tflite", sha256="0" * 64, threads=threads,
                       runs=0, warmup=0, status=status, cpu_share=cpu_share, config=dict(config or {}),
                       device_info=dict(device_info or {}), run_id="20260101T000000Z-00000000")
    if timings_us is not None:
        result.with_timings(timings_us)
    return result


def quiet(n=60, seed=0) -> list[float]:
    return list(1000.0 * (1 + 0.02 * np.random.default_rng(seed).standard_normal(n)))


def codes(result: RunResult) -> list[str]:
    return [w.code for w in assess(result)]


def test_a_quiet_run_has_no_warning():
    result = run(quiet(), cpu_share=0.99, device_info={"thermal_before": {"tz0": 40.0},
                                                                 "thermal_after": {"tz0": 41.0}})
    assert assess(result) == [] and described(result)["warnings"] == []


def test_noisy_uses_a_spread_that_outliers_do_not_move():
    noisy = list(1000.0 * (1 + 0.2 * np.random.default_rng(1).standard_normal(60)).clip(0.3))
    assert spread(run(noisy)) == pytest.approx(0.2, abs=0.05) and codes(run(noisy)) == ["noisy"]
    bimodal = [1000.0, 1300.0] * 30  # two machine states ~30% apart
    assert codes(run(bimodal)) == ["noisy"]
    outliers = quiet()[:57] + [5000.0, 6000.0, 9000.0]  # a few preemptions: the median is unmoved
    assert run(outliers).cv > 0.5 and spread(run(outliers)) < 0.05 and codes(run(outliers)) == []
    assert codes(run(quiet())) == []


def test_drift_compares_the_last_third_with_the_first():
    step = [1000.0] * 20 + [1100.0] * 40  # the machine slowed down a third of the way in
    assert drift(step) == pytest.approx(0.10)
    assert drift([1100.0] * 30 + [1000.0] * 30) == pytest.approx(1000 / 1100 - 1)
    [warning] = assess(run(step))
    assert warning.code == "drift" and "rose 10%" in warning.message
    assert "fell 9%" in assess(run([1100.0] * 30 + [1000.0] * 30))[0].message
    assert drift([1000.0] * 28 + [2000.0]) is None  # 29 runs: too few to split into thirds
    assert codes(run([1000.0] * 20 + [1040.0] * 40)) == []  # 4%: inside the threshold


def test_preempted_only_for_a_single_thread():
    assert codes(run(quiet(), cpu_share=0.5)) == ["preempted"]
    assert "50%" in assess(run(quiet(), cpu_share=0.5))[0].message
    assert codes(run(quiet(), cpu_share=0.95)) == []
    assert codes(run(quiet(), threads=4, cpu_share=0.5)) == []  # workers: the caller waits by design


def test_heated_names_the_zone_that_warmed_most():
    info = {"thermal_before": {"cpu": 41.0, "battery": 30.0, "gone": 50.0},
            "thermal_after": {"cpu": 48.5, "battery": 31.0}}
    assert max_temperature_rise(info) == ("cpu", 7.5)
    [warning] = assess(run(quiet(), device_info=info))
    assert warning.code == "heated" and warning.message.startswith("cpu warmed by 7.5 °C")
    assert codes(run(quiet(), device_info={"thermal_before": {"cpu": 41.0}, "thermal_after": {"cpu": 45.9}})) == []
    assert max_temperature_rise({}) is None


def test_summary_only_runs_and_failed_runs():
    summary = run(cpu_share=0.99)  # benchmark_model gives a summary, no per-run timings
    summary.mean_ms, summary.std_ms, summary.cv = 2.0, 0.5, 0.25
    assert spread(summary) == 0.25 and codes(summary) == ["noisy"]
    assert assess(run(quiet(), cpu_share=0.1, status="failed")) == []


def test_flagged_counts_runs_by_code():
    runs = [run(quiet(seed=i)) for i in range(3)]
    runs += [run(quiet(), cpu_share=0.5), run([1000.0] * 20 + [1100.0] * 40, cpu_share=0.4),
             run(quiet(), cpu_share=0.1, status="failed")]
    assert flagged(runs) == {"preempted": 2, "drift": 1}
    assert flagged_line(runs) == "2 of 5 timed runs were flagged unstable (drift 1, preempted 2)"
    assert flagged_line(runs[:3]) is None


def test_warnings_are_stored_and_listed(tmp_path, capsys):
    db = tmp_path / "r.db"
    with ResultsStore(db) as store:
        store.finish(run([1000.0] * 20 + [1100.0] * 40))
    [row] = ResultsStore(db).list()
    assert [w["code"] for w in row["warnings"]] == ["drift"]
    assert main(["results", "--db", str(db)]) in (0, None)
    assert "drift" in capsys.readouterr().out
    assert main(["results", "--db", str(db), "--json"]) in (0, None)
    assert json.loads(capsys.readouterr().out)["results"][0]["warnings"][0]["code"] == "drift"


def _spin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    while True:
        pass


@pytest.mark.skipif(0 not in os.sched_getaffinity(0), reason="needs CPU 0")
def test_bench_warns_when_another_process_shares_the_core(tiny_tflite, results_db, capsys):
    """A busy process pinned to the CPU the bench is pinned to takes a share of its time (about half; the
    scheduler has given the bench up to 0.82 on a clean CI run), enough for the preempted warning."""
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(0,), daemon=True)
    spinner.start()
    try:
        code = main(["bench", "--device", "local", "--model", str(tiny_tflite["fp32"]), "--cpu-mask", "1",
                     "--runs", "30", "--min-secs", "0.5", "--warmup", "2"])
    finally:
        spinner.kill()
        spinner.join()
    out = capsys.readouterr().out
    assert code in (0, None)
    [row] = ResultsStore(results_db).list()
    assert row["observed"]["cpus"] == [0] and row["cpu_share"] < MIN_CPU_SHARE
    assert "preempted" in [w["code"] for w in row["warnings"]]
    assert "unstable: tiny_fp32 fp32: the timed loop ran on a CPU only" in out


def test_cpu_share_is_a_fraction_of_the_wall_time(tiny_tflite):
    from mobiledeploy.runtimes.litert import time_tflite

    timing = time_tflite(tiny_tflite["fp32"], runs=50, warmup=2)
    assert 0 < timing["cpu_share"] <= 1.0
