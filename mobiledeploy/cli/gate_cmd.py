"""`mobiledeploy gate`: fail CI when a model got significantly slower than its committed baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import CalibSamples, Calibration, Json, app
from .options import (AcceleratorOpt, AdbServerOpt, DbOpt, DispatchLibraryOpt, FullDelegationOpt,
                      accelerator_options)

PathOpt = Optional[str]


@app.command("gate")
def gate_cmd(
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", "-b", help="The committed baseline JSON, or a folder of them, one per machine class "
        "(the one recorded on this kind of machine is used), e.g. benchmarks/baselines/.")] = None,
    against: Annotated[Optional[str], typer.Option(
        "--against", help="A/B instead of a stored baseline: a git revision (its own code exports the baseline "
        "artifacts in a throwaway worktree) or a folder of exported artifacts; both measured side by side here.")] = None,
    if_no_baseline: Annotated[str, typer.Option(
        "--if-no-baseline", help="When a --baseline folder has none for this machine class: fail (exit 2) or skip "
        "(exit 0, said in the output and the reports).")] = "fail",
    device: Annotated[Optional[str], typer.Option("--device", "-d", help="local, adb:SERIAL or qemu:CPU (default: the "
                                                  "baseline's device); qemu devices may be a comma list; several phones "
                                                  "(adb:A,adb:B) or a farm (stf:URL?FILTERS) are each judged against their "
                                                  "own machine class's baseline in a --baseline folder.")] = None,
    max_regression: Annotated[Optional[str], typer.Option(
        "--max-regression", help="Largest tolerated slowdown: 5% or 0.05 (default 5%; 1% of Arm instructions on qemu).")] = None,
    confidence: Annotated[float, typer.Option("--confidence", help="Confidence of the interval on each latency ratio.")] = 0.99,
    reference: Annotated[Optional[str], typer.Option(
        "--reference", help="Reference model that normalises machine speed: a model of the baseline (name or ref), "
        "a ref to time with --update-baseline, or 'none' (raw latency). Default: the baseline's.")] = None,
    update_baseline: Annotated[bool, typer.Option(
        "--update-baseline", help="Measure, then (re)write the baseline atomically with these samples; exit 0.")] = False,
    results: Annotated[Optional[list[str]], typer.Option(
        "--results", help="Judge these result files (bench --json, results --json, a gate --out file) instead of running (repeatable).")] = None,
    rounds: Annotated[Optional[int], typer.Option("--rounds", help="Interleaved rounds (default: the baseline's, else 150 local / 20 adb).")] = None,
    runs: Annotated[Optional[int], typer.Option("--runs", help="Timed runs per model per round (default: the baseline's, else 5 local / 30 adb).")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Untimed runs per round (default: the baseline's, else 1 local / 5 adb).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Interpreter threads (default: the baseline's, else 1).")] = None,
    models: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="With --update-baseline: a model ref to gate, e.g. 'v1:g=3,scale=0.5,resolution=224' (repeatable).")] = None,
    formats: Annotated[str, typer.Option("--formats", help="With --model: precisions to gate, e.g. fp32,int8.")] = "fp32",
    resolution: Annotated[str, typer.Option("--resolution", "-r", help="With --model: input size when a ref has none.")] = "224",
    min_rounds: Annotated[int, typer.Option("--min-rounds", help="Fewer rounds on either side: judge pooled runs, or exit 2.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed (the verdict is deterministic for a seed).")] = 0,
    accelerator: AcceleratorOpt = "cpu",
    require_full_delegation: FullDelegationOpt = False,
    dispatch_library: DispatchLibraryOpt = None,
    adb_server: AdbServerOpt = None,
    db: DbOpt = None,
    junit: Annotated[PathOpt, typer.Option("--junit", help="Write a JUnit XML report here (one testcase per model).")] = None,
    markdown: Annotated[PathOpt, typer.Option("--markdown", help="Write a Markdown summary here (append it to $GITHUB_STEP_SUMMARY).")] = None,
    out: Annotated[PathOpt, typer.Option("--out", "-o", help="Write the verdict and the candidate's samples as JSON here.")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="A state_dict for the gated models (not the reference) instead of seeded init.")] = None,
    calibration: Calibration = "synthetic",
    calib_samples: CalibSamples = 32,
    artifacts: Annotated[Optional[Path], typer.Option(
        "--artifacts", help="Artifacts root of the exports (default artifacts/), as export --out.")] = None,
    allow_outside_refs: Annotated[bool, typer.Option(
        "--allow-outside-refs", help="Run a baseline's model file refs (FILE.py:NAME, .onnx, .pt2) that lie outside "
        "its repository: a baseline's ref is code the gate runs.")] = False,
    json_out: Json = False,
) -> None:
    """Time the baseline's models (interleaved with a reference model) and fail on a significant slowdown.

    Exit 0: no model is significantly slower than --max-regression; 1: a regression (which model, how much, its interval); 2: cannot judge (error, failed runs, too few samples, a baseline of another machine class). A model fails only when the whole interval of its latency ratio, normalised by the reference timed in the same rounds, lies above 1 + max-regression.

    An instruction baseline (recorded on qemu:CPU devices) is judged exactly instead: Arm instructions per inference, the same on every host; a changed LiteRT wheel or core features exits 2 with "re-record".

    Example: mobiledeploy gate --device local --baseline benchmarks/baselines/ --junit gate.xml --markdown gate.md
    Example: mobiledeploy gate --baseline benchmarks/baselines/ --update-baseline   (record this machine class)
    Example: mobiledeploy gate --baseline b.json --update-baseline --model 'v1:g=3,scale=0.5,resolution=224' --reference 'mobilenet_v1:alpha=0.25,resolution=224' --formats fp32,int8
    Example: mobiledeploy gate --baseline b.json --results candidate.json --max-regression 0.05
    Example: mobiledeploy gate --baseline benchmarks/baselines/arm/instructions.json --junit arm.xml   (exact, any host)
    Example: mobiledeploy gate --against origin/main --device qemu:cortex-a76 --model v1:g=3,scale=0.5 --formats fp32,int8
    Example: mobiledeploy gate --against release-artifacts/ --device local --model v1:g=3,scale=0.5
    Example: mobiledeploy gate --baseline arm.json --update-baseline --device qemu:cortex-a76,qemu:cortex-a53 --model 'v1:g=3,scale=0.5' --formats fp32,int8
    """
    from ..bench import ExportInputs
    from ..gating.request import GateRequest
    from ..gating.run import gate_one_phone, reports_for, run_gate
    from ..preflight import check_output_dir, check_output_file
    from .app import interrupt_exit_code
    from .gate_report import TerminalOutput

    for option, path in (("--junit", junit), ("--markdown", markdown), ("--out", out)):
        check_output_file(path, option)
    check_output_dir(artifacts, "--artifacts")
    req = GateRequest(baseline=baseline, against=against, if_no_baseline=if_no_baseline, device=device,
                      max_regression=max_regression, confidence=confidence, reference=reference,
                      update_baseline=update_baseline, results=results, rounds=rounds, runs=runs, warmup=warmup,
                      threads=threads, models=models, precisions=formats, resolution=resolution, min_rounds=min_rounds,
                      seed=seed, adb_server=adb_server, db=db, junit=junit, markdown=markdown, out=out,
                      weights=weights, export=ExportInputs(calibration, calib_samples, artifacts),
                      accel=accelerator_options(accelerator, require_full_delegation, dispatch_library),
                      allow_outside_refs=allow_outside_refs)
    from .lab import open_lab, per_phone

    terminal = TerminalOutput(json_out)
    lab = open_lab(device, adb_server) if device and not (against or results) else None
    if lab is not None:  # several phones or a farm's: each judged against its own machine class's baseline
        return per_phone(lab, lambda phone: _exit(gate_one_phone(req, phone, terminal)), "gate", json_out)
    _exit(run_gate(req, reports_for(req), terminal, interrupt_code=interrupt_exit_code))


def _exit(code: int) -> None:
    if code:
        raise SystemExit(code)
