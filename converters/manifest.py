"""manifest.json: what an artifact directory holds and proves (schema in docs/CONTRACTS.md).

Paths inside a manifest are relative to its directory. `request` records every input the files
depend on, so an export with the same request can reuse them once their sha256 still match.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mobiledeploy.artifact_kinds import FILE_NAMES
from mobiledeploy.errors import ExportError
from mobiledeploy.files import sha256_file

__all__ = [
    "Manifest",
    "ArtifactEntry",
    "Delegation",
    "read_manifest",
    "manifest_beside",
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "FILE_NAMES",
    "file_entry",
    "tool_versions",
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


def _load_json(path: str | Path) -> dict[str, Any]:
    """The JSON of an artifact directory's manifest (or a manifest.json path); ExportError if unusable."""
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


def write_manifest(manifest: "Manifest", directory: Path) -> Path:
    """manifest.json in `directory` (the export's temporary folder, renamed whole when done)."""
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    return path


def artifact_problems(manifest: "Manifest", directory: Path, formats: tuple[str, ...] = ()) -> list[str]:
    """What keeps `directory` from being reused: missing formats, missing files, changed sha256."""
    problems = [f"{fmt} was not exported" for fmt in formats if fmt not in manifest.artifacts]
    for fmt, entry in manifest.artifacts.items():
        path = directory / entry.path
        if not entry.path:
            problems.append(f"{fmt}: no file recorded")
        elif not path.is_file():
            problems.append(f"{fmt}: {entry.path} is missing")
        elif path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            problems.append(f"{fmt}: {entry.path} has changed")
    for fmt, result in manifest.parity.items():
        if not result.get("passed"):
            problems.append(f"{fmt} parity did not pass")
    return problems


# --- the typed manifest --------------------------------------------------------------------------------
# Every manifest written so far is schema 1; the keys added since the first ones (an artifact's `delegation`,
# `float_layers`, `request.source`, `calibration`, `code`, `source`, `reparameterized`) are optional here, so an
# old file reads with them empty. Keys a type does not name are kept in its `extra` and written back unchanged:
# `to_dict()` of a read manifest equals the file. The nested records whose keys vary by stage (`parity`,
# `complexity`, `calibration`, `request`, an io entry) stay JSON objects, described in docs/CONTRACTS.md.

