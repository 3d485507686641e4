"""The gate's reports: JUnit XML and Markdown of a verdict (wall-clock or exact) or of a gate that ended
without one, and the --junit/--markdown/--out files written atomically on every way a gate ends."""

from __future__ import annotations

from typing import Any

from .baseline import Baseline
from .exact import UNJUDGED as EXACT_UNJUDGED
from .exact import ExactVerdict
from .status import (BASELINE_WRITTEN, ERROR, FAILED, IMPROVEMENT, INCONCLUSIVE, INSUFFICIENT, INTERRUPTED, MISSING,
                     NEW, OTHER_MACHINE, REGRESSION, RERECORD, SKIPPED, UNCHANGED, GateStatus)
from .wallclock import UNJUDGED, ModelVerdict, Verdict, format_change

__all__ = ["GateReports", "verdict_markdown", "verdict_junit", "status_markdown", "status_junit", "exact_markdown",
           "exact_junit", "LATENCY", "INSTRUCTIONS"]

LATENCY, INSTRUCTIONS = "Latency", "Arm instruction"  # which gate a report speaks for


class GateReports:
    """The --junit, --markdown and --out files, each written atomically on every way the gate ends:
    a verdict (pass, regression, cannot judge), skipped, an error, or interrupted (with what was measured)."""

    def __init__(self, junit: str | None, markdown: str | None, out: str | None, baseline: str, device: str) -> None:
        self.junit, self.markdown, self.out, self.baseline, self.device = junit, markdown, out, baseline, device
        self.measured: list[Any] = []  # runs finished so far (bench.run_bench fills it)
        self.gate = LATENCY  # which gate the headlines name: LATENCY, or INSTRUCTIONS (the exact gate)

    def verdict(self, verdict: Verdict, candidate: Baseline) -> None:
        import json

        payload = {"verdict": verdict.to_dict(), "baseline": self.baseline, "candidate": candidate.to_dict()}
        self._write(verdict_junit(verdict), verdict_markdown(verdict, self.baseline),
                    json.dumps(payload, indent=1, default=str) + "\n")

    def status(self, status: GateStatus, exit_code: int, message: str) -> None:
        import json

        payload = {"verdict": {"status": status, "exit_code": exit_code, "summary": message, "device": self.device},
                   "baseline": self.baseline,
                   "measured": [{"model": r.model, "precision": r.precision, "status": r.status, "round": r.round,
                                 "median_ms": r.median_ms} for r in self.measured]}
        self._write(status_junit(status, self.device, message), status_markdown(status, self.device, message, self.gate),
                    json.dumps(payload, indent=1, default=str) + "\n")

    def interrupted_message(self, exit_code: int) -> str:
        """What was measured before the signal whose exit code (128 + signal) is `exit_code`."""
        import signal

        name = signal.Signals(exit_code - 128).name
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


# --- the wall-clock gate's reports ----------------------------------------------------------------------------------------

_ICONS = {REGRESSION: "❌ regression", IMPROVEMENT: "🚀 improvement", UNCHANGED: "✅ unchanged",
          INCONCLUSIVE: "❔ inconclusive",
          INSUFFICIENT: "⚠️ too few samples", MISSING: "⚠️ missing", FAILED: "⚠️ failed", NEW: "ℹ️ new",
          OTHER_MACHINE: "⚠️ other machine"}
_HEADLINES = {0: "✅ Latency gate passed", 1: "❌ Latency gate failed: regression", 2: "⚠️ Latency gate cannot judge"}


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "–"


