"""Checks of a finished CLI subprocess that several test files make."""

from __future__ import annotations

import subprocess


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The house rule for bad input: exit 2, no traceback, exactly one `mobiledeploy: ...` line on stderr (returned)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mobiledeploy:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]
