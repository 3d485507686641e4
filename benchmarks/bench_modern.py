"""Today's mobile models through the whole toolkit: per model, does it convert, how do fp32 and int8 run in
XNNPACK (partitions, the ops left to TFLite's kernels and the delegate's rule for each), its MACs (checked
against torch's flop counter) and its exact Arm instructions (cortex-a76, the export's Arm check).

    python benchmarks/bench_modern.py [--quick] [--models "mobilenet_v4_conv_small@96;ops:gelu=tanh@32"] [--json]
    python benchmarks/bench_modern.py --rows a.json b.json --write   # the table of earlier --json runs, merged into
                                                                     # benchmarks/results/modern_zoo.md (README embeds it):
                                                                     # a model measured again replaces its row

A re-parameterisable model (one with a module that has timm's fuse()/reparameterize()/switch_to_deploy()) is
exported in its deployment form (`export --reparameterize`), as its paper counts and times it.

Models: the zoo's MobileNetV4 Conv-S and Hybrid-M, RepViT-M1, EfficientViT-M0, LeViT-128S, MobileViT-XXS, FastViT-T8
and EdgeNeXt-XXS (the last three at 256, as trained), EfficientNet-B0 and -Lite0 (swish and SE; ReLU6), MobileOne-S0
(re-parameterised), MobileNetV3 small and large (hard-swish), and the test suite's small net with each op (tests/fixtures/modern/ops.py: exact and tanh GELU,
hard-swish, LayerNorm, SDPA or matmul/softmax attention) as `ops[:KEY=VALUE,...]`. `--quick` runs the small
nets at 32x32 and MobileNetV4 at 96. int8 is exported with no cosine floor so that its partitions are seen
even when its accuracy fails (the cosine is printed; the export's own floor is 0.98).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OPS = REPO / "tests" / "fixtures" / "modern" / "ops.py"
FULL = [("mobilenet_v4_conv_small", 224), ("mobilenet_v4_hybrid_medium", 224), ("repvit_m1", 224),
        ("efficientvit_m0", 224), ("levit_128s", 224), ("mobilevit_xxs", 256), ("fastvit_t8", 256),
        ("edgenext_xx_small", 256), ("efficientnet_b0", 224), ("efficientnet_lite0", 224), ("mobileone_s0", 224),
        ("mobilenet_v3_small", 224),
        ("mobilenet_v3_large", 224), ("ops", 32), ("ops:gelu=tanh,norm=0,attention=", 32),
        ("ops:attention=manual", 32)]
QUICK = [("mobilenet_v4_conv_small", 96), ("ops", 32), ("ops:gelu=tanh,norm=0,attention=", 32)]


def _ref(name: str) -> tuple[str, dict[str, Any], Any]:
    """(registered name, config, resolution or None) of a model of the sweep."""
    from mobiledeploy.registry import parse_model_ref

    if name.split(":")[0] != "ops":
        return name, {}, None
    ref, config = parse_model_ref(f"{OPS}:build" + name[3:])
    return ref, config, "own"


def _flop_check(name: str, config: dict[str, Any], size: int, rep: bool) -> dict[str, Any]:
    """The counter against torch's flop counter, on the form that was exported."""
    from mobiledeploy.analysis_check import cross_check
    from mobiledeploy.models.common import deploy_form
    from mobiledeploy.registry import build_from_config

    model = build_from_config(name, config)
    if rep:
        deploy_form(model)
    return cross_check(model, (1, 3, size, size))


def _has_deploy_form(name: str, config: dict[str, Any]) -> bool:
    from mobiledeploy.models.common import DEPLOY_METHODS, deploy_method
    from mobiledeploy.registry import build_from_config

    return any(deploy_method(m, method) for m in build_from_config(name, config).modules() for method in DEPLOY_METHODS)


