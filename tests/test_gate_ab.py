"""gate --against REV|DIR: baseline artifacts from a git revision or a folder, measured beside the candidate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mobiledeploy.ab import export_argv, folder_targets
from mobiledeploy.errors import ConfigError

CLI = [sys.executable, "-m", "mobiledeploy"]
REPO = Path(__file__).resolve().parent.parent
SMALL = "v1:g=3,scale=0.25,resolution=64"


def run(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "gate", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CI": ""})


def test_export_argv_rebuilds_a_ref(tmp_path):
    argv = export_argv("v1:g=3,scale=0.5,resolution=160", tmp_path)
    assert argv[:3] == ["export", "--arch", "shufflenet_v1"] and "--resolution" in argv
    assert argv[argv.index("--resolution") + 1] in ("160", "160x160")
    assert {"g=3", "scale=0.5"} <= {argv[i + 1] for i, a in enumerate(argv) if a == "--set"}


def test_a_revision_exports_from_the_candidates_weights_and_calibration(tmp_path, monkeypatch):
    """--against REV with --weights/--calibration: that revision's export gets them too, as absolute paths."""
    from mobiledeploy.ab import input_argv
    from mobiledeploy.records import ExportInputs

    monkeypatch.chdir(tmp_path)
    assert input_argv(None) == [] and input_argv(None, ExportInputs(out="elsewhere")) == []
    inputs = input_argv("my.pt", ExportInputs("val", 64))
    assert inputs == ["--weights", str(tmp_path / "my.pt"), "--calibration", str(tmp_path / "val"),
                      "--calib-samples", "64"]
    argv = export_argv("v1:g=3", tmp_path / "out", inputs)
    assert argv[argv.index("--weights"):][:len(inputs)] == inputs


def test_a_folder_without_artifacts_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no exported artifacts"):
        folder_targets(tmp_path)


@pytest.mark.parametrize("args, message", [
    ((), "--baseline"),
    (("--baseline", "x.json", "--against", "HEAD"), "not both"),
    (("--against", "no-such-revision-xyz", "--device", "local"), "not a commit"),
])
def test_bad_against_input_is_one_line_exit_2(args, message, results_db):
    proc = run(*args, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def lighter_baseline(tmp_path_factory) -> Path:
    """A folder whose artifact for SMALL's slug is really the 32x32 model: ~4x fewer mult-adds."""
    from mobiledeploy.converters import export_model
    from mobiledeploy.registry import config_slug

    root = tmp_path_factory.mktemp("lighter")
    built = export_model("shufflenet_v1", {"g": 3, "scale": 0.25}, resolution=(32, 32), out_dir=root / "build",
                         formats=("onnx", "fp32", "int8"))
    slug = config_slug("shufflenet_v1", {"g": 3, "scale": 0.25}, (64, 64))
    folder = root / "release" / slug
    shutil.copytree(built.path, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["slug"] = slug
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return root / "release"


# --against HEAD on Arm: tests/test_readme_ci.py runs the README's pull-request step that way.


def candidate_copy(exports, cwd: Path) -> Path:
    """cwd/artifacts holding a copy of the run's shared export of SMALL (tests/conftest_export.py, the same
    request), which the gate reuses as a working copy's: the candidate is judged as if exported there, and the
    suite converts it once. Returns the copy's manifest.json, for the caller to check that it was reused."""
    shared = exports("v1_g3").result.path
    shutil.copytree(shared, cwd / "artifacts" / shared.name)
    return cwd / "artifacts" / shared.name / "manifest.json"


@pytest.mark.qemu
@pytest.mark.slow
def test_a_heavier_candidate_fails_against_a_folder_on_arm(arm_env, lighter_baseline, exports, tmp_path, results_db):
    manifest = candidate_copy(exports, tmp_path)
    before = manifest.read_bytes()
    proc = run("--against", str(lighter_baseline), "--device", "qemu:cortex-a76", "--model", SMALL,
               "--formats", "int8", "--junit", str(tmp_path / "ab.xml"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "regression" in proc.stderr and "failures=\"1\"" in (tmp_path / "ab.xml").read_text()
    assert manifest.read_bytes() == before  # the candidate's export was reused


@pytest.mark.slow
def test_a_heavier_candidate_fails_against_a_folder_on_the_host(lighter_baseline, exports, tmp_path, results_db):
    """Wall clock, interleaved in one run: the 64x64 candidate is ~4x the work of the 32x32 baseline."""
    manifest = candidate_copy(exports, tmp_path)
    before = manifest.read_bytes()
    proc = run("--against", str(lighter_baseline), "--device", "local", "--model", SMALL, "--formats", "fp32",
               "--rounds", "40", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    model = json.loads(proc.stdout)["models"][0]
    assert model["status"] == "regression" and model["low"] > 1.5
    assert manifest.read_bytes() == before  # the candidate's export was reused
