"""The gate's judgement on synthetic sessions with known answers, its reports, and its CLI exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.gating.baseline import Baseline, baseline_from_results, load_baseline, save_baseline
from mobiledeploy.cli import main
from mobiledeploy.errors import ConfigError
from mobiledeploy.gating.reports import verdict_junit, verdict_markdown
from mobiledeploy.gating.status import (
    FAILED, IMPROVEMENT, INCONCLUSIVE, INSUFFICIENT, MISSING, NEW, REGRESSION, UNCHANGED,
)
from mobiledeploy.gating.wallclock import GatePolicy, Threshold, judge
from mobiledeploy.records import RunResult

MODEL, OTHER, REF = "shufflenet_v1-g3-scale0.5-112x112", "shufflenet_v1-g3-scale0.25-112x112", "mobilenet_v1-alpha0.25-112x112"
MEDIANS_US = {MODEL: 2000.0, OTHER: 1200.0, REF: 1000.0}


def session_results(medians: dict[str, float] = MEDIANS_US, *, rounds: int = 8, runs: int = 20, machine: float = 1.0,
                    noise: float = 0.03, drift: float = 0.02, seed: int = 0, device: str = "local") -> list[RunResult]:
    """Interleaved rounds: every round has its own machine speed (drift) shared by all models, plus run noise."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(rounds):
        speed = machine * float(np.exp(rng.normal(0.0, drift)))
        for name, median_us in medians.items():
            timings = median_us * speed * np.exp(rng.normal(0.0, noise, runs))
            result = RunResult(model=name, precision="fp32", device=device, artifact=f"/a/{name}.tflite",
                               sha256=name[:1] * 64, threads=1, runs=0, warmup=2, round=r)
            out.append(result.with_timings(timings.tolist()))
    return out


def session(medians: dict[str, float] = MEDIANS_US, **kw) -> Baseline:
    refs = {MODEL: "v1:g=3,scale=0.5", OTHER: "v1:g=3,scale=0.25", REF: "mobilenet_v1:alpha=0.25"}
    return baseline_from_results(session_results(medians, **kw), reference=REF, refs=refs,
                                 bench_options={"runs": kw.get("runs", 20), "rounds": kw.get("rounds", 8)})


def slower(factor: float, name: str = MODEL) -> dict[str, float]:
    return {**MEDIANS_US, name: MEDIANS_US[name] * factor}


def status_of(verdict, name: str = MODEL) -> str:
    return next(m.status for m in verdict.models if m.name == name)


# --- the policy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, fraction", [("5%", 0.05), ("0.05", 0.05), ("median:7.5%", 0.075), (" 10 % ", 0.10),
                                            (0.2, 0.2), ("150%", 1.5)])
def test_threshold_parses_percent_and_fraction(text, fraction):
    threshold = Threshold.parse(text)
    assert threshold.fraction == pytest.approx(fraction) and threshold.factor == pytest.approx(1 + fraction)


@pytest.mark.parametrize("text", ["5", "fast", "-5%", "0%", ""])
def test_threshold_rejects_nonsense(text):
    with pytest.raises(ConfigError):
        Threshold.parse(text)


def test_policy_validation():
    with pytest.raises(ConfigError, match="confidence"):
        GatePolicy(confidence=1.0).validate()


# --- known answers ----------------------------------------------------------------------------------

def test_clear_regression_fails_with_its_interval():
    verdict = judge(session(seed=1), session(slower(1.12), seed=2))
    m = next(m for m in verdict.models if m.name == MODEL)
    assert m.status == REGRESSION and verdict.exit_code == 1
    assert m.low > 1.05 and m.low < m.ratio < m.high and m.ratio == pytest.approx(1.12, abs=0.03)
    assert m.method == "rounds" and m.normalised and m.p_value < 0.01
    assert "slower" in m.message and "99% interval" in m.message
    assert status_of(verdict, OTHER) == UNCHANGED
    assert REF not in [m.name for m in verdict.models]  # the reference is not judged
    assert verdict.summary_line().startswith(f"{MODEL}/fp32: +")


def test_clear_improvement_is_reported_and_passes():
    verdict = judge(session(seed=1), session(slower(0.8), seed=2))
    assert status_of(verdict) == IMPROVEMENT and verdict.exit_code == 0
    assert "1 improved" in verdict.summary_line()


def test_pure_noise_never_fails():
    base = session(seed=100)
    codes = [judge(base, session(seed=seed, noise=0.05, drift=0.04)).exit_code for seed in range(20)]
    assert codes == [0] * 20


