"""`mobiledeploy gate`: fail CI when a model got significantly slower than its committed baseline."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .app import CalibSamples, Calibration, Json, app, print_json
from .gate_report import GateReports, error_lines, print_verdict
from .options import (AcceleratorOpt, AdbServerOpt, DbOpt, DispatchLibraryOpt, FullDelegationOpt,
                      accelerator_options)

if TYPE_CHECKING:
    from ..baseline import Baseline
    from ..gate import GatePolicy

#: options a baseline keeps only when given (an accelerator other than the CPU): the candidate runs the same way
ACCELERATOR_OPTIONS = ("accelerator", "require_full_delegation", "dispatch_library")
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
    formats: Annotated[str, typer.Option("--formats", help="With --model: artifacts to gate, e.g. fp32,int8.")] = "fp32",
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
    from ..errors import MobiledeployError
    from .preflight import check_output_dir, check_output_file

    for option, path in (("--junit", junit), ("--markdown", markdown), ("--out", out)):
        check_output_file(path, option)
    check_output_dir(artifacts, "--artifacts")
    req = GateRequest(baseline, against, if_no_baseline, device, max_regression, confidence, reference, update_baseline,
                      results, rounds, runs, warmup, threads, models, formats, resolution, min_rounds, seed, adb_server,
                      db, junit, markdown, out, weights, ExportInputs(calibration, calib_samples, artifacts), json_out,
                      accelerator_options(accelerator, require_full_delegation, dispatch_library), allow_outside_refs)
    from .lab_cmd import open_lab

    lab = open_lab(device, adb_server) if device and not (against or results) else None
    if lab is not None:  # several phones or a farm's: each judged against its own machine class's baseline
        from .lab_cmd import per_phone

        return per_phone(lab, functools.partial(_gate_one_phone, req), "gate", json_out)
    reports = GateReports(junit, markdown, out, baseline or against or "", device or "local")
    try:
        if not _other_modes(req, reports):
            _gate(reports, req)
    except KeyboardInterrupt:
        from .app import interrupt_exit_code

        reports.status("interrupted", interrupt_exit_code(), reports.interrupted_message())
        raise
    except MobiledeployError as exc:
        reports.status("error", exc.exit_code, " ".join(str(exc).split()))
        raise


@dataclass
class GateRequest:
    """Everything `gate` was asked, as given on the command line (None: not given)."""

    baseline: str | None
    against: str | None
    if_no_baseline: str
    device: str | None
    max_regression: str | None
    confidence: float
    reference: str | None
    update_baseline: bool
    results: list[str] | None
    rounds: int | None
    runs: int | None
    warmup: int | None
    threads: int | None
    models: list[str] | None
    formats: str
    resolution: str
    min_rounds: int
    seed: int
    adb_server: str | None
    db: str | None
    junit: str | None
    markdown: str | None
    out: str | None
    weights: str | None
    export: Any
    json_out: bool
    accel: dict[str, Any] = field(default_factory=dict)  # accelerator, require_full_delegation, dispatch_library
    allow_outside_refs: bool = False  # run a baseline's file refs from outside its repository (baseline_refs)

    @property
    def normalise(self) -> bool:
        return not (self.reference is not None and self.reference.strip().lower() == "none")

    def reports_to(self) -> dict[str, Any]:
        return {"junit": self.junit, "markdown": self.markdown, "out": self.out, "json_out": self.json_out}


def _gate_one_phone(req: GateRequest, phone: Any) -> None:
    """The wall-clock gate on one phone of a lab, its reports named after the phone (gate.xml → gate.PHONE.xml)."""
    import re
    from dataclasses import replace

    suffix = re.sub(r"[^A-Za-z0-9._-]+", "_", phone.label)
    named = {k: (None if p is None else str(Path(p).with_name(f"{Path(p).stem}.{suffix}{Path(p).suffix}")))
             for k, p in (("junit", req.junit), ("markdown", req.markdown), ("out", req.out))}
    one = replace(req, device=phone.uri, **named)
    reports = GateReports(one.junit, one.markdown, one.out, req.baseline or "", phone.uri)
    from ..errors import MobiledeployError

    try:
        if not _other_modes(one, reports):
            _gate(reports, one)
    except MobiledeployError as exc:  # its reports say why, as a gate on one device's do
        reports.status("error", exc.exit_code, " ".join(str(exc).split()))
        raise


def _other_modes(req: GateRequest, reports: "GateReports") -> bool:
    """A/B (--against) and the exact instruction gate; False when the wall-clock baseline gate applies."""
    from ..errors import ConfigError
    from .gate_exact_cmd import run_exact_gate, wants_exact

    if (req.baseline is None) == (req.against is None):
        raise ConfigError("give --baseline (stored numbers) or --against REV|DIR (A/B on this device), not both")
    sizes = {"models": req.models, "formats": req.formats, "resolution": req.resolution}
    inputs = {"weights": req.weights, "export": req.export, "collected": reports.measured}
    if req.against is not None:
        from .gate_ab_cmd import run_ab_gate

        if req.update_baseline or req.results:
            raise ConfigError("--against measures base and head now: it takes no --update-baseline or --results")
        run_ab_gate(against=req.against, device=req.device, max_regression=req.max_regression,
                    confidence=req.confidence, rounds=req.rounds, runs=req.runs, warmup=req.warmup,
                    threads=req.threads, seed=req.seed, db=req.db, adb_server=req.adb_server, accel=req.accel,
                    **sizes, **inputs, **req.reports_to())
        return True
    if wants_exact(req.baseline, req.device, req.update_baseline):
        from ..gate import INSTRUCTIONS
        from .gate_exact_cmd import exact_devices

        reports.gate, reports.device = INSTRUCTIONS, req.device or exact_devices(req.baseline)
        run_exact_gate(baseline=req.baseline, device=req.device, max_regression=req.max_regression,
                       update=req.update_baseline, db=req.db, allow_outside_refs=req.allow_outside_refs, **sizes,
                       **inputs, **req.reports_to())
        return True
    return False


def _check(req: GateRequest) -> None:
    """Refuse option combinations of the wall-clock gate before anything is measured."""
    from ..errors import ConfigError
    from .preflight import check_output_dir, check_output_file, check_threads

    if req.models and not req.update_baseline:
        raise ConfigError("--model sets the models of a new baseline: use it with --update-baseline")
    for name, value in (("--rounds", req.rounds), ("--runs", req.runs), ("--threads", req.threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if req.if_no_baseline not in ("fail", "skip"):
        raise ConfigError("--if-no-baseline takes fail or skip")
    if req.update_baseline:
        (check_output_dir if Path(req.baseline).is_dir() else check_output_file)(req.baseline, "--baseline")
    if warning := check_threads(req.threads, req.device or "local"):
        sys.stderr.write(f"mobiledeploy: warning: {warning}\n")


def _gate(reports: "GateReports", req: GateRequest) -> None:
    """The wall-clock gate on a stored baseline: pick it, measure (or read) the candidate, judge, maybe record."""
    from ..baseline import load_baseline, load_results_files
    from ..errors import ConfigError
    from ..gate import GatePolicy, Threshold

    policy = GatePolicy(Threshold.parse(req.max_regression or "5%"), req.confidence, normalise=req.normalise,
                        min_rounds=req.min_rounds, seed=req.seed).validate()
    _check(req)
    baseline, template = req.baseline, None
    measured = load_results_files(req.results) if req.results else None
    if Path(baseline).is_dir():
        where = req.device or "local"
        facts = measured.device_info if measured else _device_facts(where, req.adb_server)
        baseline, old, template = _pick_baseline(Path(baseline), where, facts)
        if old is None and not req.update_baseline:
            _no_baseline(baseline, where, facts, skip=req.if_no_baseline == "skip", reports=reports,
                         json_out=req.json_out)
            return
    else:
        old = None if req.update_baseline and not Path(baseline).is_file() else load_baseline(baseline)
    plan_source = old or template
    if plan_source is None and not req.models and not req.results:
        raise ConfigError(f"no baseline at {baseline}: create it with --update-baseline --model REF [--reference REF]")
    if plan_source is not None and not req.results and not req.models:  # refs the gate will run: from where?
        from ..baseline_refs import check_baseline_refs

        refs = [m.ref for m in plan_source.models.values() if m.ref]
        check_baseline_refs(refs, req.baseline, req.allow_outside_refs)
    candidate = _candidate(req, reports, old, plan_source, measured)
    _conclude(req, reports, policy, baseline, old, candidate)


def _candidate(req: GateRequest, reports: "GateReports", old: "Baseline | None", plan_source: "Baseline | None",
               measured: "Baseline | None") -> "Baseline":
    """The candidate's samples: read from --results, measured now, or empty when this is another machine."""
    from ..baseline import Baseline
    from ..errors import ConfigError
    from .preflight import check_db

    where = req.device or (plan_source.device if plan_source else "local")
    reference = req.reference if req.normalise else None
    if measured is not None:
        if req.device and measured.device != req.device:
            raise ConfigError(f"the results were measured on {measured.device}, not --device {req.device}")
        _copy_refs(plan_source, measured)
        measured.reference = _reference_name(plan_source, reference, measured) if req.normalise else None
        return measured
    if old is not None and not req.update_baseline and _differs(old, where, req.adb_server):
        return Baseline(device=where, models={}, device_info=_device_facts(where, req.adb_server))  # judged: other machine
    check_db(req.db)  # where the runs will go: before any export (a skip or --results stores nothing)
    options = _bench_options(plan_source, where, rounds=req.rounds, runs=req.runs, warmup=req.warmup,
                             threads=req.threads)
    options.update({k: v for k, v in req.accel.items() if v and v != "cpu"})
    plan = _plan(plan_source, req.models, req.formats, req.resolution, reference if req.update_baseline else None,
                 req.normalise)
    reports.device = where
    return _measure(where, plan, options, req.db, req.adb_server, reports.measured, weights=req.weights,
                    export=req.export)


