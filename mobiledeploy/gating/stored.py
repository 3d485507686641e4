"""The wall-clock gate on a stored baseline: choose the baseline of this machine class, measure (or read) the
candidate as the baseline was measured, judge, and (re)write the baseline with --update-baseline."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

from .baseline import Baseline
from .plan import PlanItem, bench_options, plan
from .reports import GateReports
from .request import ACCELERATOR_OPTIONS, GateOutput, GateRequest
from .status import SKIPPED
from .wallclock import GatePolicy

__all__ = ["gate_stored", "check_request", "device_facts"]


def check_request(req: GateRequest) -> str | None:
    """Refuse option combinations of the wall-clock gate before anything is measured; a warning or None."""
    from ..preflight import check_output_dir, check_output_file, check_threads
    from ..errors import ConfigError

    if req.models and not req.update_baseline:
        raise ConfigError("--model sets the models of a new baseline: use it with --update-baseline")
    for name, value in (("--rounds", req.rounds), ("--runs", req.runs), ("--threads", req.threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if req.if_no_baseline not in ("fail", "skip"):
        raise ConfigError("--if-no-baseline takes fail or skip")
    if req.update_baseline:
        (check_output_dir if Path(req.baseline).is_dir() else check_output_file)(req.baseline, "--baseline")
    return check_threads(req.threads, req.device or "local")


def gate_stored(req: GateRequest, reports: GateReports, out: GateOutput) -> int:
    """Pick the baseline, measure (or read) the candidate, judge, maybe record; the exit code."""
    from ..errors import ConfigError
    from .baseline import load_baseline, load_results_files
    from .wallclock import Threshold

    policy = GatePolicy(Threshold.parse(req.max_regression or "5%"), req.confidence, normalise=req.normalise,
                        min_rounds=req.min_rounds, seed=req.seed).validate()
    if warning := check_request(req):
        out.note(f"warning: {warning}")
    baseline, template = req.baseline, None
    measured = load_results_files(req.results) if req.results else None
    if Path(baseline).is_dir():
        where = req.device or "local"
        facts = measured.device_info if measured else device_facts(where, req.adb_server)
        baseline, old, template = _pick_baseline(Path(baseline), where, facts)
        if old is None and not req.update_baseline:
            return _no_baseline(baseline, where, facts, skip=req.if_no_baseline == "skip", reports=reports, out=out)
    else:
        old = None if req.update_baseline and not Path(baseline).is_file() else load_baseline(baseline)
    plan_source = old or template
    if plan_source is None and not req.models and not req.results:
        raise ConfigError(f"no baseline at {baseline}: create it with --update-baseline --model REF [--reference REF]")
    if plan_source is not None and not req.results and not req.models:  # refs the gate will run: from where?
        from .baseline_refs import check_baseline_refs

        refs = [m.ref for m in plan_source.models.values() if m.ref]
        check_baseline_refs(refs, req.baseline, req.allow_outside_refs)
    candidate = _candidate(req, reports, out, old, plan_source, measured)
    return _conclude(req, reports, out, policy, baseline, old, candidate)


def _candidate(req: GateRequest, reports: GateReports, out: GateOutput, old: Baseline | None,
               plan_source: Baseline | None, measured: Baseline | None) -> Baseline:
    """The candidate's samples: read from --results, measured now, or empty when this is another machine."""
    from ..preflight import check_db
    from ..errors import ConfigError

    where = req.device or (plan_source.device if plan_source else "local")
    reference = req.reference if req.normalise else None
    if measured is not None:
        if req.device and measured.device != req.device:
            raise ConfigError(f"the results were measured on {measured.device}, not --device {req.device}")
        _copy_refs(plan_source, measured)
        measured.reference = _reference_name(plan_source, reference, measured) if req.normalise else None
        return measured
    if old is not None and not req.update_baseline and _differs(old, where, req.adb_server):
        return Baseline(device=where, models={}, device_info=device_facts(where, req.adb_server))  # judged: other machine
    check_db(req.db)  # where the runs will go: before any export (a skip or --results stores nothing)
    options = bench_options(plan_source, where, rounds=req.rounds, runs=req.runs, warmup=req.warmup,
                            threads=req.threads)
    options.update({k: v for k, v in req.accel.items() if v and v != "cpu"})
    items = plan(plan_source, req.models, req.precisions, req.resolution, reference if req.update_baseline else None,
                 req.normalise)
    reports.device = where
    return _measure(where, items, options, req, reports.measured, out)


