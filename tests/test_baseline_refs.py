"""A baseline's file refs are code the gate runs: only from inside the baseline's repository unless allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobiledeploy.gating.baseline_refs import check_baseline_refs, outside_refs, repository_of
from mobiledeploy.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_the_repository_is_the_git_work_tree_else_the_folder(tmp_path):
    assert repository_of(REPO / "benchmarks" / "baselines" / "arm" / "instructions.json") == REPO
    assert repository_of(tmp_path / "arm.json") == tmp_path.resolve()


def test_only_file_refs_outside_the_root_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refs = ["v1:g=3,scale=0.5", "mypkg.models:build", "net.py:build:width=8", "net.onnx", "/elsewhere/x.py:build",
            "/elsewhere/y.pt2", "../up.onnx"]
    found = outside_refs(refs, tmp_path.resolve())
    assert [ref for ref, _ in found] == ["/elsewhere/x.py:build", "/elsewhere/y.pt2", "../up.onnx"]
    assert found[0][1] == Path("/elsewhere/x.py")


def test_a_baseline_naming_a_file_elsewhere_is_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    baseline = tmp_path / "ci" / "arm.json"
    baseline.parent.mkdir()
    check_baseline_refs(["ci/net.py:build"], baseline, allow_outside=False)  # inside: fine
    with pytest.raises(ConfigError, match="outside its repository") as err:
        check_baseline_refs(["net.py:build", "other.onnx"], baseline, allow_outside=False)
    assert "--allow-outside-refs" in str(err.value) and "(and 1 more)" in str(err.value)
    check_baseline_refs(["net.py:build"], baseline, allow_outside=True)
