"""The gate's reports (JUnit, Markdown, JSON on every way it ends) and its verdict table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .console import ms_text

if TYPE_CHECKING:
    from ..baseline import Baseline
    from ..gate import Verdict

__all__ = ["GateReports", "error_lines", "print_verdict"]


class GateReports:
    """The --junit, --markdown and --out files, each written atomically on every way the gate ends:
    a verdict (pass, regression, cannot judge), skipped, an error, or interrupted (with what was measured)."""

    def __init__(self, junit: str | None, markdown: str | None, out: str | None, baseline: str, device: str) -> None:
        self.junit, self.markdown, self.out, self.baseline, self.device = junit, markdown, out, baseline, device
        self.measured: list[Any] = []  # runs finished so far (bench.run_bench fills it)
        self.gate = "Latency"  # which gate the headlines name: gate.LATENCY, or gate.INSTRUCTIONS (the exact gate)

    def verdict(self, verdict: "Verdict", candidate: "Baseline") -> None:
        import json

        from ..gate import verdict_junit, verdict_markdown

        payload = {"verdict": verdict.to_dict(), "baseline": self.baseline, "candidate": candidate.to_dict()}
        self._write(verdict_junit(verdict), verdict_markdown(verdict, self.baseline),
                    json.dumps(payload, indent=1, default=str) + "\n")

    def status(self, status: str, exit_code: int, message: str) -> None:
        import json

        from ..gate import status_junit, status_markdown

        payload = {"verdict": {"status": status, "exit_code": exit_code, "summary": message, "device": self.device},
                   "baseline": self.baseline,
                   "measured": [{"model": r.model, "format": r.format, "status": r.status, "round": r.round,
                                 "median_ms": r.median_ms} for r in self.measured]}
        self._write(status_junit(status, self.device, message), status_markdown(status, self.device, message, self.gate),
                    json.dumps(payload, indent=1, default=str) + "\n")

    def interrupted_message(self) -> str:
        from .app import interrupt_exit_code
        import signal

        name = signal.Signals(interrupt_exit_code() - 128).name
        if not self.measured:
            return f"interrupted by {name} before any run finished: nothing judged"
        ok = sum(r.ok for r in self.measured)
        return (f"interrupted by {name} after {len(self.measured)} run(s) ({ok} ok): nothing judged; "
                "the runs are stored in the results database (`mobiledeploy results`)")

    def _write(self, junit: str, markdown: str, out: str) -> None:
        from ..files import write_atomic
        from ..errors import ResultsError

        for path, text in ((self.junit, junit), (self.markdown, markdown), (self.out, out)):
            if not path:
                continue
            try:
                write_atomic(path, text)
            except OSError as exc:
                raise ResultsError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def error_lines(verdict: "Verdict") -> list[str]:
    if verdict.exit_code == 1:
        return [f"regression: {m.key}: {m.message}" for m in verdict.regressions]
    if verdict.exit_code == 2:
        return [f"error: cannot judge: {verdict.summary_line()}"]
    return []


def print_verdict(verdict: "Verdict", baseline_path: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..gate import IMPROVEMENT, REGRESSION, UNCHANGED, format_change

    console = Console(width=max(Console().width, 120))
    conf = f"{verdict.confidence:.0%}"
    # the heading on a line of its own, never wrapped: a baseline's path stays whole (copyable, greppable)
    console.print(f"gate: {verdict.device} vs {baseline_path}", soft_wrap=True, markup=False, highlight=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model", no_wrap=True)
    for col in ("format", "baseline ms", "candidate ms", "change", f"{conf} interval", "p", "verdict"):
        table.add_column(col, overflow="fold")
    colour = {REGRESSION: "red", IMPROVEMENT: "green", UNCHANGED: "green"}
    for m in verdict.models:
        interval = f"{format_change(m.low)} … {format_change(m.high)}" if m.low is not None and m.high is not None else ""
        table.add_row(escape(m.name), m.format, ms_text(m.baseline_median_ms), ms_text(m.candidate_median_ms),
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