def _conclude(req: GateRequest, reports: "GateReports", policy: "GatePolicy", baseline: str,
              old: "Baseline | None", candidate: "Baseline") -> None:
    """Judge against the old baseline (if any), print and report; write the new one with --update-baseline."""
    from dataclasses import replace

    from ..baseline import BaselineError, save_baseline
    from ..gate import judge

    verdict = None
    if old is not None:
        judged_by = (_reference_name(old, req.reference if req.normalise else None, candidate)
                     if not req.update_baseline else old.reference)
        verdict = judge(old, candidate, replace(policy, reference=judged_by if req.normalise else None))
        reports.verdict(verdict, candidate)
        if req.json_out:
            print_json(verdict.to_dict())
        else:
            print_verdict(verdict, baseline)
    if req.update_baseline:
        problem = _unfit_as_baseline(candidate, policy, req.normalise)
        if problem:
            raise BaselineError(f"not writing {baseline}: {problem}")
        save_baseline(candidate, baseline)
        if verdict is None:
            reports.status("baseline written", 0, f"wrote baseline {baseline} ({len(candidate.models)} artifact(s))")
        sys.stderr.write(f"mobiledeploy: wrote baseline {baseline} ({len(candidate.models)} artifact(s), "
                         f"reference {candidate.reference or 'none'})\n")
        return
    assert verdict is not None
    for line in error_lines(verdict):
        sys.stderr.write(f"mobiledeploy: {line}\n")
    if verdict.exit_code:
        raise SystemExit(verdict.exit_code)


