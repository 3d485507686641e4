"""The exact gate: Arm instructions per inference on emulated cores against committed counts.

Counts do not depend on the host, its load or its CPU class, so a baseline recorded once holds on
every CI machine, and a threshold of 1% (or 0.5%) is meaningful where wall time needs 5% and a
bootstrap. What can change a count without any change of the project's code is the environment:
the LiteRT wheel (its kernels), the emulated core and the features XNNPACK picks kernels by. When
those differ from the baseline's, the verdict is "re-record" (exit 2), never a regression.

Baseline file (`kind` = "mobiledeploy-instruction-baseline", schema 2):

    {"schema_version": 2, "kind": …, "recorded_at", "git_commit", "max_regression",
     "entries": [{"ref", "precision", "cpu", "model", "sha256", "macs", "instructions",
                  "spread", "environment": {"litert", "features", "qemu"}}]}

Schema 1 called an entry's precision `format`; `load_exact` still reads it.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import ResultsError
from .status import (FAILED, IMPROVEMENT, INCONCLUSIVE, MISSING, REGRESSION, RERECORD, UNCHANGED, GateStatus,
                     Judgement, overall, reasons)

__all__ = ["KIND", "ExactEntry", "ExactVerdict", "EntryVerdict", "load_exact", "is_exact_baseline", "judge_exact",
           "entry_from_result", "UNJUDGED", "baseline_document", "merged_entries"]

KIND = "mobiledeploy-instruction-baseline"
SCHEMA_VERSION = 2
READS = (1, 2)  # schema 1: `format` where 2 says `precision`
UNJUDGED = (RERECORD, MISSING, FAILED, INCONCLUSIVE)  # an entry with one of these makes the gate exit 2


@dataclass
class ExactEntry:
    ref: str
    precision: str
    cpu: str
    instructions: float
    model: str = ""
    sha256: str = ""
    macs: int | None = None
    spread: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.ref} {self.precision} @{self.cpu}"


@dataclass(kw_only=True)
class EntryVerdict(Judgement):
    ref: str
    precision: str
    cpu: str
    baseline: float | None = None
    candidate: float | None = None
    ratio: float | None = None
    artifact_changed: bool | None = None


@dataclass
class ExactVerdict:
    entries: list[EntryVerdict]
    max_regression: float

    @property
    def exit_code(self) -> int:
        if any(e.status == REGRESSION for e in self.entries):
            return 1
        return 2 if not self.entries or any(e.status in UNJUDGED for e in self.entries) else 0

    @property
    def status(self) -> GateStatus:
        return overall(self.exit_code)

    def summary_line(self) -> str:
        bad = [e for e in self.entries if e.status == REGRESSION] or [e for e in self.entries if e.status in UNJUDGED]
        if bad:
            return reasons(bad)
        better = sum(e.status == IMPROVEMENT for e in self.entries)
        return (f"{len(self.entries)} artifact(s) within +{self.max_regression * 100:g}% Arm instructions"
                + (f", {better} improved" if better else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "summary": self.summary_line(), "unit": "instructions",
                "max_regression": self.max_regression, "entries": [asdict(e) for e in self.entries]}


def is_exact_baseline(path: str | Path) -> bool:
    try:
        return json.loads(Path(path).read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def load_exact(path: str | Path) -> list[ExactEntry]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read the instruction baseline {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ResultsError(f"{path} is not an instruction baseline (kind {KIND})")
    if data.get("schema_version") not in READS:
        raise ResultsError(f"{path} has schema version {data.get('schema_version')}; this mobiledeploy reads "
                           f"{', '.join(map(str, READS))}")
    entries = data.get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ResultsError(f"{path}: 'entries' must be a list of objects, got {type(entries).__name__}")
    try:
        loaded = [ExactEntry(**{k: v for k, v in _upgraded(e).items() if k in ExactEntry.__dataclass_fields__})
                  for e in entries]
    except TypeError as exc:
        raise ResultsError(f"{path}: malformed entry ({exc})") from None
    for n, entry in enumerate(loaded, 1):
        if problem := _entry_problem(entry):
            raise ResultsError(f"{path}: entry {n} {problem}")
    return loaded


def _upgraded(entry: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 entry's `format` (a precision) as `precision`; a schema-2 entry as it is."""
    if "format" not in entry:
        return entry
    return {"precision": entry["format"], **{k: v for k, v in entry.items() if k != "format"}}


