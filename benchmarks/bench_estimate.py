"""Estimated milliseconds against published single-thread figures: the README's validation table.

Every published figure is predicted from one emulated run of this project's export (fp32, 224x224) on the
phone's `qemu_cpu` with the phone's caches simulated, llvm-mca with its `llvm_mcpu`, and the phone's clock and
bandwidth (mobiledeploy/estimate/phones.json). Each phone is calibrated on ONE model (CALIBRATE_ON, chosen
before any run: MobileNet v1 1.0, the one model every source has): its published ms sets the phone's
cycle_scale; every other row is a prediction, with its error. The uncalibrated estimate is shown too.

Published figures:
- XNNPACK README, "Performance / Mobile phones" (google/XNNPACK README.md, benchmarked 2020-03-27 with
  end2end_bench, single-threaded, Android NDK r21, randomized weights): Pixel, Pixel 2, Pixel 3a.
- Zhang et al., ShuffleNet, CVPR 2018 (arXiv:1707.01083v2) Table 8, Snapdragon 820, single thread, the
  authors' own inference code (not XNNPACK: the estimate predicts XNNPACK on that phone).

    python benchmarks/bench_estimate.py [--phones pixel,sd820] [--models mobilenet_v3_small] [--out DIR]
                                        [--markdown FILE] [--json] [--quick] [--cache DIR [--cached-only]]

`--quick` runs MobileNet v1 and v3-small on the Pixel only (two emulated runs). The cost of an estimate against a
counted run of the same artifact (same runs and warmup) is measured on the first model and printed.
`--cache DIR` keeps each row's raw estimate (keyed by the artifact's sha256), so a sweep can be resumed or split
between processes (one emulated run per row: ~4-5 min each for the 224x224 zoo on a busy 2-core host);
`--cached-only` prints the table of what the cache holds without running anything.
Needs `mobiledeploy qemu setup` and llvm-mca (make arm). Exit 1 when a model failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

XNNPACK = "XNNPACK README"
TABLE8 = "ShuffleNet Table 8"
SOURCES = {XNNPACK: "google/XNNPACK README.md, 'Performance / Mobile phones': single-threaded, end2end_bench, "
                    "2020-03-27, Android NDK r21, randomized weights",
           TABLE8: "Zhang et al., ShuffleNet (arXiv:1707.01083v2) Table 8: Snapdragon 820, single thread, the "
                   "authors' own inference code (not XNNPACK)"}
MOBILENETS = (("mobilenet_v1", "MobileNet v1 1.0"), ("mobilenet_v2", "MobileNet v2 1.0"),
              ("mobilenet_v3_large", "MobileNet v3 Large"), ("mobilenet_v3_small", "MobileNet v3 Small"))
PUBLISHED: list[dict[str, Any]] = [
    *({"phone": "pixel", "ref": r, "label": lb, "ms": ms, "source": XNNPACK}
      for (r, lb), ms in zip(MOBILENETS, (82, 49, 39, 12))),
    *({"phone": "pixel2", "ref": r, "label": lb, "ms": ms, "source": XNNPACK}
      for (r, lb), ms in zip(MOBILENETS, (86, 53, 42, 14))),
    *({"phone": "pixel3a", "ref": r, "label": lb, "ms": ms, "source": XNNPACK}
      for (r, lb), ms in zip(MOBILENETS, (88, 55, 44, 14))),
    {"phone": "sd820", "ref": "mobilenet_v1", "label": "1.0 MobileNet-224", "ms": 110, "source": TABLE8},
    {"phone": "sd820", "ref": "shufflenet_v1:g=3,scale=0.5", "label": "ShuffleNet 0.5x g=3", "ms": 15.2, "source": TABLE8},
    {"phone": "sd820", "ref": "shufflenet_v1:g=3,scale=1.0", "label": "ShuffleNet 1x g=3", "ms": 37.8, "source": TABLE8},
    {"phone": "sd820", "ref": "shufflenet_v1:g=3,scale=2.0", "label": "ShuffleNet 2x g=3", "ms": 108.8, "source": TABLE8},
    {"phone": "sd820", "ref": "alexnet", "label": "AlexNet", "ms": 184, "source": TABLE8},
]
CALIBRATE_ON = "mobilenet_v1"


def artifact(ref: str, out: Path) -> Path:
    from mobiledeploy.converters import export_model
    from mobiledeploy.registry import parse_model_ref

    name, config = parse_model_ref(ref)
    exported = export_model(name, config, resolution=(224, 224), out_dir=out)
    return Path(exported.path) / exported.manifest.file("fp32")


RAW_KEYS = ("raw_ms", "band_pct", "coverage", "instructions", "memory_share")


def cached(cache: Path | None, row: dict[str, Any], sha256: str) -> bool:
    """Fill `row` from the cache when it holds this phone, model and artifact; False otherwise."""
    path = cache / f"{row['phone']}-{row['ref'].replace(':', '_').replace(',', '_')}.json" if cache else None
    if path is None or not path.is_file():
        return False
    data = json.loads(path.read_text())
    if data.get("sha256") != sha256:
        return False
    row.update({k: data[k] for k in RAW_KEYS})
    return True


def store(cache: Path | None, row: dict[str, Any], sha256: str) -> None:
    if cache is None:
        return
    from mobiledeploy.files import write_atomic

    path = cache / f"{row['phone']}-{row['ref'].replace(':', '_').replace(',', '_')}.json"
    write_atomic(path, json.dumps({"sha256": sha256, **{k: row[k] for k in RAW_KEYS}}, indent=1))


def raw_estimates(rows: list[dict[str, Any]], out: Path, cost: dict[str, Any], cache: Path | None = None,
                  cached_only: bool = False) -> None:
    """Uncalibrated estimates into each row; one emulated run per model and (core, caches); rows already in
    `cache` (same artifact bytes) are read from it; with `cached_only` the others are left out, marked."""
    from mobiledeploy.files import sha256_file
    import dataclasses

    from mobiledeploy.estimate.phones import phone
    from mobiledeploy.estimate.run import estimate_artifact
    from mobiledeploy.estimate.timing import estimate

    runs: dict[tuple[Any, ...], Any] = {}
    for n, row in enumerate(rows, 1):
        p = dataclasses.replace(phone(row["phone"]), cycle_scale=1.0)
        key = (row["ref"], p.qemu_cpu, p.l1_kib, p.l2_kib, p.l3_kib)
        print(f"bench_estimate: [{n}/{len(rows)}] {row['ref']} on {p.name} ({p.qemu_cpu})", file=sys.stderr, flush=True)
        if cached_only and not (cache / f"{row['phone']}-{row['ref'].replace(':', '_').replace(',', '_')}.json").is_file():
            row["not_run"] = True  # not even exported: nothing of it is in the cache
            continue
        try:
            path = artifact(row["ref"], out)
            digest = sha256_file(path)
            if cached(cache, row, digest):
                continue
            if cached_only:
                row["not_run"] = True
                continue
            if key not in runs and not cost:
                runs[key] = measure_cost(path, p, cost)
            elif key not in runs:
                runs[key] = estimate_artifact(path, p)
            run = runs[key]
            e = estimate(run.records, p, run.runs)
            row.update(raw_ms=e.ms, band_pct=e.band_pct, coverage=e.coverage, instructions=e.instructions,
                       memory_share=e.memory_bound_cycles / e.core_cycles if e.core_cycles else 0.0)
            store(cache, row, digest)
        except Exception as exc:  # one model's failure is a row, the rest go on
            row["error"] = " ".join(str(exc).split())[:300]


def measure_cost(path: Path, p: Any, cost: dict[str, Any]) -> Any:
    """Wall time of a counted run and of an estimate of the same artifact (runs=1, warmup=1), in the order
    counted, estimate, estimate, counted (ABBA: a load that drifts during the four weighs both alike; one pair on
    a busy shared host gave 2.29x where ABBA right after gave 1.03x), into `cost`; returns an estimate's run."""
    from mobiledeploy.estimate.run import estimate_artifact
    from mobiledeploy.qemu.env import environment
    from mobiledeploy.qemu.run import run_guest

    seconds: dict[str, float] = {"counted": 0.0, "estimate": 0.0}
    run = None
    for what in ("counted", "estimate", "estimate", "counted"):
        start = time.perf_counter()
        if what == "counted":
            run_guest(environment(), p.qemu_cpu, path, runs=1, warmup=1)
        else:
            run = estimate_artifact(path, p)
        seconds[what] += time.perf_counter() - start
    cost.update({"model": path.parent.name, "cpu": p.qemu_cpu, "counted_s": round(seconds["counted"] / 2, 1),
                 "estimate_s": round(seconds["estimate"] / 2, 1),
                 "ratio": round(seconds["estimate"] / seconds["counted"], 2)})
    return run


