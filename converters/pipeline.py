"""`export_model`: registry → torch → ONNX → TFLite fp32 and int8, parity at every step, a manifest.

Stages run in order and are timed; `progress(stage, event, seconds)` hears "start", then
"done" or "failed" for each (see `STAGES`), or one ("reuse", "done", seconds) when valid
artifacts are reused. Everything is built in a hidden temp directory next to the target and
renamed into place only once every file is written and every parity check has passed: a
failure or Ctrl-C leaves no artifact directory behind, and an existing one intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mobiledeploy.artifact_kinds import ARTIFACT_KINDS, EXPORT_FORMATS, ON_REQUEST_FORMATS
from mobiledeploy.errors import ConfigError, ExportError, ParityError

from .executorch import PTE_FILES, PTE_STAGES
from .manifest import (FILE_NAMES, MANIFEST_NAME, SCHEMA_VERSION, Manifest, artifact_problems, file_entry, read_manifest,
                       tool_versions, write_manifest)
from .parity import FP32_TOLERANCE, INT8_COSINE_FLOOR

__all__ = ["FORMATS", "PTE_FORMATS", "ALL_FORMATS", "STAGES", "DEFAULT_OUT", "DEFAULT_CALIB_SAMPLES", "ExportResult", "Progress", "export_model",
           "resolve_formats", "artifact_slug"]

FORMATS = EXPORT_FORMATS  # onnx, fp32, int8: the artifact kinds an export makes, in the order it makes them
PTE_FORMATS = tuple(PTE_FILES)  # ExecuTorch, on request (converters/executorch.py, the executorch extra)
ALL_FORMATS = FORMATS + ON_REQUEST_FORMATS
STAGES = {
    "model": "build the model",
    "analysis": "complexity analysis",
    "calibration": "calibration and held-out inputs",
    "onnx": "torch → ONNX, or your ONNX file checked (onnxslim)",
    "onnx_parity": "parity: ONNX Runtime vs torch (or your ONNX file)",
    "tensorflow": "import TensorFlow and onnx2tf",
    "tf_graph": "ONNX → TF graph (onnx2tf)",
    "fp32": "TFLite fp32",
    "fp32_parity": "parity: TFLite fp32 vs torch (or your ONNX file)",
    "int8": "TFLite int8 (calibration)",
    "int8_parity": "parity: TFLite int8 vs fp32",
    "int16x8": "TFLite int16x8: int16 activations, int8 weights (calibration)",
    "int16x8_parity": "parity: TFLite int16x8 vs fp32",
    "arm": "Arm check: aarch64 LiteRT on qemu:cortex-a76 (when set up; started as each file is made)",
    **PTE_STAGES,
    "manifest": "manifest",
}
DEFAULT_OUT = Path("artifacts")
DEFAULT_CALIB_SAMPLES = 32
# The revision of the conversion itself, part of every export request (`request["pipeline"]`): an artifact
# folder is reused only for a request with the same revision, so raising it makes every old export stale. Raise
# it when the same request would now produce different files (another graph rewrite, padding or op lowering),
# not for changes that leave the files as they were; the files' own sha256s only say they are intact.
PIPELINE_REVISION = 9  # 9: int8 keeps every LayerNorm in float by default (converters/layernorm.py)
SAMPLE_DATA_SEED = 20  # onnx2tf's own sample images (it checks its graph on them), made offline

Progress = Callable[[str, str, "float | None"], None]


@dataclass
class ExportResult:
    path: Path  # the artifact directory, <out_dir>/<slug>
    manifest: Manifest  # what manifest.json in `path` says
    reused: bool = False

    def artifact(self, fmt: str) -> Path:
        """Absolute path of one artifact ('weights', 'onnx', 'fp32', 'int8'); ExportError if it was not made."""
        return self.path / self.manifest.file(fmt)


def resolve_formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    """'int8' or ('fp32',) → the formats to build, with what they derive from: int8 ⇐ fp32 ⇐ onnx,
    pte_int8 ⇐ pte_fp32 (and onnx, which every export makes)."""
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    unknown = sorted(set(items) - set(ALL_FORMATS))
    if unknown or not items:
        raise ConfigError(f"unknown format {', '.join(unknown) or '(none)'} (choose from {', '.join(ALL_FORMATS)})")
    wanted = set(items)
    if wanted & {"int8", "int16x8"}:
        wanted.add("fp32")
    if "pte_int8" in wanted:
        wanted.add("pte_fp32")
    wanted.add("onnx")
    return tuple(f for f in ALL_FORMATS if f in wanted)


def export_model(
    arch: str,
    config: dict[str, Any],
    resolution: int | str | tuple[int, int] = (224, 224),
    out_dir: str | Path | None = None,
    formats: str | Iterable[str] = FORMATS,
    calibration: str | Path = "synthetic",
    calib_samples: int = DEFAULT_CALIB_SAMPLES,
    weights: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    int8_cosine_floor: float = INT8_COSINE_FLOOR,
    seed: int = 0,
    float_layers: str | None = None,
    reparameterize: bool = False,
    calibration_seed: int = 0,
) -> ExportResult:
    """Export a registered model to `<out_dir or artifacts>/<slug>/` and return where and what.

    Files: model.pt (the weights used), model.onnx, model_fp32.tflite, model_int8.tflite (those
    `formats` ask for, plus what they derive from) and manifest.json. Reuses an existing
    directory when its manifest records the same request and every sha256 still matches, unless
    `force`. Raises ConfigError / WeightsError for bad input, ExportError when a step fails,
    ParityError when a converted model does not compute the reference's function. `float_layers`: int8 ops
    kept in float, 'auto[:N]' (the N that add the most error on the calibration inputs) or comma-separated names
    (converters/float_layers.py); recorded in the manifest's int8 entry, and part of the request and the slug.
    `calibration_seed` seeds the class-balanced draw from a calibration folder (converters/calibration.py
    `draw_images`), recorded in the manifest. `reparameterize` exports
    the model's deployment form (converters/reparam.py: its own fuse()/reparameterize(), timm's convention).
    """
    from mobiledeploy.registry import get_spec

    started = time.perf_counter()
    report = progress or (lambda stage, event, seconds: None)
    spec = get_spec(arch)
    config = dict(config)
    shape = _input_shape(spec, config.pop("input_shape", None), resolution)
    full = spec.resolve(config)
    size = (shape[2], shape[3])
    wanted = resolve_formats(formats)
    if not 0.0 <= int8_cosine_floor <= 1.0:
        raise ConfigError(f"int8 cosine floor must be within 0..1, got {int8_cosine_floor}")
    if set(wanted) & set(PTE_FORMATS):
        from .executorch import check_source, require_executorch

        require_executorch()
        check_source((spec.source or {}).get("kind", "zoo"), (spec.source or {}).get("ref", spec.name))
    if weights and spec.source and spec.source["kind"] != "callable":
        raise ConfigError(f"--weights applies to --model-fn and --arch models; {spec.source['ref']} holds its own weights")
    if reparameterize and (spec.source or {}).get("kind") in ("onnx", "exported_program"):
        raise ConfigError(f"--reparameterize applies to --model-fn and --arch models; {spec.source['ref']} is exported already")
    from .provenance import code_digest

    request = _request(spec.name, full, size, calibration, calib_samples, weights, seed, spec.source,
                       float_layers, code_digest(spec), calibration_seed)
    from .calibration import check_input_memory

    check_input_memory(size, calib_samples if _quantised(wanted) else 0)  # before any model is built
    if reparameterize:  # another model than the training form: its own folder (-rep) and request key
        request.update(reparameterize=True, slug=f"{request['slug']}-rep")
    out_root = (Path(out_dir) if out_dir is not None else DEFAULT_OUT).absolute()
    created = _missing_dirs(out_root)
    try:
        return _export_into(out_root, request, spec, full, size, wanted, calibration, calib_samples, weights, seed,
                            force, int8_cosine_floor, report, started)
    except BaseException:
        for folder in created:  # the folders this call made for --out, deepest first, if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _input_shape(spec: Any, given: Any, resolution: int | str | tuple[int, int]) -> tuple[int, ...]:
    """NCHW input of the export: 1x3x`resolution` for the zoo; for a user's model the shape given
    (--input-shape), else the one it declares (its callable, its ONNX or ExportedProgram input)."""
    from mobiledeploy.analysis import parse_resolution
    from mobiledeploy.sources import image_input_shape, parse_input_shape

    if spec.source is None:
        if given is not None:
            raise ConfigError(f"{spec.name} takes its input size from --resolution, not --input-shape")
        return (1, 3, *parse_resolution(resolution))
    if given is not None:
        shape = parse_input_shape(given)
    elif spec.input_shape is not None:
        shape = tuple(spec.input_shape)
    else:
        why = "no input shape" if spec.source["kind"] == "callable" else "no static input shape (dynamic dimensions)"
        raise ConfigError(f"{spec.source['ref']} declares {why}: give one with --input-shape, "
                          "e.g. --input-shape 1x3x224x224")
    image_input_shape(shape, spec.source["ref"])
    return shape


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _export_into(out_root: Path, request: dict[str, Any], spec: Any, full: dict[str, Any], size: tuple[int, int],
                 wanted: tuple[str, ...], calibration: str | Path, calib_samples: int, weights: str | None, seed: int,
                 force: bool, int8_cosine_floor: float, report: Progress, started: float) -> ExportResult:
    out_root = _writable_dir(out_root)
    target = out_root / request["slug"]
    if not force:
        manifest = _reusable(target, request, wanted, int8_cosine_floor)
        if manifest is not None:
            report("reuse", "done", time.perf_counter() - started)
            return ExportResult(target, manifest, reused=True)
    _may_replace(target, request)
    wanted = _with_existing(target, request, wanted)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=out_root))
    except OSError as exc:
        raise ExportError(f"cannot write to {out_root}: {exc.strerror or exc}") from None
    try:
        _match_umask(tmp)
        manifest = _build(tmp, spec, full, size, wanted, calibration, calib_samples, weights, seed,
                          int8_cosine_floor, request, _Stages(report), started)
        _commit(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(target, manifest, reused=False)


class _Stages:
    """Times each stage and tells `progress`; `seconds` becomes the manifest's stage_seconds."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time one stage; a stage run again (the fp32 conversion retried in onnx2tf's strict mode) adds up."""
        self.progress(name, "start", None)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self.progress(name, "failed", time.perf_counter() - start)
            raise
        seconds = time.perf_counter() - start
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)
        self.progress(name, "done", round(seconds, 3))


def _build(
    tmp: Path, spec: Any, config: dict[str, Any], size: tuple[int, int], wanted: tuple[str, ...],
    calibration: str | Path, calib_samples: int, weights: str | None, seed: int, floor: float,
    request: dict[str, Any], stage: _Stages, started: float,
) -> Manifest:
    from .calibration import calibration_set

    h, w = size
    work = tmp / ".work"
    work.mkdir()
    artifacts: dict[str, dict[str, Any]] = {}
    parity: dict[str, dict[str, Any]] = {}
    kind = (spec.source or {}).get("kind", "zoo")
    with stage("model"):
        model = _model(tmp, spec, config, (1, 3, h, w), weights, seed, artifacts)
        if request.get("reparameterize"):
            from .reparam import reparameterize

            reparameterized = reparameterize(model, (1, 3, h, w), (spec.source or {}).get("ref", spec.name), seed,
                                             spec.mean, spec.std)
    complexity = None
    if kind in ("zoo", "callable"):  # a torch module with its layers: the per-module count
        complexity = _analysis(stage, spec, config, model=model, shape=(1, 3, h, w))
    with stage("calibration"):
        inputs = calibration_set(calibration, calib_samples, size, spec.mean, spec.std, seed, calibrate=_quantised(wanted),
                                 calibration_seed=request.get("calibration_seed", 0))
    onnx_path, reference = _onnx_stages(tmp, spec, model, (1, 3, h, w), inputs.holdout, artifacts, parity, stage)
    if complexity is None:  # an ONNX file or an ExportedProgram: counted on the ONNX graph
        complexity = _analysis(stage, spec, config, onnx_path=onnx_path)
    if "fp32" in wanted:
        artifacts.update(_tflite_stages(tmp, work, onnx_path, wanted, inputs, reference, floor, parity, stage,
                                        request.get("float_layers")))
    if "pte_fp32" in wanted:
        from .executorch import pte_stages

        artifacts.update(pte_stages(tmp, model, (1, 3, h, w), (spec.source or {}).get("ref", spec.name), wanted, inputs,
                                    reference, floor, parity, stage, _require_passed))
    with stage("manifest"):
        shutil.rmtree(work)
        manifest = Manifest.from_dict({  # the keys in this order, which the file keeps
            "schema_version": SCHEMA_VERSION,
            "arch": spec.name,
            "config": config,
            "resolution": [h, w],
            "slug": request["slug"],
            "mean": list(spec.mean),
            "std": list(spec.std),
            "complexity": complexity,
            "artifacts": artifacts,
            "parity": parity,
            "calibration": inputs.info,
            "versions": request["versions"],
            "stage_seconds": {},
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "request": request,
            "code": request["code"],
            **({"source": spec.source} if spec.source else {}),
            **({"reparameterized": reparameterized} if request.get("reparameterize") else {}),
        })
    manifest.stage_seconds = {**stage.seconds, "total": round(time.perf_counter() - started, 3)}
    write_manifest(manifest, tmp)
    return manifest


def _model(tmp: Path, spec: Any, config: dict[str, Any], shape: tuple[int, ...], weights: str | None, seed: int,
           artifacts: dict[str, dict[str, Any]]) -> Any:
    """The PyTorch model with the weights used (saved as model.pt), checked to run on `shape`;
    None for an ONNX file, which has no PyTorch model."""
    import torch

    from mobiledeploy.registry import build_from_config

    if (spec.source or {}).get("kind") == "onnx":
        return None
    model = build_from_config(spec.name, config, seed=seed)
    if weights:
        from mobiledeploy.models.common import load_weights

        load_weights(model, weights)
    if spec.source:
        _check_forward(model, shape, spec.source["ref"])
    torch.save(model.state_dict(), tmp / FILE_NAMES["weights"])
    source = str(Path(weights).resolve()) if weights else f"seeded init (seed {seed})"
    if (spec.source or {}).get("kind") == "exported_program":
        source = f"the ExportedProgram {Path(spec.source['path']).name}"
    artifacts["weights"] = {**file_entry(tmp, FILE_NAMES["weights"]), "source": source}
    return model


def _check_forward(model: Any, shape: tuple[int, ...], ref: str) -> None:
    """A user's model runs on the input shape, or one line saying why (the op's error) and where."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(shape))
    except SystemExit as exc:  # the user's forward ended the process: one line, never its exit code
        from mobiledeploy.sources import exit_said

        raise ExportError(f"{ref} {exit_said(exc)} at stage 'build the model'") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ExportError(f"{ref} fails on input {'x'.join(map(str, shape))} at stage 'build the model': "
                          f"{type(exc).__name__}: {first}") from None
    if not isinstance(out, torch.Tensor):
        raise ExportError(f"{ref} returns {type(out).__name__}; mobiledeploy exports models with one tensor output")


