"""Every zoo classifier on emulated Arm cores: exact instructions per inference, fp32 and int8.

For each model (exported once, artifacts reused): on each core (default cortex-a53 and
cortex-a76) the aarch64 LiteRT runs fp32 and int8 under QEMU with the counting plugin; one row per
model and core: MACs, fp32 and int8 instructions, int8/fp32 ratio, instructions per MAC, the
XNNPACK partitions of each graph, Arm parity against the host's LiteRT (fp32 relative error,
int8 steps), and the wall time of the measurement (emulation, not a latency).

    python benchmarks/bench_arm.py [--resolution 224] [--models 'shufflenet*,alexnet'] [--cpus cortex-a53,cortex-a76]
                                   [--widths default|small|both] [--out DIR] [--markdown FILE] [--json]

Needs `mobiledeploy qemu setup` (make arm). Exit 1 when any model failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_zoo import select  # noqa: E402  (the same model selection as the host sweep)


def measure(name: str, config: dict[str, Any], resolution: int, cpus: list[str], out: Path,
            runs: int = 2, warmup: int = 1) -> list[dict[str, Any]]:
    from mobiledeploy.converters import export_model
    from mobiledeploy.qemu.env import environment
    from mobiledeploy.qemu.parity import compare_outputs, host_outputs, seeded_inputs
    from mobiledeploy.qemu.run import run_guest

    env = environment()
    exported = export_model(name, config, resolution=(resolution, resolution), out_dir=out)
    manifest = exported.manifest
    rows = []
    for cpu in cpus:
        row: dict[str, Any] = {"model": manifest.slug, "cpu": cpu, "macs": manifest.macs}
        start = time.perf_counter()
        for fmt in ("fp32", "int8"):
            path = Path(exported.path) / manifest.file(fmt)
            inputs = seeded_inputs(path)
            run = run_guest(env, cpu, path, runs=runs, warmup=warmup, inputs=inputs, want_outputs=True)
            row[fmt] = min(run.counts.runs)
            row[f"{fmt}_spread"] = max(run.counts.runs) - min(run.counts.runs)
            row[f"{fmt}_partitions"] = run.delegation.get("partitions")
            row[f"{fmt}_not_delegated"] = run.delegation.get("not_delegated")
            parity = compare_outputs(host_outputs(path, inputs), run.outputs)
            row[f"{fmt}_parity"] = parity.get("max_rel", parity.get("max_steps"))
            row[f"{fmt}_parity_passed"] = parity["passed"]
        row["int8_over_fp32"] = row["int8"] / row["fp32"]
        row["fp32_per_mac"] = row["fp32"] / row["macs"]
        row["wall_s"] = round(time.perf_counter() - start, 1)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | core | MACs | fp32 instr | int8 instr | int8/fp32 | fp32 instr/MAC | partitions fp32/int8 | "
             "Arm parity fp32 / int8 | wall s |", "|---|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('cpu', '')} | | | | | | | failed: {r['error'][:80]} | |")
            continue
        parity = f"{r['fp32_parity']:.1e} / {r['int8_parity']} step" + ("" if r["fp32_parity_passed"] and r["int8_parity_passed"] else " ✗")
        lines.append(f"| {r['model']} | {r['cpu']} | {r['macs'] / 1e6:.1f}M | {r['fp32'] / 1e6:.2f}M | {r['int8'] / 1e6:.2f}M | "
                     f"{r['int8_over_fp32']:.2f} | {r['fp32_per_mac']:.2f} | {r['fp32_partitions']} / {r['int8_partitions']} | "
                     f"{parity} | {r['wall_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: python benchmarks/bench_arm.py --models 'shufflenet_v1,mobilenet_v1'")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--models", default=None, help="comma list of patterns or refs (default: every classifier)")
    parser.add_argument("--cpus", default="cortex-a53,cortex-a76")
    parser.add_argument("--widths", choices=("default", "small", "both"), default="default")
    parser.add_argument("--out", default="artifacts", help="artifacts root (exports are reused)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--runs", type=int, default=2, help="counted runs per artifact (counts repeat exactly)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from mobiledeploy.devices.qemu import parse_cpu
    from mobiledeploy.errors import MobiledeployError

    try:
        cpus = [parse_cpu(c) for c in args.cpus.split(",") if c.strip()]
        entries = select(args.models, args.widths)
    except MobiledeployError as exc:
        print(f"bench_arm: error: {exc}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for n, (name, config) in enumerate(entries, 1):
        print(f"bench_arm: [{n}/{len(entries)}] {name} {config or ''}", file=sys.stderr, flush=True)
        try:
            rows.extend(measure(name, config, args.resolution, cpus, Path(args.out).resolve(), args.runs, args.warmup))
        except Exception as exc:  # one model's failure is a row, the sweep goes on
            rows.append({"model": name, "error": " ".join(str(exc).split())[:300]})
        if args.markdown:  # after every model, so a long sweep leaves its table so far
            Path(args.markdown).write_text(markdown(rows))
    table = markdown(rows)
    print(json.dumps(rows, indent=1) if args.json else table)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_arm"))
