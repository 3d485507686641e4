"""The exact gate: Arm instruction counts on qemu: devices against a committed baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobiledeploy.gate_exact import (
    KIND, ExactEntry, baseline_document, exact_junit, exact_markdown, is_exact_baseline, judge_exact, load_exact,
)

CLI = [sys.executable, "-m", "mobiledeploy"]
ENV = {"litert": "2.3.0", "features": ["fp", "asimd", "asimddp"], "qemu": "7.2.22"}


def entry(count: float, *, spread: int = 0, env: dict | None = None, error: str | None = None, sha: str = "a") -> ExactEntry:
    return ExactEntry(ref="v1:g=3", format="int8", cpu="cortex-a76", instructions=count, sha256=sha, spread=spread,
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


def test_committed_baseline_covers_what_ci_gates():
    path = Path(__file__).parent.parent / "benchmarks" / "baselines" / "arm" / "instructions.json"
    keys = {(e.ref.split(":")[0], e.format, e.cpu) for e in load_exact(path)}
    for arch in ("v1", "mobilenet_v1"):
        for fmt in ("fp32", "int8"):
            for cpu in ("cortex-a76", "cortex-a53"):
                assert (arch, fmt, cpu) in keys


@pytest.mark.qemu
@pytest.mark.slow
def test_a_bigger_model_fails_the_exact_gate_end_to_end(arm_env, tmp_path, results_db):
    """Record a tiny ShuffleNet's counts, then gate a deliberately heavier one (72x72 input) against them."""
    base = tmp_path / "arm.json"
    ref = "v1:g=3,scale=0.25,resolution=64"
    run = lambda *args: subprocess.run([*CLI, "gate", "--baseline", str(base), *args], cwd=tmp_path,  # noqa: E731
                                       capture_output=True, text=True, timeout=900, env={**os.environ, "CI": ""})
    made = run("--update-baseline", "--device", "qemu:cortex-a76", "--model", ref, "--formats", "int8",
               "--junit", str(tmp_path / "made.xml"), "--markdown", str(tmp_path / "made.md"))
    assert made.returncode == 0, made.stderr
    assert 'errors="0"' in (tmp_path / "made.xml").read_text() and "arm.json" in (tmp_path / "made.md").read_text()
    same = run("--junit", str(tmp_path / "same.xml"))
    assert same.returncode == 0, same.stderr
    data = json.loads(base.read_text())
    data["entries"][0]["ref"] = ref.replace("resolution=64", "resolution=72")  # the candidate now does ~27% more work
    base.write_text(json.dumps(data))
    slower = run("--junit", str(tmp_path / "slow.xml"), "--markdown", str(tmp_path / "slow.md"))
    assert slower.returncode == 1, slower.stderr
    assert "regression" in slower.stderr and (tmp_path / "slow.md").read_text().count("❌") >= 1
    data["entries"][0]["environment"]["litert"] = "0.0.1"
    base.write_text(json.dumps(data))
    other = run()
    assert other.returncode == 2 and "re-record" in other.stderr