def _conclude(req: GateRequest, reports: GateReports, out: GateOutput, policy: GatePolicy, baseline: str,
              old: Baseline | None, candidate: Baseline) -> int:
    """Judge against the old baseline (if any), show and report; write the new one with --update-baseline."""
    from .baseline import BaselineError, save_baseline
    from .status import BASELINE_WRITTEN
    from .wallclock import judge

    verdict = None
    if old is not None:
        judged_by = (_reference_name(old, req.reference if req.normalise else None, candidate)
                     if not req.update_baseline else old.reference)
        verdict = judge(old, candidate, replace(policy, reference=judged_by if req.normalise else None))
        reports.verdict(verdict, candidate)
        out.verdict(verdict, baseline)
    if req.update_baseline:
        problem = _unfit_as_baseline(candidate, policy, req.normalise, out)
        if problem:
            raise BaselineError(f"not writing {baseline}: {problem}")
        save_baseline(candidate, baseline)
        if verdict is None:
            reports.status(BASELINE_WRITTEN, 0, f"wrote baseline {baseline} ({len(candidate.models)} artifact(s))")
        out.note(f"wrote baseline {baseline} ({len(candidate.models)} artifact(s), "
                 f"reference {candidate.reference or 'none'})")
        return 0
    assert verdict is not None
    for line in error_lines(verdict):
        out.note(line)
    return verdict.exit_code


def error_lines(verdict: Any) -> list[str]:
    """The lines that say why a wall-clock verdict failed (none when it passed)."""
    if verdict.exit_code == 1:
        return [f"regression: {m.key}: {m.message}" for m in verdict.regressions]
    if verdict.exit_code == 2:
        return [f"error: cannot judge: {verdict.summary_line()}"]
    return []


# --- which baseline ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def device_facts(device: str, adb_server: str | None) -> dict[str, Any]:
    """The facts that name this device's machine class (a phone is asked through adb)."""
    from ..devices import open_device

    with open_device(device, adb_server=adb_server) as dev:
        return dev.info()


def _differs(old: Baseline, device: str, adb_server: str | None) -> bool:
    """The baseline records a machine class and this device is of another one: no need to measure."""
    from ..devices.base import machine_class

    recorded = machine_class(old.device_info)
    return recorded is not None and machine_class(device_facts(device, adb_server)) != recorded


def _pick_baseline(folder: Path, device: str, facts: dict[str, Any]) -> tuple[str, Baseline | None, Baseline | None]:
    """(path, the folder's baseline for this machine class or None, a baseline of the same device kind to copy
    the models and options from). The path of a missing one is FOLDER/<machine slug>.json."""
    from ..devices.base import machine_class, machine_slug
    from ..devices.kinds import kind_name
    from .baseline import load_baseline

    cls = machine_class(facts)
    same_kind = [(path, load_baseline(path)) for path in sorted(folder.glob("*.json"))]
    same_kind = [(path, b) for path, b in same_kind if kind_name(b.device) == kind_name(device)]
    match = next(((p, b) for p, b in same_kind if cls is not None and machine_class(b.device_info) == cls), None)
    if match:
        return str(match[0]), match[1], match[1]
    return str(folder / f"{machine_slug(device, cls)}.json"), None, (same_kind[0][1] if same_kind else None)


