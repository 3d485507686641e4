"""Cheap checks that run before any expensive work: output paths, the results database, the device.

A report path that cannot be written must fail in a second with one line (exit 2), not after
minutes of measuring; a phone that is not there must be said before an export. Nothing here
creates or changes a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["check_output_file", "check_output_dir", "check_db", "ask_phone", "check_threads"]


def _existing_ancestor(path: Path, option: str) -> Path:
    """The nearest part of `path` that exists; it must be a writable directory (the rest gets created)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot write {option} {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"cannot write {option} {path}: {parent} is not writable")
            return parent
    raise ConfigError(f"cannot write {option} {path}: no existing parent folder")  # pragma: no cover


def check_output_file(path: str | os.PathLike | None, option: str) -> None:
    """A file the command will (re)write at the end: not a folder, its folder creatable and writable."""
    if path is None:
        return
    path = Path(path)
    if str(path).strip() == "":
        raise ConfigError(f"{option} needs a file name")
    if path.is_dir():
        raise ConfigError(f"cannot write {option} {path}: it is a directory")
    _existing_ancestor(path, option)


def check_output_dir(path: str | os.PathLike | None, option: str) -> None:
    """A folder the command will write into: an existing writable folder, or one that can be created."""
    if path is None:
        return
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"cannot write into {option} {path}: it is a file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write into {option} {path}: it is not writable")
        return
    _existing_ancestor(path, option)


def check_db(db: str | os.PathLike | None, *, must_exist: bool = False) -> Path:
    """The results database about to be used: readable and of a known schema when it exists, else
    creatable (or, with `must_exist`, an error naming the missing file). Opens nothing for writing."""
    from .results import check_database, default_db_path

    path = Path(db).expanduser() if db else default_db_path()
    if path.exists():
        check_database(path)
        return path
    if must_exist:
        raise ConfigError(f"results database {path} does not exist (nothing was benchmarked into it; a typo?)")
    check_output_file(path, "--db")
    return path


def ask_phone(uri: str, adb_server: str | None) -> dict[str, Any] | None:
    """Ask a phone (adb:SERIAL) for its facts before exporting for it; raises DeviceError when it is not
    there. Other devices run on this host and are not asked (None)."""
    from .devices import open_device
    from .devices.kinds import kind_of

    if not kind_of(uri).reached_by_adb:
        return None
    with open_device(uri, adb_server=adb_server) as device:
        return device.info()


def check_threads(threads: int | None, device: str) -> str | None:
    """A warning when `local` is asked for more interpreter threads than this host has cores (None: fine)."""
    from .devices.kinds import kind_of

    count = os.cpu_count() or 1
    if threads is not None and threads > count and kind_of(device).host_cpus:
        return (f"--threads {threads} is more than the {count} core(s) of this host: the threads will share "
                f"cores, so latency will be slower and noisier than with {count}")
    return None