def _entry_problem(entry: ExactEntry) -> str | None:
    """What makes a loaded entry unusable for judging, in words; None when it is fine."""
    for name in ("ref", "precision", "cpu"):
        if not isinstance(getattr(entry, name), str) or not getattr(entry, name):
            return f"has no {name!r} (a non-empty string)"
    for name, low in (("instructions", 1), ("spread", 0)):
        value = getattr(entry, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low or value == float("inf"):
            return f"({entry.key}): {name!r} must be a number of at least {low}, got {value!r}"
    if not isinstance(entry.environment, dict):
        return f"({entry.key}): 'environment' must be an object, got {type(entry.environment).__name__}"
    return None


def merged_entries(old: list[ExactEntry], measured: list[ExactEntry]) -> list[ExactEntry]:
    """A re-recorded baseline: `old` with the entries measured now replaced in place (same ref, precision and
    core), then the new ones; entries not measured now (another core, another model) are kept."""
    fresh = {e.key: e for e in measured}
    kept = [fresh.pop(e.key, e) for e in old]
    return kept + list(fresh.values())


def entry_from_result(ref: str, result: Any) -> ExactEntry:
    """A baseline/candidate entry from a qemu RunResult."""
    counts = result.instruction_counts or []
    info = result.device_info or {}
    env = {"litert": (result.versions or {}).get("ai-edge-litert (aarch64)"), "features": info.get("features") or [],
           "qemu": (result.versions or {}).get("qemu")}
    from ..devices.kinds import uri_arg

    return ExactEntry(ref=ref, precision=result.precision, cpu=(result.observed or {}).get("cpu") or uri_arg(result.device) or "",
                      instructions=float(result.instructions or 0), model=result.model, sha256=result.sha256,
                      macs=result.macs, spread=(max(counts) - min(counts)) if counts else 0, environment=env,
                      error=None if result.ok else (result.error or "failed"))


def judge_exact(baseline: Iterable[ExactEntry], candidate: Iterable[ExactEntry], max_regression: float) -> ExactVerdict:
    found = {c.key: c for c in candidate}
    verdicts = [_judge_one(b, found.get(b.key), max_regression) for b in baseline]
    return ExactVerdict(verdicts, max_regression)


def _judge_one(base: ExactEntry, cand: ExactEntry | None, limit: float) -> EntryVerdict:
    v = EntryVerdict(key=base.key, ref=base.ref, precision=base.precision, cpu=base.cpu, status=MISSING,
                     message="not measured", baseline=base.instructions)
    if cand is None:
        return v
    if cand.error:
        v.status, v.message = FAILED, cand.error
        return v
    v.candidate, v.artifact_changed = cand.instructions, bool(base.sha256 and cand.sha256 != base.sha256)
    changed = [k for k in ("litert", "features") if (base.environment.get(k) or None) != (cand.environment.get(k) or None)]
    if changed:
        what = ", ".join(f"{k} {base.environment.get(k)!r} → {cand.environment.get(k)!r}" for k in changed)
        v.status, v.message = RERECORD, f"the emulated environment changed ({what}): re-record the baseline"
        return v
    v.ratio = cand.instructions / base.instructions if base.instructions else None
    if v.ratio is None:
        v.status, v.message = FAILED, "the baseline records no instructions"
        return v
    noise = (cand.spread + base.spread) / base.instructions
    change = f"{(v.ratio - 1) * 100:+.3f}% Arm instructions ({base.instructions / 1e6:.4g}M → {cand.instructions / 1e6:.4g}M)"
    if noise > limit:
        v.status, v.message = INCONCLUSIVE, f"{change}; run-to-run spread {noise:.2%} exceeds the threshold"
    elif v.ratio > 1 + limit:
        v.status, v.message = REGRESSION, f"{change}, over +{limit * 100:g}%"
    elif v.ratio < 1 - limit:
        v.status, v.message = IMPROVEMENT, change
    else:
        v.status, v.message = UNCHANGED, change
    return v


def baseline_document(entries: list[ExactEntry], max_regression: float, git_commit: str | None) -> str:
    data = {"schema_version": SCHEMA_VERSION, "kind": KIND,
            "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit, "max_regression": max_regression,
            "entries": [{k: v for k, v in asdict(e).items() if k != "error"} for e in entries]}
    return json.dumps(data, indent=1) + "\n"
