"""The gate's output on the terminal: the verdict tables (wall-clock and exact) and the lines of a failure."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .app import print_json, set_activity
from .console import ms_text, progress_on_stderr, warn_calibration

if TYPE_CHECKING:
    from ..gating.wallclock import Verdict

__all__ = ["TerminalOutput", "print_verdict", "print_exact"]


class TerminalOutput:
    """A gate's output here: the verdict as a table (or JSON with --json) on stdout, lines on stderr."""

    def __init__(self, json_out: bool) -> None:
        self.json_out = json_out

    def verdict(self, verdict: "Verdict", label: str) -> None:
        print_json(verdict.to_dict()) if self.json_out else print_verdict(verdict, label)

    def exact(self, verdict: Any, label: str) -> None:
        print_json(verdict.to_dict()) if self.json_out else print_exact(verdict, label)

    def skipped(self, payload: dict[str, Any]) -> None:
        if self.json_out:
            print_json(payload)

    def note(self, line: str) -> None:
        sys.stderr.write(f"mobiledeploy: {line}\n")

    def say(self, message: str) -> None:
        """One line on stderr, also what an interrupt names as interrupted."""
        set_activity(message)
        sys.stderr.write(f"mobiledeploy: gate: {message}\n")

    def progress(self) -> Any:
        return progress_on_stderr()

    def calibration(self, targets: list[Any]) -> None:
        warn_calibration(targets)


def print_verdict(verdict: "Verdict", baseline_path: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..gating.status import IMPROVEMENT, REGRESSION, UNCHANGED
    from ..gating.wallclock import format_change

    console = Console(width=max(Console().width, 120))
    conf = f"{verdict.confidence:.0%}"
    # the heading on a line of its own, never wrapped: a baseline's path stays whole (copyable, greppable)
    console.print(f"gate: {verdict.device} vs {baseline_path}", soft_wrap=True, markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("model", no_wrap=True)
    for col in ("precision", "baseline ms", "candidate ms", "change", f"{conf} interval", "p", "verdict"):
        table.add_column(col, overflow="fold", no_wrap=col in ("precision", "verdict"))
    colour = {REGRESSION: "red", IMPROVEMENT: "green", UNCHANGED: "green"}
    for m in verdict.models:
        interval = f"{format_change(m.low)} … {format_change(m.high)}" if m.low is not None and m.high is not None else ""
        table.add_row(escape(m.name), m.precision, ms_text(m.baseline_median_ms), ms_text(m.candidate_median_ms),
                      format_change(m.ratio) if m.ratio is not None else "", interval,
                      f"{m.p_value:.2g}" if m.p_value is not None else "",
                      f"[{colour.get(m.status, 'yellow')}]{m.status}[/]")
    console.print(table)
    if verdict.reference:
        machine = ""
        if verdict.machine_ratio:
            machine = f"; this machine runs it at ×{verdict.machine_ratio[0]:.3f} the baseline's time"
        console.print(f"[dim]normalised by the reference {escape(verdict.reference)} timed in the same rounds{machine}[/]")
    for warning in verdict.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    style = {0: "green", 1: "red", 2: "yellow"}[verdict.exit_code]
    console.print(f"[bold {style}]gate {verdict.status}[/]: {escape(verdict.summary_line())} "
                  f"(threshold +{verdict.max_regression * 100:g}%, {conf} interval)")


def print_exact(verdict: Any, baseline: str) -> None:
    """The exact gate's table: instructions per inference, baseline and candidate, per model, precision and core."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .console import stdout_console

    console = stdout_console()
    table = Table(title=f"Arm instruction gate against {escape(baseline)} (exact counts, +{verdict.max_regression * 100:g}% allowed)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("model", "precision", "core", "baseline", "candidate", "change", "verdict"):
        table.add_column(col, justify="left" if col in ("model", "precision", "core", "verdict") else "right",
                         no_wrap=col == "precision")
    colour = {"regression": "red", "improvement": "green", "unchanged": "green"}
    for e in verdict.entries:
        fmt = lambda x: "—" if x is None else f"{x / 1e6:.4f}M"  # noqa: E731
        table.add_row(escape(e.ref), e.precision, e.cpu, fmt(e.baseline), fmt(e.candidate),
                      "—" if e.ratio is None else f"{(e.ratio - 1) * 100:+.3f}%",
                      f"[{colour.get(e.status, 'yellow')}]{e.status}[/]")
    console.print(table)
    console.print(verdict.summary_line())