def _row(model: str, size: int, out: Path) -> dict[str, Any]:
    from mobiledeploy.converters import export_model
    from mobiledeploy.errors import ParityError

    name, config, own = _ref(model)
    rep = _has_deploy_form(name, config)
    row: dict[str, Any] = {"model": model + (" (reparameterized)" if rep else ""), "resolution": size}
    started = time.perf_counter()
    def export() -> Any:
        return export_model(name, {**config, **({"input_shape": f"1x3x{size}x{size}"} if own else {})},
                            resolution=size, out_dir=out, int8_cosine_floor=0.0, reparameterize=rep)

    try:
        try:
            res = export()
        except ParityError as exc:  # the Arm check refused it: say so, and show the host's partitions without it
            if "on Arm" not in str(exc):
                raise
            row["arm_check_failed"] = str(exc).splitlines()[0][:400]
            os.environ["MOBILEDEPLOY_ARM_CHECK"] = "off"
            try:
                res = export()
            finally:
                os.environ["MOBILEDEPLOY_ARM_CHECK"] = "on"
    except Exception as exc:  # a failure is a result of the sweep: which stage, which op
        row.update(converts=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        return row
    m = res.manifest
    row.update(converts=True, macs=m.macs, seconds=round(time.perf_counter() - started),
               fp32_max_rel=m.parity["fp32"]["max_rel"], int8_cosine=m.parity["int8"]["cosine"])
    for fmt in ("fp32", "int8"):
        found = m.artifacts[fmt].delegation
        row[fmt] = {"partitions": found.partitions, "left": found.not_delegated, "why": found.why}
        arm = m.parity.get("arm", {}).get(fmt) or {}
        row[fmt]["arm_a76_instructions"] = arm.get("instructions")
        row[fmt]["arm_vs_host_steps"] = arm.get("vs_host_steps")
    check = _flop_check(name, config, size, rep)
    row["flop_counter"] = {"flops": check["flop_counter_flops"], "explained": check["explained"],
                           "unexplained_macs": check["unexplained"]}
    return row


def _print(rows: list[dict[str, Any]]) -> None:
    print("| model | input | converts | MACs | torch flop counter / 2 | fp32 partitions | int8 partitions | int8 ops left "
          "| A76 fp32 instr | A76 int8 instr | int8 cosine |")
    print("|---|---|---|---:|---|---:|---:|---|---:|---:|---:|")
    for r in rows:
        if not r["converts"]:
            print(f"| {r['model']} | {r['resolution']} | no: {r['error']} | | | | | | | | |")
            continue
        fc = r["flop_counter"]
        same = "same" if not fc["explained"] and not fc["unexplained_macs"] else \
            f"{fc['flops'] // 2 / 1e6:.1f}M (+{sum(fc['explained'].values()) / 1e6:.1f}M attention)"
        left = ", ".join(f"{op}×{n}" for op, n in r["int8"]["left"].items()) or "—"
        instr = [r[f]["arm_a76_instructions"] for f in ("fp32", "int8")]
        shown = [f"{i / 1e6:.2f}M" if i else "—" for i in instr]
        print(f"| {r['model']} | {r['resolution']} | yes | {r['macs'] / 1e6:.1f}M | {same} | {r['fp32']['partitions']} | "
              f"{r['int8']['partitions']} | {left} | {shown[0]} | {shown[1]} | {r['int8_cosine']:.4f} |")
    for r in rows:
        if r.get("arm_check_failed"):
            print(f"- {r['model']}: the Arm check refused its export ({r['arm_check_failed']}); its row is the host's, "
                  "exported again without the check")
    rules = {op: why for r in rows if r["converts"] for op, why in r["int8"]["why"].items()}
    for op, why in sorted(rules.items()):
        print(f"- {op}: {why[:400]}")


RESULT = Path(__file__).resolve().parent / "results" / "modern_zoo.md"


def _parts(text: str) -> tuple[list[str], dict[str, str], list[str]]:
    """A rendered table's rows, its bullets by what they name (a model or an op) and its closing lines."""
    rows, bullets, notes = [], {}, []
    for line in text.splitlines():
        if line.startswith("| model |") or line.startswith("|---"):
            continue
        if line.startswith("| "):
            rows.append(line)
        elif line.startswith("- "):
            bullets[line[2:].split(":")[0].split(" (")[0]] = line  # a model (its base name) or an op
        elif line.strip():
            notes.append(line)
    return rows, bullets, notes


def _merged(old: str, new: str) -> str:
    """`new`'s rows and bullets over `old`'s: a model measured again replaces its row, the others' rows stay; an op's
    rule is the newer text, and a rule no row's "int8 ops left" names any more is dropped; an old closing line
    ("The rows of A, B: ... on commit ...") keeps only the models not measured again, and goes when none is left."""
    old_rows, old_bullets, old_notes = _parts(old)
    new_rows, new_bullets, new_notes = _parts(new)
    model = lambda row: row.split("|")[1].strip().split(" (")[0]  # noqa: E731
    measured = {model(row) for row in new_rows}
    rows = [row for row in old_rows if model(row) not in measured] + new_rows
    bullets = {k: v for k, v in old_bullets.items() if k not in measured} | new_bullets
    names = {model(row) for row in rows}
    left = {op.split("×")[0].strip() for row in rows if len(row.split("|")) > 9 for op in row.split("|")[8].split(",")}
    lines = [new.splitlines()[0], new.splitlines()[1], *rows]
    lines += [bullets[k] for k in bullets if k in names] + [bullets[k] for k in sorted(bullets) if k not in names and k in left]
    notes = [kept for note in old_notes if (kept := _note_without(note, measured))]
    return "\n".join(lines + [""] + notes + new_notes) + "\n"


def _note_without(note: str, measured: set[str]) -> str | None:
    """An old closing line without the models measured again (None when it named only those); a line that names
    no models is kept as it is."""
    if not note.startswith("The rows of ") or ": " not in note:
        return note
    named, rest = note[len("The rows of "):].split(": ", 1)
    kept = [name for name in named.split(", ") if name not in measured]
    return f"The rows of {', '.join(kept)}: {rest}" if kept else None


def _write(rows: list[dict[str, Any]]) -> None:
    """The table (and its rules) to RESULT, merged into the rows already there (a model measured again replaces its
    row), with the commit measured, written whole then renamed."""
    import contextlib
    import io
    import subprocess

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        _print(rows)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    models = ", ".join(r["model"].split(" (")[0] for r in rows)
    text.write(f"\nThe rows of {models}: one run per model of `python benchmarks/bench_modern.py --models ... --json`, "
               f"rendered by `--rows ... --write`, on commit {commit} ({time.strftime('%Y-%m-%d')}); seeded weights, "
               "synthetic calibration.\n")
    merged = _merged(RESULT.read_text(), text.getvalue()) if RESULT.exists() else text.getvalue()
    tmp = RESULT.with_suffix(".tmp")
    tmp.write_text(merged)
    tmp.replace(RESULT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small nets at 32x32, MobileNetV4 at 96")
    parser.add_argument("--models", help="semicolon list of NAME[@RESOLUTION] (ops:KEY=VALUE,... for the small net)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", nargs="+", type=Path, help="render the rows of earlier --json runs instead of running")
    parser.add_argument("--write", action="store_true", help=f"also write the table to {RESULT.relative_to(REPO)}")
    args = parser.parse_args(argv)
    if args.rows:
        rows = [row for path in args.rows for row in json.loads(path.read_text())]
        if args.write:
            _write(rows)
        else:
            _print(rows)
        return 0
    os.environ.setdefault("MOBILEDEPLOY_ARM_CHECK", "on")
    models = QUICK if args.quick else FULL
    if args.models:
        models = [(m.split("@")[0], int(m.split("@")[1]) if "@" in m else 224) for m in args.models.split(";")]
    with tempfile.TemporaryDirectory(prefix="bench-modern-") as tmp:
        rows = []
        for model, size in models:
            rows.append(_row(model, size, Path(tmp)))
            print(f"{model}@{size}: {'converted' if rows[-1]['converts'] else rows[-1]['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        _print(rows)
    if args.write:
        _write(rows)
    return 0 if all(r["converts"] for r in rows) else 1


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_modern"))
