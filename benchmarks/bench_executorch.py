"""LiteRT against ExecuTorch and ONNX Runtime (fp32 only: no int8 ONNX model is exported), side by side in one run: Arm instructions per inference on emulated cores (exact),
host milliseconds (medians, interleaved), file sizes and parity, for fp32 and int8 of each model.

    python benchmarks/bench_executorch.py --quick                 # ShuffleNet v1 0.5x g=3 at 64x64, a76 and a53
    nice -n 10 python benchmarks/bench_executorch.py --resolution 224 --models 'v1:g=3,scale=0.5' 'mobilenet_v1' \
        --results benchmarks/results/executorch_zoo.md     # resumable: rows already in the file are skipped

Rows are printed, and appended to `--results` (when given) as each (model, core) finishes, so a run that is
stopped loses at most the model in progress; a rerun skips the (model, core) rows the file already holds.

Needs the executorch extra and `make arm` (with the ExecuTorch runner: `mobiledeploy qemu setup`).
"""

from __future__ import annotations

import argparse
import sys
import statistics
from pathlib import Path
from typing import Any, Iterator

QUICK = ["v1:g=3,scale=0.5"]
CORES = ("cortex-a76", "cortex-a53")
PAIRS = {"litert": {"fp32": "fp32", "int8": "int8"}, "executorch": {"fp32": "pte_fp32", "int8": "pte_int8"},
         "onnxruntime": {"fp32": "onnx"}}


