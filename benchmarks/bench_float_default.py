"""int8 with every LayerNorm in float (the export's default since pipeline 9) against full-integer int8, side by side,
and what keeping GELU or SOFTMAX in float as well would add: the evidence for the default rule.

    python benchmarks/bench_float_default.py [--quick] [--models "mobilevit_xxs@128;levit_128s@224"] [--json FILE]
        [--count cortex-a76]

Per model (seeded weights, re-parameterised where it can be, as `bench_modern.py` exports it): one export with
`--float-layers none` (the fp32 file and the full-integer int8 file, no cosine floor, no Arm check), then the int8
file quantised again from the same fp32 file and the same 32 synthetic calibration inputs, as the export does
(`tflite.tflite_int8(..., float_readers=False)`), with in float:

- `default`: every LayerNorm's ops (`converters/layernorm.py`), what `export` now makes;
- `+gelu`, `+softmax`, `+gelu+softmax`: the default plus every GELU / SOFTMAX op.

Printed per variant: the cosine of the int8 logits against fp32 on the export's 8 held-out inputs (measured,
`parity.int8_parity`), the XNNPACK partitions on the host (counted, `delegation.host_delegation`), the ops left to
TFLite's kernels, and the ops kept in float. `--quick`: MobileViT-XXS at 128 and LeViT-128S at 224.

`--count CPU` (e.g. `cortex-a76`; needs `mobiledeploy qemu setup`) adds a second table: the exact Arm instructions
of one inference (the second invoke, after the first) of the fp32 file and of the int8 variants full-integer,
`default` and `+gelu`, each run by the aarch64 LiteRT with XNNPACK under QEMU on that emulated core, fed the first
held-out input (as the export's Arm check runs it, `converters/arm_check.py`), and the XNNPACK partitions that run
made. Counted instructions on an emulated core, not time: no caches, no pipeline, no phone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FULL = "mobilevit_xxs@128;edgenext_xx_small@128;levit_128s@224;efficientvit_m0@224;fastvit_t8@128"
QUICK = "mobilevit_xxs@128;levit_128s@224"
VARIANTS = ("full-integer", "default", "+gelu", "+softmax", "+gelu+softmax")
COUNTED = ("fp32", "full-integer", "default", "+gelu")  # the files `--count` runs on the emulated core


def _ops_of(fp32: bytes, kind: str) -> list[str]:
    """The full output tensor names of every `kind` op (GELU, SOFTMAX) in the fp32 flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(fp32, 0)
    graph = model.subgraphs[0]
    code = getattr(schema.BuiltinOperator, kind)
    return [graph.tensors[int(o)].name.decode() for op in graph.operators for o in op.outputs
            if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                   model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code]


def _variant(fp32_path: Path, int8_path: Path, calibration: Any, names: list[str]) -> None:
    from mobiledeploy.converters.tflite import tflite_int8

    tflite_int8(None, int8_path, calibration, fp32_path=fp32_path, float_layers=names, float_readers=False)


def _measure(path: Path, fp32_out: Any, holdout: Any) -> dict[str, Any]:
    from mobiledeploy.converters.delegation import host_delegation
    from mobiledeploy.converters.parity import int8_parity, tflite_outputs

    parity = int8_parity(fp32_out, tflite_outputs(path, holdout), 0.0)
    found = host_delegation(path)
    return {"cosine": round(parity["cosine"], 4), "partitions": found["partitions"], "left": found["not_delegated"]}


def _count(arm: tuple[Any, str], path: Path, sample: Any) -> dict[str, Any]:
    """{"instructions": exact instructions of one inference, "partitions": XNNPACK's on Arm} of `path` on the
    emulated core `arm` = (environment, cpu), fed `sample` (NCHW float) as the export's Arm check feeds it."""
    from mobiledeploy.converters.delegation import explain
    from mobiledeploy.converters.parity import feed_tensor
    from mobiledeploy.qemu.run import run_guest
    from mobiledeploy.runtimes.litert import input_details

    env, cpu = arm
    feed = feed_tensor(input_details(path)[0], sample)
    guest = run_guest(env, cpu, path, runs=1, warmup=0, inputs=[feed])
    return {"instructions": guest.counts.runs[0], "partitions": explain(guest.delegation)["partitions"]}


