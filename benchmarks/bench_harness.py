"""Measurement quality of `bench --device local` on ShuffleNet v1 0.5x g=3.

Times the artifact ten times through the harness (`LocalDevice.run`, exactly what
`mobiledeploy bench --device local` does: new interpreter, warm-up, per-run perf_counter_ns)
and prints the spread of the ten medians (CV, target <= 3%).

That spread is the harness's and the machine's together. Each repetition also times a bare
interpreter loop right before or after the harness run, so the script separates them: the CV of
the bare loops is the machine's drift alone, and the CV of (harness median / bare loop beside it)
is what the harness itself adds. It also counts the repetitions `mobiledeploy.stability` flagged.

Harness overhead (target <= 5%) against a bare interpreter loop in the same process (one clock
reading around N invokes, nothing else), two ways:
- paired blocks on one interpreter: the harness's own timed loop (`timed_loop`, per-run clock
  readings and bookkeeping) and the bare loop alternate, 25 runs each, 40 pairs; the medians of
  the per-pair ratios give the bias of the reported latency (sum of per-run times / bare time)
  and the cost of the loop itself (wall time / bare time). Pairing cancels the load of a shared
  machine, which drifts over seconds;
- whole runs: each harness run's mean per-run latency against a bare loop run right before or
  after it (sensitive to that drift).
Exports the model first if ./artifacts has no valid copy.

    python benchmarks/bench_harness.py [--format fp32] [--repeats 10] [--runs 100] [--warmup 10]
                                       [--threads 1] [--cpu-mask auto] [--pairs 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

TARGET_CV = 0.03
TARGET_OVERHEAD = 0.05
MODEL_REF = "shufflenet_v1:g=3,scale=0.5"


def bare_loop_us(model: Path, threads: int, runs: int, warmup: int) -> float:
    """Mean latency (us) of `runs` invokes timed as one block: the floor any harness can reach."""
    from ai_edge_litert.interpreter import Interpreter

    from mobiledeploy.runtimes.litert import make_inputs

    interpreter = Interpreter(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    make_inputs(interpreter)
    invoke = interpreter.invoke
    for _ in range(warmup):
        invoke()
    start = time.perf_counter_ns()
    for _ in range(runs):
        invoke()
    return (time.perf_counter_ns() - start) / runs / 1e3


def paired_overhead(model: Path, threads: int, pairs: int, block: int) -> dict[str, float]:
    """Median over alternating (harness loop, bare loop) blocks on one interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    from mobiledeploy.runtimes.litert import make_inputs, timed_loop

    interpreter = Interpreter(model_path=str(model), num_threads=threads)
    interpreter.allocate_tensors()
    make_inputs(interpreter)
    invoke, clock = interpreter.invoke, time.perf_counter_ns
    for _ in range(block):
        invoke()
    reported, wall = [], []
    for i in range(pairs):
        sample: dict[str, float] = {}
        for kind in (("harness", "bare") if i % 2 == 0 else ("bare", "harness")):
            start = clock()
            if kind == "harness":
                timings = timed_loop(invoke, block, 0.0)
                sample["harness_wall"] = clock() - start
                sample["harness_reported"] = sum(timings)
            else:
                for _ in range(block):
                    invoke()
                sample["bare"] = clock() - start
        reported.append(sample["harness_reported"] / sample["bare"])
        wall.append(sample["harness_wall"] / sample["bare"])
    return {"pairs": pairs, "block_runs": block, "reported_bias": statistics.median(reported) - 1,
            "loop_overhead": statistics.median(wall) - 1}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from mobiledeploy.bench import BenchOptions
    from mobiledeploy.measure import prepare_targets
    from mobiledeploy.stats import cv
    from mobiledeploy.devices.local import LocalDevice
    from mobiledeploy.stability import assess

    [target] = prepare_targets([MODEL_REF], (args.format,), 224)
    device = LocalDevice()
    options = BenchOptions(threads=args.threads, runs=args.runs, warmup=args.warmup, cpu_mask=args.cpu_mask)
    reps = []
    for i in range(args.repeats):
        order = ("harness", "bare") if i % 2 == 0 else ("bare", "harness")
        rep: dict[str, float] = {}
        for kind in order:
            if kind == "bare":
                rep["bare_mean_ms"] = bare_loop_us(Path(target.artifact), args.threads, args.runs, args.warmup) / 1e3
            else:
                result = device.run(target, options)
                if not result.ok:
                    raise SystemExit(f"harness run failed: {result.error}")
                rep.update(median_ms=result.median_ms, mean_ms=result.mean_ms, cv_runs=result.cv,
                           cpu_share=result.cpu_share, warnings=[w.code for w in assess(result)])
        rep["overhead"] = rep["mean_ms"] / rep["bare_mean_ms"] - 1
        reps.append(rep)
        print(f"rep {i + 1:2d}/{args.repeats}: harness median {rep['median_ms']:.3f} ms, mean {rep['mean_ms']:.3f} ms "
              f"(CV of runs {rep['cv_runs']:.1%}); bare loop mean {rep['bare_mean_ms']:.3f} ms; "
              f"overhead {rep['overhead']:+.2%}" + (f"; warnings: {','.join(rep['warnings'])}" if rep["warnings"] else ""),
              file=sys.stderr)
    paired = paired_overhead(Path(target.artifact), args.threads, args.pairs, 25)
    medians = [r["median_ms"] for r in reps]
    harness_mean = statistics.fmean(r["mean_ms"] for r in reps)
    bare_mean = statistics.fmean(r["bare_mean_ms"] for r in reps)
    normalised = [r["median_ms"] / r["bare_mean_ms"] for r in reps]
    return {
        "cv_of_bare_means": cv([r["bare_mean_ms"] for r in reps]),
        "cv_of_normalised_medians": cv(normalised),
        "reps_with_warnings": sum(1 for r in reps if r["warnings"]),
        "model": target.name, "precision": target.precision, "artifact": str(target.artifact), "threads": args.threads,
        "runs": args.runs, "warmup": args.warmup, "repeats": args.repeats, "reps": reps,
        "median_of_medians_ms": statistics.median(medians),
        "cv_of_medians": cv(medians),
        "overhead_of_means": harness_mean / bare_mean - 1,
        "overhead_median_of_reps": statistics.median(r["overhead"] for r in reps),
        "paired": paired, "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
        "target_cv": TARGET_CV, "target_overhead": TARGET_OVERHEAD,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-mask", default="auto")
    parser.add_argument("--pairs", type=int, default=40, help="Paired harness/bare blocks for the overhead.")
    parser.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")
    args = parser.parse_args()
    out = measure(args)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    paired = out["paired"]
    overhead = max(paired["reported_bias"], paired["loop_overhead"])
    cv_ok, overhead_ok = out["cv_of_medians"] <= TARGET_CV, overhead <= TARGET_OVERHEAD
    print(f"{out['model']} {out['precision']}, {out['threads']} thread(s), {out['repeats']} x {out['runs']} runs "
          f"(load average {out['load_average']:.2f} on {out['cpus']} CPUs)")
    print(f"  median of the {out['repeats']} medians   {out['median_of_medians_ms']:.3f} ms")
    print(f"  CV of the medians        {out['cv_of_medians']:.2%}  (target <= {TARGET_CV:.0%}: {'met' if cv_ok else 'MISSED'})")
    print(f"    the machine alone      {out['cv_of_bare_means']:.2%}  (CV of the bare loops timed beside them)")
    print(f"    the harness alone      {out['cv_of_normalised_medians']:.2%}  (CV of median / bare loop beside it)")
    print(f"    flagged unstable       {out['reps_with_warnings']} of {out['repeats']} repetitions "
          "(mobiledeploy.stability: noisy, drift, preempted, heated)")
    print(f"  harness overhead, paired {paired['reported_bias']:+.2%} reported latency, {paired['loop_overhead']:+.2%} "
          f"loop wall time ({paired['pairs']} pairs of {paired['block_runs']} runs; target <= {TARGET_OVERHEAD:.0%}: "
          f"{'met' if overhead_ok else 'MISSED'})")
    print(f"  harness overhead, whole  {out['overhead_of_means']:+.2%} mean of run means vs bare loops "
          f"(median over reps {out['overhead_median_of_reps']:+.2%})")
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_harness"))
