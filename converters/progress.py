"""`StageProgress`: a `progress` callback for `export_model` that shows each stage with rich on stderr."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from .pipeline import STAGES

__all__ = ["StageProgress"]


class StageProgress:
    """One line per stage: a spinner while it runs, then ✓ (or ✗) and its seconds.

    Writes to a duplicate of the stderr file descriptor, so the display survives the stages that
    send TensorFlow's own output to a log file. Without a terminal (CI logs) each stage's line is
    printed as soon as it ends, not all at the end. Use as a context manager.
    """

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import Progress, TextColumn

        self._own_file: IO[str] | None = None
        if console is None:
            self._own_file = _stderr_copy()
            console = Console(file=self._own_file or sys.stderr)
        self.console = console
        self._progress = Progress(
            _Mark(), TextColumn("{task.description}"), TextColumn("[dim]{task.fields[seconds]}"),
            console=console, transient=False, redirect_stdout=False, redirect_stderr=False,
            disable=not console.is_terminal,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> "StageProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()
        if self._own_file is not None:
            self._own_file.close()

    def __call__(self, stage: str, event: str, seconds: float | None) -> None:
        label = "reused valid artifacts (sha256 and inputs unchanged)" if stage == "reuse" else STAGES.get(stage, stage)
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(label, total=1, seconds="", failed=False)
        task = self._tasks[stage]
        if event in ("done", "failed"):
            shown = f"{seconds:.1f} s" if seconds is not None else ""
            self._progress.update(task, completed=1, seconds=shown, failed=event == "failed")
            if not self.console.is_terminal:
                mark = "✗" if event == "failed" else "✓"
                self.console.print(f"{mark} {label} [dim]{shown}[/]", highlight=False, soft_wrap=True)


def _stderr_copy() -> IO[str] | None:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")


def _mark_column() -> Any:
    from rich.progress import ProgressColumn, SpinnerColumn
    from rich.text import Text

    class Mark(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self.spinner = SpinnerColumn()

        def render(self, task: Any) -> Any:
            if not task.finished:
                return self.spinner.render(task)
            return Text("✗", style="red") if task.fields.get("failed") else Text("✓", style="green")

    return Mark()


_Mark = _mark_column
