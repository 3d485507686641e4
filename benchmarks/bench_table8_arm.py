"""The ShuffleNet paper's Table 8 in exact Arm instructions: the README's table, made here and only here.

AlexNet, ShuffleNet v1 0.5x / 1x / 2x (g=3) and 1.0 MobileNet at 224x224, each exported once (this
checkout's pipeline), then counted by the aarch64 LiteRT under QEMU on each core (cortex-a76 with the
dot-product instructions, cortex-a53 without), fp32 and int8: instructions per inference, and the speedup
over AlexNet on the same core and precision (AlexNet's instructions / the model's). The paper's column is
its Table 8 (one thread on a Snapdragon 820, ms) as the README cites it.

    python benchmarks/bench_table8_arm.py            # print the table
    python benchmarks/bench_table8_arm.py --write    # also write benchmarks/results/table8_arm.md, which the
                                                     # README embeds verbatim (tests/test_readme_tables.py)
    python benchmarks/bench_table8_arm.py --quick    # ShuffleNet 0.5x and AlexNet at 64x64 on cortex-a76: a smoke run

Needs `mobiledeploy qemu setup` (make arm). About 10 minutes on a 2-core host.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_arm import measure  # noqa: E402  (export once, count fp32 and int8 on each core)

RESULT = Path(__file__).resolve().parent / "results" / "table8_arm.md"
#: (label, arch, config, the paper's Table 8 figure: Snapdragon 820 ms and speedup over AlexNet, as cited in README)
MODELS = [
    ("AlexNet", "alexnet", {}, "184"),
    ("ShuffleNet 0.5x g=3", "shufflenet_v1", {"g": 3, "scale": 0.5}, "15.2 (12.1x)"),
    ("ShuffleNet 1x g=3", "shufflenet_v1", {"g": 3, "scale": 1.0}, "37.8 (4.9x)"),
    ("ShuffleNet 2x g=3", "shufflenet_v1", {"g": 3, "scale": 2.0}, "108.8 (1.7x)"),
    ("1.0 MobileNet-224", "mobilenet_v1", {"alpha": 1.0}, "110 (1.7x)"),
]
CPUS = ["cortex-a76", "cortex-a53"]


def table(rows: dict[str, dict[str, dict[str, Any]]], cpus: list[str], resolution: int, commit: str | None) -> str:
    """Markdown: one row per model, instructions per (core, precision) with the speedup over AlexNet."""
    head = ["model", "MACs"] + [f"{c.removeprefix('cortex-').upper()} {f}" for c in cpus for f in ("fp32", "int8")]
    lines = ["| " + " | ".join([*head, "paper (Snapdragon 820, ms)"]) + " |",
             "|---|" + "---:|" * (len(head) - 1) + "---:|"]
    alexnet = rows["AlexNet"]
    for label, _, _, paper in MODELS:
        if label not in rows:
            continue
        cells = [label, f"{rows[label][cpus[0]]['macs'] / 1e6:.1f}M"]
        for cpu in cpus:
            for precision in ("fp32", "int8"):
                count = rows[label][cpu][precision]
                ratio = alexnet[cpu][precision] / count
                speedup = "" if label == "AlexNet" else f" ({ratio:.{1 if ratio >= 1 else 2}f}x)"
                cells.append(f"{count / 1e6:.1f}M{speedup}")
        lines.append("| " + " | ".join([*cells, paper]) + " |")
    when = _dt.date.today().isoformat()
    lines += ["", f"Arm instructions per inference at {resolution}x{resolution}, 1 thread, exact (the same on any host); "
              f"counted by `python benchmarks/bench_table8_arm.py --write` on commit {commit or 'unknown'} ({when})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from mobiledeploy.results import git_commit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {RESULT.relative_to(RESULT.parents[2])}")
    parser.add_argument("--quick", action="store_true", help="AlexNet and ShuffleNet 0.5x at 64x64 on cortex-a76")
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="artifacts root (exports reused)")
    args = parser.parse_args(argv)
    if args.quick and args.write:
        parser.error("--quick is a smoke run: it never writes the README's table")
    models = MODELS[:2] if args.quick else MODELS
    cpus, resolution = (CPUS[:1], 64) if args.quick else (CPUS, 224)
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for label, arch, config, _ in models:
        sys.stderr.write(f"{label}: export and count on {', '.join(cpus)}\n")
        found = measure(arch, config, resolution, cpus, args.out, runs=1, warmup=0)
        rows[label] = {r["cpu"]: r for r in found}
    text = table(rows, cpus, resolution, git_commit())
    sys.stdout.write(text)
    if args.write:
        RESULT.parent.mkdir(exist_ok=True)
        tmp = RESULT.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(RESULT)
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_table8_arm"))
