"""The sessions of `compare` and `guidelines`: export every model at every size (an export that fails is a
failure row, not a crash), time them interleaved on one device, judge the runs; an interrupted or failed session
still writes its --report with how it ended and what was measured.

The CLI parses the options, calls these with its progress display and prints (no orchestration in cli/).
On a qemu: device with `BenchOptions.phone`, every counted run also carries the phone's estimate
(`observed["estimate"]`, `mobiledeploy.estimate`) and the judged rows show it apart from the counted figures.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["SessionPlan", "GuidelinesPlan", "CompareOutcome", "StoredCompare", "session_plan", "resolve_ref",
           "plan_compare", "export_targets", "compare_session", "lab_compare_session", "judge_stored",
           "guidelines_session", "judge_guidelines", "interrupted_status"]


@dataclass(frozen=True)
class SessionPlan:
    """What one `compare` session sets against what: the suite, the models (refs as given, each ref's key =
    its export slug without the input size, each key's display label, published figures and (arch, config)),
    the baseline's key, the input sizes, the precisions and the runtimes that time them."""

    suite: Any  # compare.Suite
    refs: tuple[str, ...]
    keys: dict[str, str]  # ref -> key
    labels: dict[str, str]  # key -> label
    paper: dict[str, Any]  # key -> compare.SuiteModel, the suite's models only
    configs: dict[str, tuple[str, dict[str, Any]]]  # key -> (arch, config)
    baseline: str  # key
    sizes: tuple[tuple[int, int], ...] = ()
    precisions: tuple[str, ...] = ()
    runtimes: tuple[str | None, ...] = (None,)

    @property
    def baseline_label(self) -> str:
        return self.labels[self.baseline]


@dataclass(frozen=True)
class GuidelinesPlan:
    """One `guidelines` session, every option checked: the device, the guidelines and their variants' refs
    (ref -> key), the input size, precisions, timing options and rounds, the smallest effect that counts, and
    the report's header (`meta`)."""

    device: str
    chosen: tuple[Any, ...]  # guidelines.Guideline
    size: tuple[int, int]
    precisions: tuple[str, ...]
    options: Any  # records.BenchOptions
    rounds: int
    refs: tuple[str, ...]
    keys: dict[str, str]
    min_effect: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareOutcome:
    """A finished `compare` session: the bench run (None when no model exported), its results, the compare rows
    (export failures included) and the per-op attributions (--per-layer / --report)."""

    bench: Any  # bench.BenchRun | None
    results: list[Any]
    rows: list[Any]
    attributions: list[Any]


@dataclass(frozen=True)
class StoredCompare:
    """`compare --results`: the stored runs of the plan's models and precisions, the devices they ran on, and
    either the rows of one table or (by device) each phone's rows."""

    runs: list[Any]
    devices: list[str]
    rows: list[Any] = field(default_factory=list)
    per_phone: list[tuple[Any, list[Any]]] | None = None


def session_plan(device: str, rounds: int | None, runs: int | None, warmup: int | None,
                 default: tuple[int, int, int]) -> tuple[str, int, int, int]:
    """The device URI (canonical, checked before any export) and the rounds, runs, warm-up to use on it."""
    from .devices import canonical_uri, check_device
    from .devices.kinds import kind_of

    device = canonical_uri(device)
    check_device(device)
    d_rounds, d_runs, d_warmup = kind_of(device).session_plan or default
    return (device, d_rounds if rounds is None else rounds, d_runs if runs is None else runs,
            d_warmup if warmup is None else warmup)


def resolve_ref(ref: str) -> tuple[str, dict[str, Any], str]:
    """'v1:g=3,scale=0.5' → (arch, config, key): key is the export slug without the input size."""
    from .errors import ConfigError
    from .registry import config_slug, get_spec, parse_model_ref

    arch, config = parse_model_ref(ref)
    if "resolution" in config:
        raise ConfigError(f"{ref}: give input sizes with --resolutions, not in the model reference")
    options = {k: v for k, v in config.items() if k != "input_shape"}  # a user's model: its input, not an option
    get_spec(arch).resolve(options)
    return arch, config, config_slug(arch, options)


def plan_compare(suite: Any, refs: list[str], baseline_ref: str, sizes: tuple[tuple[int, int], ...] = (),
                 precisions: tuple[str, ...] = ()) -> SessionPlan:
    """Model keys, display labels and published figures for the refs (the suite's labels for its models); the
    baseline added first when missing; the same model given twice (e.g. 'v1:g=3' and 'shufflenet_v1:g=3') once."""
    suite_by_key = {resolve_ref(m.ref)[2]: m for m in suite.models}
    base_key = resolve_ref(baseline_ref)[2]
    if base_key not in {resolve_ref(r)[2] for r in refs}:
        refs = [baseline_ref, *refs]
    keys: dict[str, str] = {}
    labels: dict[str, str] = {}
    configs: dict[str, tuple[str, dict[str, Any]]] = {}
    for ref in refs:
        arch, config, key = resolve_ref(ref)
        if key not in labels:
            keys[ref], configs[key] = key, (arch, config)
            labels[key] = suite_by_key[key].label if key in suite_by_key else ref
    return SessionPlan(suite=suite, refs=tuple(r for r in refs if r in keys), keys=keys, labels=labels,
                       paper={key: suite_by_key[key] for key in labels if key in suite_by_key}, configs=configs,
                       baseline=base_key, sizes=tuple(sizes), precisions=tuple(precisions))


def judge_stored(files: list[str], plan: SessionPlan, by_device: bool = False) -> StoredCompare:
    """`compare --results`: the same table from runs already stored, those of the plan's models and precisions;
    by device, each phone's runs (`config.phone`, else the device URI) against the baseline run on it."""
    from .compare import compare, slug_key
    from .errors import ConfigError
    from .gating.baseline import read_result_files

    keys, precisions = set(plan.labels), set(plan.precisions)
    runs = [r for r, _ in read_result_files(files) if slug_key(r.model) in keys and r.precision in precisions]
    if not runs:
        raise ConfigError(f"no run in {', '.join(files)} is of the models compared ({', '.join(sorted(keys))})")
    devices = sorted({r.device for r in runs})
    if by_device:
        from .lab_session import by_device as rows_by_device, stored_by_device

        return StoredCompare(runs, devices, per_phone=rows_by_device(stored_by_device(runs), plan, []))
    return StoredCompare(runs, devices, rows=compare(runs, plan.baseline, labels=plan.labels, paper=plan.paper))


def export_targets(refs: list[str], precisions: tuple[str, ...], resolutions: list[tuple[int, int]], progress: Any,
                   keys: dict[str, str], export: Any = None, weights: dict[str, str] | None = None,
                   runtimes: tuple[str | None, ...] = (None,)) -> tuple[list[Any], list[dict[str, Any]]]:
    """Export (or reuse) every model at every size, for each runtime the precisions it times; an export that
    fails is a failure row, not a crash. `weights` maps a ref to the state_dict it is exported with (others:
    seeded init)."""
    from .bench import runtime_artifacts

    targets, failures = [], []
    for runtime in runtimes:
        timed = tuple(p for r, p in runtime_artifacts((runtime,), precisions))
        new, failed = _export_for(runtime, refs, timed, resolutions, progress, keys, export, weights)
        targets += new
        failures += failed
    return targets, failures


def _export_for(runtime: str | None, refs: list[str], precisions: tuple[str, ...], resolutions: list[tuple[int, int]],
                progress: Any, keys: dict[str, str], export: Any,
                weights: dict[str, str] | None) -> tuple[list[Any], list[dict[str, Any]]]:
    from .compare import format_resolution
    from .errors import MobiledeployError, ParityError
    from .measure import prepare_targets

    targets, failures = [], []
    for res in resolutions:
        for ref in refs:
            attempts = [precisions] + ([(p,) for p in precisions] if len(precisions) > 1 else [])
            got: set[str] = set()
            last: Exception | None = None
            for attempt in attempts:
                if set(attempt) <= got:
                    continue
                try:
                    new = prepare_targets([ref], attempt, res, progress, export=export,
                                          weights=(weights or {}).get(ref), runtimes=(runtime,))
                except MobiledeployError as exc:
                    last = exc
                    if not isinstance(exc, ParityError):  # the same failure for every precision: do not retry
                        break
                    continue
                targets += [t for t in new if t.precision not in got]
                got |= {t.precision for t in new}
            for precision in precisions:
                if precision not in got:
                    message = " ".join(str(last).split()) if last else "not exported"
                    failures.append({"key": keys[ref], "precision": precision, "resolution": format_resolution(res),
                                     "runtime": runtime or "", "error": f"export failed: {message}"})
    return targets, failures


def interrupted_status(runs: int, exc: BaseException | None = None) -> str:
    """The status a report of an interrupted session carries (SIGTERM when the CLI's handler said so)."""
    name = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
    return f"interrupted by {name} after {runs} run(s): figures from an incomplete session"


def _ending(exc: BaseException, measured: list[Any]) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return interrupted_status(len(measured), exc)
    return f"error: {' '.join(str(exc).split())}"


def compare_session(plan: SessionPlan, device: str, options: Any, rounds: int, export: Any,
                    weights_of: dict[str, str] | None, attribute: bool, report: Path | None, adb_server: str | None,
                    db: str | None, progress: Callable[[str], None] | None = None,
                    prepared: Callable[[list[Any]], None] | None = None) -> CompareOutcome:
    """Export, time interleaved, set against the baseline and (optionally) attribute per op; an interrupt or an
    error still writes the --report of what was measured. `prepared` sees the targets before any run."""
    from .bench import run_bench
    from .compare import compare
    from .errors import MobiledeployError
    from .profiling import attribute_models

    measured: list[Any] = []
    labels, base_key = plan.labels, plan.baseline
    try:
        targets, failures = export_targets(list(plan.refs), plan.precisions, list(plan.sizes), progress, plan.keys,
                                           export, weights_of, plan.runtimes)
        if prepared:
            prepared(targets)
        bench = None
        if targets:
            bench = run_bench(device, targets, options, rounds=rounds, db=db, adb_server=adb_server,
                              progress=progress, collected=measured).raise_for_setup()
        results = bench.results if bench else []
        rows = compare(results, base_key, labels=labels, paper=plan.paper, failures=failures)
        attributions = []
        if attribute and targets:
            attributions = attribute_models(device, targets, plan.configs, labels, options, adb_server, db,
                                            progress)
    except (KeyboardInterrupt, MobiledeployError) as exc:  # e.g. no benchmark_model to be had: the report says why
        if report:
            partial_compare_report(report, _ending(exc, measured), measured, plan, device)
        raise
    return CompareOutcome(bench=bench, results=results, rows=rows, attributions=attributions)


def lab_compare_session(lab: Any, plan: SessionPlan, options: Any, rounds: int, export: Any,
                        weights_of: dict[str, str] | None, db: str | None, report: Any, meta: dict[str, Any],
                        progress: Any, prepared: Callable[[list[Any]], None] | None = None
                        ) -> tuple[list[Any], list[tuple[Any, list[Any]]]]:
    """`compare` on every phone at once (the farm asked before any export): export every model once, time them on
    every phone, and each phone's rows against the baseline timed on that phone: (PhoneRuns, per-phone rows).
    An interrupt still writes the --report of what was measured (`meta` is its header)."""
    from .lab_session import by_device, lab_report, run_lab, runs_of
    from .preflight import check_db

    check_db(db)
    lab.check()
    targets, failures = export_targets(list(plan.refs), plan.precisions, list(plan.sizes), progress, plan.keys,
                                       export, weights_of, plan.runtimes)
    if prepared is not None:
        prepared(targets)
    collected: list[Any] = []
    try:
        runs = run_lab(lab, targets, options, rounds, db, progress, collected) if targets else []
    except KeyboardInterrupt:
        if report:
            lab_report(report, by_device(runs_of(collected), plan, failures), {**meta, "status": "interrupted"})
        raise
    return runs, by_device([(run, run.results) for run in runs], plan, failures)


def partial_compare_report(report: Path, status: str, measured: list[Any], plan: SessionPlan, device: str) -> None:
    """The --report of a compare that did not finish (interrupted, or stopped by an error): its status and
    the speedups of what was measured."""
    from .compare import compare
    from .report import write_compare_report

    labels, base_key = plan.labels, plan.baseline
    ok = [r for r in measured if r.ok]
    rows = compare(ok, base_key, labels=labels, paper=plan.paper, failures=[]) if ok else []
    meta = {"status": status, "device": device, "suite": plan.suite.name, "baseline": labels[base_key]}
    ending = "interrupted" if status.startswith("interrupted") else "stopped by an error"
    write_compare_report(report, rows, meta=meta, title=f"Theory vs measurement on {device} ({ending})")


def judge_guidelines(plan: GuidelinesPlan, results: list[Any]) -> list[Any]:
    """Every chosen guideline in every precision, judged from the runs (`guidelines.evaluate`)."""
    from .guidelines import evaluate

    keys = plan.keys
    return [evaluate(g, results, {v.label: keys[v.ref] for v in g.variants}, precision=precision, min_effect=plan.min_effect)
            for precision in plan.precisions for g in plan.chosen]


def guidelines_session(plan: GuidelinesPlan, export: Any, report: str | None, adb_server: str | None,
                       db: str | None, progress: Callable[[str], None] | None = None,
                       prepared: Callable[[list[Any]], None] | None = None
                       ) -> tuple[list[Any], list[dict[str, Any]], str]:
    """Export every variant, time them interleaved and judge: (verdicts, export failures, results db); an
    interrupted or failed session still writes the --report with how it ended and what was measured."""
    from .bench import run_bench
    from .errors import MobiledeployError

    measured: list[Any] = []
    try:
        targets, failures = export_targets(list(plan.refs), plan.precisions, [plan.size], progress, plan.keys, export)
        if prepared:
            prepared(targets)
        bench = run_bench(plan.device, targets, plan.options, rounds=plan.rounds, db=db,
                          adb_server=adb_server, progress=progress,
                          collected=measured).raise_for_setup() if targets else None
    except (KeyboardInterrupt, MobiledeployError) as exc:  # the --report still says how it ended
        if report:
            from .report import write_guidelines_report

            write_guidelines_report(report, judge_guidelines(plan, [r for r in measured if r.ok]),
                                    meta={**plan.meta, "status": _ending(exc, measured)})
        raise
    return judge_guidelines(plan, bench.results if bench else []), failures, str(bench.db_path) if bench else ""


#: a runtime's name on qemu: devices where it differs (LiteRT counted there is `counted`)
ARM_RUNTIME = {"litert": "counted"}
#: runs and warm-up of each counted run: the figure is the median, exact after the first run (ORT: see
#: runtimes/counted_onnxruntime.py)
ARM_RUNS, ARM_WARMUP = 3, 1


def runtimes_session(plan: SessionPlan, device: str, options: Any, rounds: int, export: Any, arm_cpus: list[str],
                     db: str | None, adb_server: str | None, named: list[str], progress: Any,
                     prepared: Callable[[list[Any]], None] | None = None) -> tuple[list[Any], list[Any], list[dict]]:
    """`compare --runtimes A,B,…`: export each model once for every runtime, time it on `device` (interleaved
    rounds) and count it on each of `arm_cpus`. Only the `named` models when given (the baseline of a speedup
    means nothing here). Returns (rows of runtime_table.runtime_rows, every result, export failures)."""
    from dataclasses import replace

    from .bench import run_bench
    from .devices.kinds import device_uri
    from .records import BenchOptions
    from .runtime_table import runtime_rows

    refs = [r for r in plan.refs if not named or r in named] or list(plan.refs)
    targets, failures = export_targets(refs, plan.precisions, list(plan.sizes), progress, plan.keys, export, None,
                                       plan.runtimes)
    if prepared is not None:
        prepared(targets)
    results = list(run_bench(device, targets, options, rounds=rounds, db=db, adb_server=adb_server,
                             progress=progress).raise_for_setup().results) if targets else []
    counted = BenchOptions(threads=1, runs=ARM_RUNS, warmup=ARM_WARMUP)
    for cpu in arm_cpus:
        arm_targets = [replace(t, runtime=ARM_RUNTIME.get(t.runtime or "", t.runtime)) for t in targets]
        results += run_bench(device_uri("qemu", cpu), arm_targets, counted, db=db,
                             progress=progress).raise_for_setup().results
    return runtime_rows(results), results, failures