def _analysis(stage: _Stages, spec: Any, config: dict[str, Any], *, model: Any = None, shape: tuple[int, ...] = (),
              onnx_path: Path | None = None) -> dict[str, Any]:
    """The complexity the manifest records: per-module on the PyTorch model, else per ONNX node."""
    with stage("analysis"):
        if model is not None:
            from mobiledeploy.analysis import analyse_model

            cost = analyse_model(model, shape, arch=spec.name, config=config)
        else:
            from mobiledeploy.analysis_onnx import analyse_onnx

            cost = analyse_onnx(onnx_path, arch=spec.name, config=config)  # type: ignore[arg-type]
        out = {"macs": cost.macs, "params": cost.params, "memory_access": cost.memory_access,
               "elementwise": cost.elementwise}
        if spec.source:
            out.update({"counted_on": "pytorch" if model is not None else "onnx", "unknown_ops": cost.unknown_ops})
        return out


def _onnx_stages(tmp: Path, spec: Any, model: Any, shape: tuple[int, ...], holdout: Any,
                 artifacts: dict[str, dict[str, Any]], parity: dict[str, dict[str, Any]],
                 stage: _Stages) -> tuple[Path, Any]:
    """model.onnx and its parity; returns its path and the reference outputs every later stage must match
    (PyTorch's, or ONNX Runtime's on the user's own ONNX file)."""
    from .onnx_export import OPSET, export_onnx, import_onnx, onnx_io, onnx_op_counts, onnx_opset
    from .parity import error_stats, onnx_outputs, torch_outputs

    path = tmp / FILE_NAMES["onnx"]
    with stage("onnx"):
        if model is None:
            import_onnx(spec.source["path"], shape, path)
        else:
            export_onnx(model, shape, path, opset=OPSET)
        ins, outs = onnx_io(path)
        artifacts["onnx"] = {**file_entry(tmp, FILE_NAMES["onnx"]), "opset": onnx_opset(path), "inputs": ins,
                             "outputs": outs, "op_counts": onnx_op_counts(path)}
    with stage("onnx_parity"):
        if model is None:
            reference, name = onnx_outputs(spec.source["path"], holdout), "onnxruntime"
        else:
            reference, name = torch_outputs(model, holdout), "torch"
        parity["onnx"] = {"reference": name, **error_stats(reference, onnx_outputs(path, holdout), FP32_TOLERANCE)}
        _require_passed("ONNX", parity["onnx"], reference)
    return path, reference