# --- which baseline ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _device_facts(device: str, adb_server: str | None) -> dict[str, Any]:
    """The facts that name this device's machine class (a phone is asked through adb)."""
    from ..devices import open_device

    with open_device(device, adb_server=adb_server) as dev:
        return dev.info()


def _differs(old: "Baseline", device: str, adb_server: str | None) -> bool:
    """The baseline records a machine class and this device is of another one: no need to measure."""
    from ..devices.base import machine_class

    recorded = machine_class(old.device_info)
    return recorded is not None and machine_class(_device_facts(device, adb_server)) != recorded


def _pick_baseline(folder: Path, device: str, facts: dict[str, Any]) -> "tuple[str, Baseline | None, Baseline | None]":
    """(path, the folder's baseline for this machine class or None, a baseline of the same device kind to copy
    the models and options from). The path of a missing one is FOLDER/<machine slug>.json."""
    from ..baseline import load_baseline
    from ..devices.base import machine_class, machine_slug

    from ..devices.kinds import kind_name

    cls = machine_class(facts)
    same_kind = [(path, load_baseline(path)) for path in sorted(folder.glob("*.json"))]
    same_kind = [(path, b) for path, b in same_kind if kind_name(b.device) == kind_name(device)]
    match = next(((p, b) for p, b in same_kind if cls is not None and machine_class(b.device_info) == cls), None)
    if match:
        return str(match[0]), match[1], match[1]
    return str(folder / f"{machine_slug(device, cls)}.json"), None, (same_kind[0][1] if same_kind else None)