def model_rows(name: str, size: int, out: Path, arm: tuple[Any, str] | None = None) -> list[dict[str, Any]]:
    """One row per variant of one model (or one row saying why it did not export); with `arm` = (environment,
    cpu), the counted files' `arm` figures (`_count`) too, fp32's in every row's `fp32_arm`."""
    from mobiledeploy.converters import export_model
    from mobiledeploy.converters.calibration import calibration_set
    from mobiledeploy.converters.layernorm import layernorm_outputs
    from mobiledeploy.converters.parity import tflite_outputs
    from mobiledeploy.registry import get_spec

    from benchmarks.bench_modern import _has_deploy_form

    rep = _has_deploy_form(name, {})
    try:
        res = export_model(name, {}, resolution=size, out_dir=out, formats="int8", float_layers="none",
                           int8_cosine_floor=0.0, reparameterize=rep)
    except Exception as exc:  # a model that does not export at this size is a result too
        return [{"model": name, "resolution": size, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}]
    spec = get_spec(name)
    inputs = calibration_set("synthetic", 32, (size, size), spec.mean, spec.std, 0)
    fp32_path, int8_path = res.artifact("fp32"), res.artifact("int8")
    fp32 = fp32_path.read_bytes()
    fp32_out = tflite_outputs(fp32_path, inputs.holdout)
    norms = [n for norm in layernorm_outputs(fp32) for n in norm]
    extra = {"default": [], "+gelu": _ops_of(fp32, "GELU"), "+softmax": _ops_of(fp32, "SOFTMAX")}
    extra["+gelu+softmax"] = extra["+gelu"] + extra["+softmax"]
    rows = [{"variant": "full-integer", "float_ops": 0, **_measure(int8_path, fp32_out, inputs.holdout)}]
    paths = {"fp32": fp32_path, "full-integer": int8_path}
    for variant in VARIANTS[1:]:
        names = norms + extra[variant]
        if variant != "default" and not all(extra[part] for part in variant.replace("+", " +").split()):
            continue  # a model without GELU (or SOFTMAX): the same file as a row before it
        path = out / f"{name}-{variant.strip('+').replace('+', '-')}.tflite"
        _variant(fp32_path, path, inputs.calibration, names)
        rows.append({"variant": variant, "float_ops": len(names), **_measure(path, fp32_out, inputs.holdout)})
        paths[variant] = path
    if arm is not None:
        counted = {v: _count(arm, paths[v], inputs.holdout[0]) for v in COUNTED if v in paths}
        for row in rows:
            row["fp32_arm"] = counted["fp32"]
            if row["variant"] in counted:
                row["arm"] = counted[row["variant"]]
    label = name + (" (reparameterized)" if rep else "")
    return [{"model": label, "resolution": size, "layernorms": len(layernorm_outputs(fp32)), **row} for row in rows]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | input | LayerNorms | int8 variant | ops in float | cosine vs fp32 | XNNPACK partitions | ops left to TFLite |",
             "|---|---:|---:|---|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['resolution']} | — | does not export: {r['error']} | | | | |")
            continue
        left = ", ".join(f"{op}×{n}" for op, n in r["left"].items()) or "—"
        lines.append(f"| {r['model']} | {r['resolution']} | {r['layernorms']} | {r['variant']} | {r['float_ops']} | "
                     f"{r['cosine']:.4f} | {r['partitions']} | {left} |")
    return "\n".join(lines)


def count_table(rows: list[dict[str, Any]], cpu: str) -> str:
    """The counted rows: per model the fp32 file, then each counted int8 variant, against full-integer int8."""
    lines = [f"| model | input | file | {cpu} instructions per inference (counted) | vs full-integer int8 | "
             "XNNPACK partitions on Arm |", "|---|---:|---|---:|---:|---:|"]
    for model in dict.fromkeys(r["model"] for r in rows if "arm" in r):
        mine = [r for r in rows if r["model"] == model and "arm" in r]
        base = next(r["arm"]["instructions"] for r in mine if r["variant"] == "full-integer")
        shown = [("fp32", mine[0]["fp32_arm"])] + [(f"int8 {r['variant']}", r["arm"]) for r in mine]
        for label, arm in shown:
            lines.append(f"| {model} | {mine[0]['resolution']} | {label} | {arm['instructions']:,} | "
                         f"{arm['instructions'] / base:.3f}× | {arm['partitions']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),  # the first paragraph
                                     epilog="Example: python -m benchmarks.bench_float_default --quick")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    parser.add_argument("--models", help="semicolon list of NAME@RESOLUTION")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--count", metavar="CPU", help="also count each file's Arm instructions on this emulated "
                        "core (e.g. cortex-a76; needs `mobiledeploy qemu setup`)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOBILEDEPLOY_ARM_CHECK", "off")  # the export's own Arm check: `--count` runs its own
    arm = None
    if args.count:
        from mobiledeploy.devices import check_device
        from mobiledeploy.devices.kinds import device_uri
        from mobiledeploy.qemu.env import environment

        check_device(device_uri("qemu", args.count))  # a wrong core is one line now, not after the first export
        arm = (environment(), args.count)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_float_default-") as tmp:
        for item in (args.models or (QUICK if args.quick else FULL)).split(";"):
            name, _, size = item.partition("@")
            rows += model_rows(name, int(size or 224), Path(tmp), arm)
            print(f"bench_float_default: {item} done", file=sys.stderr, flush=True)
    print(table(rows))
    if arm is not None:
        print("\n" + count_table(rows, args.count))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_float_default"))