def _no_baseline(path: str, device: str, facts: dict[str, Any], *, skip: bool, reports: GateReports,
                 out: GateOutput) -> int:
    """The folder has no baseline for this machine class: say so; exit 2, or 0 with --if-no-baseline skip."""
    from ..devices.base import machine_class
    from ..errors import ConfigError

    cls = machine_class(facts) or "unknown (the device does not say)"
    message = (f"no baseline for this machine class in {Path(path).parent}/ ({cls}); record one with: "
               f"mobiledeploy gate --device {device} --baseline {Path(path).parent}/ --update-baseline")
    if not skip:
        raise ConfigError(message)
    reports.status(SKIPPED, 0, message)
    out.skipped({"status": SKIPPED, "exit_code": 0, "summary": message, "device": device, "machine_class": cls})
    out.note(f"gate skipped: {message}")
    return 0


def _copy_refs(old: Baseline | None, candidate: Baseline) -> None:
    """Result files do not say how to rebuild a model: take the ref the baseline knows for its name."""
    known = {m.name: m.ref for m in (old.models.values() if old else []) if m.ref}
    for m in candidate.models.values():
        m.ref = m.ref or known.get(m.name)


# --- measuring and judging ----------------------------------------------------------------------------

def _measure(device: str, items: list[PlanItem], options: dict[str, Any], req: GateRequest, collected: list[Any],
             out: GateOutput) -> Baseline:
    """Export (reusing artifacts) and time every planned model, interleaved; every run is stored (and
    added to `collected` as it ends). A phone that is not there is said before any export."""
    from ..bench import BenchOptions, run_bench
    from ..devices import check_options
    from ..devices.kinds import kind_of
    from ..measure import prepare_targets
    from ..results import git_commit
    from .baseline import baseline_from_results

    bench = BenchOptions(threads=options["threads"], runs=options["runs"], warmup=options["warmup"],
                         cpu_mask=options["cpu_mask"],
                         **{k: options[k] for k in ACCELERATOR_OPTIONS if k in options}).validate()
    check_options(device, bench)
    if kind_of(device).reached_by_adb:  # a phone that is not there is said before any export
        device_facts(device, req.adb_server)
    targets, refs, reference = [], {}, None
    with out.progress() as progress:
        for item in items:
            found = prepare_targets([item.ref], item.precisions, tuple(item.resolution or (224, 224)), progress,
                                    weights=None if item.reference else req.weights, export=req.export)
            for target in found:
                refs[target.name] = item.ref
                if item.reference:
                    reference = target.name
            targets.extend(found)
        out.calibration(targets)
        report = run_bench(device, targets, bench, rounds=options["rounds"], db=req.db, adb_server=req.adb_server,
                           progress=progress, collected=collected).raise_for_setup()
    return baseline_from_results(report.results, reference=reference, refs=refs, bench_options=options,
                                 git=git_commit())


def _reference_name(old: Baseline | None, given: str | None, candidate: Baseline) -> str | None:
    """The reference's model name: --reference matched against the baseline's names, keys and refs."""
    from ..errors import ConfigError

    if given is None:
        return old.reference if old else candidate.reference
    for session in (old, candidate):
        if session is None:
            continue
        for m in session.models.values():
            if given in (m.name, m.key, m.ref):
                return m.name
    if candidate.reference:
        return candidate.reference  # a new reference just measured for --update-baseline
    raise ConfigError(f"--reference {given!r} is not a model of the baseline "
                      f"({', '.join(sorted({m.name for m in (old or candidate).models.values()}))})")


def _unfit_as_baseline(candidate: Baseline, policy: GatePolicy, normalise: bool, out: GateOutput) -> str | None:
    if not candidate.models:
        return "no results"
    for m in candidate.models.values():
        if m.failures:
            return f"{m.key} failed: {m.failures[0]}"
        rounds, runs = len(m.round_medians_us()), len(m.pooled_us())
        if rounds < policy.min_rounds and runs < policy.min_runs:
            return f"{m.key} has {rounds} round(s), {runs} run(s); need {policy.min_rounds} rounds or {policy.min_runs} runs"
    if normalise and candidate.reference is None:
        out.note("note: no --reference model: the gate will compare raw latency, so a slower CI machine can fail it")
    return None