def verdict_markdown(verdict: Verdict, baseline_path: str = "") -> str:
    """A GitHub-flavoured Markdown summary (for $GITHUB_STEP_SUMMARY or a PR comment)."""
    conf = f"{verdict.confidence:.0%}"
    lines = [f"## {_HEADLINES[verdict.exit_code]} — `{verdict.device}`", ""]
    scope = f"Baseline `{baseline_path}`" if baseline_path else "Baseline"
    norm = (f"latency normalised by the reference `{verdict.reference}` timed in the same session"
            if verdict.reference else "raw latency (no reference model)")
    lines.append(f"{scope} on `{verdict.baseline_device}`; a model fails when its whole {conf} interval is above "
                 f"**+{verdict.max_regression * 100:g}%**; {norm}.")
    if verdict.machine_ratio:
        p, lo, hi = verdict.machine_ratio
        lines.append(f"This machine runs the reference at ×{p:.3f} ({lo:.3f} … {hi:.3f}) the baseline's time.")
    lines += ["", f"| model | precision | baseline ms | candidate ms | change | {conf} interval | p | verdict |",
              "|---|---|---:|---:|---:|---|---:|---|"]
    for m in verdict.models:
        interval = f"{format_change(m.low)} … {format_change(m.high)}" if m.low is not None and m.high is not None else "–"
        change = format_change(m.ratio) if m.ratio is not None else "–"
        p = f"{m.p_value:.2g}" if m.p_value is not None else "–"
        lines.append(f"| `{_md(m.name)}` | {m.precision} | {_ms(m.baseline_median_ms)} | {_ms(m.candidate_median_ms)} "
                     f"| {change} | {interval} | {p} | {_ICONS.get(m.status, m.status)} |")
    lines += ["", f"**{verdict.summary_line()}**" if verdict.exit_code else verdict.summary_line()]
    if verdict.warnings:
        lines += ["", "Warnings:", *[f"- {_md(w)}" for w in verdict.warnings]]
    lines += ["", "<sub>change = candidate/baseline median latency ratio, per round normalised by the reference; "
              "p = Mann–Whitney U (information only). Medians in ms of every timed run.</sub>", ""]
    return "\n".join(lines)


def verdict_junit(verdict: Verdict, suite_name: str = "mobiledeploy gate") -> str:
    """JUnit XML: one testcase per model; a regression is a <failure>, an unjudged model an <error>."""
    import xml.etree.ElementTree as ET

    failures = len(verdict.regressions)
    errors = len(verdict.unjudged)
    skipped = sum(m.status == NEW for m in verdict.models)
    root = ET.Element("testsuites", name=suite_name, tests=str(len(verdict.models)), failures=str(failures),
                      errors=str(errors))
    suite = ET.SubElement(root, "testsuite", name=f"{suite_name} ({verdict.device})", tests=str(len(verdict.models)),
                          failures=str(failures), errors=str(errors), skipped=str(skipped))
    props = ET.SubElement(suite, "properties")
    for name, value in (("device", verdict.device), ("baseline_device", verdict.baseline_device),
                        ("max_regression", verdict.max_regression), ("confidence", verdict.confidence),
                        ("reference", verdict.reference or ""),
                        ("machine_ratio", "" if not verdict.machine_ratio else f"{verdict.machine_ratio[0]:.4f}")):
        ET.SubElement(props, "property", name=name, value=str(value))
    for m in verdict.models:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{verdict.device}.{m.precision}", name=m.name)
        if m.status == REGRESSION:
            ET.SubElement(case, "failure", message=m.message, type="LatencyRegression").text = _junit_detail(m)
        elif m.status in UNJUDGED:
            ET.SubElement(case, "error", message=m.message, type=m.status).text = _junit_detail(m)
        elif m.status == NEW:
            ET.SubElement(case, "skipped", message=m.message)
        elif m.status == INCONCLUSIVE:
            ET.SubElement(ET.SubElement(case, "properties"), "property", name="verdict", value=INCONCLUSIVE)
            ET.SubElement(case, "system-out").text = f"inconclusive: {m.message}\n{_junit_detail(m)}"
        else:
            ET.SubElement(case, "system-out").text = f"{m.message}\n{_junit_detail(m)}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_detail(m: ModelVerdict) -> str:
    fields = ("status", "ratio", "low", "high", "raw_ratio", "p_value", "method", "normalised", "baseline_median_ms",
              "candidate_median_ms", "baseline_rounds", "candidate_rounds", "baseline_runs", "candidate_runs",
              "artifact_changed")
    return "\n".join(f"{f}: {getattr(m, f)}" for f in fields)


# --- reports when there is no verdict (skipped, interrupted, an error) -------------------------------

_STATUS_HEADLINES = {SKIPPED: "⚠️ {gate} gate skipped", INTERRUPTED: "⛔ {gate} gate interrupted",
                     ERROR: "⚠️ {gate} gate cannot judge", BASELINE_WRITTEN: "✅ {gate} baseline written"}


