"""TFLite (LiteRT + XNNPACK) against its peers on the same model, side by side in one process, plus exact Arm counts.

For each model (exported once by `export_model`, reused): on the host, 1 thread, in this one process,
- TFLite fp32 and int8 (the export's .tflite files, LiteRT's default XNNPACK delegate),
- ONNX Runtime fp32 (the export's model.onnx, CPU provider, every graph optimisation),
- ONNX Runtime int8 (static QDQ, per-channel int8 weights, int8 activations, calibrated on the export's
  own calibration inputs with `onnxruntime.quantization`; `--no-ort-int8` skips it),
- torch fp32 (the export's model.pt, eager, inference mode),
are timed in round-robin rounds: each round runs every runtime `--per-round` times back to back, so load
on a shared machine falls on all of them alike. Per runtime the median of its per-round medians; a ratio
is the median of the per-round ratios with its bootstrap interval (`mobiledeploy.stats.paired_ratio_ci`).
Speeds are relative to ONNX Runtime fp32 (>1: faster than it). Then both .tflite files run on each
emulated Arm core (`--cpus`, default cortex-a53 and cortex-a76) under QEMU with the counting plugin:
exact instructions per inference, which no load changes.

    python benchmarks/bench_peers.py [--models 'v1:g=3,scale=1.0;mobilenet_v2'] [--rounds 15] [--per-round 10]
                                     [--cpus cortex-a53,cortex-a76 | --cpus none] [--no-ort-int8] [--no-torch]
                                     [--pin CPU] [--out artifacts] [--markdown FILE] [--json]

The Arm part needs `mobiledeploy qemu setup` (make arm); without it the Arm columns say so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

DEFAULT_MODELS = "v1:g=3,scale=0.5;v1:g=3,scale=1.0;shufflenet_v2:scale=1.0;mobilenet_v1:alpha=1.0;mobilenet_v2:alpha=1.0"
RUNTIMES = ("tflite_fp32", "tflite_int8", "ort_fp32", "ort_int8", "torch_fp32")


# --- one invoke() per runtime, inputs bound once ------------------------------------------------------

def tflite_invoke(path: Path, x_nchw: Any) -> Callable[[], Any]:
    """LiteRT on 1 thread with its default delegate (XNNPACK), fed the NHWC input (quantised for int8)."""
    from ai_edge_litert.interpreter import Interpreter

    from mobiledeploy.converters.parity import feed_tensor

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], feed_tensor(detail, x_nchw[0]))  # NCHW sample → NHWC batch
    return interpreter.invoke


def ort_invoke(path: Path, x_nchw: Any) -> Callable[[], Any]:
    """ONNX Runtime on the calling thread only (1 intra-op thread, sequential), every graph optimisation:
    the session the toolkit's onnxruntime runtime times."""
    from mobiledeploy.runtimes.onnxruntime import onnx_session

    session = onnx_session(path, threads=1)
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, x_nchw)
    for output in session.get_outputs():
        binding.bind_output(output.name)
    return lambda: session.run_with_iobinding(binding)


def torch_invoke(folder: Path, arch: str, config: dict[str, Any], x_nchw: Any) -> Callable[[], Any]:
    """The exported weights (model.pt) in eager torch, 1 thread, inference mode."""
    import torch

    from mobiledeploy.registry import build_model

    torch.set_num_threads(1)
    model = build_model(arch, seed=None, **config)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu"))
    model.eval()
    x = torch.from_numpy(x_nchw)

    def invoke() -> Any:
        with torch.inference_mode():
            return model(x)

    return invoke


