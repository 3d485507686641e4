"""The int8 fixes side by side: host latency of .tflite files (LiteRT with XNNPACK, one thread, round-robin rounds in
one process, medians of per-round medians and each file's ratio to the first), and with `--digits` the whole
trade-off on a trained model: top-1 on labelled images, exact Arm instructions and host latency of TFLite fp32,
full-integer int8, int8 with `--float-layers auto` and int16x8 (16-bit activations), for the digits model of
benchmarks/digits.py and its fragile twin (`make_fragile`: same fp32 function, one channel of outliers).

    python -m benchmarks.bench_float_layers int8.tflite int8_float.tflite [--rounds 15 --runs 50]
    python -m benchmarks.bench_float_layers --digits OUT [--cpus cortex-a76,cortex-a53] [--quick] [--json FILE]

`--digits` trains the model into OUT/digits once (reused after), exports under OUT/artifacts; `--quick`: the
fragile model only, fewer latency rounds. Arm counts need `make arm`; without it those columns say so.
"""

from __future__ import annotations

import argparse
import sys
import json
import statistics
import time
from pathlib import Path
from typing import Any

VARIANTS = ("fp32", "int8", "int8 --float-layers auto", "int16x8")


def host_latency_us(files: list[Path], rounds: int, runs: int) -> list[list[float]]:
    """Per file, the median latency (µs) of each round; files interleaved, the order reversed every other round."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for path in files:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
        interpreters.append(interpreter)
    medians: list[list[float]] = [[] for _ in interpreters]
    for r in range(rounds):
        order = range(len(interpreters)) if r % 2 == 0 else reversed(range(len(interpreters)))
        for i in order:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                interpreters[i].invoke()
                times.append((time.perf_counter() - start) * 1e6)
            medians[i].append(statistics.median(times))
    return medians


def _trained(out: Path) -> Any:
    from benchmarks.digits import DigitsModel, train_digits

    folder = out / "digits"
    if (folder / "weights.pt").is_file():
        return DigitsModel(folder / "weights.pt", folder / "train", folder / "test")
    return train_digits(folder)


def _variants(trained: Any, weights: Path, out: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """The four files of one model (two exports: plain with int16x8, and --float-layers auto) and their parity."""
    from mobiledeploy.converters import export_model

    options = dict(resolution=trained.resolution, out_dir=out / "artifacts", weights=str(weights),
                   calibration=str(trained.train_dir), calib_samples=64, int8_cosine_floor=0.0)
    plain = export_model(trained.arch, trained.config, formats="int8,int16x8", **options)
    fixed = export_model(trained.arch, trained.config, float_layers="auto", **options)
    files = {"fp32": plain.artifact("fp32"), "int8": plain.artifact("int8"),
             "int8 --float-layers auto": fixed.artifact("int8"), "int16x8": plain.artifact("int16x8")}
    parity = {"int8": plain.manifest.parity["int8"], "int8 --float-layers auto": fixed.manifest.parity["int8"],
              "int16x8": plain.manifest.parity["int16x8"],
              "float_layers": fixed.manifest.artifacts["int8"].float_layers["layers"],
              "delegation": {k: plain.manifest.artifacts[k].delegation.delegated_nodes
                             for k in ("fp32", "int8", "int16x8")}}
    return files, parity


def _arm_instructions(files: dict[str, Path], cpus: list[str]) -> dict[str, dict[str, int | None]]:
    """Exact instructions per inference of each file on each emulated core (one counted run: counts repeat)."""
    from mobiledeploy.errors import MobiledeployError
    from mobiledeploy.qemu.env import environment
    from mobiledeploy.qemu.run import run_guest

    try:
        env = environment()
    except MobiledeployError as exc:
        print(f"bench_float_layers: no Arm counts: {exc}")
        return {name: {cpu: None for cpu in cpus} for name in files}
    return {name: {cpu: min(run_guest(env, cpu, path, runs=1, warmup=1).counts.runs) for cpu in cpus}
            for name, path in files.items()}


def _top1(files: dict[str, Path], test_dir: Path, mean: Any, std: Any) -> dict[str, dict[str, Any]]:
    from benchmarks.digits import load_folder
    from mobiledeploy.accuracy import tflite_logits
    from mobiledeploy.proportions import wilson_interval

    x, y = load_folder(test_dir, mean, std)
    result = {}
    for name, path in files.items():
        correct = int((tflite_logits(path, x, lambda n: None)[0].argmax(1) == y).sum())
        low, high = wilson_interval(correct, len(y), 0.95)
        result[name] = {"correct": correct, "n": len(y), "top1": correct / len(y), "low": low, "high": high}
    return result


def digits_tradeoff(out: Path, cpus: list[str], quick: bool, rounds: int, runs: int) -> list[dict[str, Any]]:
    from benchmarks.digits import make_fragile
    from mobiledeploy.registry import get_spec

    trained = _trained(out)
    spec = get_spec(trained.arch)
    models = {"fragile": make_fragile(trained.weights, out / "fragile.pt")}
    if not quick:
        models = {"trained": trained.weights, **models}
    rows = []
    for label, weights in models.items():
        files, parity = _variants(trained, weights, out)
        top1 = _top1(files, trained.test_dir, spec.mean, spec.std)
        arm = _arm_instructions(files, cpus)
        latency = host_latency_us(list(files.values()), rounds, runs)
        for (name, path), lat in zip(files.items(), latency):
            rows.append({"model": label, "variant": name, "file": str(path), "top1_measured": top1[name],
                         "arm_instructions_counted": arm[name], "host_latency_us_measured": statistics.median(lat),
                         "host_ratio_to_fp32": statistics.median(a / b for a, b in zip(lat, latency[0])),
                         "parity_vs_fp32": parity.get(name), "xnnpack_nodes": parity["delegation"].get(name),
                         "float_layers": parity["float_layers"] if "float" in name else None})
    return rows


def markdown(rows: list[dict[str, Any]], cpus: list[str]) -> str:
    head = ["model", "variant", "top-1 (95% Wilson), measured", "SQNR vs fp32"] + [f"{c} instr, counted" for c in cpus] + [
        "host median, measured", "vs fp32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t, p = r["top1_measured"], r["parity_vs_fp32"]
        counts = [f"{n / 1e6:.3f}M" if n else "—" for n in r["arm_instructions_counted"].values()]
        lines.append("| " + " | ".join([r["model"], r["variant"], f"{t['top1']:.2%} [{t['low']:.1%}, {t['high']:.1%}]",
                                        f"{p['sqnr_db']:.1f} dB" if p else "—", *counts,
                                        f"{r['host_latency_us_measured']:.1f} us", f"{r['host_ratio_to_fp32']:.2f}x"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--digits", type=Path, help="the trained-model trade-off, working in this folder")
    parser.add_argument("--cpus", default="cortex-a76", help="emulated cores for the instruction counts (--digits)")
    parser.add_argument("--quick", action="store_true", help="--digits: the fragile model only, 5 latency rounds")
    parser.add_argument("--json", type=Path, help="--digits: also write the rows here")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if args.digits:
        cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
        rows = digits_tradeoff(args.digits, cpus, args.quick, 5 if args.quick else args.rounds, args.runs)
        print(markdown(rows, cpus))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    medians = host_latency_us(args.files, args.rounds, args.runs)
    base = medians[0]
    for path, m in zip(args.files, medians):
        ratio = statistics.median(a / b for a, b in zip(m, base))
        print(f"{path.name}: median {statistics.median(m):.1f} us (measured), {ratio:.2f}x the first file")


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_float_layers"))
