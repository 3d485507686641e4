"""Does the latency gate work? False positives on A/A, detections on a ~10% slower A/B, and A/A under load.

Everything runs in this process on `local` (the LiteRT interpreter), through the same code the
`mobiledeploy gate` command uses: `measure.prepare_targets` + `bench.run_interleaved` for a
session, `baseline.baseline_from_results` for its samples, `gate.judge` for the verdict.

- baseline: one session of A (model), B (the slower variant) and R (the reference), interleaved;
  the gate's baseline keeps A and R.
- every trial is a fresh session of A, B and R (a "gate run"):
  A/A  judges A against the baseline's A → a regression is a false positive (target 0/20);
  A/B  judges B, renamed A, against the baseline's A → a regression is a detection (target >= 95%).
- busy: the same trials while a busy loop occupies the other core (the benchmark is pinned to
  the first allowed CPU, the busy process to the last one).

The true slowdown of B is printed too: the median over all sessions of B/A (same rounds).

Example: python benchmarks/bench_gate.py --trials 20
Example: python benchmarks/bench_gate.py --trials 5 --rounds 50 --scenarios aa,ab
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobiledeploy.gating.baseline import Baseline, baseline_from_results
from mobiledeploy.files import write_atomic
from mobiledeploy.bench import BenchOptions, run_interleaved
from mobiledeploy.measure import prepare_targets
from mobiledeploy.devices.kinds import GATE_DEFAULTS
from mobiledeploy.devices import open_device
from mobiledeploy.gating.status import REGRESSION
from mobiledeploy.gating.wallclock import GatePolicy, Threshold, judge

MODEL = "v1:g=3,scale=0.5,resolution=224"
SLOWER = "v1:g=3,scale=0.5,resolution=224x248"  # 1.127x the mult-adds of MODEL (same height, wider); ~1.1x the latency
REFERENCE = "mobilenet_v1:alpha=0.25,resolution=224"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="Example: python benchmarks/bench_gate.py --trials 20")
    p.add_argument("--trials", type=int, default=20, help="gate runs per scenario")
    p.add_argument("--rounds", type=int, default=None, help="rounds per session (default: the local baseline's)")
    p.add_argument("--runs", type=int, default=None, help="timed runs per target per round (default: the local baseline's)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per target per round")
    p.add_argument("--model", default=MODEL, help="model ref A")
    p.add_argument("--slower", default=SLOWER, help="model ref B, really slower than A by ~10%%")
    p.add_argument("--reference", default=REFERENCE, help="reference model ref R")
    p.add_argument("--max-regression", default="5%")
    p.add_argument("--confidence", type=float, default=0.99)
    p.add_argument("--scenarios", default="aa,ab,busy", help="comma list of aa, ab, busy")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file (atomically)")
    return p.parse_args(argv)


def local_baseline_options() -> dict[str, Any]:
    """The bench options of the committed baseline for this machine class (else of any committed one)."""
    from mobiledeploy.devices.base import machine_class
    from mobiledeploy.devices.local import host_facts

    here = machine_class(host_facts())
    found = []
    for path in sorted((Path(__file__).resolve().parent / "baselines").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append((machine_class(data.get("device_info") or {}) == here, data.get("bench_options") or {}))
    found.sort(key=lambda item: not item[0])
    return found[0][1] if found else {}


def session(device: Any, targets: list, options: BenchOptions, rounds: int) -> list:
    results = run_interleaved(device, targets, options, rounds)
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"bench_gate: a run failed: {failed[0].model}: {failed[0].error}")
    return results


def as_gate_session(results: list, keep: str, ref: str, rename_to: str | None = None) -> Baseline:
    """The samples of `keep` (renamed, for A/B) and of the reference, as the gate sees them."""
    chosen = []
    for r in results:
        if r.model == keep or r.model == ref:
            r = type(r).from_dict(r.to_dict())
            if rename_to and r.model == keep:
                r.model = rename_to
            chosen.append(r)
    return baseline_from_results(chosen, reference=ref)


def true_slowdown(sessions: list[list], a: str, b: str) -> float:
    """Median over every round of every session of median(B)/median(A) in that round."""
    ratios = []
    for results in sessions:
        by_round: dict[tuple[str, int], float] = {}
        for r in results:
            by_round[(r.model, r.round)] = float(np.median(r.timings_us))
        ratios += [by_round[(b, k)] / by_round[(a, k)] for (m, k) in by_round if m == a and (b, k) in by_round]
    return float(np.median(ratios))


class BusyCore:
    """A busy loop in a child process pinned to one CPU; stopped by its own pid."""

    def __init__(self, cpu: int) -> None:
        self.cpu, self.proc = cpu, None

    def __enter__(self) -> "BusyCore":
        code = f"import os; os.sched_setaffinity(0, {{{self.cpu}}})\nwhile True: pass"
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)


def run_scenario(name: str, device: Any, targets: list, options: BenchOptions, rounds: int, trials: int,
                 baseline: Baseline, policy: GatePolicy, names: dict[str, str]) -> dict[str, Any]:
    a, b, ref = names["a"], names["b"], names["ref"]
    sessions, aa, ab, seconds = [], [], [], []
    for trial in range(trials):
        start = time.perf_counter()
        results = session(device, targets, options, rounds)
        seconds.append(time.perf_counter() - start)
        sessions.append(results)
        aa.append(judge(baseline, as_gate_session(results, a, ref), policy).models[0])
        ab.append(judge(baseline, as_gate_session(results, b, ref, rename_to=a), policy).models[0])
        print(f"  {name} trial {trial + 1:2d}/{trials}: A/A {aa[-1].status:<11} {aa[-1].ratio:.3f} "
              f"[{aa[-1].low:.3f}, {aa[-1].high:.3f}]   A/B {ab[-1].status:<11} {ab[-1].ratio:.3f} "
              f"[{ab[-1].low:.3f}, {ab[-1].high:.3f}]  ({seconds[-1]:.1f} s)", flush=True)
    return {
        "scenario": name, "trials": trials,
        "aa_false_positives": sum(m.status == REGRESSION for m in aa),
        "ab_detections": sum(m.status == REGRESSION for m in ab),
        "aa_median_ratio": float(np.median([m.ratio for m in aa])),
        "ab_median_ratio": float(np.median([m.ratio for m in ab])),
        "aa_median_interval_width": float(np.median([m.high - m.low for m in aa])),
        "ab_median_low": float(np.median([m.low for m in ab])),
        "true_slowdown_b_over_a": true_slowdown(sessions, a, b),
        "seconds_per_gate_run": float(np.median(seconds)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    saved = local_baseline_options()
    saved = {**GATE_DEFAULTS, **saved}
    rounds = args.rounds or int(saved["rounds"])
    options = BenchOptions(threads=1, runs=args.runs or int(saved["runs"]),
                           warmup=args.warmup if args.warmup is not None else int(saved["warmup"]))
    policy = GatePolicy(Threshold.parse(args.max_regression), args.confidence).validate()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]

    print(f"preparing {args.model}, {args.slower}, {args.reference} …", flush=True)
    targets = [prepare_targets([ref], ("fp32",), (224, 224))[0] for ref in (args.model, args.slower, args.reference)]
    names = {"a": targets[0].name, "b": targets[1].name, "ref": targets[2].name}
    macs_ratio = (targets[1].macs / targets[0].macs) if targets[0].macs and targets[1].macs else None
    allowed = sorted(os.sched_getaffinity(0))
    device = open_device("local")
    figures: list[dict[str, Any]] = []
    try:
        print(f"baseline session: {rounds} rounds x {options.runs} runs of A, B, R", flush=True)
        baseline = as_gate_session(session(device, targets, options, rounds), names["a"], names["ref"])
        if "aa" in scenarios or "ab" in scenarios:
            figures.append(run_scenario("quiet", device, targets, options, rounds, args.trials, baseline, policy, names))
        if "busy" in scenarios and len(allowed) > 1:
            pinned = BenchOptions(threads=1, runs=options.runs, warmup=options.warmup, cpu_mask=f"{1 << allowed[0]:x}")
            with BusyCore(allowed[-1]):
                figures.append(run_scenario(f"busy cpu{allowed[-1]}", device, targets, pinned, rounds, args.trials,
                                            baseline, policy, names))
    finally:
        device.close()

    print()
    print(f"gate policy: regression when the whole {policy.confidence:.0%} interval of the normalised ratio is above "
          f"+{policy.max_regression}; {rounds} rounds x {options.runs} runs per gate run")
    print(f"A = {names['a']}, B = {names['b']} ({macs_ratio:.3f}x the mult-adds), R = {names['ref']}"
          if macs_ratio else f"A = {names['a']}, B = {names['b']}, R = {names['ref']}")
    for f in figures:
        print(f"[{f['scenario']}] A/A false positives {f['aa_false_positives']}/{f['trials']} "
              f"(rate {f['aa_false_positives'] / f['trials']:.0%}, median ratio {f['aa_median_ratio']:.3f}, "
              f"median interval width {f['aa_median_interval_width']:.3f}); "
              f"A/B detections {f['ab_detections']}/{f['trials']} (rate {f['ab_detections'] / f['trials']:.0%}, "
              f"median ratio {f['ab_median_ratio']:.3f}, median low {f['ab_median_low']:.3f}); "
              f"B is really x{f['true_slowdown_b_over_a']:.3f} slower; {f['seconds_per_gate_run']:.1f} s per gate run")
    if args.json:
        write_atomic(args.json, json.dumps({"rounds": rounds, "runs": options.runs, "names": names,
                                            "macs_ratio": macs_ratio, "figures": figures}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_gate"))
