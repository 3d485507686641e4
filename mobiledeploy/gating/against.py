"""The A/B gate (`gate --against REV|DIR`): base and head exported from the same inputs and measured side by
side in one session on one device; counted exactly on an exact device, timed in paired rounds elsewhere."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .reports import GateReports
from .request import GateOutput, GateRequest

__all__ = ["run_ab_gate"]


def run_ab_gate(req: GateRequest, collected: list[Any], out: GateOutput) -> int:
    """Both sides exported from the same inputs (`req.weights`, `req.export`: calibration, artifacts root of
    the candidates), then measured in one session; `collected` receives each run as it ends. The exit code."""
    from ..ab import baseline_targets, check_against, input_argv
    from ..bench import BenchOptions, parse_precisions
    from ..devices import canonical_uri, check_device
    from ..measure import prepare_targets
    from ..preflight import check_db
    from .exact_run import with_resolution

    device = canonical_uri(req.device or "local")
    check_device(device, BenchOptions(**req.accel))  # accelerators: adb devices only, before any export
    check_against(req.against)
    check_db(req.db)  # where the runs will go: before any export
    refs = [with_resolution(m, req.resolution) for m in (req.models or ["v1:g=3,scale=0.5"])]
    precisions = list(parse_precisions(req.precisions))
    candidates, ref_of = [], {}
    for ref in refs:
        for target in prepare_targets([ref], precisions, progress=out.say, weights=req.weights, export=req.export):
            candidates.append(target)
            ref_of[target.name] = ref
    out.calibration(candidates)
    code = 0
    for base in baseline_targets(req.against, candidates, ref_of, progress=out.say,
                                 inputs=input_argv(req.weights, req.export)):
        code = _side_by_side(req, device, candidates, base, ref_of, collected, out)
    return code


def _side_by_side(req: GateRequest, device: str, candidates: list[Any], base: list[Any], ref_of: dict[str, str],
                  collected: list[Any], out: GateOutput) -> int:
    """Measure candidates and base in one session and judge: counts on an exact device, paired rounds elsewhere."""
    from ..bench import BenchOptions, run_bench
    from ..devices.kinds import gate_options, kind_of
    from .exact_run import EXACT_DEFAULT_REGRESSION

    if kind_of(device).exact:
        options = BenchOptions(threads=1, runs=req.runs or 3, warmup=2 if req.warmup is None else req.warmup).validate()
        out.say(f"counting {len(candidates)} candidate and {len(base)} baseline artifact(s) on {device}")
        report = run_bench(device, [*candidates, *base], options, db=req.db, collected=collected)
        return _judge_counts(report.results, ref_of, req, req.max_regression or EXACT_DEFAULT_REGRESSION, out)
    plan = gate_options(device)
    options = BenchOptions(threads=req.threads or plan["threads"], runs=req.runs or plan["runs"],
                           warmup=plan["warmup"] if req.warmup is None else req.warmup, **req.accel).validate()
    n_rounds = req.rounds or plan["rounds"]
    out.say(f"timing {len(candidates)} candidate and {len(base)} baseline artifact(s) on {device}, "
            f"{n_rounds} interleaved rounds of {options.runs} runs")
    report = run_bench(device, [*candidates, *base], options, rounds=n_rounds, db=req.db,
                       adb_server=req.adb_server, collected=collected).raise_for_setup()
    return _judge_times(report.results, req, req.max_regression or "5%", options, out)


def _split(results: list[Any]) -> tuple[list[Any], list[Any]]:
    base = [replace(r, model=r.model.removesuffix("@base")) for r in results if r.model.endswith("@base")]
    return [r for r in results if not r.model.endswith("@base")], base


def _judge_counts(results: list[Any], ref_of: dict[str, str], req: GateRequest, max_regression: str,
                  out: GateOutput) -> int:
    from .exact import entry_from_result, judge_exact
    from .exact_run import finish_exact
    from .wallclock import Threshold

    cand, base = _split(results)
    verdict = judge_exact([entry_from_result(ref_of[r.model], r) for r in base],
                          [entry_from_result(ref_of[r.model], r) for r in cand], Threshold.parse(max_regression).fraction)
    return finish_exact(verdict, f"--against {req.against}", req, out)


def _judge_times(results: list[Any], req: GateRequest, max_regression: str, options: Any, out: GateOutput) -> int:
    from dataclasses import asdict

    from .baseline import baseline_from_results
    from .stored import error_lines
    from .wallclock import GatePolicy, Threshold, judge

    cand, base = _split(results)
    old = baseline_from_results(base, bench_options=asdict(options))
    new = baseline_from_results(cand, bench_options=asdict(options))
    policy = GatePolicy(Threshold.parse(max_regression), req.confidence, normalise=False, seed=req.seed,
                        paired=True).validate()
    verdict = judge(old, new, policy)
    label = f"--against {req.against}"
    GateReports(req.junit, req.markdown, req.out, label, new.device).verdict(verdict, new)
    out.verdict(verdict, label)
    for line in error_lines(verdict):
        out.note(line)
    return verdict.exit_code
