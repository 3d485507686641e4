"""The exact gate: Arm instruction counts on qemu: devices against a committed baseline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobiledeploy.errors import ResultsError
from mobiledeploy.gating.exact import (
    KIND, ExactEntry, baseline_document, is_exact_baseline, judge_exact, load_exact, merged_entries,
)
from mobiledeploy.gating.reports import exact_junit, exact_markdown

CLI = [sys.executable, "-m", "mobiledeploy"]
ENV = {"litert": "2.3.0", "features": ["fp", "asimd", "asimddp"], "qemu": "7.2.22"}


def entry(count: float, *, spread: int = 0, env: dict | None = None, error: str | None = None, sha: str = "a") -> ExactEntry:
    return ExactEntry(ref="v1:g=3", precision="int8", cpu="cortex-a76", instructions=count, sha256=sha, spread=spread,
                      environment=dict(env or ENV), error=error)


@pytest.mark.parametrize("candidate, status, code", [
    (1.02e7, "regression", 1),        # +2% over a 1% threshold
    (1.005e7, "unchanged", 0),        # +0.5%: within
    (0.97e7, "improvement", 0),
])
def test_judged_by_the_count_ratio(candidate, status, code):
    verdict = judge_exact([entry(1e7)], [entry(candidate, sha="b")], 0.01)
    assert verdict.entries[0].status == status and verdict.exit_code == code
    assert verdict.entries[0].artifact_changed is True


def test_half_a_percent_is_caught_with_a_half_percent_threshold():
    assert judge_exact([entry(1e7)], [entry(1.0051e7)], 0.005).exit_code == 1
    assert judge_exact([entry(1e7)], [entry(1.0049e7)], 0.005).exit_code == 0


@pytest.mark.parametrize("changed", [{"litert": "2.4.0"}, {"features": ["fp", "asimd"]}])
def test_another_environment_means_rerecord_never_regression(changed):
    verdict = judge_exact([entry(1e7)], [entry(2e7, env={**ENV, **changed})], 0.01)
    assert verdict.entries[0].status == "re-record" and verdict.exit_code == 2
    assert "re-record" in verdict.summary_line()


def test_missing_failed_and_noisy_entries_cannot_judge():
    assert judge_exact([entry(1e7)], [], 0.01).entries[0].status == "missing"
    failed = judge_exact([entry(1e7)], [entry(0, error="the model crashed under emulation")], 0.01)
    assert failed.entries[0].status == "failed" and failed.exit_code == 2
    noisy = judge_exact([entry(1e7)], [entry(1e7, spread=200_000)], 0.01)
    assert noisy.entries[0].status == "inconclusive" and noisy.exit_code == 2
    assert judge_exact([], [], 0.01).exit_code == 2


def test_baseline_round_trip_and_reports(tmp_path):
    path = tmp_path / "arm.json"
    path.write_text(baseline_document([entry(1e7)], 0.01, "c" * 40))
    assert is_exact_baseline(path) and json.loads(path.read_text())["kind"] == KIND
    assert load_exact(path)[0].instructions == 1e7
    verdict = judge_exact(load_exact(path), [entry(1.1e7)], 0.01)
    md = exact_markdown(verdict, str(path))
    assert "regression" in md and "+10.000%" in md and "Arm instructions" in md
    root = ET.fromstring(exact_junit(verdict).split("\n", 1)[1])
    assert root.get("failures") == "1" and root.find(".//failure").get("type") == "InstructionRegression"


def test_rerecording_one_core_keeps_the_others():
    """--update-baseline on cortex-a53 replaces the a53 entries and keeps the a76 ones."""
    a76 = [ExactEntry("v1:g=3", f, "cortex-a76", 1e7 + i) for i, f in enumerate(("fp32", "int8"))]
    a53 = [ExactEntry("v1:g=3", f, "cortex-a53", 2e7 + i) for i, f in enumerate(("fp32", "int8"))]
    again = [ExactEntry("v1:g=3", f, "cortex-a53", 3e7 + i) for i, f in enumerate(("fp32", "int8"))]
    merged = merged_entries(a76 + a53, again)
    assert [(e.cpu, e.precision, e.instructions) for e in merged] == [
        ("cortex-a76", "fp32", 1e7), ("cortex-a76", "int8", 1e7 + 1), ("cortex-a53", "fp32", 3e7), ("cortex-a53", "int8", 3e7 + 1)]
    new = ExactEntry("mobilenet_v1", "int8", "cortex-a53", 5e6)
    assert merged_entries(a76, [new]) == [*a76, new]  # a new model is added after what was there


@pytest.mark.parametrize("entries, said", [
    ({"a": 1}, "'entries' must be a list of objects"),
    ([1, 2], "'entries' must be a list of objects"),
    ([{"ref": "v1", "format": "int8", "cpu": "cortex-a76", "instructions": "abc"}], "'instructions' must be a number"),
    ([{"ref": "v1", "format": "int8", "cpu": "cortex-a76", "instructions": 0}], "'instructions' must be a number"),
    ([{"ref": "v1", "format": "int8", "cpu": "cortex-a76", "instructions": 5, "spread": None}], "'spread' must be"),
    ([{"ref": "", "format": "int8", "cpu": "cortex-a76", "instructions": 5}], "has no 'ref'"),
    ([{"ref": "v1", "format": "int8", "instructions": 5}], "malformed entry"),
    ([{"ref": "v1", "format": "int8", "cpu": "a", "instructions": 5, "environment": []}], "'environment' must be"),
])
def test_a_baseline_of_the_wrong_shape_is_one_error(tmp_path, entries, said):
    path = tmp_path / "arm.json"
    path.write_text(json.dumps({"schema_version": 1, "kind": KIND, "entries": entries}))
    with pytest.raises(ResultsError, match=said.replace("(", r"\(")) as err:
        load_exact(path)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_committed_baseline_covers_what_ci_gates():
    path = Path(__file__).parent.parent / "benchmarks" / "baselines" / "arm" / "instructions.json"
    keys = {(e.ref.split(":")[0], e.precision, e.cpu) for e in load_exact(path)}
    for arch in ("v1", "mobilenet_v1"):
        for fmt in ("fp32", "int8"):
            for cpu in ("cortex-a76", "cortex-a53"):
                assert (arch, fmt, cpu) in keys


TINY_REF = "v1:g=3,scale=0.25,resolution=64"


def gate(cwd: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": "", "MOBILEDEPLOY_DB": str(cwd / "results.db")}
    if pythonpath is not None:  # a scratch copy of the package, imported before the installed one
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([*CLI, "gate", *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def recorded(arm_env, exports, tmp_path_factory) -> Path:
    """A folder holding a tiny ShuffleNet's int8 export (artifacts/) and its counts on cortex-a76 (arm.json),
    recorded through the command CI uses; each test works on its own copy of the baseline. The export is a copy
    of the run's shared one (tests/conftest_export.py, the same request): the gate reuses it as it would a
    working copy's, and the suite converts that model once instead of twice."""
    root = tmp_path_factory.mktemp("exact-gate")
    shared = exports("v1_g3").result.path
    shutil.copytree(shared, root / "artifacts" / shared.name)
    before = (root / "artifacts" / shared.name / "manifest.json").read_bytes()
    made = gate(root, "--baseline", "arm.json", "--update-baseline", "--device", "qemu:cortex-a76", "--model", TINY_REF,
                "--formats", "int8", "--junit", str(root / "made.xml"), "--markdown", str(root / "made.md"))
    assert made.returncode == 0, made.stderr
    assert 'errors="0"' in (root / "made.xml").read_text()
    assert (root / "made.md").read_text().startswith("## ✅ Arm instruction baseline written — `qemu:cortex-a76`")
    assert (root / "artifacts" / shared.name / "manifest.json").read_bytes() == before, "the copy was not reused"
    return root