@dataclass(frozen=True, kw_only=True)
class Delegation:
    """How much of an artifact one runtime's delegate takes: the TFLite files as XNNPACK partitions them when
    loaded on the host, a .pte as its lowered graph says (`delegated`: edge op → count). Counts of nodes."""

    runtime: str | None = None
    partitions: int | None = None
    nodes: int | None = None
    delegated_nodes: int | None = None
    delegated: dict[str, int] = field(default_factory=dict)
    not_delegated: dict[str, int] = field(default_factory=dict)  # op → nodes left to the CPU reference kernels
    why: dict[str, str] = field(default_factory=dict)            # op → the delegate's reason, when known
    extra: dict[str, Any] = field(default_factory=dict)
    read_keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def full(self) -> bool:
        return self.nodes is not None and self.delegated_nodes == self.nodes

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Delegation":
        return cls(**_known(cls, data), extra=_unknown(cls, data), read_keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(kw_only=True)
class ArtifactEntry:
    """One file of the export: its path (relative to the folder), size and sha256; for a model file its io
    (`inputs`/`outputs`: {"name", "shape", "dtype", "layout", "quantization"}), ops and, for the files a runtime
    delegates, its `Delegation`; the weights' `source`. Keys not named here stay in `extra`."""

    path: str = ""                            # "" in a damaged entry: never reused (artifact_problems)
    bytes: int | None = None
    sha256: str | None = None
    source: str | None = None                 # weights: the file loaded, or the seeded init
    opset: int | None = None                  # onnx
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    op_counts: dict[str, int] = field(default_factory=dict)
    channel_shuffles: int | None = None       # TFLite files: the shuffles left as Reshape-Transpose-Reshape
    scheme: str | None = None                 # int16x8, pte_int8: the quantization scheme
    float_layers: dict[str, Any] | None = None  # int8 with float layers: {"requested", "layers", "chosen_by"[, "layernorms"]}
    delegation: Delegation | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    read_keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArtifactEntry":
        known = _known(cls, data)
        if isinstance(known.get("delegation"), dict):
            known["delegation"] = Delegation.from_dict(known["delegation"])
        known["op_counts"] = known.get("op_counts") or {}
        return cls(**known, extra=_unknown(cls, data), read_keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(kw_only=True)
class Manifest:
    """manifest.json of an artifact folder (schema in docs/CONTRACTS.md), fields in the order an export writes
    them. `parity`: artifact key (and "arm") → its checks; `calibration`: the inputs that calibrated and checked."""

    schema_version: int = SCHEMA_VERSION
    arch: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    resolution: list[int] | None = None
    slug: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    complexity: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, ArtifactEntry] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    created_at: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)    # = request.code: what made the files
    source: dict[str, Any] | None = None                  # a user's model: {"kind", "ref", "sha256", …}
    reparameterized: dict[str, Any] | None = None         # reparameterize=True: what was called, and its check
    extra: dict[str, Any] = field(default_factory=dict)
    read_keys: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the file's keys: written back

    @property
    def macs(self) -> int | None:
        return self.complexity.get("macs")

    @property
    def source_sha256(self) -> str | None:
        """A user's model file's sha256 (`request.source`); None for a zoo model or an older manifest."""
        return (self.request.get("source") or {}).get("sha256")

    def file(self, key: str) -> str:
        """The path (relative to the folder) of artifact `key`; ExportError when the export has none."""
        if key not in self.artifacts:
            raise ExportError(f"the export {self.slug} has no {key} artifact")
        return self.artifacts[key].path

    def entry_of_file(self, name: str, sha256: str) -> tuple[str, ArtifactEntry] | None:
        """(key, entry) of the artifact stored as `name` with this sha256, if the manifest has it."""
        return next(((k, e) for k, e in self.artifacts.items() if e.path == name and e.sha256 == sha256), None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        known = _known(cls, data)
        known["artifacts"] = {k: ArtifactEntry.from_dict(e) for k, e in (known.get("artifacts") or {}).items()
                              if isinstance(e, dict)}
        for key in ("config", "complexity", "parity", "request", "versions", "stage_seconds", "code"):
            known[key] = known.get(key) or {}
        return cls(**known, extra=_unknown(cls, data), read_keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def read_manifest(path: str | Path) -> Manifest:
    """The typed manifest of an artifact directory (or a manifest.json path); ExportError if unusable."""
    return Manifest.from_dict(_load_json(path))


def manifest_beside(path: Path) -> Manifest | None:
    """The manifest of the folder holding the file `path`, if one is there and readable (of any schema: what it
    says is a fact about the file, used when it matches by sha256); None otherwise."""
    try:
        data = json.loads((path.parent / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return Manifest.from_dict(data) if isinstance(data, dict) else None


def _fields(cls: type) -> list[str]:
    return [f for f in cls.__dataclass_fields__ if f not in ("extra", "read_keys")]


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in _fields(cls) if k in data}


def _unknown(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in _fields(cls)}


def _as_dict(record: Any) -> dict[str, Any]:
    """The record as JSON data: the fields the file had and those set since (an empty or None field the file
    did not have stays out), then its `extra`."""
    out: dict[str, Any] = {}
    for name in _fields(type(record)):
        value = getattr(record, name)
        if name not in record.read_keys and (value is None or value == {}):
            continue
        if isinstance(value, dict) and name == "artifacts":
            value = {k: e.to_dict() for k, e in value.items()}
        out[name] = value.to_dict() if hasattr(value, "to_dict") else value
    out.update(record.extra)
    return {**{k: out[k] for k in record.read_keys if k in out}, **out}  # the file's order, new keys after
