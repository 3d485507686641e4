"""Export every zoo classifier to ONNX, TFLite fp32 and int8, check parity, and time it on this host.

For each model: `export_model(..., formats=("onnx", "fp32", "int8"))`, then a short local bench
of both TFLite files (the LiteRT interpreter `mobiledeploy bench --device local` uses), and one
table row: MACs at the resolution, ONNX / fp32 parity (max error relative to the output range),
int8 cosine vs fp32, builtin-only ops, fp32 and int8 median latency, status. Failures are caught
per model; the exit code is 1 when any model failed.

    python benchmarks/bench_zoo.py [--resolution 96] [--models 'mobilenet*,xception:scale=0.25']
                                   [--widths default|small|both] [--out DIR] [--runs 10] [--json]

`--models` takes a comma list of shell patterns (matched against names and aliases) or model
refs with options ('shufflenet_v2:se=2'); default: every classifier (the guideline micro-benchmark
family is left out). `--widths small` uses each model's smallest width option (alpha / scale)
where it has one; `both` runs the default config and the small one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WIDTH_KEYS = ("alpha", "scale")


def classifiers() -> list[str]:
    from mobiledeploy.registry import get_spec, list_models

    return [n for n in list_models() if get_spec(n).family != "microbench"]


def small_config(name: str) -> dict[str, Any] | None:
    """The smallest width option of `name`, or None when it has none."""
    from mobiledeploy.registry import get_spec

    spec = get_spec(name)
    for key in WIDTH_KEYS:
        if key in spec.choices:
            smallest = min(spec.choices[key])
            return {key: smallest} if smallest != spec.defaults.get(key) else None
    return None


def select(models: str | None, widths: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, config) entries in order, without duplicates."""
    from mobiledeploy.errors import ConfigError
    from mobiledeploy.registry import canonical_name, get_spec, list_models, parse_model_ref

    zoo = classifiers()
    entries: list[tuple[str, dict[str, Any]]] = []
    names: list[str] = []
    for item in filter(None, (s.strip() for s in (models or "*").split(","))):
        if ":" in item:  # an explicit ref keeps its config
            name, config = parse_model_ref(item)
            get_spec(name).resolve(config)  # an invalid config is a usage error, before any export
            entries.append((name, config))
            continue
        matched = [n for n in list_models(item) if n in zoo]
        if not matched and not any(ch in item for ch in "*?["):
            matched = [canonical_name(item)]
        if not matched:
            raise ConfigError(f"{item!r} matches no classifier")
        names.extend(n for n in matched if n not in names)
    for name in names:
        small = small_config(name)
        if widths in ("default", "both") or small is None:
            entries.append((name, {}))
        if widths in ("small", "both") and small is not None:
            entries.append((name, small))
    seen, unique = set(), []
    for name, config in entries:
        key = (name, json.dumps(config, sort_keys=True))
        if key not in seen:
            seen.add(key)
            unique.append((name, config))
    return unique


