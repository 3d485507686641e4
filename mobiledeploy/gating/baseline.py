"""Gate baselines: the per-round latency samples of a set of models, as a versioned JSON file.

A `Baseline` is what one interleaved session measured: for every model artifact (keyed
`name/precision`) its rounds of per-run timings (microseconds), plus the device facts, the bench
options, the artifact sha256 and the reference model that normalises for machine speed. A
gate candidate is the same record, built from fresh RunResults or result files, never committed.

Schema history (`SCHEMA_VERSION`; `load_baseline` upgrades older files in memory):
- 0: no `schema_version`; `models` a dict name → {format, sha256, samples_us (flat)},
  `device_facts`, `reference` a model name.
- 1: `models` a list with `key`, `ref`, `resolution`, `rounds` [{round, median_us, timings_us}],
  `summary` and `failures`; `device_info`, `bench_options`, `git`.
- 2: each model's `format` (a precision: fp32, int8, ...) is called `precision`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import ResultsError
from ..files import write_atomic
from ..records import RunResult, summarize_us

__all__ = [
    "SCHEMA_VERSION", "KIND", "BaselineError", "ModelSamples", "Baseline", "baseline_from_results",
    "load_baseline", "load_results_files", "read_result_files", "save_baseline", "parse_baseline", "upgrade", "artifact_key",
]

SCHEMA_VERSION = 2
KIND = "mobiledeploy-gate-baseline"
_VOLATILE_FACTS = ("thermal_before", "thermal_after")


class BaselineError(ResultsError):
    """A baseline or result file that is missing, unreadable, or of an unknown schema."""


def artifact_key(name: str, precision: str) -> str:
    """'shufflenet_v1-g3-scale0.5-112x112/fp32': one artifact of one model."""
    return f"{name}/{precision}"


@dataclass
class ModelSamples:
    """The timed rounds of one artifact: round id → per-run timings (us).

    A runner that reports only a summary (benchmark_model) gives one value per round, its median.
    """

    name: str
    precision: str
    sha256: str = ""
    ref: str | None = None
    resolution: list[int] | None = None
    macs: int | None = None
    rounds: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return artifact_key(self.name, self.precision)

    def round_medians_us(self) -> dict[str, float]:
        return {r: float(np.median(t)) for r, t in self.rounds.items() if t}

    def pooled_us(self) -> list[float]:
        return [t for timings in self.rounds.values() for t in timings]

    def summary(self) -> dict[str, Any]:
        """median/p90/cv of every run (ms) and the spread of the round medians (their cv)."""
        pooled = self.pooled_us()
        if not pooled:
            return {"runs": 0, "rounds": 0, "failures": len(self.failures)}
        stats = summarize_us(pooled)
        medians = list(self.round_medians_us().values())
        spread = float(np.std(medians, ddof=1) / np.mean(medians)) if len(medians) > 1 else 0.0
        return {"median_ms": stats["median_ms"], "p90_ms": stats["p90_ms"], "cv": stats["cv"],
                "round_medians_cv": spread, "runs": len(pooled), "rounds": len(medians),
                "failures": len(self.failures)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "name": self.name, "precision": self.precision, "ref": self.ref,
            "resolution": self.resolution, "sha256": self.sha256, "macs": self.macs,
            "summary": _rounded(self.summary()),
            "rounds": [{"round": r, "median_us": round(float(np.median(t)), 2), "timings_us": [round(x, 2) for x in t]}
                       for r, t in self.rounds.items() if t],
            "failures": list(self.failures),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSamples":
        rounds: dict[str, list[float]] = {}
        for entry in data.get("rounds") or []:
            timings = entry.get("timings_us") or ([entry["median_us"]] if entry.get("median_us") is not None else [])
            rounds.setdefault(str(entry["round"]), []).extend(float(t) for t in timings)
        return cls(name=data["name"], precision=data["precision"], sha256=data.get("sha256") or "", ref=data.get("ref"),
                   resolution=data.get("resolution"), macs=data.get("macs"), rounds=rounds,
                   failures=list(data.get("failures") or []))


@dataclass
class Baseline:
    """One session's samples of every model (and of the reference), with where and how they were taken."""

    device: str
    models: dict[str, ModelSamples]
    reference: str | None = None  # name of the reference model (any of its precisions)
    device_info: dict[str, Any] = field(default_factory=dict)
    bench_options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    git: str | None = None
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION

    def samples_of(self, name: str | None, precision: str) -> ModelSamples | None:
        """Model `name`'s samples in `precision`, else in any precision; None when it is not here (or no name)."""
        if not name:
            return None
        same = self.models.get(artifact_key(name, precision))
        return same or next((m for m in self.models.values() if m.name == name), None)

    def reference_for(self, precision: str) -> ModelSamples | None:
        """The reference model's samples in `precision`, else in any precision; None without a reference."""
        return self.samples_of(self.reference, precision)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": KIND, "created_at": self.created_at, "device": self.device,
            "device_info": self.device_info, "bench_options": self.bench_options, "versions": self.versions,
            "git": self.git, "reference": self.reference,
            "models": [m.to_dict() for m in self.models.values()],
        }


