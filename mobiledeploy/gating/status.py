"""The one set of status words every gate uses: a model's (or an instruction entry's) verdict, and how a gate
run ended. A `StrEnum`, so a status is its word in JSON, JUnit and Markdown ("regression", "re-record")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable

__all__ = ["GateStatus", "Judgement", "reasons", "REGRESSION", "IMPROVEMENT", "UNCHANGED", "INCONCLUSIVE", "INSUFFICIENT", "MISSING",
           "FAILED", "NEW", "OTHER_MACHINE", "RERECORD", "PASS", "CANNOT_JUDGE", "SKIPPED", "INTERRUPTED", "ERROR",
           "BASELINE_WRITTEN", "overall"]


class GateStatus(StrEnum):
    # one model's verdict (wall-clock gate) or one entry's (exact gate)
    REGRESSION = "regression"        # slower beyond the threshold: exit 1
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"    # the interval (or the counts' spread) crosses the threshold
    INSUFFICIENT = "insufficient"    # too few rounds and runs to judge
    MISSING = "missing"              # in the baseline, not measured now
    FAILED = "failed"                # its runs failed
    NEW = "new"                      # measured now, not in the baseline
    OTHER_MACHINE = "other_machine"  # the baseline is of another machine class
    RERECORD = "re-record"           # the emulated environment changed: counts are not comparable
    # how a whole gate run ended
    PASS = "pass"
    CANNOT_JUDGE = "cannot judge"
    SKIPPED = "skipped"              # no baseline for this machine class and --if-no-baseline skip
    INTERRUPTED = "interrupted"
    ERROR = "error"
    BASELINE_WRITTEN = "baseline written"


(REGRESSION, IMPROVEMENT, UNCHANGED, INCONCLUSIVE, INSUFFICIENT, MISSING, FAILED, NEW, OTHER_MACHINE, RERECORD, PASS,
 CANNOT_JUDGE, SKIPPED, INTERRUPTED, ERROR, BASELINE_WRITTEN) = GateStatus


def overall(exit_code: int) -> GateStatus:
    """A verdict's status from its exit code: 0 pass, 1 regression, 2 cannot judge."""
    return {0: PASS, 1: REGRESSION, 2: CANNOT_JUDGE}[exit_code]


@dataclass
class Judgement:
    """One judged thing of any gate (a model, an instruction entry): its key as reports name it, its status and
    the reason in words."""

    key: str
    status: GateStatus
    message: str


def reasons(judged: Iterable[Judgement]) -> str:
    """'key: message; …': the one line that says which things failed or could not be judged, and why."""
    return "; ".join(f"{j.key}: {j.message}" for j in judged)
