"""`mobiledeploy gate --against REV|DIR`: base and head measured side by side on one device."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from .app import print_json


def run_ab_gate(*, against: str, device: str | None, models: list[str] | None, formats: str, resolution: str,
                max_regression: str | None, confidence: float, rounds: int | None, runs: int | None,
                warmup: int | None, threads: int | None, seed: int, db: str | None, adb_server: str | None,
                junit: str | None, markdown: str | None, out: str | None, json_out: bool,
                accel: dict[str, Any] | None = None, weights: str | None = None, export: Any = None,
                collected: list[Any] | None = None) -> None:
    """Both sides exported from the same inputs (`weights`, `export`: calibration, artifacts root of the
    candidates), then measured in one session; `collected` receives each run as it ends."""
    from ..ab import baseline_targets, check_against, input_argv
    from ..bench import BenchOptions, parse_formats, run_bench
    from ..measure import prepare_targets
    from ..devices import canonical_uri, check_device
    from ..devices.kinds import gate_options, kind_of
    from .gate_exact_cmd import EXACT_DEFAULT_REGRESSION, _with_resolution, gate_progress
    from .console import warn_calibration
    from .preflight import check_db

    device = canonical_uri(device or "local")
    kind = kind_of(device)
    accel = accel or {}
    check_device(device, BenchOptions(**accel))  # accelerators: adb devices only, before any export
    check_against(against)
    check_db(db)  # where the runs will go: before any export
    refs = [_with_resolution(m, resolution) for m in (models or ["v1:g=3,scale=0.5"])]
    fmts = list(parse_formats(formats))
    say = gate_progress
    candidates, ref_of = [], {}
    for ref in refs:
        for target in prepare_targets([ref], fmts, progress=say, weights=weights, export=export):
            candidates.append(target)
            ref_of[target.name] = ref
    warn_calibration(candidates)
    for base in baseline_targets(against, candidates, ref_of, progress=say, inputs=input_argv(weights, export)):
        if kind.exact:
            options = BenchOptions(threads=1, runs=runs or 3, warmup=2 if warmup is None else warmup).validate()
            say(f"counting {len(candidates)} candidate and {len(base)} baseline artifact(s) on {device}")
            report = run_bench(device, [*candidates, *base], options, db=db, collected=collected)
            _judge_counts(report.results, ref_of, against, max_regression or EXACT_DEFAULT_REGRESSION,
                          junit=junit, markdown=markdown, out=out, json_out=json_out)
        else:
            plan = gate_options(device)
            options = BenchOptions(threads=threads or plan["threads"], runs=runs or plan["runs"],
                                   warmup=plan["warmup"] if warmup is None else warmup, **accel).validate()
            n_rounds = rounds or plan["rounds"]
            say(f"timing {len(candidates)} candidate and {len(base)} baseline artifact(s) on {device}, "
                f"{n_rounds} interleaved rounds of {options.runs} runs")
            report = run_bench(device, [*candidates, *base], options, rounds=n_rounds, db=db,
                               adb_server=adb_server, collected=collected).raise_for_setup()
            _judge_times(report.results, against, max_regression or "5%", confidence, seed, options,
                         junit=junit, markdown=markdown, out=out, json_out=json_out)


def _split(results: list[Any]) -> tuple[list[Any], list[Any]]:
    base = [replace(r, model=r.model.removesuffix("@base")) for r in results if r.model.endswith("@base")]
    return [r for r in results if not r.model.endswith("@base")], base


def _judge_counts(results: list[Any], ref_of: dict[str, str], against: str, max_regression: str, *,
                  junit: str | None, markdown: str | None, out: str | None, json_out: bool) -> None:
    from ..gate import Threshold
    from ..gate_exact import entry_from_result, judge_exact
    from .gate_exact_cmd import finish_exact

    cand, base = _split(results)
    verdict = judge_exact([entry_from_result(ref_of[r.model], r) for r in base],
                          [entry_from_result(ref_of[r.model], r) for r in cand], Threshold.parse(max_regression).fraction)
    finish_exact(verdict, f"--against {against}", junit=junit, markdown=markdown, out=out, json_out=json_out)


def _judge_times(results: list[Any], against: str, max_regression: str, confidence: float, seed: int, options: Any, *,
                 junit: str | None, markdown: str | None, out: str | None, json_out: bool) -> None:
    from dataclasses import asdict

    from ..baseline import baseline_from_results
    from ..gate import GatePolicy, Threshold, judge
    from .gate_report import GateReports, error_lines, print_verdict

    cand, base = _split(results)
    old = baseline_from_results(base, bench_options=asdict(options))
    new = baseline_from_results(cand, bench_options=asdict(options))
    policy = GatePolicy(Threshold.parse(max_regression), confidence, normalise=False, seed=seed, paired=True).validate()
    verdict = judge(old, new, policy)
    label = f"--against {against}"
    GateReports(junit, markdown, out, label, new.device).verdict(verdict, new)
    if json_out:
        print_json(verdict.to_dict())
    else:
        print_verdict(verdict, label)
    for line in error_lines(verdict):
        sys.stderr.write(f"mobiledeploy: {line}\n")
    if verdict.exit_code:
        raise SystemExit(verdict.exit_code)
