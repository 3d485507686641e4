"""The typed manifest (`converters.manifest.Manifest`): every manifest written so far reads, and writes back
unchanged; bench reads its targets from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from mobiledeploy.bench import target_from_file, targets_from_export
import pytest

from mobiledeploy.converters.manifest import (Delegation, Manifest, artifact_problems, manifest_beside, read_manifest,
                                              write_manifest)
from mobiledeploy.errors import ExportError

#: a manifest as the first exports wrote it: no delegation, calibration summary, code digests or source
OLD = {
    "schema_version": 1, "arch": "shufflenet_v1", "config": {"g": 3, "scale": 0.5}, "resolution": [64, 64],
    "slug": "shufflenet_v1-g3-scale0.5-64x64", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
    "complexity": {"macs": 1306176, "params": 12345},
    "artifacts": {"onnx": {"path": "model.onnx", "bytes": 10, "sha256": "a" * 64, "opset": 17},
                  "fp32": {"path": "model_fp32.tflite", "bytes": 11, "sha256": "b" * 64}},
    "parity": {"fp32": {"passed": True, "cosine": 0.99999}}, "calibration": None,
    "versions": {"python": "3.11.7"}, "stage_seconds": {"total": 1.5}, "created_at": "2026-01-01T00:00:00+00:00",
    "request": {"pipeline": 1, "arch": "shufflenet_v1", "seed": 0},
}


def current() -> dict:
    """A manifest of today's shape: delegation per TFLite file, a user's model source, an unknown future key."""
    data = copy.deepcopy(OLD)
    data["artifacts"]["fp32"]["delegation"] = {"runtime": "xnnpack", "partitions": 1, "nodes": 40,
                                               "delegated_nodes": 38, "not_delegated": {"GELU": 2},
                                               "why": {"GELU": "not supported"}, "future": 1}
    data["request"]["source"] = {"kind": "python", "sha256": "c" * 64}
    data["slug"] += "-m" + "c" * 8
    data["code"] = {"converters": "d" * 64}
    data["future_key"] = {"kept": True}
    return data


def test_an_old_manifest_reads_with_the_newer_fields_empty_and_writes_back_unchanged():
    manifest = Manifest.from_dict(copy.deepcopy(OLD))
    assert (manifest.slug, manifest.arch, manifest.macs, manifest.resolution) == (OLD["slug"], "shufflenet_v1",
                                                                                1306176, [64, 64])
    assert manifest.artifacts["fp32"].delegation is None and manifest.source_sha256 is None
    assert manifest.artifacts["onnx"].opset == 17 and manifest.artifacts["onnx"].extra == {}
    assert (manifest.mean, manifest.stage_seconds, manifest.code, manifest.reparameterized) == (
        OLD["mean"], {"total": 1.5}, {}, None)
    assert manifest.to_dict() == OLD and list(manifest.to_dict()) == list(OLD)


def test_a_current_manifest_types_its_delegation_and_keeps_what_it_does_not_know():
    data = current()
    manifest = Manifest.from_dict(copy.deepcopy(data))
    delegation = manifest.artifacts["fp32"].delegation
    assert isinstance(delegation, Delegation) and not delegation.full
    assert (delegation.delegated_nodes, delegation.nodes, delegation.not_delegated) == (38, 40, {"GELU": 2})
    assert manifest.source_sha256 == "c" * 64
    assert manifest.to_dict() == data  # the unknown keys (top level and in delegation) are written back


def test_bench_targets_from_an_old_and_a_current_manifest(tmp_path):
    old = targets_from_export(tmp_path, Manifest.from_dict(OLD), ["fp32"])
    assert [(t.name, t.artifact, t.sha256, t.macs, t.resolution) for t in old] == [
        (OLD["slug"], tmp_path / "model_fp32.tflite", "b" * 64, 1306176, (64, 64))]
    (new,) = targets_from_export(tmp_path, Manifest.from_dict(current()), ["fp32"])
    assert new.name == OLD["slug"] and new.config["source_sha256"] == "c" * 64  # named the same across edits


def test_written_and_read_through_the_one_module(tmp_path):
    write_manifest(Manifest.from_dict(current()), tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == current()
    assert read_manifest(tmp_path).to_dict() == current()
    model = tmp_path / "model_fp32.tflite"
    Path(model).write_bytes(b"\x00")  # not the file the manifest names (another sha256): no manifest facts
    assert target_from_file(model).macs is None


def test_reuse_checks_read_the_typed_entries(tmp_path):
    """What keeps a folder from being reused, from its typed manifest: a changed file, a missing format, a
    failed parity; `file(key)` names what the export did not make."""
    from mobiledeploy.files import sha256_file

    (tmp_path / "model.onnx").write_bytes(b"onnx")
    data = {"schema_version": 1, "slug": "s", "artifacts": {"onnx": {"path": "model.onnx", "bytes": 4,
                                                                     "sha256": sha256_file(tmp_path / "model.onnx")}},
            "parity": {"onnx": {"passed": True}}}
    manifest = Manifest.from_dict(data)
    assert artifact_problems(manifest, tmp_path, ("onnx",)) == []
    (tmp_path / "model.onnx").write_bytes(b"ONNX")
    manifest.parity["onnx"]["passed"] = False
    assert artifact_problems(manifest, tmp_path, ("onnx", "int8")) == [
        "int8 was not exported", "onnx: model.onnx has changed", "onnx parity did not pass"]
    assert manifest.file("onnx") == "model.onnx"
    damaged = Manifest.from_dict({**data, "artifacts": {"onnx": {}}, "parity": {}})  # no path: read, not reusable
    assert artifact_problems(damaged, tmp_path) == ["onnx: no file recorded"]
    with pytest.raises(ExportError, match="the export s has no int8 artifact"):
        manifest.file("int8")


def test_the_manifest_beside_a_file_is_read_when_there_and_none_otherwise(tmp_path):
    model = tmp_path / "model_fp32.tflite"
    assert manifest_beside(model) is None  # no manifest.json
    (tmp_path / "manifest.json").write_text("{not json")
    assert manifest_beside(model) is None
    (tmp_path / "manifest.json").write_text("[1, 2]")
    assert manifest_beside(model) is None
    write_manifest(Manifest.from_dict(current()), tmp_path)
    assert manifest_beside(model).artifacts["fp32"].delegation.not_delegated == {"GELU": 2}
    with pytest.raises(ExportError, match="schema_version 2"):  # the strict reader an export reuses through
        (tmp_path / "manifest.json").write_text(json.dumps({**current(), "schema_version": 2}))
        read_manifest(tmp_path)
