"""Do the A/B and exact gates work? False alarms on A/A, power on a ~10% slower B, the smallest
regression the exact gate catches, and minutes per gate.

A/B mode (`gate --against`, wall clock on `local`): each trial is one interleaved session of the
candidate and a baseline artifact, judged by the gate's ratio-of-medians bootstrap (no reference
model, no stored numbers). A/A: the candidate against a copy of itself → a regression is a false
alarm (target ≤ 1 in 20 at 5%). A/B: B (224x248, 1.127x the mult-adds) against A → a regression
is a detection (target ≥ 19 in 20).

Exact mode (`qemu:cortex-a76`, instructions): every trial is a new emulated process counting the
artifact, judged against the first trial's count (the baseline) at --exact-threshold; A/A, A/B,
and a ladder of slightly bigger classifier heads (1200 … 3000 classes instead of 1000: +0.1% … +1.4%
of the mult-adds) for the smallest regression caught.

Example: python benchmarks/bench_gate_ab.py --trials 20 --exact-trials 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from mobiledeploy.gating.baseline import baseline_from_results
from mobiledeploy.bench import BenchOptions, run_bench
from mobiledeploy.devices.kinds import device_uri
from mobiledeploy.measure import prepare_targets
from mobiledeploy.gating.status import REGRESSION
from mobiledeploy.gating.wallclock import GatePolicy, Threshold, judge
from mobiledeploy.gating.exact import entry_from_result, judge_exact

MODEL = "v1:g=3,scale=0.5,resolution=224"
SLOWER = "v1:g=3,scale=0.5,resolution=224x248"
#: a bigger classifier head only (more classes): the same graph, a little more work each step
LADDER = (1200, 1500, 2000, 3000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Example: python benchmarks/bench_gate_ab.py --trials 20")
    p.add_argument("--trials", type=int, default=20, help="A/B-mode gate runs per scenario (local)")
    p.add_argument("--exact-trials", type=int, default=10, help="exact-mode gate runs per scenario (qemu)")
    p.add_argument("--rounds", type=int, default=150)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--max-regression", default="5%")
    p.add_argument("--exact-threshold", default="0.5%")
    p.add_argument("--cpu", default="cortex-a76")
    p.add_argument("--skip-local", action="store_true")
    p.add_argument("--skip-exact", action="store_true")
    p.add_argument("--db", default="/tmp/bench_gate_ab.db")
    return p.parse_args(argv)


def as_base(target: Any) -> Any:
    return dataclasses.replace(target, name=f"{target.name}@base")


def ab_trial(candidate: Any, base: Any, args: argparse.Namespace) -> tuple[bool, float, float]:
    """One `gate --against` on local: (regression?, ratio, seconds)."""
    start = time.perf_counter()
    options = BenchOptions(threads=1, runs=args.runs, warmup=1).validate()
    results = run_bench("local", [candidate, base], options, rounds=args.rounds, db=args.db).results
    cand = [r for r in results if not r.model.endswith("@base")]
    old = [dataclasses.replace(r, model=candidate.name) for r in results if r.model.endswith("@base")]
    policy = GatePolicy(Threshold.parse(args.max_regression), 0.99, normalise=False, paired=True).validate()
    verdict = judge(baseline_from_results(old), baseline_from_results(cand), policy)
    m = verdict.models[0]
    return m.status == REGRESSION, m.ratio or float("nan"), time.perf_counter() - start


def exact_count(target: Any, args: argparse.Namespace) -> tuple[Any, float]:
    start = time.perf_counter()
    options = BenchOptions(threads=1, runs=3, warmup=2).validate()
    (result,) = run_bench(device_uri("qemu", args.cpu), [target], options, db=args.db).results
    return entry_from_result("A", result), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    (a,) = prepare_targets([MODEL], ["fp32"], progress=None)
    (b,) = prepare_targets([SLOWER], ["fp32"], progress=None)
    out: dict[str, Any] = {}
    if not args.skip_local:
        for name, cand in (("A/A", a), ("A/B", dataclasses.replace(b, name=a.name))):
            flags, ratios, secs = [], [], []
            for t in range(args.trials):
                flag, ratio, sec = ab_trial(cand, as_base(a), args)
                flags.append(flag), ratios.append(ratio), secs.append(sec)
                say(f"local {name} trial {t + 1}/{args.trials}: ratio {ratio:.3f} {'REGRESSION' if flag else 'pass'} ({sec:.1f} s)")
            out[f"local {name}"] = {"regressions": sum(flags), "trials": args.trials, "median_ratio": sorted(ratios)[len(ratios) // 2],
                                    "minutes_per_gate": sum(secs) / len(secs) / 60}
    if not args.skip_exact:
        limit = Threshold.parse(args.exact_threshold).fraction
        base, _ = exact_count(a, args)
        ladder = [("A/A", a), ("A/B", b)] + [(f"{n} classes", t) for n in LADDER
                                             for (t,) in [prepare_targets([f"{MODEL},num_classes={n}"], ["fp32"])]]
        for name, target in ladder:
            trials = args.exact_trials if name in ("A/A", "A/B") else 1
            flags, ratios, secs = [], [], []
            for t in range(trials):
                entry, sec = exact_count(target, args)
                entry = dataclasses.replace(entry, ref="A")
                v = judge_exact([base], [entry], limit).entries[0]
                flags.append(v.status == "regression"), ratios.append(v.ratio), secs.append(sec)
                say(f"exact {name} trial {t + 1}/{trials}: ratio {v.ratio:.6f} {v.status} ({sec:.1f} s)")
            out[f"exact {name}"] = {"regressions": sum(flags), "trials": trials, "max_ratio": max(ratios),
                                    "min_ratio": min(ratios), "minutes_per_gate": sum(secs) / len(secs) / 60}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_gate_ab"))
