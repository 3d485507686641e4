"""Checks a command makes before it exports or runs anything, printed the CLI's way (a warning line, or one
error line and the exit code of a failed run); shared by bench, compare and guidelines."""

from __future__ import annotations

import sys

__all__ = ["preflight"]


def preflight(device: str, adb_server: str | None, db: str | None, threads: int | None, *, exports: bool) -> None:
    """Before any export or run: the results database, a thread count above the cores, and (when an export
    would come first) whether the phone is there at all; an unreachable one exits 1 as a failed run does."""
    from ..errors import DeviceError
    from ..preflight import ask_phone, check_db, check_threads

    check_db(db)
    if warning := check_threads(threads, device):
        sys.stderr.write(f"mobiledeploy: warning: {warning}\n")
    if exports:
        try:
            ask_phone(device, adb_server)
        except DeviceError as exc:
            sys.stderr.write(f"mobiledeploy: error: {' '.join(str(exc).split())} (nothing exported or run)\n")
            raise SystemExit(1) from None