def pairs_for(precisions: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """PAIRS limited to `precisions` ('fp32' only: no int8 export, the slowest step at 224; its cells are '—')."""
    return {rt: {f: key for f, key in table.items() if f in precisions} for rt, table in PAIRS.items()}


def export(ref: str, resolution: int, out: Path, pairs: dict[str, dict[str, str]]) -> Any:
    from mobiledeploy.converters import export_model
    from mobiledeploy.registry import parse_model_ref

    arch, config = parse_model_ref(ref)
    return export_model(arch, config, resolution=resolution, out_dir=out,
                        formats=tuple(dict.fromkeys(["onnx", *(k for t in pairs.values() for k in t.values())])))


def count(runtime: str, path: Path, cpu: str) -> int:
    from mobiledeploy.qemu.env import environment
    from mobiledeploy.qemu.executorch_env import executorch_guest
    from mobiledeploy.qemu.run import run_guest
    from mobiledeploy.qemu.run_executorch import run_executorch_guest

    env = environment()
    if runtime == "litert":
        runs = run_guest(env, cpu, path, runs=2, warmup=0).counts.runs
    elif runtime == "onnxruntime":  # the median of 3 after a warm-up: see runtimes/counted_onnxruntime.py
        from mobiledeploy.qemu.onnxruntime_env import onnxruntime_guest

        runs = run_guest(env, cpu, path, runs=3, warmup=1, script="guest_onnx.py",
                         pythonpath=onnxruntime_guest(env.root).site, max_threads=None).counts.runs
    else:
        runs = run_executorch_guest(env, executorch_guest(env.root), cpu, path, runs=2, warmup=0).counts.runs
    return int(statistics.median(runs))


def host_ms(files: dict[tuple[str, str], Path], rounds: int) -> dict[tuple[str, str], float]:
    """Median over rounds of each file's median of 10 runs, the files interleaved round by round (1 thread)."""
    from mobiledeploy.runtimes.executorch import time_pte
    from mobiledeploy.runtimes.litert import time_tflite
    from mobiledeploy.runtimes.onnxruntime import time_onnx

    medians: dict[tuple[str, str], list[float]] = {key: [] for key in files}
    for _ in range(rounds):
        for (runtime, precision), path in files.items():
            timer = {"litert": time_tflite, "executorch": time_pte, "onnxruntime": time_onnx}[runtime]
            medians[(runtime, precision)].append(statistics.median(timer(path, runs=10, warmup=2)["timings_us"]) / 1e3)
    return {key: statistics.median(values) for key, values in medians.items()}


def slug_of(ref: str, resolution: int) -> str:
    """The export folder's name for `ref` at `resolution`, without exporting (the rows' first cell)."""
    from mobiledeploy.registry import config_slug, get_spec, parse_model_ref

    arch, config = parse_model_ref(ref)
    return config_slug(arch, get_spec(arch).resolve(config), (resolution, resolution))


def done_rows(results: Path | None) -> set[tuple[str, str]]:
    """(slug, core) pairs whose rows `results` already holds (all of that core's runtimes)."""
    if results is None or not results.exists():
        return set()
    seen: dict[tuple[str, str], set[str]] = {}
    for line in results.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and cells[1] in CORES:
            seen.setdefault((cells[0], cells[1]), set()).add(cells[2])
    return {key for key, runtimes in seen.items() if runtimes >= set(PAIRS)}


def rows(ref: str, resolution: int, out: Path, rounds: int, cores: tuple[str, ...],
         pairs: dict[str, dict[str, str]] = PAIRS) -> Iterator[str]:
    """Markdown rows of one model, core by core (each yielded as soon as its counts are in)."""
    res = export(ref, resolution, out, pairs)
    files = {(rt, precision): res.artifact(key) for rt, table in pairs.items() for precision, key in table.items()}
    ms = host_ms(files, rounds)
    parity = res.manifest.parity
    entry = res.manifest.artifacts
    for cpu in cores:
        counts = {key: count(key[0], path, cpu) for key, path in files.items()}
        yield "\n".join(_line(res.manifest.slug, cpu, runtime, table, counts, ms, entry, parity)
                         for runtime, table in pairs.items())


def _line(slug: str, cpu: str, runtime: str, table: dict[str, str], counts: dict, ms: dict, entry: dict,
          parity: dict) -> str:
    """One markdown row; '—' where the runtime has no such file (ONNX Runtime: no int8 model)."""
    has_int8 = "int8" in table
    fp32 = counts[(runtime, "fp32")]
    int8 = counts[(runtime, "int8")] if has_int8 else None
    cells = [slug, cpu, runtime, f"{fp32 / 1e6:.3f}M", f"{int8 / 1e6:.3f}M" if int8 else "—",
             f"{int8 / fp32:.2f}" if int8 else "—",
             f"{ms[(runtime, 'fp32')]:.2f} / " + (f"{ms[(runtime, 'int8')]:.2f}" if has_int8 else "—"),
             f"{entry[table['fp32']].bytes / 1e6:.2f} / " + (f"{entry[table['int8']].bytes / 1e6:.2f}" if has_int8 else "—"),
             " / ".join(str(_partitions(entry[table[f]])) if f in table else "—"
                        for f in ("fp32", "int8")),
             f"{parity[table['fp32']]['max_rel']:.1e} / " + (f"{parity[table['int8']]['cosine']:.4f}" if has_int8 else "—")]
    return "| " + " | ".join(cells) + " |"


def _partitions(entry: Any) -> Any:
    return entry.delegation.partitions if entry.delegation and entry.delegation.partitions is not None else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--quick", action="store_true", help="ShuffleNet v1 0.5x g=3 at 64x64 only")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("artifacts"))
    parser.add_argument("--precisions", default="fp32,int8", help="fp32,int8 (default) or fp32 (no int8 export)")
    parser.add_argument("--results", type=Path, default=None,
                        help="append rows here as they finish; rows it already holds are skipped (resume)")
    args = parser.parse_args()
    models, resolution = (QUICK, 64) if args.quick else (args.models or QUICK, args.resolution)
    done = done_rows(args.results)
    if args.results is None or not args.results.exists():
        _emit(args.results, provenance(models, resolution, args.precisions, args.rounds) + "\n\n" + HEADER)
    for ref in models:
        cores = tuple(cpu for cpu in CORES if (slug_of(ref, resolution), cpu) not in done)
        if cores:
            for block in rows(ref, resolution, args.out.resolve(), args.rounds, cores,
                              pairs_for(tuple(args.precisions.split(",")))):
                _emit(args.results, block)


HEADER = ("| model | core | runtime | fp32 instr | int8 instr | int8/fp32 | host ms fp32 / int8 | MB fp32 / int8 | "
          "XNNPACK partitions fp32 / int8 | parity: fp32 max rel / int8 cosine |\n"
          "|---|---|---|---:|---:|---:|---:|---:|---|---|")


def provenance(models: list[str], resolution: int, precisions: str, rounds: int) -> str:
    """The line that says how and when the rows were measured (a resumed run appends its rows below it)."""
    import subprocess
    import time

    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    return (f"Rows by `python benchmarks/bench_executorch.py --resolution {resolution} --rounds {rounds} --precisions {precisions} "
            f"--models {' '.join(models)}` on commit {commit or 'unknown'} ({time.strftime('%Y-%m-%d')}), "
            "a (model, core) block at a time; seeded weights, synthetic calibration.")


def _emit(results: Path | None, text: str) -> None:
    """Print `text` and append it to `results` (flushed: a stopped run keeps every finished row)."""
    print(text, flush=True)
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_executorch"))