def _rounded(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in summary.items()}


# --- from results ---------------------------------------------------------------------------------

def baseline_from_results(results: Iterable[RunResult], *, reference: str | None = None,
                          refs: dict[str, str] | None = None, bench_options: dict[str, Any] | None = None,
                          git: str | None = None) -> Baseline:
    """Group RunResults into per-model rounds: round id = 'session_id:round' when the results come from several
    sessions, else the round.

    `refs` maps a model name to the ref that rebuilds it ('v1:g=3,scale=0.5'); `reference` names
    the reference model (it may be absent: the gate then says it cannot normalise). Failed runs
    are kept as failure messages, never as samples.
    """
    results = list(results)
    devices = sorted({r.device for r in results})
    several_sessions = len({r.session_id for r in results}) > 1
    if len(devices) > 1:
        raise BaselineError(f"results from more than one device ({', '.join(devices)}); gate one device at a time")
    models: dict[str, ModelSamples] = {}
    info: dict[str, Any] = {}
    versions: dict[str, str] = {}
    for r in results:
        config = r.config or {}
        samples = models.setdefault(artifact_key(r.model, r.precision), ModelSamples(
            name=r.model, precision=r.precision, sha256=r.sha256, ref=(refs or {}).get(r.model),
            resolution=list(config["resolution"]) if config.get("resolution") else None, macs=r.macs))
        if not r.ok:
            samples.failures.append(r.error or "failed")
            continue
        timings = r.timings_us or ([r.median_ms * 1000.0] if r.median_ms is not None else [])
        if not timings:  # an estimate (qemu: with --phone) is never a timing: the wall-clock gate refuses it
            estimate = (r.observed or {}).get("estimate")
            samples.failures.append(f"no timings (estimated ms on {estimate.get('phone')} are not measured)"
                                    if estimate else "no timings")
            continue
        round_id = f"{r.session_id}:{r.round}" if several_sessions else str(r.round)
        samples.rounds.setdefault(round_id, []).extend(float(t) for t in timings)
        info = info or {k: v for k, v in (r.device_info or {}).items() if k not in _VOLATILE_FACTS}
        versions = versions or dict(r.versions or {})
    return Baseline(device=devices[0] if devices else "?", models=models, reference=reference, device_info=info,
                    bench_options=dict(bench_options or {}), versions=versions, git=git,
                    created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def load_results_files(paths: Iterable[str | os.PathLike], *, reference: str | None = None) -> Baseline:
    """A candidate from result files: `mobiledeploy bench --json` / `results --json` output, a list
    of RunResult dicts, or one baseline-format file (a baseline, or a gate `--out` file's candidate).

    Runs of different sessions (or files) never share a round: their round ids are prefixed.
    """
    tagged, sessions = _read_result_files(paths, baselines=True)
    if sessions:
        if len(sessions) > 1 or tagged:
            raise BaselineError("give one baseline-format candidate file, or only result files")
        candidate = sessions[0]
        candidate.reference = reference or candidate.reference
        return candidate
    for result, session in tagged:
        result.session_id = session
    return baseline_from_results([r for r, _ in tagged], reference=reference)


def read_result_files(paths: Iterable[str | os.PathLike]) -> list[tuple[RunResult, str]]:
    """Every run in result files (bench --json, results --json, a list of RunResult dicts), each with its
    session (the file's, or `fileN`); BaselineError for anything else."""
    return _read_result_files(paths, baselines=False)[0]


def _read_result_files(paths: Iterable[str | os.PathLike], *, baselines: bool
                       ) -> tuple[list[tuple[RunResult, str]], list[Baseline]]:
    tagged: list[tuple[RunResult, str]] = []
    sessions: list[Baseline] = []
    for index, path in enumerate(Path(p) for p in paths):
        data = _read_json(path)
        if baselines and isinstance(data, dict) and isinstance(data.get("candidate"), dict):
            data = data["candidate"]
        if baselines and isinstance(data, dict) and "models" in data:
            sessions.append(parse_baseline(data, str(path)))
            continue
        rows = data.get("results") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise BaselineError(f"{path}: not results JSON (bench --json, results --json)"
                                + (" nor a baseline" if baselines else ""))
        default_session = (data.get("session_id") if isinstance(data, dict) else None) or f"file{index}"
        for row in rows:
            try:
                result = RunResult.from_dict(row)
            except TypeError as exc:
                raise BaselineError(f"{path}: a result lacks a field ({exc})") from None
            tagged.append((result, str(row.get("session_id") or default_session)))
    return tagged, sessions


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"no such results file: {path}") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read {path}: {exc}") from None