def run_one(name: str, config: dict[str, Any], resolution: int, out: Path, runs: int, threads: int) -> dict[str, Any]:
    from mobiledeploy.analysis import analyse
    from mobiledeploy.bench import BenchOptions, BenchTarget
    from mobiledeploy.converters import export_model
    from mobiledeploy.converters.parity import FP32_TOLERANCE, INT8_COSINE_FLOOR
    from mobiledeploy.devices.local import LocalDevice
    from mobiledeploy.models.common import count_depthwise_convs
    from mobiledeploy.registry import build_model, config_slug, get_spec

    spec = get_spec(name)
    row: dict[str, Any] = {"model": config_slug(name, config, (resolution, resolution)), "arch": name, "config": config,
                           "resolution": resolution, "status": "ok", "problems": []}
    started = time.perf_counter()
    try:
        # The int8 floor is judged here, not inside export_model (floor 0 there), so a model under
        # the floor still gets its figures and its bench in the table; it is still reported failed.
        res = export_model(name, config, resolution=resolution, out_dir=out, formats=("onnx", "fp32", "int8"),
                           int8_cosine_floor=0.0, force=True)
    except Exception as exc:  # one model's failure must not stop the others
        row["status"] = "failed"
        row["problems"].append(f"export: {type(exc).__name__}: {' '.join(str(exc).split())}")
        row["export_s"] = round(time.perf_counter() - started, 1)
        try:
            row["macs"] = analyse(spec.name, resolution, **config).macs
        except Exception:
            row["macs"] = None
        return row
    row["export_s"] = round(time.perf_counter() - started, 1)
    manifest = res.manifest
    parity = manifest.parity
    row["macs"] = manifest.macs
    row["onnx_max_rel"] = parity["onnx"]["max_rel"]
    row["fp32_max_rel"] = parity["fp32"]["max_rel"]
    row["int8_cosine"] = parity["int8"]["cosine"]
    row["int8_cosine_min"] = parity["int8"]["cosine_min"]
    row["int8_top1"] = parity["int8"]["top1_agreement"]
    row["int8_sqnr_db"] = parity["int8"]["sqnr_db"]
    ops = {fmt: manifest.artifacts[fmt].op_counts for fmt in ("fp32", "int8")}
    custom = sorted({op for counts in ops.values() for op in counts if op.startswith("CUSTOM") or "FLEX" in op.upper()})
    row["builtin_only"] = not custom
    row["ops_int8"] = ops["int8"]
    if custom:
        row["problems"].append(f"non-builtin ops: {', '.join(custom)}")
    depthwise = count_depthwise_convs(build_model(name, **config))
    for fmt, counts in ops.items():
        if counts.get("DEPTHWISE_CONV_2D", 0) != depthwise:
            row["problems"].append(f"{fmt}: {counts.get('DEPTHWISE_CONV_2D', 0)} DEPTHWISE_CONV_2D for {depthwise} depthwise convs")
    for fmt in ("onnx", "fp32"):
        if not parity[fmt]["passed"] or parity[fmt]["max_rel"] > FP32_TOLERANCE:
            row["problems"].append(f"{fmt} parity max_rel {parity[fmt]['max_rel']:.2g} > {FP32_TOLERANCE}")
    if not row["int8_cosine"] >= INT8_COSINE_FLOOR:
        row["problems"].append(f"int8 cosine {row['int8_cosine']:.4f} < floor {INT8_COSINE_FLOOR}")

    device = LocalDevice()
    options = BenchOptions(threads=threads, runs=runs, warmup=2).validate()
    for fmt in ("fp32", "int8"):
        entry = manifest.artifacts[fmt]
        target = BenchTarget(name=manifest.slug, artifact=res.artifact(fmt), precision=fmt, sha256=entry.sha256,
                             macs=row["macs"], config={"arch": name, **manifest.config},
                             resolution=tuple(manifest.resolution))
        result = device.run(target, options)
        if result.ok:
            row[f"{fmt}_ms"] = result.median_ms
        else:
            row[f"{fmt}_ms"] = None
            row["problems"].append(f"bench {fmt}: {result.error}")
    if row["problems"]:
        row["status"] = "failed"
    return row


def _fmt(value: Any, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]], resolution: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"zoo at {resolution}x{resolution}: ONNX → TFLite fp32 / int8, local LiteRT bench")
    for column, justify in (("model", "left"), ("MMACs", "right"), ("onnx rel", "right"), ("fp32 rel", "right"),
                            ("int8 cos", "right"), ("builtin", "center"), ("fp32 ms", "right"), ("int8 ms", "right"),
                            ("export s", "right"), ("status", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        builtin = row.get("builtin_only")
        status = "[green]ok[/green]" if row["status"] == "ok" else "[red]FAILED[/red] " + "; ".join(row["problems"])
        table.add_row(
            row["model"],
            _fmt(row["macs"] / 1e6 if row.get("macs") is not None else None, ".1f"),
            _fmt(row.get("onnx_max_rel"), ".1e"),
            _fmt(row.get("fp32_max_rel"), ".1e"),
            _fmt(row.get("int8_cosine"), ".4f"),
            "-" if builtin is None else ("yes" if builtin else "[red]no[/red]"),
            _fmt(row.get("fp32_ms"), ".2f"),
            _fmt(row.get("int8_ms"), ".2f"),
            _fmt(row.get("export_s"), ".0f"),
            status,
        )
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Example: python benchmarks/bench_zoo.py --models 'mobilenet*,xception:scale=0.5' --json")
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--models", help="comma list of patterns or refs (name:key=value,...); default: every classifier")
    parser.add_argument("--widths", choices=("default", "small", "both"), default="default",
                        help="default config, the smallest width option, or both")
    parser.add_argument("--out", type=Path, help="artifact directory (default: a temporary one, removed at the end)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per TFLite file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)

    from mobiledeploy.errors import ConfigError

    try:
        entries = select(args.models, args.widths)
    except ConfigError as exc:
        parser.exit(2, f"bench_zoo: --models: {exc}\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as tmp:
        out = args.out or Path(tmp)
        for i, (name, config) in enumerate(entries, 1):
            label = name + (":" + ",".join(f"{k}={v}" for k, v in config.items()) if config else "")
            print(f"[{i}/{len(entries)}] {label} ...", file=sys.stderr, flush=True)
            row = run_one(name, config, args.resolution, out, args.runs, args.threads)
            print(f"    {row['status']} in {row['export_s']} s" + (f": {'; '.join(row['problems'])}" if row["problems"] else ""),
                  file=sys.stderr, flush=True)
            rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows, args.resolution)
    failed = [r["model"] for r in rows if r["status"] != "ok"]
    if failed:
        print(f"{len(failed)} of {len(rows)} failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_zoo"))
