"""Do exact counts repeat? The same artifact counted in N fresh emulated processes, optionally beside a CPU hog (the
load under which CI once saw ONNX Runtime's median move): per runtime, each distinct timed-run median, first-
inference and init count with the number of processes that gave it, and the guest threads seen.

    nice -n 10 python -m benchmarks.bench_count_repeat [--processes 10] [--hog] [--quick]
        [--pte MODEL.pte] [--tflite MODEL.tflite] [--runs 3] [--warmup 0]

ONNX Runtime always: a tiny conv net at 32x32, exported here (torch.onnx). `--pte` / `--tflite` add ExecuTorch's
runner and LiteRT on the same core. `--quick`: 3 processes. Counts are exact Arm instructions (`qemu:cortex-a76`).
One distinct median per runtime means the count repeats; a second one is what the exact gate cannot tolerate.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HOG = "while True: pass"


def tiny_onnx(folder: Path) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()
    path = folder / "model.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False)
    return path


def count_once(runtime: str, model: Path, runs: int, warmup: int) -> dict[str, Any]:
    from mobiledeploy.devices.qemu import QemuDevice
    from mobiledeploy.records import BenchOptions, BenchTarget

    target = BenchTarget(name=model.stem, artifact=model, precision="fp32", sha256="0", macs=None, config={},
                         resolution=(32, 32), runtime=runtime)
    result = QemuDevice("cortex-a76").run(target, BenchOptions(runs=runs, warmup=warmup))
    if result.status != "ok":
        raise SystemExit(f"{runtime}: {result.error}")
    return {"median": int(result.instructions), "first": int(result.first_instructions),
            "init": int(result.init_instructions), "threads": result.observed.get("guest_threads", 1),
            "runs": result.instruction_counts}


def report(runtime: str, rows: list[dict[str, Any]]) -> None:
    sys.stdout.write(f"{runtime}: {len(rows)} processes, {len({r['median'] for r in rows})} distinct median(s)\n")
    for key in ("median", "first", "init", "threads"):
        seen = collections.Counter(r[key] for r in rows)
        sys.stdout.write(f"  {key:8} " + ", ".join(f"{value:,} x{n}" for value, n in seen.most_common()) + "\n")
    uneven = sum(len(set(r["runs"])) > 1 for r in rows)
    sys.stdout.write(f"  processes whose timed runs differ among themselves: {uneven}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),  # the first paragraph
                                     epilog="Example: python -m benchmarks.bench_count_repeat --quick")
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--hog", action="store_true", help="a CPU busy loop beside the runs (nice 10)")
    parser.add_argument("--pte", type=Path, help="also count this .pte with ExecuTorch's runner")
    parser.add_argument("--tflite", type=Path, help="also count this .tflite with LiteRT")
    parser.add_argument("--quick", action="store_true", help="3 processes")
    args = parser.parse_args(argv)
    processes = 3 if args.quick else args.processes
    hog = subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", HOG]) if args.hog else None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-count-repeat-") as tmp:
            models = {"onnxruntime": tiny_onnx(Path(tmp))}
            if args.pte:
                models["executorch"] = args.pte
            if args.tflite:
                models["counted"] = args.tflite
            for runtime, model in models.items():
                report(runtime, [count_once(runtime, model, args.runs, args.warmup) for _ in range(processes)])
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_count_repeat"))