@pytest.mark.qemu
@pytest.mark.slow
def test_a_bigger_model_fails_the_exact_gate_end_to_end(recorded, tmp_path):
    """Gate a deliberately heavier tiny ShuffleNet (72x72 input) against the recorded counts."""
    base = tmp_path / "arm.json"
    base.write_text((recorded / "arm.json").read_text())
    run = lambda *args: gate(recorded, "--baseline", str(base), *args)  # noqa: E731
    same = run("--junit", str(tmp_path / "same.xml"))
    assert same.returncode == 0, same.stderr
    data = json.loads(base.read_text())
    data["entries"][0]["ref"] = TINY_REF.replace("resolution=64", "resolution=72")  # ~27% more work
    base.write_text(json.dumps(data))
    slower = run("--junit", str(tmp_path / "slow.xml"), "--markdown", str(tmp_path / "slow.md"))
    assert slower.returncode == 1, slower.stderr
    assert "regression" in slower.stderr and (tmp_path / "slow.md").read_text().count("❌") >= 1
    data["entries"][0]["environment"]["litert"] = "0.0.1"
    base.write_text(json.dumps(data))
    other = run()
    assert other.returncode == 2 and "re-record" in other.stderr


def _scratch_package(root: Path) -> Path:
    """A copy of the package laid out as installed (mobiledeploy/, its converters/ and models/) whose converters
    drop one exact rewrite: the channel shuffle stays before each strided depthwise conv (more data moved)."""
    repo = Path(__file__).parent.parent
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(repo / "mobiledeploy", root / "mobiledeploy", ignore=skip)
    for name in ("converters", "models"):
        shutil.copytree(repo / name, root / "mobiledeploy" / name, ignore=skip)
    with open(root / "mobiledeploy" / "converters" / "layout.py", "a") as f:
        f.write("\n\ndef shuffle_after_strided_depthwise(model):  # the regression under test\n    return model, 0\n")
    return root