def _no_baseline(path: str, device: str, facts: dict[str, Any], *, skip: bool, reports: "GateReports",
                 json_out: bool) -> None:
    """The folder has no baseline for this machine class: say so; exit 2, or 0 with --if-no-baseline skip."""
    from ..devices.base import machine_class
    from ..errors import ConfigError

    cls = machine_class(facts) or "unknown (the device does not say)"
    message = (f"no baseline for this machine class in {Path(path).parent}/ ({cls}); record one with: "
               f"mobiledeploy gate --device {device} --baseline {Path(path).parent}/ --update-baseline")
    if not skip:
        raise ConfigError(message)
    reports.status("skipped", 0, message)
    if json_out:
        print_json({"status": "skipped", "exit_code": 0, "summary": message, "device": device, "machine_class": cls})
    sys.stderr.write(f"mobiledeploy: gate skipped: {message}\n")


def _copy_refs(old: "Baseline | None", candidate: "Baseline") -> None:
    """Result files do not say how to rebuild a model: take the ref the baseline knows for its name."""
    known = {m.name: m.ref for m in (old.models.values() if old else []) if m.ref}
    for m in candidate.models.values():
        m.ref = m.ref or known.get(m.name)


# --- what to run -----------------------------------------------------------------------------------

def _bench_options(old: "Baseline | None", device: str, **given: int | None) -> dict[str, Any]:
    """The baseline's bench options (measure the candidate the same way), overridden by the flags given."""
    from ..devices.kinds import GATE_DEFAULTS, gate_options

    defaults = gate_options(device)
    kept = (*GATE_DEFAULTS, *ACCELERATOR_OPTIONS)
    options = {**defaults, **{k: v for k, v in (old.bench_options if old else {}).items() if k in kept}}
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def _plan(old: "Baseline | None", models: list[str] | None, formats: str, resolution: str,
          reference: str | None, normalise: bool) -> list[dict[str, Any]]:
    """[{ref, formats, resolution, reference}] to export and time: the new models, or the baseline's."""
    from ..analysis import parse_resolution
    from ..bench import parse_formats
    from ..errors import ConfigError

    if models:
        fmts = parse_formats(formats)
        res = list(parse_resolution(resolution))
        plan = [{"ref": ref, "formats": fmts, "resolution": res, "reference": False} for ref in models]
        ref_ref = reference or (_baseline_reference_ref(old) if old and normalise else None)
        if ref_ref and normalise:
            plan.append({"ref": ref_ref, "formats": fmts, "resolution": res, "reference": True})
        return plan
    assert old is not None
    by_ref: dict[tuple[str, tuple[int, ...]], dict[str, Any]] = {}
    for m in old.models.values():
        if not m.ref:
            raise ConfigError(f"the baseline does not say how to rebuild {m.key} (no 'ref'): pass --results, "
                              "or recreate it with --update-baseline --model REF")
        key = (m.ref, tuple(m.resolution or ()))
        entry = by_ref.setdefault(key, {"ref": m.ref, "formats": (), "resolution": m.resolution,
                                        "reference": m.name == old.reference})
        entry["formats"] = tuple(dict.fromkeys([*entry["formats"], m.format]))
    plan = list(by_ref.values())
    if not normalise:
        plan = [p for p in plan if not p["reference"]]
    if reference is not None and normalise:  # --update-baseline with another reference
        for p in plan:
            p["reference"] = False
        named = [m.ref for m in old.models.values() if reference in (m.name, m.key, m.ref)]
        match = next((p for p in plan if p["ref"] in named), None)
        if match is not None:
            match["reference"] = True
        else:
            plan.append({"ref": reference, "formats": plan[0]["formats"], "resolution": plan[0]["resolution"],
                         "reference": True})
    return plan