def test_a_slowdown_inside_the_threshold_is_not_a_regression():
    verdict = judge(session(seed=1), session(slower(1.03), seed=2, noise=0.01, drift=0.005))
    assert status_of(verdict) == UNCHANGED and verdict.exit_code == 0
    strict = judge(session(seed=1, noise=0.01, drift=0.005), session(slower(1.10), seed=2, noise=0.01, drift=0.005),
                   GatePolicy(Threshold.parse("15%")))
    assert status_of(strict) == UNCHANGED


def test_an_interval_straddling_the_threshold_is_inconclusive_not_unchanged():
    """Few noisy rounds: the interval spans both sides of +5%, so the samples cannot tell; it passes
    (only a whole interval above the threshold fails) but is never called unchanged."""
    verdict = judge(session(seed=1), session(slower(1.05), seed=2, rounds=5, noise=0.08, drift=0.08))
    m = next(m for m in verdict.models if m.name == MODEL)
    assert m.low < 1.05 < m.high and m.status == INCONCLUSIVE and verdict.exit_code == 0
    assert "straddles the +5% threshold" in m.message
    assert f"1 inconclusive (interval crosses +5%: {MODEL}/fp32" in verdict.summary_line()
    assert verdict.to_dict()["models"][0]["status"] == INCONCLUSIVE
    row = next(line for line in verdict_markdown(verdict).splitlines() if line.startswith(f"| `{MODEL}`"))
    assert row.rstrip(" |").endswith("❔ inconclusive")
    case = next(c for c in ET.fromstring(verdict_junit(verdict)).iter("testcase") if c.get("name") == MODEL)
    assert case.find("properties/property[@name='verdict']").get("value") == INCONCLUSIVE
    assert case.find("failure") is None and case.find("system-out").text.startswith("inconclusive:")


def test_uniformly_slower_machine_passes_thanks_to_the_reference():
    base, cand = session(seed=1), session(seed=2, machine=1.4, drift=0.06)
    verdict = judge(base, cand)
    assert verdict.exit_code == 0 and status_of(verdict) == UNCHANGED
    assert verdict.machine_ratio[0] == pytest.approx(1.4, rel=0.05)
    raw = judge(base, cand, GatePolicy(normalise=False))
    assert status_of(raw) == REGRESSION and raw.exit_code == 1 and raw.reference is None


def test_slower_model_on_a_slower_machine_still_fails():
    verdict = judge(session(seed=1), session(slower(1.15), seed=2, machine=1.3))
    assert status_of(verdict) == REGRESSION


def test_too_few_samples_cannot_be_judged():
    verdict = judge(session(seed=1), session(seed=2, rounds=2, runs=3))
    m = next(m for m in verdict.models if m.name == MODEL)
    assert m.status == INSUFFICIENT and verdict.exit_code == 2 and "too few samples" in m.message


def test_one_long_round_falls_back_to_pooled_runs():
    verdict = judge(session(seed=1, rounds=1, runs=200, drift=0.0), session(slower(1.2), seed=2, rounds=1, runs=200,
                                                                            drift=0.0))
    m = next(m for m in verdict.models if m.name == MODEL)
    assert m.method == "runs" and m.status == REGRESSION


def test_missing_failed_and_new_models():
    cand_results = [r for r in session_results(seed=2) if r.model != OTHER]
    for r in cand_results:
        if r.model == MODEL:
            r.failed("Segmentation fault")
            r.timings_us = None
    cand_results += [r for r in session_results({"brand-new": 10.0}, seed=3)]
    cand = baseline_from_results(cand_results, reference=REF)
    verdict = judge(session(seed=1), cand)
    assert status_of(verdict, MODEL) == FAILED and "Segmentation fault" in next(
        m.message for m in verdict.models if m.name == MODEL)
    assert status_of(verdict, OTHER) == MISSING
    assert status_of(verdict, "brand-new") == NEW
    assert verdict.exit_code == 2


def test_regression_outranks_cannot_judge():
    cand = session(slower(1.2), seed=2)
    del cand.models[f"{OTHER}/fp32"]
    assert judge(session(seed=1), cand).exit_code == 1


def test_a_failed_reference_makes_every_model_unjudgeable():
    cand = session(seed=2)
    cand.models[f"{REF}/fp32"].rounds.clear()
    verdict = judge(session(seed=1), cand)
    assert {m.status for m in verdict.models} == {FAILED} and verdict.exit_code == 2


def test_judgement_is_deterministic_and_warns_on_changed_conditions():
    base, cand = session(seed=1), session(seed=2)
    cand.bench_options["runs"] = 99
    cand.models[f"{REF}/fp32"].sha256 = "f" * 64
    first, second = judge(base, cand), judge(base, cand)
    assert first.to_dict() == second.to_dict()
    assert any("runs differs" in w for w in first.warnings)
    assert any("reference artifact" in w for w in first.warnings)


# --- reports ---------------------------------------------------------------------------------------

