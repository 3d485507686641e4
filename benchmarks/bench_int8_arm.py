"""int8 against fp32 in exact Arm instructions, this checkout's export against another revision's, in one run.

For each model ref, the artifacts are exported twice: by this checkout (`export_model`, reused when
valid) and by `--against REV`'s own code in a throwaway worktree (`mobiledeploy.ab.revision_exports`).
On each emulated core both fp32 and int8 files of both exports run under QEMU with the counting
plugin; one row per model and core: instructions per inference before → after, the int8/fp32 ratio
before → after, and the XNNPACK partitions of each graph on that core.

    python benchmarks/bench_int8_arm.py [--against main] [--models 'v1:g=3,scale=0.5,resolution=224;...']
                                        [--cpus cortex-a76,cortex-a53] [--out DIR] [--markdown FILE]

Needs `mobiledeploy qemu setup` (make arm). Counts repeat exactly, so one counted run is enough.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_MODELS = "v1:g=3,scale=0.5,resolution=224;v1:g=3,scale=1.0,resolution=224"
FORMATS = ("fp32", "int8")


def _files(folder: Path) -> dict[str, Path]:
    from mobiledeploy.converters.manifest import read_manifest

    manifest = read_manifest(folder)
    return {fmt: folder / manifest.file(fmt) for fmt in FORMATS}


def _head_export(ref: str, out: Path) -> Path:
    from mobiledeploy.converters import export_model
    from mobiledeploy.registry import parse_model_ref

    arch, config = parse_model_ref(ref)
    resolution = config.pop("resolution", 224)
    return export_model(arch, config, resolution=resolution, out_dir=out).path


def _count(env: Any, cpu: str, path: Path) -> tuple[int, int]:
    """(instructions per inference, XNNPACK partitions) of one file on one core."""
    from mobiledeploy.qemu.run import run_guest

    run = run_guest(env, cpu, path, runs=1, warmup=1)
    return min(run.counts.runs), run.delegation.get("partitions", 0)


def measure(refs: list[str], cpus: list[str], against: str, out: Path) -> list[dict[str, Any]]:
    from mobiledeploy.ab import revision_exports
    from mobiledeploy.qemu.env import environment

    env = environment()
    rows = []
    with revision_exports(against, progress=lambda m: print(f"bench_int8_arm: {m}", file=sys.stderr)) as export:
        for ref in refs:
            sides = {"before": _files(export(ref, list(FORMATS))), "after": _files(_head_export(ref, out))}
            for cpu in cpus:
                row: dict[str, Any] = {"model": ref, "cpu": cpu}
                for side, files in sides.items():
                    for fmt, path in files.items():
                        row[f"{fmt}_{side}"], row[f"{fmt}_{side}_partitions"] = _count(env, cpu, path)
                    row[f"ratio_{side}"] = row[f"int8_{side}"] / row[f"fp32_{side}"]
                print(f"bench_int8_arm: {ref} on {cpu}: {json.dumps(row)}", file=sys.stderr, flush=True)
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], against: str) -> str:
    lines = [f"| model | core | fp32 instr {against} → here | int8 instr {against} → here | int8/fp32 {against} → here "
             "| int8 partitions | fp32 partitions |", "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['cpu']} | {r['fp32_before'] / 1e6:.2f}M → {r['fp32_after'] / 1e6:.2f}M | "
            f"{r['int8_before'] / 1e6:.2f}M → {r['int8_after'] / 1e6:.2f}M | {r['ratio_before']:.2f} → {r['ratio_after']:.2f} | "
            f"{r['int8_before_partitions']} → {r['int8_after_partitions']} | "
            f"{r['fp32_before_partitions']} → {r['fp32_after_partitions']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="main", help="git revision whose export is 'before'")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="';'-separated model refs")
    parser.add_argument("--cpus", default="cortex-a76,cortex-a53")
    parser.add_argument("--out", default="artifacts", help="artifacts root of this checkout's exports (reused)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    from mobiledeploy.devices.qemu import parse_cpu

    cpus = [parse_cpu(c) for c in args.cpus.split(",") if c.strip()]
    refs = [r.strip() for r in args.models.split(";") if r.strip()]
    table = markdown(measure(refs, cpus, args.against, Path(args.out).resolve()), args.against)
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_int8_arm"))