@pytest.mark.qemu
@pytest.mark.slow
def test_a_converter_change_fails_the_gate_with_the_old_artifacts_present(recorded, tmp_path):
    """A working copy holds the previous code's artifacts. A converter change must be
    judged on what it exports (rebuilt: the key holds the converters' digest), and the code after it too."""
    base = tmp_path / "arm.json"
    base.write_text((recorded / "arm.json").read_text())
    folder = recorded / "artifacts" / "shufflenet_v1-g3-scale0.25-64x64"
    old = json.loads((folder / "manifest.json").read_text())
    scratch = _scratch_package(tmp_path / "scratch")
    changed = gate(recorded, "--baseline", str(base), pythonpath=scratch)
    assert changed.returncode == 1, changed.stderr
    assert "regression" in changed.stderr and "int8 @cortex-a76" in changed.stderr
    rebuilt = json.loads((folder / "manifest.json").read_text())
    assert rebuilt["code"]["converters"] != old["code"]["converters"]
    assert rebuilt["artifacts"]["int8"]["sha256"] != old["artifacts"]["int8"]["sha256"]
    fixed = gate(recorded, "--baseline", str(base))  # the current code again: its own export, judged unchanged
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads((folder / "manifest.json").read_text())["artifacts"]["int8"]["sha256"] == old["artifacts"]["int8"]["sha256"]


@pytest.mark.qemu
@pytest.mark.slow
def test_rerecording_one_core_keeps_the_other_cores_entries(recorded, tmp_path):
    """Through the command: a baseline with a76 and a53 entries, re-recorded on a53."""
    base = tmp_path / "arm.json"
    data = json.loads((recorded / "arm.json").read_text())
    [a76] = data["entries"]
    data["entries"].append({**a76, "cpu": "cortex-a53", "instructions": 1.0, "environment": {}})
    base.write_text(json.dumps(data))
    done = gate(recorded, "--baseline", str(base), "--update-baseline", "--device", "qemu:cortex-a53")
    assert done.returncode == 0, done.stderr
    assert "1 artifact(s) measured, 1 kept as recorded" in done.stderr
    entries = json.loads(base.read_text())["entries"]
    assert [e["cpu"] for e in entries] == ["cortex-a76", "cortex-a53"]
    assert entries[0] == a76  # untouched
    assert entries[1]["instructions"] > 1e5 and "asimddp" not in entries[1]["environment"]["features"]


def test_schema_1_entries_say_format_and_still_load(tmp_path):
    """Schema 1 called the precision `format`; it is read as `precision`, and what is written says `precision`."""
    old = {"ref": "v1:g=3", "format": "int8", "cpu": "cortex-a76", "instructions": 1e7, "spread": 2}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema_version": 1, "kind": KIND, "entries": [old]}))
    (entry,) = load_exact(path)
    assert (entry.precision, entry.key) == ("int8", "v1:g=3 int8 @cortex-a76")
    written = json.loads(baseline_document([entry], 0.01, None))
    assert written["schema_version"] == 2 and written["entries"][0]["precision"] == "int8"
    assert "format" not in written["entries"][0]
    (tmp_path / "new.json").write_text(json.dumps(written))
    assert load_exact(tmp_path / "new.json") == [entry]
    verdict = judge_exact([entry], [entry], 0.01).to_dict()
    assert verdict["entries"][0]["precision"] == "int8" and "format" not in verdict["entries"][0]
