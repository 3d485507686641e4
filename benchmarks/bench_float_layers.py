"""Host latency of .tflite files side by side (the --float-layers trade-off): LiteRT with XNNPACK, one thread,
round-robin rounds in one process, medians of per-round medians and each file's ratio to the first.

    python -m benchmarks.bench_float_layers int8.tflite int8_float.tflite [--rounds 15 --runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for path in args.files:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
        interpreters.append(interpreter)
    medians: list[list[float]] = [[] for _ in interpreters]
    for r in range(args.rounds):
        order = range(len(interpreters)) if r % 2 == 0 else reversed(range(len(interpreters)))
        for i in order:
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                interpreters[i].invoke()
                times.append((time.perf_counter() - start) * 1e6)
            medians[i].append(statistics.median(times))
    base = medians[0]
    for path, m in zip(args.files, medians):
        ratio = statistics.median(a / b for a, b in zip(m, base))
        print(f"{path.name}: median {statistics.median(m):.1f} us (measured), {ratio:.2f}x the first file")


if __name__ == "__main__":
    main()