def test_markdown_summary():
    verdict = judge(session(seed=1), session(slower(1.12), seed=2))
    text = verdict_markdown(verdict, "benchmarks/baselines/local.json")
    assert text.startswith("## ❌ Latency gate failed: regression — `local`")
    assert "| model | precision | baseline ms | candidate ms | change | 99% interval | p | verdict |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| `{MODEL}`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "fp32" and cells[4].startswith("+") and "…" in cells[5] and cells[7] == "❌ regression"
    assert "`benchmarks/baselines/local.json`" in text and "reference `mobilenet_v1-alpha0.25-112x112`" in text
    passed = verdict_markdown(judge(session(seed=1), session(seed=2)))
    assert passed.startswith("## ✅ Latency gate passed")


def test_junit_has_one_testcase_per_model_and_a_failure_for_a_regression():
    cand = session(slower(1.12), seed=2)
    del cand.models[f"{OTHER}/fp32"]
    root = ET.fromstring(verdict_junit(judge(session(seed=1), cand)))
    suite = root.find("testsuite")
    assert root.tag == "testsuites" and suite.get("tests") == "2"
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {MODEL, OTHER}
    failure = cases[MODEL].find("failure")
    assert failure is not None and failure.get("type") == "LatencyRegression" and "slower" in failure.get("message")
    assert cases[OTHER].find("error").get("type") == MISSING
    assert cases[MODEL].get("classname") == "gate.local.fp32"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["reference"] == REF and props["max_regression"] == "0.05"


# --- the CLI ---------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    base = tmp_path / "baseline.json"
    save_baseline(session(seed=1), base)

    def candidate(medians=MEDIANS_US, **kw) -> str:
        path = tmp_path / f"cand{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps({"device": "local", "session_id": "S",
                                    "results": [r.to_dict() for r in session_results(medians, **kw)]}))
        return str(path)

    return base, candidate


def test_cli_passes_on_noise(files, tmp_path, capsys):
    base, candidate = files
    code = main(["gate", "--baseline", str(base), "--results", candidate(seed=2), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "pass" and out["exit_code"] == 0


def test_cli_fails_on_a_regression_and_writes_reports(files, tmp_path, capsys):
    base, candidate = files
    junit, md, out = tmp_path / "r" / "gate.xml", tmp_path / "gate.md", tmp_path / "out.json"
    code = main(["gate", "--device", "local", "--baseline", str(base), "--results", candidate(slower(1.15), seed=2),
                 "--max-regression", "5%", "--confidence", "0.99", "--junit", str(junit), "--markdown", str(md),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"regression: {MODEL}/fp32: +" in err and "interval" in err
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"
    assert "❌" in md.read_text()
    saved = json.loads(out.read_text())
    assert saved["verdict"]["exit_code"] == 1 and saved["candidate"]["schema_version"] == 2
    # the --out file is itself a valid candidate
    assert main(["gate", "--baseline", str(base), "--results", str(out), "--json"]) == 1


def test_cli_exit_2_on_too_few_samples_and_bad_input(files, capsys):
    base, candidate = files
    assert main(["gate", "--baseline", str(base), "--results", candidate(rounds=2, runs=3, seed=2)]) == 2
    assert "cannot judge" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base), "--results", candidate(seed=2), "--max-regression", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mobiledeploy: error: --max-regression '5' reads as 5x slower") and err.count("\n") == 1
    assert main(["gate", "--baseline", str(base) + ".missing", "--results", candidate(seed=2)]) == 2
    assert "no baseline at" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base), "--results", candidate(seed=2), "--reference", "nosuch"]) == 2
    assert "is not a model of the baseline" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base), "--results", candidate(seed=2), "--device", "adb:X"]) == 2


def test_cli_table_says_inconclusive(files, capsys):
    base, candidate = files
    noisy = candidate(slower(1.05), seed=2, rounds=5, noise=0.08, drift=0.08)
    assert main(["gate", "--baseline", str(base), "--results", noisy]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith(MODEL + " "))
    assert row.split()[-1] == "inconclusive" and "unchanged" not in row
    assert "1 inconclusive" in out


def test_cli_reports_are_written_when_it_cannot_judge(files, tmp_path, capsys):
    base, candidate = files
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    code = main(["gate", "--baseline", str(base), "--results", candidate(rounds=2, runs=3, seed=2),
                 "--junit", str(junit), "--markdown", str(md)])
    assert code == 2
    assert ET.parse(junit).getroot().get("errors") == "2" and md.read_text().startswith("## ⚠️ Latency gate cannot judge")


def test_cli_reference_none_compares_raw_latency(files):
    base, candidate = files
    slow_machine = candidate(seed=2, machine=1.3)
    assert main(["gate", "--baseline", str(base), "--results", slow_machine, "--json"]) == 0
    assert main(["gate", "--baseline", str(base), "--results", slow_machine, "--reference", "none", "--json"]) == 1


