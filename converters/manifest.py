"""manifest.json: what an artifact directory holds and proves (schema in docs/CONTRACTS.md).

Paths inside a manifest are relative to its directory. `request` records every input the files
depend on, so an export with the same request can reuse them once their sha256 still match.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from mobiledeploy.artifact_kinds import FILE_NAMES
from mobiledeploy.errors import ExportError
from mobiledeploy.files import sha256_file

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "FILE_NAMES",
    "file_entry",
    "tool_versions",
    "load_manifest",
    "write_manifest",
    "artifact_problems",
]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
_DISTRIBUTIONS = {
    "mobiledeploy": "mobiledeploy",
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "onnxslim": "onnxslim",
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "onnx2tf": "onnx2tf",
    "ai_edge_litert": "ai-edge-litert",
    "numpy": "numpy",
    "executorch": "executorch",  # the .pte formats (optional extra)
    "torchao": "torchao",
}


def file_entry(directory: Path, name: str) -> dict[str, Any]:
    """{"path", "bytes", "sha256"} of `directory / name`, the path relative to `directory`."""
    path = directory / name
    return {"path": name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def tool_versions() -> dict[str, str | None]:
    """Installed versions of the tools a conversion depends on (read from metadata, nothing imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read the manifest of an artifact directory (or a manifest.json path); ExportError if unusable."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"no manifest at {path}") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"manifest {path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise ExportError(f"manifest {path} has schema_version {found!r}; this mobiledeploy reads {SCHEMA_VERSION}")
    return manifest


def write_manifest(manifest: dict[str, Any], directory: Path) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def artifact_problems(manifest: dict[str, Any], directory: Path, formats: tuple[str, ...] = ()) -> list[str]:
    """What keeps `directory` from being reused: missing formats, missing files, changed sha256."""
    problems = []
    artifacts = manifest.get("artifacts", {})
    for fmt in formats:
        if fmt not in artifacts:
            problems.append(f"{fmt} was not exported")
    for fmt, entry in artifacts.items():
        path = directory / entry.get("path", "")
        if not path.is_file():
            problems.append(f"{fmt}: {entry.get('path')} is missing")
        elif path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            problems.append(f"{fmt}: {entry.get('path')} has changed")
    for fmt, result in manifest.get("parity", {}).items():
        if not result.get("passed"):
            problems.append(f"{fmt} parity did not pass")
    return problems
