"""Theory vs measurement: speedups over a baseline, from RunResults that already exist.

Pure functions over lists of `RunResult` (no runs, no exports, no torch): group the runs of one
artifact, take medians, and set the speedup that mult-adds promise beside the one measured.

- `theoretical_speedup = baseline_macs / macs` (MACs: multiply-accumulates, the papers' FLOPs)
- `measured_speedup = baseline_median_ms / median_ms`, with a bootstrap confidence interval of
  that ratio of medians (`mobiledeploy.stats.ratio_of_medians_ci`) over every timed run of every
  round; the per-round ratios (`round_speedups`) are kept beside it, so drift between rounds
  that the pooled interval cannot see stays visible
- `efficiency = measured / theoretical`: 1.0 when latency is proportional to mult-adds, below 1
  when the smaller model gains less than its MACs promise (memory access, fragmentation, …)

Everything is relative to the baseline model at the same resolution and precision.

Benchmark suites (`benchmarks/suites/*.json`, package data of `mobiledeploy.benchmarks`) say which
models to compare at which input sizes, and carry published figures to print beside ours.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import ConfigError
from .records import RunResult

__all__ = [
    "SuiteError", "Suite", "SuiteModel", "load_suite", "parse_suite", "list_suites",
    "CompareRow", "compare", "theoretical_speedup", "measured_speedup", "efficiency",
    "slug_key", "resolution_label", "round_speedups", "group_runs", "pooled_timings_us", "format_resolution",
    "failure_precision",
]

SUITE_SCHEMA_VERSION = 1
_RESOLUTION = re.compile(r"^(\d+)x(\d+)$")
# '-HxW' ends an export slug, before what sets the artifact's inputs apart (-w<sha>, -cal<digest>, -syn<N>):
# the same model across sizes, all exported from the same weights and calibration in one session.
_SLUG_RESOLUTION = re.compile(r"-(\d+)x(\d+)(?:-(?:m|w|cal|syn)[0-9a-f]+)*$")


class SuiteError(ConfigError):
    """A benchmark suite file that cannot be read or does not follow the suite schema."""


# --- arithmetic ------------------------------------------------------------------------------------

def theoretical_speedup(baseline_macs: float, macs: float) -> float:
    """How many times fewer mult-adds than the baseline: the speedup FLOPs promise."""
    if not macs or macs <= 0 or baseline_macs <= 0:
        raise ValueError("MACs must be positive")
    return baseline_macs / macs


def measured_speedup(baseline_ms: float, ms: float) -> float:
    """How many times faster than the baseline, from two latencies (e.g. medians)."""
    if ms <= 0 or baseline_ms <= 0:
        raise ValueError("latencies must be positive")
    return baseline_ms / ms


def efficiency(measured: float, theoretical: float) -> float:
    """measured / theoretical speedup: 1.0 = latency proportional to mult-adds."""
    if theoretical <= 0:
        raise ValueError("theoretical speedup must be positive")
    return measured / theoretical


# --- grouping runs ---------------------------------------------------------------------------------

def format_resolution(resolution: Sequence[int] | str) -> str:
    """(480, 640) or '480x640' → '480x640' (height x width)."""
    if isinstance(resolution, str):
        match = _RESOLUTION.match(resolution.strip().lower())
        if not match:
            raise ConfigError(f"resolution {resolution!r} is not HxW (e.g. 480x640)")
        return f"{int(match[1])}x{int(match[2])}"
    h, w = resolution
    return f"{int(h)}x{int(w)}"


def slug_key(slug: str) -> str:
    """'shufflenet_v1-g3-scale0.5-224x224[-w1a2b3c4d]' → 'shufflenet_v1-g3-scale0.5'."""
    return _SLUG_RESOLUTION.sub("", slug)


def resolution_label(result: RunResult) -> str | None:
    """'224x224' from the result's config, else from its slug; None when neither says."""
    res = (result.config or {}).get("resolution")
    if res:
        return format_resolution(res)
    match = _SLUG_RESOLUTION.search(result.model)
    return f"{match[1]}x{match[2]}" if match else None