def calibrate(rows: list[dict[str, Any]]) -> None:
    """Each phone's scale from its CALIBRATE_ON row; predictions and errors for the others."""
    for phone_name in dict.fromkeys(r["phone"] for r in rows):
        mine = [r for r in rows if r["phone"] == phone_name and "raw_ms" in r]
        anchor = next((r for r in mine if r["ref"] == CALIBRATE_ON), None)
        scale = anchor["ms"] / anchor["raw_ms"] if anchor else 1.0
        for r in mine:
            r["scale"] = scale
            r["estimate_ms"] = r["raw_ms"] * scale
            r["error_pct"] = 100.0 * (r["estimate_ms"] / r["ms"] - 1.0)
            r["role"] = "calibration" if r is anchor else "prediction"
            r["raw_error_pct"] = 100.0 * (r["raw_ms"] / r["ms"] - 1.0)
            # the baseline the timing model must beat: exact instructions x one rate, fitted on the same row
            rate = anchor["ms"] / anchor["instructions"] if anchor else 0.0
            r["instructions_rate_error_pct"] = 100.0 * (r["instructions"] * rate / r["ms"] - 1.0) if rate else None


def markdown(rows: list[dict[str, Any]], cost: dict[str, Any]) -> str:
    lines = ["| phone | model | published ms | estimate, uncalibrated | estimate (band) | error | instructions x one rate: error "
             "| role | source |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if r.get("not_run"):
            lines.append(f"| {r['phone']} | {r['label']} | {r['ms']} | not run (--cached-only, not in the cache) "
                         "| | | | | |")
            continue
        if "error" in r:
            lines.append(f"| {r['phone']} | {r['label']} | {r['ms']} | failed: {r['error'][:80]} | | | | | |")
            continue
        if "estimate_ms" not in r:
            continue
        fitted = r["role"] == "calibration"
        err = "(fitted)" if fitted else f"{r['error_pct']:+.1f}%"
        rate = "(fitted)" if fitted or r["instructions_rate_error_pct"] is None else f"{r['instructions_rate_error_pct']:+.1f}%"
        lines.append(f"| {r['phone']} | {r['label']} | {r['ms']} | {r['raw_ms']:.1f} ({r['raw_error_pct']:+.0f}%) | "
                     f"{r['estimate_ms']:.1f} (±{r['band_pct']:.0f}%) | {err} | {rate} | {r['role']} | {r['source']} |")
    lines += summary(rows)
    used = dict.fromkeys(r["source"] for r in rows)
    lines += [""] + [f"{key}: {SOURCES[key]}." for key in used]
    lines += table8(rows)
    if cost:
        lines.append(f"\nCost: an estimate of {cost['model']} on {cost['cpu']} took {cost['estimate_s']} s, a counted run "
                     f"{cost['counted_s']} s (means of two each, ABBA): {cost['ratio']}x.")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    preds = [r for r in rows if r.get("role") == "prediction"]
    if not preds:
        return []
    out = [""]
    for what, key in (("timing model", "error_pct"), ("instructions x one rate", "instructions_rate_error_pct")):
        errors = [abs(r[key]) for r in preds if r.get(key) is not None]
        out.append(f"{what}: {len(errors)} predictions, {sum(e <= 10.0 for e in errors)} within ±10%, largest error "
                   f"{max(errors):.1f}%, mean |error| {sum(errors) / len(errors):.1f}%.")
    return out


def table8(rows: list[dict[str, Any]]) -> list[str]:
    """The paper's Table 8 at 224: speedups over AlexNet by the paper's ms, the estimated ms, the instructions."""
    mine = {r["ref"]: r for r in rows if r["phone"] == "sd820" and "estimate_ms" in r}
    base = mine.get("alexnet")
    if base is None or len(mine) < 2:
        return []
    out = ["", "Table 8 on the Snapdragon 820 profile (speedup over AlexNet: paper ms, estimated ms, Arm instructions):",
           "", "| model | paper ms | estimated ms | paper speedup | estimated speedup | instruction ratio |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in mine.values():
        out.append(f"| {r['label']} | {r['ms']} | {r['estimate_ms']:.1f} | {base['ms'] / r['ms']:.1f}x | "
                   f"{base['estimate_ms'] / r['estimate_ms']:.1f}x | {base['instructions'] / r['instructions']:.1f}x |")
    return out


def split_refs(text: str) -> list[str]:
    """'a,b:x=1,y=2,c' → ['a', 'b:x=1,y=2', 'c'] (a key=value piece belongs to the ref before it)."""
    refs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if refs and "=" in piece and ":" not in piece:
            refs[-1] += f",{piece}"
        elif piece:
            refs.append(piece)
    return refs


RANK_PHONES = ("rpi3bplus", "pixel4")  # an A53 and an A76 profile


def rank(refs: list[str], out: Path) -> str:
    """The zoo ordered by estimated ms on an A53 and an A76 profile (uncalibrated, cycle_scale 1: a scale changes
    no order), beside the order of their exact instructions."""
    import dataclasses

    from mobiledeploy.estimate.phones import phone
    from mobiledeploy.estimate.run import estimate_artifact

    table: dict[str, dict[str, float]] = {}
    for n, ref in enumerate(refs, 1):
        for name in RANK_PHONES:
            print(f"bench_estimate: rank [{n}/{len(refs)}] {ref} on {name}", file=sys.stderr, flush=True)
            run = estimate_artifact(artifact(ref, out), dataclasses.replace(phone(name), cycle_scale=1.0))
            table.setdefault(ref, {})[name] = run.estimate.ms
            table[ref][f"{name}_instructions"] = run.estimate.instructions
    order = {key: {ref: i + 1 for i, ref in enumerate(sorted(table, key=lambda r: table[r][key]))}
             for key in (*RANK_PHONES, *(f"{p}_instructions" for p in RANK_PHONES))}
    lines = ["| model | A53 (rpi3bplus) est. ms | rank | by instructions | A76 (pixel4) est. ms | rank | by instructions |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for ref in sorted(table, key=lambda r: table[r][RANK_PHONES[1]]):
        a53, a76 = RANK_PHONES
        lines.append(f"| {ref} | {table[ref][a53]:.1f} | {order[a53][ref]} | {order[a53 + '_instructions'][ref]} | "
                     f"{table[ref][a76]:.1f} | {order[a76][ref]} | {order[a76 + '_instructions'][ref]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Example: python benchmarks/bench_estimate.py --quick")
    parser.add_argument("--phones", default=None, help="comma list of phones (default: every phone with figures)")
    parser.add_argument("--models", default=None, help="comma list of refs (the calibration model is always run)")
    parser.add_argument("--quick", action="store_true", help="MobileNet v1 and v3-small on the Pixel only")
    parser.add_argument("--out", default="artifacts", help="artifacts root (exports are reused)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cache", default=None, help="folder of per-row results: rows found there (same artifact) "
                        "are not run again; lets a long sweep be resumed or split")
    parser.add_argument("--cached-only", action="store_true", help="with --cache: the table of the rows found there "
                        "only (no emulated run; the others are listed as not run)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost measurement (counted run vs estimate)")
    parser.add_argument("--rank", default=None, help="instead: rank these comma-separated refs by estimated ms on "
                        "an A53 and an A76 profile")
    args = parser.parse_args(argv)
    if args.rank:
        print(rank(split_refs(args.rank), Path(args.out).resolve()))
        return 0
    phones = {"pixel"} if args.quick else set(filter(None, (args.phones or "").split(","))) or None
    models = {CALIBRATE_ON, "mobilenet_v3_small"} if args.quick else (
        {CALIBRATE_ON, *split_refs(args.models)} if args.models else None)
    rows = [dict(r) for r in PUBLISHED if (phones is None or r["phone"] in phones)
            and (models is None or r["ref"] in models)]
    if not rows:
        print("bench_estimate: error: no published figure matches --phones/--models", file=sys.stderr)
        return 2
    cache = Path(args.cache).resolve() if args.cache else None
    cost: dict[str, Any] = {"skipped": True} if args.no_cost else {}
    if cache is not None and not cost and (cache / "cost.json").is_file():
        cost.update(json.loads((cache / "cost.json").read_text()))
    if args.cached_only and cache is None:
        print("bench_estimate: error: --cached-only needs --cache DIR", file=sys.stderr)
        return 2
    if args.cached_only and not cost:
        cost["skipped"] = True  # no cost.json in the cache: nothing is measured in this mode
    raw_estimates(rows, Path(args.out).resolve(), cost, cache, args.cached_only)
    if cache is not None and cost and "skipped" not in cost:
        from mobiledeploy.files import write_atomic

        write_atomic(cache / "cost.json", json.dumps(cost))
    cost.pop("skipped", None)
    calibrate(rows)
    table = markdown(rows, cost)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    print(json.dumps({"rows": rows, "cost": cost}, indent=1) if args.json else table)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_estimate"))
