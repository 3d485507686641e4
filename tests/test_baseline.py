"""Gate baselines: grouping results into rounds, the JSON schema, upgrades, atomic writes, result files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mobiledeploy.gating.baseline import (
    SCHEMA_VERSION, Baseline, BaselineError, baseline_from_results, load_baseline, load_results_files,
    save_baseline, upgrade,
)
from mobiledeploy.errors import ResultsError
from mobiledeploy.files import write_atomic
from mobiledeploy.records import RunResult

FIXTURES = Path(__file__).parent / "fixtures" / "gate"
REPO = Path(__file__).resolve().parents[1]


def result(model: str, round_index: int, timings: list[float] | None, precision: str = "fp32", **config) -> RunResult:
    r = RunResult(model=model, precision=precision, device="local", artifact=f"/a/{model}.tflite", sha256="ab" * 32, threads=1,
                  runs=0, warmup=2, macs=1000, device_info={"model": "host", "soc": "cpu", "thermal_before": {"z": 40}},
                  round=round_index, config={"resolution": [112, 112], **config})
    return r.with_timings(timings) if timings else r.failed("interpreter error")


def test_results_are_grouped_into_rounds_per_artifact():
    runs = [result("m", 0, [100.0, 110.0]), result("ref", 0, [50.0]), result("m", 1, [120.0, 130.0, 125.0]),
            result("ref", 1, [55.0]), result("m", 1, None, precision="int8")]
    b = baseline_from_results(runs, reference="ref", refs={"m": "v1:g=3"}, bench_options={"rounds": 2})
    assert set(b.models) == {"m/fp32", "ref/fp32", "m/int8"}
    m = b.models["m/fp32"]
    assert m.rounds == {"0": [100.0, 110.0], "1": [120.0, 130.0, 125.0]}
    assert m.round_medians_us() == {"0": 105.0, "1": 125.0}
    assert m.ref == "v1:g=3" and m.resolution == [112, 112] and m.macs == 1000
    assert b.models["m/int8"].failures == ["interpreter error"] and not b.models["m/int8"].rounds
    assert b.reference_for("fp32") is b.models["ref/fp32"]
    assert b.reference_for("int8") is b.models["ref/fp32"]  # no int8 reference: any precision
    assert [m.key for m in b.models.values() if m.name != b.reference] == ["m/fp32", "m/int8"]
    assert "thermal_before" not in b.device_info and b.device_info["soc"] == "cpu"
    summary = m.summary()
    assert summary["runs"] == 5 and summary["rounds"] == 2 and summary["median_ms"] == pytest.approx(0.12)


def test_results_of_two_devices_are_refused():
    other = result("m", 0, [1.0])
    other.device = "adb:X"
    with pytest.raises(BaselineError, match="more than one device"):
        baseline_from_results([result("m", 0, [1.0]), other])


def test_save_and_load_round_trip(tmp_path):
    b = baseline_from_results([result("m", r, [100.0 + r, 101.5]) for r in range(3)], refs={"m": "v1:g=3"},
                              bench_options={"runs": 2, "rounds": 3}, git="c0ffee")
    path = save_baseline(b, tmp_path / "deep" / "b.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2 and data["kind"] == "mobiledeploy-gate-baseline"
    assert data["models"][0]["rounds"][2] == {"round": "2", "median_us": 101.75, "timings_us": [102.0, 101.5]}
    assert data["models"][0]["summary"]["rounds"] == 3
    loaded = load_baseline(path)
    assert loaded.models["m/fp32"].rounds == b.models["m/fp32"].rounds
    assert loaded.bench_options == {"runs": 2, "rounds": 3} and loaded.git == "c0ffee"
    assert loaded.to_dict() == {**b.to_dict()}


def test_v0_baseline_is_upgraded():
    b = load_baseline(FIXTURES / "baseline_v0.json")
    assert b.schema_version == SCHEMA_VERSION
    assert b.reference == "mobilenet_v1-alpha0.25-112x112"
    assert b.device == "local" and b.device_info["soc"].startswith("Intel")
    m = b.models["shufflenet_v1-g3-scale0.5-112x112/fp32"]
    assert list(m.rounds) == ["0"] and len(m.rounds["0"]) == 12 and m.sha256.startswith("5f1c")
    assert m.ref is None  # v0 did not record how to rebuild a model
    raw = json.loads((FIXTURES / "baseline_v0.json").read_text())
    assert upgrade(raw)["schema_version"] == 2


def test_v1_baseline_format_is_read_as_precision(tmp_path):
    """Schema 1 called each model's precision `format`: it loads, and is saved again as `precision`."""
    b = baseline_from_results([result("m", r, [100.0 + r, 101.5]) for r in range(3)])
    v1 = b.to_dict()
    v1["schema_version"] = 1
    v1["models"] = [{("format" if k == "precision" else k): v for k, v in m.items()} for m in v1["models"]]
    v1["models"][0]["format"] = "int8"
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    loaded = load_baseline(path)
    assert list(loaded.models) == ["m/int8"] and loaded.models["m/int8"].precision == "int8"
    saved = json.loads(save_baseline(loaded, tmp_path / "again.json").read_text())
    assert saved["schema_version"] == 2 and saved["models"][0]["precision"] == "int8"
    assert "format" not in saved["models"][0]


