"""The sessions of `compare` and `guidelines`: export every model at every size (an export that fails is a
failure row, not a crash), time them interleaved on one device, judge the runs; an interrupted or failed session
still writes its --report with how it ended and what was measured.

The CLI parses the options, calls these with its progress display and prints (no orchestration in cli/).
On a qemu: device with `BenchOptions.phone`, every counted run also carries the phone's estimate
(`observed["estimate"]`, `mobiledeploy.estimate`) and the judged rows show it apart from the counted figures.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable

__all__ = ["session_plan", "resolve_ref", "export_targets", "compare_session", "guidelines_session",
           "judge_guidelines", "interrupted_status"]


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


def compare_session(plan: dict[str, Any], device: str, options: Any, rounds: int, export: Any,
                    weights_of: dict[str, str] | None, attribute: bool, report: Path | None, adb_server: str | None,
                    db: str | None, progress: Callable[[str], None] | None = None,
                    prepared: Callable[[list[Any]], None] | None = None) -> dict[str, Any]:
    """Export, time interleaved, set against the baseline and (optionally) attribute per op; an interrupt or an
    error still writes the --report of what was measured. `prepared` sees the targets before any run."""
    from .bench import run_bench
    from .compare import compare
    from .errors import MobiledeployError
    from .profiling import attribute_models

    measured: list[Any] = []
    labels, base_key = plan["labels"], plan["baseline"]
    try:
        targets, failures = export_targets(plan["refs"], plan["formats"], plan["sizes"], progress, plan["keys"],
                                           export, weights_of, plan["runtimes"])
        if prepared:
            prepared(targets)
        bench = None
        if targets:
            bench = run_bench(device, targets, options, rounds=rounds, db=db, adb_server=adb_server,
                              progress=progress, collected=measured).raise_for_setup()
        results = bench.results if bench else []
        rows = compare(results, base_key, labels=labels, paper=plan["paper"], failures=failures)
        attributions = []
        if attribute and targets:
            attributions = attribute_models(device, targets, plan["configs"], labels, options, adb_server, db,
                                            progress)
    except (KeyboardInterrupt, MobiledeployError) as exc:  # e.g. no benchmark_model to be had: the report says why
        if report:
            partial_compare_report(report, _ending(exc, measured), measured, plan, device)
        raise
    return {"bench": bench, "results": results, "rows": rows, "attributions": attributions}


def partial_compare_report(report: Path, status: str, measured: list[Any], plan: dict[str, Any], device: str) -> None:
    """The --report of a compare that did not finish (interrupted, or stopped by an error): its status and
    the speedups of what was measured."""
    from .compare import compare
    from .report import write_compare_report

    labels, base_key = plan["labels"], plan["baseline"]
    ok = [r for r in measured if r.ok]
    rows = compare(ok, base_key, labels=labels, paper=plan["paper"], failures=[]) if ok else []
    meta = {"status": status, "device": device, "suite": plan["suite"].name, "baseline": labels[base_key]}
    ending = "interrupted" if status.startswith("interrupted") else "stopped by an error"
    write_compare_report(report, rows, meta=meta, title=f"Theory vs measurement on {device} ({ending})")


def judge_guidelines(plan: dict[str, Any], results: list[Any]) -> list[Any]:
    """Every chosen guideline in every precision, judged from the runs (`guidelines.evaluate`)."""
    from .guidelines import evaluate

    keys = plan["keys"]
    return [evaluate(g, results, {v.label: keys[v.ref] for v in g.variants}, precision=fmt, min_effect=plan["min_effect"])
            for fmt in plan["formats"] for g in plan["chosen"]]


def guidelines_session(plan: dict[str, Any], export: Any, report: str | None, adb_server: str | None,
                       db: str | None, progress: Callable[[str], None] | None = None,
                       prepared: Callable[[list[Any]], None] | None = None
                       ) -> tuple[list[Any], list[dict[str, Any]], str]:
    """Export every variant, time them interleaved and judge: (verdicts, export failures, results db); an
    interrupted or failed session still writes the --report with how it ended and what was measured."""
    from .bench import run_bench
    from .errors import MobiledeployError

    measured: list[Any] = []
    try:
        targets, failures = export_targets(plan["refs"], plan["formats"], [plan["size"]], progress, plan["keys"],
                                           export)
        if prepared:
            prepared(targets)
        bench = run_bench(plan["device"], targets, plan["options"], rounds=plan["rounds"], db=db,
                          adb_server=adb_server, progress=progress,
                          collected=measured).raise_for_setup() if targets else None
    except (KeyboardInterrupt, MobiledeployError) as exc:  # the --report still says how it ended
        if report:
            from .report import write_guidelines_report

            write_guidelines_report(report, judge_guidelines(plan, [r for r in measured if r.ok]),
                                    meta={**plan["meta"], "status": _ending(exc, measured)})
        raise
    return judge_guidelines(plan, bench.results if bench else []), failures, str(bench.db_path) if bench else ""


#: a runtime's name on qemu: devices where it differs (LiteRT counted there is `counted`)
ARM_RUNTIME = {"litert": "counted"}
#: runs and warm-up of each counted run: the figure is the median, exact after the first run (ORT: see
#: runtimes/counted_onnxruntime.py)
ARM_RUNS, ARM_WARMUP = 3, 1


def runtimes_session(plan: dict[str, Any], device: str, options: Any, rounds: int, export: Any, arm_cpus: list[str],
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

    refs = [r for r in plan["refs"] if not named or r in named] or plan["refs"]
    targets, failures = export_targets(refs, plan["formats"], plan["sizes"], progress, plan["keys"],
                                       export, None, plan["runtimes"])
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