def status_markdown(status: GateStatus, device: str, message: str, gate: str = LATENCY) -> str:
    """The Markdown summary of a gate that ended without a verdict; `gate` says which (LATENCY, INSTRUCTIONS)."""
    return f"## {_STATUS_HEADLINES.get(status, status).format(gate=gate)} — `{device}`\n\n{message}\n"


def status_junit(status: GateStatus, device: str, message: str, suite_name: str = "mobiledeploy gate") -> str:
    """JUnit XML of a gate that ended without a verdict: one testcase `gate`, an <error> unless it was
    skipped (then <skipped>) or a baseline was written (then it passes)."""
    import xml.etree.ElementTree as ET

    error = status not in (SKIPPED, BASELINE_WRITTEN)
    root = ET.Element("testsuites", name=suite_name, tests="1", failures="0", errors=str(int(error)))
    suite = ET.SubElement(root, "testsuite", name=f"{suite_name} ({device})", tests="1", failures="0",
                          errors=str(int(error)), skipped=str(int(status == SKIPPED)))
    props = ET.SubElement(suite, "properties")
    for name, value in (("device", device), ("status", status)):
        ET.SubElement(props, "property", name=name, value=value)
    case = ET.SubElement(suite, "testcase", classname=f"gate.{device}", name="gate")
    if status == SKIPPED:
        ET.SubElement(case, "skipped", message=message)
    elif error:
        ET.SubElement(case, "error", message=message, type=status)
    else:
        ET.SubElement(case, "system-out").text = message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- the exact gate's reports ---------------------------------------------------------------------

_ICON = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement", UNCHANGED: "✅ unchanged", RERECORD: "⚠️ re-record",
         MISSING: "⚠️ missing", FAILED: "⚠️ failed", INCONCLUSIVE: "⚠️ inconclusive"}
_HEAD = {0: "✅ Arm instruction gate passed", 1: "❌ Arm instruction gate: regression", 2: "⚠️ Arm instruction gate cannot judge"}


def exact_markdown(verdict: ExactVerdict, baseline_path: str = "") -> str:
    lines = [f"## {_HEAD[verdict.exit_code]}", "",
             f"Exact Arm instructions per inference (aarch64 LiteRT on emulated cores, counted by QEMU), against "
             f"`{baseline_path}`; an artifact fails above **+{verdict.max_regression * 100:g}%**.", "",
             "| model | precision | core | baseline | candidate | change | verdict |", "|---|---|---|---:|---:|---:|---|"]
    for e in verdict.entries:
        fmt = lambda x: "–" if x is None else f"{x:,.0f}"  # noqa: E731
        change = "–" if e.ratio is None else f"{(e.ratio - 1) * 100:+.3f}%"
        lines.append(f"| `{e.ref}` | {e.precision} | {e.cpu} | {fmt(e.baseline)} | {fmt(e.candidate)} | {change} | "
                     f"{_ICON.get(e.status, e.status)} |")
    lines += ["", f"**{verdict.summary_line()}**" if verdict.exit_code else verdict.summary_line(), ""]
    return "\n".join(lines)


def exact_junit(verdict: ExactVerdict, suite_name: str = "mobiledeploy arm instruction gate") -> str:
    import xml.etree.ElementTree as ET

    failures = sum(e.status == REGRESSION for e in verdict.entries)
    errors = sum(e.status in EXACT_UNJUDGED for e in verdict.entries)
    root = ET.Element("testsuites", name=suite_name, tests=str(len(verdict.entries)), failures=str(failures),
                      errors=str(errors))
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(verdict.entries)), failures=str(failures),
                          errors=str(errors))
    for e in verdict.entries:
        case = ET.SubElement(suite, "testcase", classname=f"gate.qemu.{e.cpu}.{e.precision}", name=e.ref)
        if e.status == REGRESSION:
            ET.SubElement(case, "failure", message=e.message, type="InstructionRegression")
        elif e.status in EXACT_UNJUDGED:
            ET.SubElement(case, "error", message=e.message, type=e.status)
        else:
            ET.SubElement(case, "system-out").text = e.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