def _baseline_reference_ref(old: "Baseline") -> str | None:
    return next((m.ref for m in old.models.values() if m.name == old.reference and m.ref), None)


def _measure(device: str, plan: list[dict[str, Any]], options: dict[str, Any], db: str | None,
             adb_server: str | None, collected: list[Any], *, weights: str | None = None,
             export: Any = None) -> "Baseline":
    """Export (reusing artifacts) and time every planned model, interleaved; every run is stored (and
    added to `collected` as it ends). A phone that is not there is said before any export."""
    from ..baseline import baseline_from_results
    from ..bench import BenchOptions, run_bench
    from ..measure import prepare_targets
    from ..devices import check_options
    from ..results import git_commit
    from .console import progress_on_stderr, warn_calibration

    bench_options = BenchOptions(threads=options["threads"], runs=options["runs"], warmup=options["warmup"],
                                 cpu_mask=options["cpu_mask"],
                                 **{k: options[k] for k in ACCELERATOR_OPTIONS if k in options}).validate()
    check_options(device, bench_options)
    from ..devices.kinds import kind_of

    if kind_of(device).reached_by_adb:  # a phone that is not there is said before any export
        _device_facts(device, adb_server)
    targets, refs, reference = [], {}, None
    with progress_on_stderr() as progress:
        for item in plan:
            found = prepare_targets([item["ref"]], item["formats"], tuple(item["resolution"] or (224, 224)), progress,
                                    weights=None if item["reference"] else weights, export=export)
            for target in found:
                refs[target.name] = item["ref"]
                if item["reference"]:
                    reference = target.name
            targets.extend(found)
        warn_calibration(targets)
        report = run_bench(device, targets, bench_options, rounds=options["rounds"], db=db, adb_server=adb_server,
                           progress=progress, collected=collected).raise_for_setup()
    return baseline_from_results(report.results, reference=reference, refs=refs, bench_options=options,
                                 git=git_commit())


def _reference_name(old: "Baseline | None", given: str | None, candidate: "Baseline") -> str | None:
    """The reference's model name: --reference matched against the baseline's names, keys and refs."""
    from ..errors import ConfigError

    if given is None:
        return old.reference if old else candidate.reference
    for session in (old, candidate):
        if session is None:
            continue
        for m in session.models.values():
            if given in (m.name, m.key, m.ref):
                return m.name
    if candidate.reference:
        return candidate.reference  # a new reference just measured for --update-baseline
    raise ConfigError(f"--reference {given!r} is not a model of the baseline "
                      f"({', '.join(sorted({m.name for m in (old or candidate).models.values()}))})")


def _unfit_as_baseline(candidate: "Baseline", policy: "GatePolicy", normalise: bool) -> str | None:
    if not candidate.models:
        return "no results"
    for m in candidate.models.values():
        if m.failures:
            return f"{m.key} failed: {m.failures[0]}"
        rounds, runs = len(m.round_medians_us()), len(m.pooled_us())
        if rounds < policy.min_rounds and runs < policy.min_runs:
            return f"{m.key} has {rounds} round(s), {runs} run(s); need {policy.min_rounds} rounds or {policy.min_runs} runs"
    if normalise and candidate.reference is None:
        sys.stderr.write("mobiledeploy: note: no --reference model: the gate will compare raw latency, "
                         "so a slower CI machine can fail it\n")
    return None
