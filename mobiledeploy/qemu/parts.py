"""The optional parts of the emulated Arm64 environment made from an aarch64 wheel of the host's version
(ExecuTorch's runner, `executorch_env.py`; ONNX Runtime, `onnxruntime_env.py`): what they share.

A part lives in `<env root>/<name>/` beside the LiteRT sysroot, which it never touches; its `env.json`, written
last, says it is ready. It is built in a temporary sibling and renamed into place, so a failed build leaves
the part that was there (or none), never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from .env import EmulatorMissingError, run_tool

__all__ = ["Part", "host_version", "read_part", "download_wheel", "ensure_part"]

Guest = TypeVar("Guest")


@dataclass
class Part:
    """A part that is ready: its folder and what its env.json records (the versions it was built from)."""

    root: Path
    versions: dict[str, Any]

#: build(version, scratch, part): fills `part` (scratch is a temporary folder beside it), returns what env.json records
Build = Callable[[str, Path, Path], dict[str, Any]]


def host_version(dist: str) -> str | None:
    """The version of `dist` installed on the host, None when it is not."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def read_part(part: Path, title: str, hint: str) -> dict[str, Any]:
    """The part's env.json; EmulatorMissingError '<title> is not set up ...: <hint>' when absent or unreadable."""
    try:
        recorded = json.loads((part / "env.json").read_text())
    except (OSError, ValueError):
        raise EmulatorMissingError(f"{title} is not set up in the Arm64 environment: {hint}") from None
    if not isinstance(recorded, dict):
        raise EmulatorMissingError(f"{title} is not set up in the Arm64 environment (damaged env.json): {hint}")
    return recorded


def download_wheel(dist: str, version: str, dest: Path, platforms: tuple[str, ...]) -> Path:
    """pip download of the CPython 3.11 aarch64 wheel `dist==version` (no dependencies) into `dest`."""
    tags = [word for tag in platforms for word in ("--platform", tag)]
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
            "3.11", *tags, "-d", str(dest), f"{dist}=={version}"]
    run_tool(argv, f"pip download (aarch64 {dist} wheel)", timeout=900)
    found = sorted(dest.glob(f"{dist}-*.whl"))
    if not found:
        raise EmulatorMissingError(f"pip found no aarch64 wheel of {dist} {version}")
    return found[0]


def ensure_part(env_root: Path, dist: str, name: str, find: Callable[[Path], Guest], build: Build) -> Guest | None:
    """The part `name` for the host's `dist`: None when the host has no `dist`; the one `find` accepts if there is
    one; else built by `build`, recorded and renamed into place, then found. A failure is EmulatorMissingError."""
    version = host_version(dist)
    if version is None:
        return None
    try:
        return find(env_root)
    except EmulatorMissingError:
        pass
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=env_root))
    try:
        part = scratch / "part"
        part.mkdir()
        recorded = build(version, scratch, part)
        (part / "env.json").write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        final = env_root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(part, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return find(env_root)