# --- files ----------------------------------------------------------------------------------------

def _upgrade_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """v0 kept one flat list of samples per model name: it becomes a single round '0'."""
    models = []
    for name, entry in (data.get("models") or {}).items():
        samples = entry.get("samples_us") or []
        models.append({"name": name, "format": entry.get("format", "fp32"), "sha256": entry.get("sha256", ""),
                       "ref": entry.get("ref"), "resolution": entry.get("resolution"), "macs": entry.get("macs"),
                       "rounds": [{"round": "0", "timings_us": samples}] if samples else [], "failures": []})
    return {"schema_version": 1, "kind": KIND, "created_at": data.get("created_at", ""),
            "device": data.get("device", "?"), "device_info": data.get("device_facts") or {},
            "bench_options": {}, "versions": data.get("versions") or {}, "git": data.get("git"),
            "reference": data.get("reference"), "models": models}


def _upgrade_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 called each model's precision `format` (a word the converters use for artifact kinds)."""
    models = data.get("models")
    if isinstance(models, list):
        models = [_renamed(m, "format", "precision") for m in models]
    return {**data, "schema_version": 2, "models": models}


def _renamed(entry: Any, old: str, new: str) -> Any:
    """`entry` with its key `old` called `new` (a copy); anything else (not a dict, or no `old`) as it is."""
    if not isinstance(entry, dict) or old not in entry:
        return entry
    out = {k: v for k, v in entry.items() if k != old}
    out.setdefault(new, entry[old])
    return out


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _upgrade_0_to_1, 1: _upgrade_1_to_2}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a parsed baseline of any known schema version to `SCHEMA_VERSION`."""
    version = data.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 0:
        raise BaselineError(f"baseline schema version {version!r} is not one this mobiledeploy reads "
                            f"(0 … {SCHEMA_VERSION}); upgrade mobiledeploy")
    while version < SCHEMA_VERSION:
        data = UPGRADES[version](data)
        version = data["schema_version"]
    return data


def parse_baseline(data: Any, source: str = "baseline") -> Baseline:
    """A Baseline from parsed JSON of any known schema version."""
    if not isinstance(data, dict) or "models" not in data:
        raise BaselineError(f"{source} is not a gate baseline (no 'models')")
    data = upgrade(data)
    try:
        models = [ModelSamples.from_dict(m) for m in data["models"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{source}: malformed model entry ({type(exc).__name__}: {exc})") from None
    return Baseline(device=data.get("device", "?"), models={m.key: m for m in models}, reference=data.get("reference"),
                    device_info=data.get("device_info") or {}, bench_options=data.get("bench_options") or {},
                    versions=data.get("versions") or {}, git=data.get("git"), created_at=data.get("created_at", ""),
                    schema_version=SCHEMA_VERSION)


def load_baseline(path: str | os.PathLike) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"no baseline at {path} (create one with --update-baseline --model REF …)")
    return parse_baseline(_read_json(path), str(path))


def save_baseline(baseline: Baseline, path: str | os.PathLike) -> Path:
    """Write the baseline as JSON, atomically (a temp file in the same folder, then os.replace)."""
    return write_atomic(path, json.dumps(baseline.to_dict(), indent=1, default=str) + "\n")


