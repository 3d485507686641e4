"""What a gate run is asked (`GateRequest`) and what it shows on the way (`GateOutput`, the CLI's)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..bench import ExportInputs
    from .exact import ExactVerdict
    from .wallclock import Verdict

__all__ = ["GateRequest", "GateOutput", "ACCELERATOR_OPTIONS"]

#: options a baseline keeps only when given (an accelerator other than the CPU): the candidate runs the same way
ACCELERATOR_OPTIONS = ("accelerator", "require_full_delegation", "dispatch_library")


@dataclass(kw_only=True)
class GateRequest:
    """Everything `gate` was asked, as given on the command line (None: not given)."""

    baseline: str | None = None
    against: str | None = None
    if_no_baseline: str = "fail"
    device: str | None = None
    max_regression: str | None = None
    confidence: float = 0.99
    reference: str | None = None
    update_baseline: bool = False
    results: list[str] | None = None
    rounds: int | None = None
    runs: int | None = None
    warmup: int | None = None
    threads: int | None = None
    models: list[str] | None = None
    precisions: str = "fp32"  # the --formats value: a comma list of precisions
    resolution: str = "224"
    min_rounds: int = 3
    seed: int = 0
    adb_server: str | None = None
    db: str | None = None
    junit: str | None = None
    markdown: str | None = None
    out: str | None = None
    weights: str | None = None
    export: "ExportInputs | None" = None
    accel: dict[str, Any] = field(default_factory=dict)  # accelerator, require_full_delegation, dispatch_library
    allow_outside_refs: bool = False  # run a baseline's file refs from outside its repository (baseline_refs)

    @property
    def normalise(self) -> bool:
        return not (self.reference is not None and self.reference.strip().lower() == "none")


class GateOutput(Protocol):
    """How a gate shows what it does: the CLI prints tables or JSON on stdout and lines on stderr."""

    def verdict(self, verdict: "Verdict", label: str) -> None:
        """The wall-clock verdict against `label` (a baseline path, '--against REV')."""

    def exact(self, verdict: "ExactVerdict", label: str) -> None:
        """The exact gate's verdict."""

    def skipped(self, payload: dict[str, Any]) -> None:
        """No baseline for this machine class, skipped: `payload` is what --json prints."""

    def note(self, line: str) -> None:
        """A line for the user (a warning, what was written, why it failed)."""

    def say(self, message: str) -> None:
        """A stage of the gate (exporting, counting): progress, also what an interrupt names."""

    def progress(self) -> AbstractContextManager[Any]:
        """A progress display for exporting and timing (`measure.prepare_targets`, `bench.run_bench`)."""

    def calibration(self, targets: list[Any]) -> None:
        """Warn about int8 artifacts calibrated on fewer images than asked for."""
