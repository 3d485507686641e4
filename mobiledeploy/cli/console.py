"""What the commands print with: progress on stderr, the stdout console, number formats, shared tables."""

from __future__ import annotations

import sys
from typing import Any

from .app import set_activity

__all__ = ["progress_on_stderr", "worth_a_line", "warn_calibration", "warn_export_calibration", "with_activity", "stdout_console", "ms_text", "count_text",
           "print_attribution"]


class progress_on_stderr:
    """Progress on stderr: a rich spinner on a terminal; without one (CI logs), one line per export stage,
    so an implicit export is never minutes of silence. Every message also names what an interrupt
    interrupted."""

    def __enter__(self) -> Any:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self._lines = not console.is_terminal
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console, transient=True, disable=self._lines)
        self._progress.__enter__()
        self._task = self._progress.add_task("starting", total=None)
        return self.update

    def update(self, message: str) -> None:
        set_activity(message)
        self._progress.update(self._task, description=message)
        if self._lines and worth_a_line(message):
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


def worth_a_line(message: str) -> bool:
    """Without a terminal: every export stage and op profile (minutes of work), not every timed run ([i/N])."""
    return not message.startswith("[")


_warned: set[str] = set()


def warn_calibration(targets: list[Any]) -> None:
    """One warning line per implicit export whose int8 model was calibrated on fewer images than asked for
    (its manifest says so), as `export` prints it: a command that exports silently must not hide it."""
    from ..converters.manifest import manifest_beside

    for target in targets:
        folder = target.artifact.parent
        if target.precision != "int8" or str(folder) in _warned:
            continue
        manifest = manifest_beside(target.artifact)
        warning = ((manifest.calibration if manifest else None) or {}).get("warning")
        if warning:
            _warned.add(str(folder))
            sys.stderr.write(f"mobiledeploy: warning: {target.name}: {warning}\n")


def warn_export_calibration(manifest: Any) -> None:
    """The manifest's calibration warning (fewer images than asked for), when it made an int8 model."""
    warning = (manifest.calibration or {}).get("warning")
    if warning and "int8" in manifest.artifacts:
        sys.stderr.write(f"mobiledeploy: warning: {warning}\n")


def with_activity(progress: Any, what: str) -> Any:
    """`progress` that also names the running stage for the line printed on an interrupt."""
    from ..converters import STAGES

    def stage(name: str, event: str, seconds: float | None) -> None:
        if event == "start":
            set_activity(f"{what}, stage '{STAGES.get(name, name)}'")
        progress(name, event, seconds)

    return stage


def stdout_console() -> Any:
    """stdout console; when piped, wide enough that tables are not folded into 80 columns."""
    from rich.console import Console

    console = Console(emoji=False, highlight=False)
    return console if console.is_terminal else Console(width=220, emoji=False, highlight=False)


def ms_text(value: float | None) -> str:
    """Milliseconds with about three significant digits (0.0107, 1.23, 12.3, 123)."""
    if value is None:
        return "—"
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if abs(value) >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}" if abs(value) >= 0.01 else f"{value:.4f}"


def count_text(value: float | None) -> str:
    """Instructions in millions with four significant digits (26.18M), or — ."""
    return "—" if value is None else f"{value / 1e6:.4g}M"


def print_attribution(att: Any, top: int = 10) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console = stdout_console()
    title = (f"{escape(att.model)} ({att.precision}): share of time vs share of MACs per op type — "
             f"{att.time_ms:.2f} ms of op time")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("op type", "layers", "ops", "time", "MACs", "memory", "time − MACs", "GMAC/s", "GB/s", "MAC/byte"):
        table.add_column(col, justify="left" if col == "op type" else "right")
    for c in att.categories:
        if not (c.time_ms or c.macs):
            continue
        table.add_row(escape(c.label), str(c.layers), str(c.ops), f"{c.time_share:.1%}", f"{c.mac_share:.1%}",
                      f"{c.memory_share:.1%}", f"{c.gap * 100:+.1f} pt",
                      "—" if c.gmacs_per_s is None else f"{c.gmacs_per_s:.2f}",
                      "—" if c.gbytes_per_s is None else f"{c.gbytes_per_s:.2f}",
                      "—" if c.macs_per_byte is None else f"{c.macs_per_byte:.2f}")
    console.print(table)
    if att.layers:
        layers = Table(title=f"layers whose share of time most exceeds their share of MACs (top {top})",
                       title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("layer", "op type", "ms", "time", "MACs", "time − MACs", "GMAC/s", "GB/s"):
            layers.add_column(col, justify="left" if col in ("layer", "op type") else "right")
        for r in att.layers[:top]:
            layers.add_row(escape(r.name), r.category, f"{r.time_ms:.3f}", f"{r.time_share:.1%}", f"{r.mac_share:.1%}",
                           f"{r.gap * 100:+.1f} pt", "—" if r.gmacs_per_s is None else f"{r.gmacs_per_s:.2f}",
                           "—" if r.gbytes_per_s is None else f"{r.gbytes_per_s:.2f}")
        console.print(layers)
    console.print(f"[dim]times: {escape(att.source)}; memory = ShuffleNet v2 MAC x {att.bytes_per_element} "
                  f"byte(s)/element; low MAC/byte = memory-bound[/]")
    for note in att.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
