"""Time `mobiledeploy export` of ShuffleNet v1 1x g=3 (onnx + fp32 + int8) from a fresh process.

Runs the real CLI in a new interpreter (so Python start-up and the TensorFlow import count),
with --force into a temporary directory, and prints each stage's seconds from the manifest and
the total wall time. Target: under 90 s on a 2-core machine.

    python benchmarks/bench_export.py [--resolution 224] [--g 3] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 90.0


def time_export(g: int, resolution: str, out: Path) -> tuple[float, dict]:
    argv = [sys.executable, "-m", "mobiledeploy", "export", "--arch", "shufflenet_v1", "--g", str(g),
            "--scale", "1.0", "--resolution", resolution, "--formats", "onnx,fp32,int8",
            "--out", str(out), "--force", "--json"]
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"export failed with exit code {done.returncode}")
    return wall, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g", type=int, default=3)
    parser.add_argument("--resolution", default="224")
    parser.add_argument("--repeat", type=int, default=1, help="Exports to time; the median wall time is reported.")
    parser.add_argument("--keep", type=Path, help="Write the artifacts here instead of a temporary directory.")
    args = parser.parse_args()

    from mobiledeploy.converters.manifest import Manifest

    walls = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = args.keep or Path(tmp)
        for i in range(args.repeat):
            wall, result = time_export(args.g, args.resolution, out)
            walls.append(wall)
            manifest = Manifest.from_dict(result["manifest"])  # `export --json`
            print(f"run {i + 1}/{args.repeat}: {manifest.slug}")
            stages = manifest.stage_seconds
            for stage, seconds in stages.items():
                if stage != "total":
                    print(f"  {stage:<12} {seconds:7.2f} s")
            print(f"  {'in process':<12} {stages['total']:7.2f} s  (sum of stages, TensorFlow import included)")
            print(f"  {'wall':<12} {wall:7.2f} s  (fresh process: interpreter start-up, imports, export, exit)")
            parity = manifest.parity
            print(f"  parity: onnx max_rel {parity['onnx']['max_rel']:.1e}, fp32 max_rel {parity['fp32']['max_rel']:.1e}, "
                  f"int8 cosine {parity['int8']['cosine']:.4f} / {parity['int8']['sqnr_db']:.1f} dB / "
                  f"top-1 {parity['int8']['top1_agreement']:.0%}")
    walls.sort()
    median = walls[len(walls) // 2]
    verdict = "within" if median < TARGET_S else "OVER"
    print(f"export wall time: {median:.1f} s (median of {len(walls)}), {verdict} the {TARGET_S:.0f} s target")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_export"))
