"""A baseline's model refs are code: a `FILE.py:NAME` ref is imported and run by the gate that reads it.

A baseline from elsewhere (a pull request, a download) could name any file on the machine. The gate
therefore runs file refs (`FILE.py:NAME`, `FILE.onnx`, `FILE.pt2`) only from inside the repository that
holds the baseline (its git work tree, else the baseline's folder), unless the user says otherwise
(`gate --allow-outside-refs`). A ref typed on the command line (`--model`) is the user's own choice and
is not checked. Module refs (`package.module:NAME`) import whatever is on the path and are not checked.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable

from ..errors import ConfigError

__all__ = ["repository_of", "outside_refs", "check_baseline_refs"]


def repository_of(path: str | Path) -> Path:
    """The git work tree holding `path` (a file or folder), else the folder of `path`."""
    folder = Path(path).absolute()
    folder = folder if folder.is_dir() else folder.parent
    try:
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True,
                              timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return folder.resolve()
    top = proc.stdout.strip()
    return Path(top).resolve() if proc.returncode == 0 and top else folder.resolve()


def outside_refs(refs: Iterable[str], root: Path) -> list[tuple[str, Path]]:
    """(ref, file) of each file ref whose file (resolved from the current folder, as the gate imports it) lies
    outside `root`."""
    from ..sources import split_source_ref

    found = []
    for ref in dict.fromkeys(refs):
        source = split_source_ref(ref or "")
        if source is None:
            continue
        head = source[0]
        where = head.rpartition(":")[0] if head.lower().split(":")[0].endswith(".py") else head
        if not where.lower().endswith((".py", ".onnx", ".pt2")):
            continue  # package.module:NAME
        path = Path(where).expanduser().resolve()
        if not path.is_relative_to(root):
            found.append((ref, path))
    return found


def check_baseline_refs(refs: Iterable[str], baseline: str | Path, allow_outside: bool) -> None:
    """ConfigError (before anything runs) when a baseline names a model file outside its repository."""
    if allow_outside:
        return
    root = repository_of(baseline)
    outside = outside_refs(refs, root)
    if outside:
        ref, path = outside[0]
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise ConfigError(f"the baseline {baseline} names the model file {path}{more}, outside its repository {root}: "
                          f"a baseline's model ref is code the gate runs ({ref}); pass --allow-outside-refs if you "
                          "trust it")