GroupKey = tuple[str, str, str, str]  # (model key, precision, resolution, runtime)


def group_runs(results: Iterable[RunResult]) -> dict[GroupKey, list[RunResult]]:
    """Results of the same model, precision, resolution and runtime (e.g. the rounds of one session)."""
    groups: dict[GroupKey, list[RunResult]] = {}
    for result in results:
        key = (slug_key(result.model), result.precision, resolution_label(result) or "?", result.runtime or "")
        groups.setdefault(key, []).append(result)
    return groups


def pooled_timings_us(results: Iterable[RunResult]) -> list[float]:
    """Every timed run of the ok results, in round order.

    A runner that prints only a summary (benchmark_model) gives no per-run times; its median
    then stands for the run (one value per round).
    """
    out: list[float] = []
    for result in sorted(results, key=lambda r: r.round):
        if not result.ok:
            continue
        if result.instruction_counts:  # an emulated Arm core: exact instructions, the cost figure there
            out.extend(float(c) for c in result.instruction_counts)
        elif result.timings_us:
            out.extend(result.timings_us)
        elif result.median_ms is not None:
            out.append(result.median_ms * 1000.0)
    return out


def cost_of(result: RunResult) -> float | None:
    """A run's cost figure: median Arm instructions on qemu: devices, else median milliseconds."""
    return result.instructions if result.instructions is not None else result.median_ms


# --- the comparison --------------------------------------------------------------------------------

@dataclass
class CompareRow:
    """One model at one resolution and precision, set against the baseline at the same ones.

    Speedups and efficiency are None where they cannot be computed (failed runs, no MACs); the
    `paper_*` fields are the suite's published figures, when it has them.
    """

    model: str
    key: str
    precision: str
    resolution: str
    baseline: bool
    macs: int | None
    median_ms: float | None
    runs: int
    rounds: int
    unit: str = "ms"  # "instructions" on qemu: devices: median_instructions holds the cost, median_ms is None
    median_instructions: float | None = None
    theoretical_speedup: float | None = None
    measured_speedup: float | None = None
    measured_speedup_ci: list[float] | None = None
    efficiency: float | None = None
    efficiency_ci: list[float] | None = None
    gmacs_per_s: float | None = None
    status: str = "ok"
    error: str | None = None
    paper_ms: float | None = None
    paper_macs: float | None = None
    paper_measured_speedup: float | None = None
    paper_theoretical_speedup: float | None = None
    paper_efficiency: float | None = None
    runtime: str = ""  # how it was timed (litert, onnxruntime, …): a model is set against the baseline of its runtime
    # estimated, never measured: a phone profile applied to the counted run (qemu: devices with --phone;
    # `mobiledeploy.estimate`); the speedup is baseline estimated ms / estimated ms
    estimated_ms: float | None = None
    estimated_band_pct: float | None = None
    estimated_speedup: float | None = None
    estimate_phone: str | None = None
    estimate_calibration: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out.update(self.extra)
        return out