def ort_int8_model(onnx_path: Path, calibration_nchw: Any, out: Path) -> Path:
    """model.onnx quantised static QDQ: per-channel int8 weights, int8 activations (MinMax over the calibration)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.samples = iter(calibration_nchw)

        def get_next(self) -> dict[str, Any] | None:
            sample = next(self.samples, None)
            return None if sample is None else {"input": sample[None]}

    prepared = out.with_name(out.stem + "_prep.onnx")
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out


# --- interleaved timing ------------------------------------------------------------------------------------

def interleaved(invokes: dict[str, Callable[[], Any]], rounds: int, per_round: int, warmup: int = 5) -> dict[str, list[float]]:
    """Per runtime, the median latency (us) of each round; every round runs every runtime `per_round` times."""
    from mobiledeploy.runtimes.litert import timed_loop
    from mobiledeploy.stats import median

    for invoke in invokes.values():
        for _ in range(warmup):
            invoke()
    medians: dict[str, list[float]] = {name: [] for name in invokes}
    for _ in range(rounds):
        for name, invoke in invokes.items():
            medians[name].append(median(timed_loop(invoke, per_round, 0.0)) / 1e3)
    return medians


def ratios(medians: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """Speed relative to ONNX Runtime fp32 (t_ort / t_x per round: >1 is faster), and TFLite's int8 over its fp32
    latency; each the median of per-round ratios with its 95% bootstrap interval."""
    from mobiledeploy.stats import paired_ratio_ci

    out = {f"{name}_speed_vs_ort_fp32": paired_ratio_ci(medians["ort_fp32"], medians[name])
           for name in medians if name != "ort_fp32" and "ort_fp32" in medians}
    if "tflite_int8" in medians:
        out["tflite_int8_over_fp32_time"] = paired_ratio_ci(medians["tflite_int8"], medians["tflite_fp32"])
    return out


# --- exact Arm counts ---------------------------------------------------------------------------------------

def arm_counts(files: dict[str, Path], cpus: list[str]) -> dict[str, Any]:
    """Instructions per inference of each .tflite on each emulated core, and its XNNPACK partitions."""
    from mobiledeploy.qemu.env import environment
    from mobiledeploy.qemu.run import run_guest

    env = environment()
    counts: dict[str, Any] = {}
    for cpu in cpus:
        for fmt, path in files.items():
            run = run_guest(env, cpu, path, runs=1, warmup=1)
            counts[f"{cpu}_{fmt}"] = min(run.counts.runs)
            counts[f"{cpu}_{fmt}_partitions"] = run.delegation.get("partitions")
        counts[f"{cpu}_int8_over_fp32"] = counts[f"{cpu}_int8"] / counts[f"{cpu}_fp32"]
    return counts


def measure(ref: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np

    from mobiledeploy.converters import export_model
    from mobiledeploy.converters.calibration import calibration_set
    from mobiledeploy.registry import get_spec, parse_model_ref

    arch, config = parse_model_ref(ref)
    resolution = int(config.pop("resolution", args.resolution))
    exported = export_model(arch, config, resolution=resolution, out_dir=args.out)
    manifest, folder = exported.manifest, exported.path
    files = {fmt: folder / manifest.file(fmt) for fmt in ("onnx", "fp32", "int8")}
    spec = get_spec(arch)
    inputs = calibration_set("synthetic", manifest.request["calib_samples"], (resolution, resolution), spec.mean,
                             spec.std, manifest.request["seed"])
    x = np.ascontiguousarray(inputs.holdout[:1])
    invokes = {"tflite_fp32": tflite_invoke(files["fp32"], x), "tflite_int8": tflite_invoke(files["int8"], x),
               "ort_fp32": ort_invoke(files["onnx"], x)}
    if args.ort_int8:
        quantised = ort_int8_model(files["onnx"], inputs.calibration, work / f"{manifest.slug}_qdq.onnx")
        invokes["ort_int8"] = ort_invoke(quantised, x)
    if args.torch:
        invokes["torch_fp32"] = torch_invoke(folder, arch, manifest.config, x)
    medians = interleaved(invokes, args.rounds, args.per_round)
    from mobiledeploy.stats import median

    row: dict[str, Any] = {"model": manifest.slug, "macs": manifest.macs,
                           "median_ms": {name: median(values) / 1e3 for name, values in medians.items()},
                           "ratios": ratios(medians), "rounds": args.rounds, "per_round": args.per_round}
    if args.cpus:
        try:
            row["arm"] = arm_counts({"fp32": files["fp32"], "int8": files["int8"]}, args.cpus)
        except Exception as exc:  # no emulated environment: the host figures stand alone
            row["arm_error"] = " ".join(str(exc).split())[:200]
    return row


def markdown(rows: list[dict[str, Any]], cpus: list[str]) -> str:
    host = [r for r in RUNTIMES if any(r in row["median_ms"] for row in rows)]
    head = ["model"] + [f"{r} ms" for r in host] + [f"{r} speed vs ort_fp32" for r in host if r != "ort_fp32"]
    head += ["tflite int8/fp32 time"] + [f"{c} {k}" for c in cpus for k in ("fp32 instr", "int8 instr", "int8/fp32")]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in rows:
        cells = [row["model"]] + [f"{row['median_ms'][r]:.2f}" if r in row["median_ms"] else "" for r in host]
        for r in host:
            if r != "ort_fp32":
                point, low, high = row["ratios"].get(f"{r}_speed_vs_ort_fp32", (float("nan"),) * 3)
                cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
        point, low, high = row["ratios"]["tflite_int8_over_fp32_time"]
        cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
        arm = row.get("arm", {})
        for cpu in cpus:
            if f"{cpu}_fp32" in arm:
                cells += [f"{arm[f'{cpu}_fp32'] / 1e6:.2f}M", f"{arm[f'{cpu}_int8'] / 1e6:.2f}M", f"{arm[f'{cpu}_int8_over_fp32']:.2f}"]
            else:
                cells += ["", "", row.get("arm_error", "")[:40]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="';'-separated model refs (resolution=N allowed)")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10, help="inferences per runtime per round")
    parser.add_argument("--cpus", default="cortex-a53,cortex-a76", help="emulated Arm cores, or 'none'")
    parser.add_argument("--no-ort-int8", dest="ort_int8", action="store_false")
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument("--pin", type=int, default=None, help="run this process on this one CPU")
    parser.add_argument("--out", default="artifacts", help="artifacts root (exports are reused)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from mobiledeploy.devices.qemu import parse_cpu

    args.cpus = [] if args.cpus == "none" else [parse_cpu(c) for c in args.cpus.split(",") if c.strip()]
    args.out = Path(args.out).resolve()
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as work:
        for ref in [r.strip() for r in args.models.split(";") if r.strip()]:
            start = time.perf_counter()
            rows.append(measure(ref, args, Path(work)))
            print(f"bench_peers: {ref} ({time.perf_counter() - start:.0f} s): {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
            if args.markdown:
                Path(args.markdown).write_text(markdown(rows, args.cpus))
    print(json.dumps(rows, indent=1) if args.json else markdown(rows, args.cpus))
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_peers"))