def _tflite_fp32_stages(tmp: Path, work: Path, inputs: Any, reference: Any, parity: dict[str, dict[str, Any]],
                        stage: _Stages, shuffles: Any, artifacts: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """The Keras graph of model_nhwc.onnx and the fp32 .tflite made from it, checked against the reference:
    onnx2tf's strict mode only when the graph made without it fails parity. (the Keras model, the fp32 outputs)"""
    import tf_keras

    from .calibration import synthetic_images
    from .parity import error_stats, tflite_outputs
    from .tflite import inspect_tflite, onnx_to_keras, require_builtin_ops, tflite_fp32

    for strict in (False, True):
        with stage("tf_graph"):
            keras_model = onnx_to_keras(work / "model_nhwc.onnx", work, synthetic_images(20, (128, 128), SAMPLE_DATA_SEED),
                                        strict=strict)
        with stage("fp32"):
            artifacts["fp32"] = _tflite_entry(tflite_fp32(keras_model, tmp / FILE_NAMES["fp32"]), shuffles,
                                              inspect_tflite, require_builtin_ops)
        with stage("fp32_parity"):
            fp32_out = tflite_outputs(tmp / FILE_NAMES["fp32"], inputs.holdout)
            parity["fp32"] = {"reference": parity["onnx"]["reference"], **error_stats(reference, fp32_out, FP32_TOLERANCE),
                              "onnx2tf_strict": strict}
        if parity["fp32"]["passed"]:
            break
        tf_keras.backend.clear_session()
    _require_passed("TFLite fp32", parity["fp32"], reference)
    return keras_model, fp32_out


def _rewritten(model: Any) -> tuple[Any, int]:
    """The ONNX graph onnx2tf converts: every exact rewrite (converters/layout.py, delegable.py, strided.py,
    channels_last.py, modern.py) applied, and how many channel shuffles became NHWC ones."""
    from .channels_last import channels_last_as_nchw
    from .delegable import avgpool_as_depthwise, hardsigmoid_as_relu6, relu_of_shared_add, relu_through_concat
    from .layout import maxpool_explicit_padding, nhwc_channel_shuffles, shuffle_after_strided_depthwise
    from .modern import gelu_as_builtin
    from .strided import strided_slice_as_reshape

    model, _ = shuffle_after_strided_depthwise(model)
    model, shuffles = nhwc_channel_shuffles(model)
    model, _ = maxpool_explicit_padding(model)
    model, _ = relu_through_concat(model)  # before the pools turn into convs: they keep the sign
    model, _ = relu_of_shared_add(model)
    model, _ = avgpool_as_depthwise(model)
    model, _ = hardsigmoid_as_relu6(model)
    model, _ = strided_slice_as_reshape(model)
    model, _ = channels_last_as_nchw(model)  # before GELU's: it reads the shapes opset 17 infers
    model, _ = gelu_as_builtin(model)  # last: the Gelu op is unknown to opset 17's shape inference
    return model, shuffles


def _tflite_stages(
    tmp: Path, work: Path, onnx_path: Path, wanted: tuple[str, ...], inputs: Any, reference: Any,
    floor: float, parity: dict[str, dict[str, Any]], stage: _Stages, float_layers: str | None = None,
) -> dict[str, dict[str, Any]]:
    import onnx

    from .arm_check import ArmCheck
    from .parity import int8_parity, tflite_outputs
    from .tflite import import_tensorflow, unsupported_line, unsupported_ops

    artifacts: dict[str, dict[str, Any]] = {}

    if missing := unsupported_ops(onnx_path):  # before TensorFlow's import: the op, not an intermediate file
        raise ExportError(unsupported_line(missing))
    with stage("tensorflow"):
        import_tensorflow(work / "tensorflow.log")
    import tf_keras

    try:
        with stage("tf_graph"):
            prepared, shuffles = _rewritten(onnx.load(str(onnx_path)))
            onnx.save(prepared, str(work / "model_nhwc.onnx"))
        keras_model, fp32_out = _tflite_fp32_stages(tmp, work, inputs, reference, parity, stage, shuffles, artifacts)
        with ArmCheck(inputs.holdout) as arm:  # each emulated run starts as soon as its file is final
            arm.start("fp32", tmp / FILE_NAMES["fp32"])
            if "int8" in wanted:
                with stage("int8"):
                    artifacts["int8"] = _int8(tmp, keras_model, inputs, float_layers, shuffles)
                with stage("int8_parity"):
                    parity["int8"] = int8_parity(fp32_out, tflite_outputs(tmp / FILE_NAMES["int8"], inputs.holdout), floor)
                    _require_passed("TFLite int8", parity["int8"], fp32_out)
                arm.start("int8", tmp / FILE_NAMES["int8"])
            if "int16x8" in wanted:
                artifacts["int16x8"] = _int16x8_stages(tmp, inputs, fp32_out, floor, parity, stage, shuffles)
            with stage("arm"):  # what is left of the Arm runs once the files are made
                parity["arm"] = arm.report(reference, floor)
                _require_arm(parity["arm"])
    finally:
        tf_keras.backend.clear_session()
    return artifacts


def _int16x8_stages(tmp: Path, inputs: Any, fp32_out: Any, floor: float, parity: dict[str, dict[str, Any]],
                    stage: _Stages, shuffles: int) -> dict[str, Any]:
    """TFLite's int16x8 file quantised from the fp32 one, and its parity against fp32 (the int8 floor)."""
    from .parity import int8_parity, tflite_outputs
    from .tflite import inspect_tflite, require_builtin_ops, tflite_int16x8

    with stage("int16x8"):
        path = tflite_int16x8(tmp / FILE_NAMES["fp32"], tmp / FILE_NAMES["int16x8"], inputs.calibration)
        entry = {**_tflite_entry(path, shuffles, inspect_tflite, require_builtin_ops),
                 "scheme": "int16x8: int16 activations, input and output, per-channel int8 weights, int64 biases"}
    with stage("int16x8_parity"):
        parity["int16x8"] = int8_parity(fp32_out, tflite_outputs(path, inputs.holdout), floor)
        _require_passed("TFLite int16x8", parity["int16x8"], fp32_out)
    return entry


FULL_INTEGER = "full-integer: per-channel int8 weights, int8 activations, int8 input and output"
WITH_FLOAT = "int8 (per-channel weights, int8 activations, input and output) but for the float layers"
DEFAULT_RULE = ("default: every LayerNorm's ops (converters/layernorm.py), whose full-integer RSQRT of the variance "
                "costs MobileViT-XXS int8 cosine 0.90 against 0.995; --float-layers none for full-integer")


def _int8(tmp: Path, keras_model: Any, inputs: Any, requested: str | None, shuffles: int) -> dict[str, Any]:
    """The int8 file and its manifest entry. `requested` None: the default rule, every LayerNorm's ops in float
    (full-integer when the graph has none, the same file as before the rule); 'none': full-integer; else the
    user's names, globs or auto:N (`_float_int8`). The entry's `float_layers` says what was kept in float and why."""
    from .float_layers import NONE, parse_float_layers
    from .layernorm import layernorm_outputs

    parsed = parse_float_layers(requested)
    fp32 = tmp / FILE_NAMES["fp32"]
    norms = layernorm_outputs(fp32.read_bytes()) if parsed is None else []
    if norms:
        return _int8_file(tmp, keras_model, inputs, shuffles, [n for norm in norms for n in norm], readers=False,
                          record={"requested": None, "chosen_by": DEFAULT_RULE, "layernorms": len(norms),
                                  "layers": list(dict.fromkeys(n.split(";")[0] for norm in norms for n in norm))})
    if parsed is None or parsed[0] == NONE:
        record = {"requested": NONE, "layers": [], "chosen_by": "--float-layers none: full-integer"} if parsed else None
        return _int8_file(tmp, keras_model, inputs, shuffles, [], record=record)
    return _float_int8(tmp, keras_model, inputs, str(requested), shuffles)


def _int8_file(tmp: Path, keras_model: Any, inputs: Any, shuffles: int, names: list[str], readers: bool = True,
               record: dict[str, Any] | None = None) -> dict[str, Any]:
    """model_int8.tflite with `names` in float (and their readers), and its entry with `record` as float_layers."""
    from .tflite import inspect_tflite, require_builtin_ops, tflite_int8

    path = tflite_int8(keras_model, tmp / FILE_NAMES["int8"], inputs.calibration, fp32_path=tmp / FILE_NAMES["fp32"],
                       float_layers=names, float_readers=readers)
    entry = {**_tflite_entry(path, shuffles, inspect_tflite, require_builtin_ops),
             "scheme": WITH_FLOAT if names else FULL_INTEGER}
    return {**entry, "float_layers": record} if record else entry


def _float_int8(tmp: Path, keras_model: Any, inputs: Any, requested: str, shuffles: int) -> dict[str, Any]:
    """The int8 file with the user's layers in float: names and globs (recorded as the names they matched), or the
    N worst on the calibration inputs for 'auto:N', measured against a full-integer file made first."""
    from mobiledeploy.quant_error import layer_errors

    from .float_layers import match_layers, parse_float_layers, worst_layers

    mode, value = parse_float_layers(requested)  # type: ignore[misc]
    fp32, int8 = tmp / FILE_NAMES["fp32"], tmp / FILE_NAMES["int8"]
    if mode == "auto":
        _int8_file(tmp, keras_model, inputs, shuffles, [])
        names = worst_layers(layer_errors(fp32, int8, inputs.calibration[:16]), value)
    else:
        names = match_layers(fp32.read_bytes(), value)
    chosen_by = "added error on 16 calibration inputs" if mode == "auto" else "--float-layers names and globs"
    return _int8_file(tmp, keras_model, inputs, shuffles, names,
                      record={"requested": requested, "layers": names, "chosen_by": chosen_by})


def _tflite_entry(path: Path, shuffles: int, inspect: Callable, require_builtin: Callable) -> dict[str, Any]:
    from .delegation import host_delegation

    info = inspect(path)
    require_builtin(path, info)
    return {**file_entry(path.parent, path.name), "inputs": info["inputs"], "outputs": info["outputs"],
            "op_counts": info["op_counts"], "channel_shuffles": shuffles, "delegation": host_delegation(path)}


def _require_arm(result: dict[str, Any]) -> None:
    """The Arm stage fails the export like any parity step: the first artifact that differs, in one line."""
    for fmt in ("fp32", "int8"):
        entry = result.get(fmt)
        if not entry or entry.get("passed"):
            continue
        if "vs_torch" in entry and not entry["vs_torch"]["passed"]:
            raise ParityError(f"TFLite fp32 on Arm ({result['device']}) does not match torch: max relative error "
                              f"{entry['vs_torch']['max_rel']:.3g} (tolerance {entry['vs_torch']['tolerance']})")
        if entry.get("vs_host_steps", 0) > 1:
            raise ParityError(f"TFLite int8 on Arm ({result['device']}) differs from the host by "
                              f"{entry['vs_host_steps']} quantisation steps{_first_difference(entry)}")
        raise ParityError(f"TFLite {fmt} on Arm ({result['device']}) does not match its fp32 output")


def _first_difference(entry: dict[str, Any]) -> str:
    """'; first at OP (node N): S steps in E of T values, a defect: why' from the Arm check's located difference."""
    found = entry.get("first_difference")
    if not found:
        return f"; {entry['why']}" if entry.get("why") else ""
    return (f"; first at {found['op']} (node {found['node']}): {found['max_steps']} steps in {found['elements']} of "
            f"{found['of']} values, a {entry['verdict'].replace('_', ' ')}: {entry['why']}")


def _require_passed(what: str, result: dict[str, Any], reference: Any = None) -> None:
    """ParityError (one line) for a failed check; when the fp32 `reference` outputs vanish or ignore the input,
    that is what the line says (converters/diagnosis.py), not a figure that cannot judge."""
    if result["passed"]:
        return
    from .diagnosis import degenerate_outputs

    why = degenerate_outputs(reference) if reference is not None else None
    if why:
        raise ParityError(f"{what} cannot be checked: {why}")
    if "cosine" in result:
        raise ParityError(
            f"{what} does not match fp32: cosine {result['cosine']:.4f} < floor {result['floor']} "
            f"(top-1 agreement {result['top1_agreement']:.0%}, SQNR {result['sqnr_db'] or 0:.1f} dB)"
        )
    if result.get("error"):
        raise ParityError(f"{what} does not match {result.get('reference', 'torch')}: {result['error']}")
    raise ParityError(
        f"{what} does not match {result.get('reference', 'torch')}: max abs error {result['max_abs']:.3g} is {result['max_rel']:.3g} of the "
        f"output range (tolerance {result['tolerance']})"
    )


def _request(arch: str, config: dict[str, Any], size: tuple[int, int], calibration: str | Path, calib_samples: int,
             weights: str | None, seed: int, source: dict[str, Any] | None = None,
             float_layers: str | None = None, code: dict[str, Any] | None = None,
             calibration_seed: int = 0) -> dict[str, Any]:
    """Everything the files depend on, JSON-normalised so it compares equal to a stored one; `code` is what
    converters.provenance.code_digest says of the exporting code and the model's own files."""
    from mobiledeploy.errors import WeightsError
    from mobiledeploy.registry import config_slug

    from .calibration import fingerprint
    from mobiledeploy.files import sha256_file
    from .onnx_export import OPSET

    if isinstance(calib_samples, bool) or not isinstance(calib_samples, int) or calib_samples < 1:
        raise ConfigError(f"calib_samples must be a positive integer, got {calib_samples!r}")
    weights_sha = None
    if weights:
        try:
            weights_sha = sha256_file(weights)
        except OSError as exc:
            raise WeightsError(f"weights file {weights} cannot be read: {exc.strerror or exc}") from None
    request = {
        "pipeline": PIPELINE_REVISION,
        "arch": arch,
        "config": config,
        "resolution": list(size),
        "slug": artifact_slug(config_slug(arch, config, size), weights_sha, calibration, calib_samples, seed,
                              source_sha256=source["sha256"] if source else None, calibration_seed=calibration_seed),
        "opset": OPSET,
        "seed": seed,
        "weights_sha256": weights_sha,
        "calibration": fingerprint(calibration, calib_samples, seed, calibration_seed=calibration_seed),
        "calib_samples": calib_samples,
        "versions": tool_versions(),
        "code": code,
    }
    if str(calibration) != "synthetic":  # the draw from a folder (synthetic requests stay as they were)
        request["calibration_seed"] = calibration_seed
    if source:  # a user's model: its file is an input like the weights (zoo requests stay as they were)
        request["source"] = {"kind": source["kind"], "sha256": source["sha256"]}
    if float_layers:  # int8 with layers in float: another file (requests without it stay as they were)
        from .float_layers import parse_float_layers

        parse_float_layers(float_layers)  # bad values fail before any work
        request["float_layers"] = str(float_layers).strip()
        request["slug"] += "-fl" + hashlib.sha256(request["float_layers"].encode()).hexdigest()[:8]
    return json.loads(json.dumps(request))


def artifact_slug(base: str, weights_sha256: str | None, calibration: str | Path, calib_samples: int,
                  seed: int = 0, source_sha256: str | None = None, calibration_seed: int = 0) -> str:
    """The artifact folder's name: the model's slug, plus what sets its inputs apart from the defaults
    (seeded init, synthetic calibration of 32): `-m<sha256 of a user's model file>`, `-w<sha256 of the
    weights>`, `-cal<digest of the images>` or `-syn<N>`, so an export from another model file, other
    weights or calibration never lands in another's folder."""
    from .calibration import SYNTHETIC, fingerprint

    parts = [base]
    if source_sha256:
        parts.append(f"m{source_sha256[:8]}")
    if weights_sha256:
        parts.append(f"w{weights_sha256[:8]}")
    if str(calibration) != SYNTHETIC:
        digest = fingerprint(calibration, calib_samples, seed, calibration_seed=calibration_seed).removeprefix("dir:")
        parts.append(f"cal{digest[:8]}")
    elif calib_samples != DEFAULT_CALIB_SAMPLES:
        parts.append(f"syn{calib_samples}")
    return "-".join(parts)


def _may_replace(target: Path, request: dict[str, Any]) -> None:
    """Refuse (ExportError) to rebuild `target` in place when it holds files the toolkit did not write,
    or an export from other weights or calibration: its files are someone's, not ours to delete."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise ExportError(f"{target} exists and is not an export folder: not replacing it (move it, or use --out)")
    ours = {MANIFEST_NAME, *FILE_NAMES.values()}
    foreign = sorted(p.relative_to(target).as_posix() for p in target.rglob("*")
                     if p.relative_to(target).as_posix() not in ours)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ExportError(f"{target} holds files mobiledeploy did not write ({shown}): not rebuilding it in place, "
                          "which would delete them; move them, or export elsewhere with --out")
    try:
        old = read_manifest(target).request if (target / MANIFEST_NAME).is_file() else {}
    except ExportError:
        old = {}
    for key, what in (("weights_sha256", "weights"), ("calibration", "calibration")):
        if key in old and old[key] != request[key]:
            raise ExportError(f"{target} holds an export from other {what} ({old[key] or 'seeded init'}): not "
                              "replacing it; remove it yourself, or export elsewhere with --out")


def _with_existing(target: Path, request: dict[str, Any], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """`wanted` plus the formats a folder made from the same request already holds: a rebuild for a format it
    lacks (a .pte beside the .tflite files) must not drop the others, or two runtimes would rebuild in turn."""
    try:
        manifest = read_manifest(target) if (target / MANIFEST_NAME).is_file() else Manifest()
    except ExportError:
        return wanted
    if manifest.request != request:
        return wanted
    held = [f for f in manifest.artifacts if f in ALL_FORMATS]
    return resolve_formats([*wanted, *held])


def _quantised(wanted: tuple[str, ...]) -> bool:
    """Whether an int8 artifact (.tflite or .pte) is asked for: only then are calibration inputs made."""
    return any(ARTIFACT_KINDS[f].precision in ("int8", "int16x8") for f in wanted)


def _reusable(target: Path, request: dict[str, Any], wanted: tuple[str, ...], floor: float) -> Manifest | None:
    """The manifest of `target` when it can stand for a fresh export of `request`, else None."""
    if not (target / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = read_manifest(target)
    except ExportError:
        return None
    if manifest.request != request or artifact_problems(manifest, target, wanted):
        return None
    int8 = manifest.parity.get("int8")
    if "int8" in wanted and int8 and int8["cosine"] < floor:
        raise ParityError(f"int8 model in {target} has cosine {int8['cosine']:.4f} vs fp32, below the floor {floor}")
    return manifest


def _writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create output directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ExportError(f"output directory {path} is not writable")
    return path


def _match_umask(path: Path) -> None:
    """mkdtemp makes 0700 directories; the artifact directory should get the usual permissions."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o777 & ~mask)


def _commit(tmp: Path, target: Path) -> None:
    """Move the finished `tmp` to `target`, replacing what was there only once `tmp` is in place."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