def compare(
    results: Sequence[RunResult],
    baseline: str,
    *,
    labels: dict[str, str] | None = None,
    paper: dict[str, "SuiteModel"] | None = None,
    failures: Sequence[dict[str, Any]] = (),
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[CompareRow]:
    """Rows of model vs `baseline` (a `slug_key`: the export slug without its input size) per precision and resolution, baseline first.

    `labels` maps model keys to display names; `paper` maps model keys to their suite entries;
    `failures` are models that never got a result ({"key", "precision", "resolution", "error"[, "runtime"]}; an older `format` key is read too, e.g.
    an export that failed), listed so the table says so instead of leaving a gap. Each runtime has its own
    cells: a model is set against the baseline timed by the same runtime.
    """
    labels = labels or {}
    paper = paper or {}
    groups = group_runs(results)
    fail_text = {(f["key"], failure_precision(f), f["resolution"], f.get("runtime", "")): f["error"] for f in failures}
    for cell in fail_text:
        groups.setdefault(cell, [])
    rows = []
    for cell, runs in groups.items():
        rows.append(_row(cell, runs, cell[0] == baseline, labels.get(cell[0], cell[0]), fail_text.get(cell)))
    by_cell = {(r.precision, r.resolution, r.runtime): r for r in rows if r.baseline}
    for row in rows:
        base = by_cell.get((row.precision, row.resolution, row.runtime))
        _speedups(row, base, groups, confidence, n_boot, seed)
        _paper(row, paper.get(row.key), paper.get(baseline))
    order = {key: i for i, key in enumerate(labels)}
    res_order = {res: i for i, res in enumerate(sorted({r.resolution for r in rows}, key=_pixels))}
    rows.sort(key=lambda r: (res_order[r.resolution], r.precision, r.runtime, not r.baseline, order.get(r.key, len(order)),
                             r.key))
    return rows


def failure_precision(failure: dict[str, Any]) -> str:
    """A failure dict's precision: `precision`, or `format` in one written before the rename."""
    return failure["precision"] if "precision" in failure else failure["format"]


def _pixels(res: str) -> tuple[int, str]:
    match = _RESOLUTION.match(res)
    return (int(match[1]) * int(match[2]), res) if match else (0, res)


def _row(cell: GroupKey, runs: list[RunResult], is_baseline: bool, label: str, failure: str | None) -> CompareRow:
    key, precision, res, runtime = cell
    ok = [r for r in runs if r.ok]
    timings = pooled_timings_us(ok)
    macs = next((r.macs for r in runs if r.macs), None)
    counted = bool(ok) and all(r.instruction_counts for r in ok)
    median = statistics.median(timings) if timings else None
    median_ms = median / 1000.0 if median is not None and not counted else None
    row = CompareRow(model=label, key=key, precision=precision, resolution=res, baseline=is_baseline, macs=macs,
                     median_ms=median_ms, runs=len(timings), rounds=len(ok), runtime=runtime)
    if counted:
        row.unit, row.median_instructions = "instructions", median
        if median and macs:
            row.extra["instructions_per_mac"] = median / macs
    if median_ms and macs:
        row.gmacs_per_s = macs / (median_ms / 1000.0) / 1e9
    _estimated(row, ok)
    if not ok:
        row.status = "failed"
        row.error = failure or next((r.error for r in runs if r.error), "no result")
    elif len(ok) < len(runs):
        row.extra["failed_rounds"] = len(runs) - len(ok)
    return row


def _estimated(row: CompareRow, ok: list[RunResult]) -> None:
    """The estimate each ok run stored (observed["estimate"], `bench --phone`): its median ms and band, apart from
    the measured figures; none when a run of the cell has no estimate (never a mix)."""
    estimates = [(r.observed or {}).get("estimate") for r in ok]
    if not estimates or not all(estimates):
        return
    row.estimated_ms = statistics.median(float(e["ms"]) for e in estimates)
    row.estimated_band_pct = max(float(e["band_pct"]) for e in estimates)
    row.estimate_phone = str(estimates[0]["phone"])
    row.extra["estimate_phone_label"] = str(estimates[0].get("phone_label") or estimates[0]["phone"])
    row.estimate_calibration = str(estimates[0].get("calibration", ""))


def _speedups(row: CompareRow, base: CompareRow | None, groups: dict[GroupKey, list[RunResult]],
              confidence: float, n_boot: int, seed: int) -> None:
    if base is None or base.status != "ok" or row.status != "ok":
        return
    if row.estimated_ms and base.estimated_ms and row.estimate_phone == base.estimate_phone:
        row.estimated_speedup = base.estimated_ms / row.estimated_ms
    if row.macs and base.macs:
        row.theoretical_speedup = theoretical_speedup(base.macs, row.macs)
    mine, theirs = row.median_ms or row.median_instructions, base.median_ms or base.median_instructions
    if not (mine and theirs) or row.unit != base.unit:
        return
    row.measured_speedup = measured_speedup(theirs, mine)
    numer = pooled_timings_us(groups[_cell(base)])
    denom = pooled_timings_us(groups[_cell(row)])
    if row.baseline:
        row.measured_speedup_ci = [1.0, 1.0]
    elif len(numer) >= 2 and len(denom) >= 2:
        from .stats import ratio_of_medians_ci

        _, low, high = ratio_of_medians_ci(numer, denom, confidence=confidence, n_boot=n_boot, seed=seed)
        row.measured_speedup_ci = [float(low), float(high)]
    rounds = round_speedups(groups[_cell(base)], groups[_cell(row)])
    if len(rounds) > 1 and not row.baseline:
        row.extra["round_speedups"] = rounds
    if row.theoretical_speedup:
        row.efficiency = efficiency(row.measured_speedup, row.theoretical_speedup)
        if row.measured_speedup_ci:
            row.efficiency_ci = [v / row.theoretical_speedup for v in row.measured_speedup_ci]


def _cell(row: CompareRow) -> GroupKey:
    return row.key, row.precision, row.resolution, row.runtime


def round_speedups(baseline_runs: Sequence[RunResult], runs: Sequence[RunResult]) -> list[float]:
    """Per interleaved round: baseline median / model median (rounds where both ran), to show drift."""
    base = {r.round: cost_of(r) for r in baseline_runs if r.ok and cost_of(r)}
    mine = {r.round: cost_of(r) for r in runs if r.ok and cost_of(r)}
    return [base[k] / mine[k] for k in sorted(set(base) & set(mine))]


def _paper(row: CompareRow, entry: "SuiteModel | None", base: "SuiteModel | None") -> None:
    if entry is None:
        return
    row.paper_macs = entry.paper_macs
    row.paper_ms = entry.paper_ms.get(row.resolution)
    if base is None:
        return
    base_ms = base.paper_ms.get(row.resolution)
    if row.paper_ms and base_ms:
        row.paper_measured_speedup = base_ms / row.paper_ms
    if entry.paper_macs and base.paper_macs:
        row.paper_theoretical_speedup = base.paper_macs / entry.paper_macs
    if row.paper_measured_speedup and row.paper_theoretical_speedup:
        row.paper_efficiency = row.paper_measured_speedup / row.paper_theoretical_speedup


# --- suites ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SuiteModel:
    ref: str  # a model reference, as `--models` takes it: 'shufflenet_v1:g=3,scale=0.5'
    label: str
    paper_macs: float | None = None
    paper_ms: dict[str, float] = field(default_factory=dict)  # resolution 'HxW' -> published latency
    paper_extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    baseline: str
    resolutions: tuple[str, ...]
    precisions: tuple[str, ...]  # the suite file's "formats" (or "precisions")
    threads: int
    models: tuple[SuiteModel, ...]
    source: str = ""
    reference_device: str = ""
    origin: str = ""


def list_suites() -> list[str]:
    """Names of the suites shipped in `mobiledeploy.benchmarks` (suites/*.json)."""
    from importlib import resources

    folder = resources.files("mobiledeploy.benchmarks") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name ('paper-table8') or a suite file by path. Raises SuiteError."""
    from importlib import resources

    text_path = str(name_or_path)
    path = Path(text_path)
    if path.suffix == ".json" or path.exists() or "/" in text_path:
        origin = text_path
        try:
            raw = path.read_text()
        except OSError as exc:
            raise SuiteError(f"cannot read suite file {text_path}: {exc.strerror or exc}") from None
    else:
        origin = text_path
        resource = resources.files("mobiledeploy.benchmarks") / "suites" / f"{text_path}.json"
        if not resource.is_file():
            raise SuiteError(f"unknown suite {text_path!r} (shipped: {', '.join(list_suites()) or 'none'}; "
                             "or give a path to a .json file)")
        raw = resource.read_text()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"suite {origin} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    return parse_suite(data, origin)


def parse_suite(data: Any, origin: str = "<suite>") -> Suite:
    """Validate a suite document (see benchmarks/suites/paper-table8.json). Raises SuiteError."""

    def bad(message: str) -> SuiteError:
        return SuiteError(f"suite {origin}: {message}")

    if not isinstance(data, dict):
        raise bad("must be a JSON object")
    if data.get("schema_version") != SUITE_SCHEMA_VERSION:
        raise bad(f"schema_version must be {SUITE_SCHEMA_VERSION} (got {data.get('schema_version')!r})")
    models_raw = data.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise bad("needs a non-empty 'models' list")
    models = tuple(_suite_model(item, i, bad) for i, item in enumerate(models_raw))
    refs = [m.ref for m in models]
    if len(set(refs)) != len(refs):
        raise bad("lists a model twice")
    baseline = data.get("baseline")
    if not isinstance(baseline, str) or baseline not in refs:
        raise bad(f"'baseline' must be one of the models' refs ({', '.join(refs)}), got {baseline!r}")
    resolutions = data.get("resolutions")
    if not isinstance(resolutions, list) or not resolutions:
        raise bad("needs a non-empty 'resolutions' list of 'HxW' strings")
    try:
        res = tuple(format_resolution(r) for r in resolutions if isinstance(r, str))
    except ConfigError as exc:
        raise bad(str(exc)) from None
    if len(res) != len(resolutions):
        raise bad("'resolutions' must be 'HxW' strings")
    key = "precisions" if "precisions" in data else "formats"  # suite files name them "formats" (schema 1)
    if "precisions" in data and "formats" in data:
        raise bad("give 'precisions' or 'formats' (the older name), not both")
    precisions = data.get(key, ["fp32"])
    if not isinstance(precisions, list) or not precisions or any(p not in ("fp32", "int8") for p in precisions):
        raise bad(f"'{key}' must be a list of fp32, int8")
    threads = data.get("threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise bad("'threads' must be a positive integer")
    return Suite(
        name=str(data.get("name") or Path(origin).stem), title=str(data.get("title", "")), baseline=baseline,
        resolutions=res, precisions=tuple(precisions), threads=threads, models=models,
        source=str(data.get("source", "")), reference_device=str(data.get("reference_device", "")), origin=origin,
    )


def _suite_model(item: Any, index: int, bad: Any) -> SuiteModel:
    if not isinstance(item, dict) or not isinstance(item.get("ref"), str) or not item["ref"].strip():
        raise bad(f"models[{index}] needs a 'ref' string such as 'shufflenet_v1:g=3,scale=0.5'")
    paper = item.get("paper") or {}
    if not isinstance(paper, dict):
        raise bad(f"models[{index}].paper must be an object")
    macs = paper.get("macs")
    if macs is not None and (not isinstance(macs, (int, float)) or isinstance(macs, bool) or macs <= 0):
        raise bad(f"models[{index}].paper.macs must be a positive number")
    ms_raw = paper.get("ms") or {}
    if not isinstance(ms_raw, dict):
        raise bad(f"models[{index}].paper.ms must map 'HxW' to milliseconds")
    ms: dict[str, float] = {}
    for res, value in ms_raw.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise bad(f"models[{index}].paper.ms[{res!r}] must be a positive number")
        try:
            ms[format_resolution(res)] = float(value)
        except ConfigError as exc:
            raise bad(f"models[{index}].paper.ms: {exc}") from None
    extra = {k: v for k, v in paper.items() if k not in ("macs", "ms")}
    return SuiteModel(ref=item["ref"].strip(), label=str(item.get("label") or item["ref"]),
                      paper_macs=float(macs) if macs is not None else None, paper_ms=ms, paper_extra=extra)
