"""The orchestrator: export (or reuse) → targets → run → store.

`bench` makes targets only from artifacts that exist and times them (`bench.run_bench` stores every run);
this module is where a model ref is exported first. Commands call `prepare_targets` (then `run_bench`, with
their own session plans) or `measure`, which does both.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from .artifact_kinds import DEFAULT_PRECISIONS, export_request
from .bench import BenchRun, run_bench, runtime_artifacts, target_from_file, targets_from_export
from .records import BenchOptions, BenchTarget, ExportInputs, RunResult

__all__ = ["prepare_targets", "measure"]

Progress = Callable[[str], None]
# One export at a time in this process: threads that time the same model on several phones (`fanout`, a farm's
# gate) must not write one artifact folder at once; the second finds the first's export and reuses it.
_EXPORT_LOCK = threading.Lock()


def prepare_targets(model_refs: list[str], precisions: Sequence[str] = DEFAULT_PRECISIONS, resolution: Any = (224, 224),
                    progress: Progress | None = None, *, weights: str | None = None, export: ExportInputs | None = None,
                    runtimes: Sequence[str | None] = (None,)) -> list[BenchTarget]:
    """Targets for model refs ('v1:g=3,scale=0.5', or a user's model: 'net.py:build:width=8', 'net.onnx',
    'net.pt2'; exported first, valid artifacts reused) or .tflite paths: one per runtime and precision.

    `runtimes` name how each artifact is to be timed (None: the device's default, which times the .tflite);
    a runtime picks its artifact of each precision (`runtimes.artifact_for`: onnxruntime times model.onnx).
    `weights` and `export` (calibration, artifacts root) are what `mobiledeploy export` would be given:
    other weights or calibration give another artifact folder, never a rebuild of the default one."""
    from .analysis import parse_resolution
    from .registry import parse_model_ref
    from .sources import split_source_ref

    keys = runtime_artifacts(runtimes, precisions)  # checked before any export
    targets: list[BenchTarget] = []
    for ref in model_refs:
        if split_source_ref(ref) is None and (ref.endswith(".tflite") or Path(ref).is_file()):
            targets += [target_from_file(Path(ref), runtime) for runtime in runtimes]
            continue
        arch, config = parse_model_ref(ref)
        res = parse_resolution(config.pop("resolution", None) or resolution)
        with _EXPORT_LOCK:
            exported, identity = _export(arch, config, res, tuple(dict.fromkeys(keys.values())), progress, weights,
                                         export or ExportInputs())
        targets += targets_from_export(exported.path, exported.manifest, precisions, runtimes, identity,
                                       arch, config, res)
    return targets


def _export(arch: str, config: dict[str, Any], resolution: tuple[int, int], artifacts: Sequence[str],
            progress: Progress | None, weights: str | None, inputs: ExportInputs) -> tuple[Any, dict[str, Any]]:
    """Export (or reuse) the model's `artifacts`; with what its runs record when the inputs are not the defaults."""
    from .converters import STAGES, export_model, pipeline

    def stage(name: str, event: str, seconds: float | None) -> None:
        if progress and event == "start":
            progress(f"export {arch}: {STAGES.get(name, name)}")

    # an absolute out_dir: the same ./artifacts, robust to converters that change directory; the pipeline's own
    # default read when called (the name the package re-exports is a copy taken at import)
    exported = export_model(arch, config, resolution=resolution, out_dir=Path(inputs.out or pipeline.DEFAULT_OUT).resolve(),
                            formats=export_request(artifacts), weights=weights,
                            calibration=inputs.calibration, calib_samples=inputs.calib_samples, progress=stage,
                            reparameterize=inputs.reparameterize)
    request = exported.manifest.request
    identity = {}  # recorded with every run when the inputs are not the defaults
    if request.get("weights_sha256"):
        identity["weights_sha256"] = request["weights_sha256"]
    if (str(inputs.calibration), inputs.calib_samples) != (ExportInputs.calibration, ExportInputs.calib_samples):
        identity["calibration"] = request.get("calibration")
    if exported.manifest.reparameterized:  # the deployment form was timed: what was called, and its check
        identity["reparameterized"] = exported.manifest.reparameterized
    return exported, identity


def measure(model_refs: list[str], device: str, options: BenchOptions, *, precisions: Sequence[str] = DEFAULT_PRECISIONS,
            resolution: Any = (224, 224), runtimes: Sequence[str | None] = (None,), rounds: int = 1,
            weights: str | None = None, export: ExportInputs | None = None, db: str | Path | None = None,
            adb_server: str | None = None, progress: Progress | None = None,
            collected: list[RunResult] | None = None,
            prepared: Callable[[list[BenchTarget]], None] | None = None) -> BenchRun:
    """Export (reusing) every model ref, make its targets, time them interleaved on `device` and store every run.
    `prepared` sees the targets before any is timed (the CLI warns there about what their exports recorded)."""
    targets = prepare_targets(model_refs, precisions, resolution, progress, weights=weights, export=export,
                              runtimes=runtimes)
    if prepared is not None:
        prepared(targets)
    return run_bench(device, targets, options, rounds=rounds, db=db, adb_server=adb_server, progress=progress,
                     collected=collected)