def test_unknown_schema_and_garbage_are_refused(tmp_path):
    newer = tmp_path / "new.json"
    newer.write_text(json.dumps({"schema_version": 99, "models": []}))
    with pytest.raises(BaselineError, match="schema version 99"):
        load_baseline(newer)
    garbage = tmp_path / "g.json"
    garbage.write_text("{not json")
    with pytest.raises(ResultsError, match="cannot read"):
        load_baseline(garbage)
    with pytest.raises(BaselineError, match="no baseline at"):
        load_baseline(tmp_path / "missing.json")
    no_models = tmp_path / "n.json"
    no_models.write_text("{}")
    with pytest.raises(BaselineError, match="not a gate baseline"):
        load_baseline(no_models)


def test_write_atomic_keeps_the_old_file_when_the_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "b.json"
    write_atomic(target, "old\n")
    os.chmod(target, 0o640)

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["b.json"]
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and (target.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["b.json"]


def test_result_files_of_each_kind(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device": "local", "session_id": "S1",
                                 "results": [result("m", r, [100.0, 101.0]).to_dict() for r in range(2)]}))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{**result("m", 0, [200.0]).to_dict(), "session_id": "S2", "id": 7}]))
    b = load_results_files([bench])
    assert list(b.models["m/fp32"].rounds) == ["0", "1"]
    both = load_results_files([bench, listed])
    assert sorted(both.models["m/fp32"].rounds) == ["S1:0", "S1:1", "S2:0"]
    saved = save_baseline(b, tmp_path / "cand.json")
    assert load_results_files([saved]).models["m/fp32"].rounds == b.models["m/fp32"].rounds
    gate_out = tmp_path / "out.json"
    gate_out.write_text(json.dumps({"verdict": {}, "candidate": b.to_dict()}))
    assert isinstance(load_results_files([gate_out]), Baseline)
    with pytest.raises(BaselineError, match="one baseline-format"):
        load_results_files([saved, bench])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": 1}))
    with pytest.raises(BaselineError, match="not results JSON"):
        load_results_files([bad])
    with pytest.raises(BaselineError, match="no such results file"):
        load_results_files([tmp_path / "nope.json"])


def test_the_projects_own_local_baselines_are_valid():
    """make test gates on benchmarks/baselines/: one baseline per machine class, each named by its class."""
    from mobiledeploy.devices.base import machine_class, machine_slug

    paths = sorted((REPO / "benchmarks" / "baselines").glob("*.json"))
    assert paths
    classes = []
    for path in paths:
        b = load_baseline(path)
        assert b.device == "local" and b.reference
        assert b.reference_for("fp32") is not None and b.reference_for("fp32").ref
        assert len([m for m in b.models.values() if m.name != b.reference]) >= 2
        for m in b.models.values():
            assert m.ref and len(m.sha256) == 64 and len(m.rounds) >= 3 and not m.failures
        classes.append(machine_class(b.device_info))
        assert classes[-1] is not None and path.stem == machine_slug(b.device, classes[-1])
    assert len(set(classes)) == len(classes)