def test_cli_update_baseline_from_results(files, tmp_path, capsys):
    base, candidate = files
    new = tmp_path / "new.json"
    code = main(["gate", "--baseline", str(new), "--update-baseline", "--results", candidate(seed=3),
                 "--reference", REF])
    assert code == 0 and "wrote baseline" in capsys.readouterr().err
    written = load_baseline(new)
    assert written.reference == REF and len(written.models) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # refreshing an existing baseline keeps the refs it knew and still exits 0 on a regression
    assert main(["gate", "--baseline", str(base), "--update-baseline", "--results", candidate(slower(1.2), seed=4),
                 "--json"]) == 0
    refreshed = load_baseline(base)
    assert refreshed.models[f"{MODEL}/fp32"].ref == "v1:g=3,scale=0.5"
    # a failing candidate is never written
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([replace(session_results(seed=5)[0]).failed("boom").to_dict()]))
    before = base.read_text()
    assert main(["gate", "--baseline", str(base), "--update-baseline", "--results", str(broken), "--json"]) == 2
    assert base.read_text() == before


def test_cli_help_has_an_example(capsys):
    assert main(["gate", "--help"]) == 0
    assert any(line.strip().startswith("Example:") for line in capsys.readouterr().out.splitlines())


def test_bench_contract_is_used_for_measuring(files, monkeypatch, tmp_path, results_db):
    """Without --results the gate exports through prepare_targets and times through run_bench (interleaved)."""
    import mobiledeploy.bench as bench
    import mobiledeploy.measure as measure

    base, _ = files
    calls = {}

    def fake_prepare(refs, precisions, resolution, progress=None, *, weights=None, export=None):
        name = {"v1:g=3,scale=0.5": MODEL, "v1:g=3,scale=0.25": OTHER, "mobilenet_v1:alpha=0.25": REF}[refs[0]]
        return [bench.BenchTarget(name, Path(f"/a/{name}.tflite"), p, name[:1] * 64) for p in precisions]

    def fake_run_bench(device, targets, options, *, rounds, db=None, adb_server=None, progress=None, collected=None):
        calls.update(collects=collected is not None, device=device, names=[t.name for t in targets], rounds=rounds, runs=options.runs)
        return bench.BenchRun(session_results(slower(1.2), rounds=rounds, runs=options.runs, seed=9), Path("x.db"), "S")

    monkeypatch.setattr(measure, "prepare_targets", fake_prepare)
    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    assert main(["gate", "--baseline", str(base), "--rounds", "6", "--json"]) == 1
    assert calls == {"collects": True, "device": "local", "names": [MODEL, OTHER, REF], "rounds": 6, "runs": 20}


def test_default_rounds_are_many_and_short_locally_fewer_and_longer_on_a_phone(files):
    """Without a baseline's own options: 150 rounds of 5 runs on the host (short rounds keep model and
    reference in the same machine state), 20 of 30 over adb (each round is a new runner process)."""
    from mobiledeploy.gating.plan import bench_options as _bench_options

    local, phone = _bench_options(None, "local"), _bench_options(None, "adb:emulator-5554")
    assert (local["rounds"], local["runs"]) == (150, 5)
    assert (phone["rounds"], phone["runs"]) == (20, 30)
    assert local["rounds"] * local["runs"] >= 600 and phone["rounds"] * phone["runs"] >= 600
    base = load_baseline(files[0])
    kept = _bench_options(base, "adb:emulator-5554", rounds=None, runs=7)
    assert (kept["rounds"], kept["runs"]) == (base.bench_options["rounds"], 7)  # the baseline's, then the flags


def test_paired_rounds_see_a_slowdown_that_round_to_round_drift_hides():
    """A/B in one session (gate --against): candidate and baseline share each round's machine state, so
    the per-round ratio cancels a drift of ±15% that leaves the unpaired interval straddling the threshold
    (inconclusive)."""
    results = session_results({MODEL: 2000.0, "base": 1800.0}, rounds=40, runs=5, drift=0.15, noise=0.02, seed=3)
    cand = baseline_from_results([r for r in results if r.model == MODEL])
    base = baseline_from_results([replace(r, model=MODEL) for r in results if r.model == "base"])
    unpaired = judge(base, cand, GatePolicy(Threshold(0.05), 0.99, normalise=False)).models[0]
    paired = judge(base, cand, GatePolicy(Threshold(0.05), 0.99, normalise=False, paired=True)).models[0]
    assert paired.method == "paired rounds" and paired.status == REGRESSION
    assert 1.09 < paired.low <= paired.ratio <= paired.high < 1.13  # the true slowdown is 2000/1800 = 1.111
    assert unpaired.status == INCONCLUSIVE and unpaired.high - unpaired.low > 3 * (paired.high - paired.low)
