"""Accuracy of an export's artifacts on labelled images: torch fp32, ONNX, TFLite fp32 and int8 on this host,
and the TFLite files on emulated Arm cores.

Every artifact sees the same decoded images, normalised with the manifest's mean/std (NCHW; the TFLite files
NHWC, int8 ones quantised with their input's scale and zero point, `converters.parity.feed_tensor`). Each
result is top-1/top-5 with its Wilson interval; fp32 against int8 (same device) is the paired difference with
McNemar's exact test (`mobiledeploy.proportions`); int8 on Arm is compared with int8 on the host output by
output (the same integer kernels should give the same integers: the images that differ are named).
Figures are *measured* accuracy on the user's images, never estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import ConfigError
from .labelled import LabelledSet
from .proportions import paired_difference, wilson_interval

if TYPE_CHECKING:
    from .converters.manifest import Manifest

__all__ = ["Scored", "evaluate", "classifier_outputs", "check_classifier", "output_shapes", "score", "arm_agreement", "calibration_mismatch", "CONFIDENCE",
           "REPORT_KIND"]

CONFIDENCE = 0.95
REPORT_KIND = "mobiledeploy-accuracy"
Tick = Callable[[int], None]  # told how many more images are done
TFLITE_KINDS = ("fp32", "int8", "int16x8")  # the .tflite artifacts evaluated, those the export has


@dataclass
class Scored:
    artifact: str  # torch | onnx | fp32 | int8
    device: str  # local | qemu:CPU
    runtime: str  # torch | onnxruntime | litert
    logits: np.ndarray  # (n, classes) float
    raw: np.ndarray | None = None  # the TFLite output tensor as it came (int8 for int8)
    emulated: bool = False  # run on an emulated Arm core (compared with the host's run of the same file)

    @property
    def key(self) -> str:
        return f"{self.artifact}@{self.device}"


def classifier_outputs(manifest: Manifest, labels: Sequence[int]) -> int:
    """The number of classes of the export's one (1, K) output; ConfigError when the model is not a classifier
    of the labels' classes."""
    onnx = manifest.artifacts.get("onnx")
    outputs = (onnx.outputs if onnx else None) or []
    return check_classifier([list(o.get("shape") or []) for o in outputs], labels, str(manifest.slug))


def check_classifier(shapes: Sequence[Sequence[Any]], labels: Sequence[int], name: str) -> int:
    """K of a model whose outputs are one (1, K) tensor, K >= 2 and above every label index; else ConfigError in one
    line (a segmentation-like NCHW output, a scalar regression output, several outputs, or labels beyond K)."""
    shape = list(shapes[0]) if len(shapes) == 1 else []
    if len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 2:
        shown = " and ".join("x".join(map(str, s)) for s in shapes) or "none"
        raise ConfigError(f"{name} has no classification output (outputs: {shown}); accuracy needs "
                          "one output of shape 1xK, K the number of classes")
    classes = shape[1]
    top = max(labels)
    if top >= classes:
        raise ConfigError(f"the labels do not match the model's classes: class index {top} but the model has "
                          f"{classes} outputs (give --classes FILE listing the model's classes in output order)")
    return classes


def output_shapes(name: str, config: dict[str, Any], resolution: str) -> list[list[Any]] | None:
    """The output shapes of a model before it is exported: a zoo or --model-fn model run once on zeros of its input
    shape (shapes do not depend on the weights), an ONNX file's declared outputs; None when they cannot be had
    cheaply (an ExportedProgram, a model that fails to build: the export says why)."""
    from .analysis import parse_resolution
    from .registry import build_from_config, get_spec
    from .sources import parse_input_shape

    spec, config = get_spec(name), dict(config)
    given = config.pop("input_shape", None)
    kind = (spec.source or {}).get("kind")
    if kind == "onnx":
        import onnx

        try:
            graph = onnx.load(spec.source["path"], load_external_data=False).graph  # type: ignore[index]
        except Exception:
            return None
        return [[d.dim_value or d.dim_param or "?" for d in o.type.tensor_type.shape.dim] for o in graph.output]
    if kind not in (None, "callable"):
        return None
    shape = (1, 3, *parse_resolution(resolution)) if spec.source is None else (
        parse_input_shape(given) if given is not None else spec.input_shape)
    if shape is None:
        return None
    import torch

    try:
        with torch.no_grad():
            out = build_from_config(name, config, seed=0)(torch.zeros(tuple(shape)))
    except Exception:
        return None
    outs = out if isinstance(out, (tuple, list)) else list(out.values()) if isinstance(out, dict) else [out]
    return [list(getattr(o, "shape", [])) for o in outs]


def torch_logits(folder: Path, manifest: Manifest, x: np.ndarray, tick: Tick) -> np.ndarray:
    """The PyTorch model of the export (its model.pt) on `x`, 64 images at a time, one thread."""
    import torch

    from .models.common import load_weights
    from .registry import build_model

    model = build_model(manifest.arch, seed=manifest.request.get("seed", 0), **manifest.config)
    load_weights(model, str(folder / manifest.file("weights")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), 64):
                out.append(model(torch.from_numpy(x[start:start + 64])).numpy())
                tick(len(out[-1]))
    finally:
        torch.set_num_threads(threads)
    return np.concatenate(out).astype(np.float32)


def onnx_logits(path: Path, x: np.ndarray, tick: Tick) -> np.ndarray:
    from .runtimes.onnxruntime import onnx_session

    session = onnx_session(path)
    name = session.get_inputs()[0].name
    out = []
    for sample in x:
        out.append(session.run(None, {name: sample[None]})[0])
        tick(1)
    return np.concatenate(out).astype(np.float32)


def tflite_feeds(path: Path, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """Every NCHW sample as `path`'s input takes it (NHWC, quantised if integer), and its io details."""
    from ai_edge_litert.interpreter import Interpreter

    from .converters.parity import feed_tensor

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    return np.stack([feed_tensor(inp, sample)[0] for sample in x]), inp, out


def tflite_logits(path: Path, x: np.ndarray, tick: Tick) -> tuple[np.ndarray, np.ndarray]:
    """(float outputs, raw outputs) of LiteRT on this host, one thread."""
    from ai_edge_litert.interpreter import Interpreter

    from .converters.parity import read_output
    from .converters.tflite import captured_output

    feeds, _, _ = tflite_feeds(path, x)
    with captured_output("/dev/null"):
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    raw = []
    for feed in feeds:
        interpreter.set_tensor(inp["index"], feed[None])
        interpreter.invoke()
        raw.append(interpreter.get_tensor(out["index"]).copy())
        tick(1)
    raw_all = np.concatenate(raw)
    return read_output(out, raw_all).astype(np.float32), raw_all


def arm_logits(env: Any, cpu: str, path: Path, x: np.ndarray, tick: Tick, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(float outputs, raw outputs) of the aarch64 LiteRT on the emulated `cpu`, `chunk` images per guest run."""
    from .converters.parity import read_output
    from .qemu.batch import run_batch

    feeds, _, out = tflite_feeds(path, x)
    raw = []
    for start in range(0, len(feeds), chunk):
        part = run_batch(env, cpu, path, feeds[start:start + chunk][:, None])
        raw.append(part.reshape(len(part), *part.shape[2:]))
        tick(len(part))
    raw_all = np.concatenate(raw)
    return read_output(out, raw_all).astype(np.float32), raw_all


def topk_correct(logits: np.ndarray, labels: Sequence[int], k: int) -> np.ndarray:
    """Per image: its label among the k highest outputs (ties broken by the lower index, as argsort)."""
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return np.any(top == np.asarray(labels)[:, None], axis=1)


def score(logits: np.ndarray, labels: Sequence[int], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """{"top1": {...}, "top5": {...}}, each {"correct", "n", "accuracy", "low", "high"} (Wilson interval)."""
    out = {}
    for k in (1, 5):
        hits = topk_correct(logits, labels, k)
        correct, n = int(hits.sum()), len(hits)
        low, high = wilson_interval(correct, n, confidence)
        out[f"top{k}"] = {"correct": correct, "n": n, "accuracy": correct / n if n else 0.0, "low": low, "high": high}
    return out


def arm_agreement(host: Scored, arm: Scored, files: Sequence[Path], root: Path) -> dict[str, Any]:
    """Arm against host, output by output: integer outputs in quantisation steps, float ones relative to the
    range; the images whose outputs or predictions differ, and by how much."""
    a, h = arm.raw.astype(np.float64), host.raw.astype(np.float64)
    diff = np.abs(a - h).reshape(len(a), -1).max(axis=1)
    if np.issubdtype(host.raw.dtype, np.integer):
        unit, per_image = "quantisation steps", diff
    else:
        span = float(h.max() - h.min()) or 1.0
        unit, per_image = "of the output range", diff / span
    differing = np.flatnonzero(per_image > 0)
    predictions = np.flatnonzero(arm.logits.argmax(1) != host.logits.argmax(1))
    examples = [{"file": _rel(files[i], root), "max_difference": float(per_image[i]),
                 "prediction_changed": bool(i in set(predictions))} for i in differing[:10]]
    return {"device": arm.device, "artifact": arm.artifact, "against": host.key, "unit": unit,
            "identical": len(differing) == 0, "images_differing": int(len(differing)),
            "max_difference": float(per_image.max()) if len(per_image) else 0.0,
            "predictions_differing": int(len(predictions)), "examples": examples}


def calibration_mismatch(manifest: Manifest, images: np.ndarray) -> str | None:
    """A sentence when the evaluation images (NHWC, 0..1) do not look like the export's int8 calibration inputs:
    mean pixel values more than half a standard deviation apart, or a 1-99% range more than twice or under half
    as wide. The calibration inputs are made again as the export made them (synthetic, or the folder's seeded
    draw, `converters.calibration.draw_images`); None when they cannot be (a folder gone)."""
    from .converters.calibration import draw_images, load_images, synthetic_images

    info = manifest.calibration or {}
    source, samples, size = info.get("source"), int(info.get("samples") or 0), tuple(manifest.resolution or ())
    if not samples:
        return None
    if source == "synthetic":
        calib = synthetic_images(samples, size, int(info.get("seed", 0)))
    elif source and Path(source).is_dir():
        seed = int((info.get("draw") or {}).get("calibration_seed", 0))
        calib = load_images(draw_images(source, samples, 0, seed).calibration, size)
    else:
        return None
    c_mean, e_mean, c_std = float(calib.mean()), float(images.mean()), float(calib.std()) or 1e-6
    (c_lo, c_hi), (e_lo, e_hi) = np.percentile(calib, [1, 99]), np.percentile(images, [1, 99])
    wide, c_wide = float(e_hi - e_lo), float(c_hi - c_lo) or 1e-6
    if abs(e_mean - c_mean) <= 0.5 * c_std and 0.5 <= wide / c_wide <= 2.0:
        return None
    return (f"the evaluation images do not look like the int8 calibration inputs ({source}): mean pixel {e_mean:.2f} "
            f"vs {c_mean:.2f}, 1-99% range [{e_lo:.2f}, {e_hi:.2f}] vs [{c_lo:.2f}, {c_hi:.2f}] (0..1); int8 ranges "
            "calibrated on other images can lose accuracy: export with --calibration DIR of images like these")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def evaluate(folder: Path, manifest: Manifest, data: LabelledSet, arm_cpus: Sequence[str] = (),
             progress: Callable[[str, int], Tick] | None = None, confidence: float = CONFIDENCE,
             per_layer: int = 0) -> dict[str, Any]:
    """Run every artifact of the export in `folder` on `data` (loaded) and judge: the report dict
    (kind REPORT_KIND). `progress(label, total)` returns the tick of one artifact's run. `per_layer` > 0: the
    int8 file's per-layer error against fp32 on that many of the images (`quant_error.layer_errors`)."""
    classifier_outputs(manifest, data.labels)
    mean, std = manifest.mean, manifest.std
    from .converters.calibration import normalise

    x = normalise(data.images, mean, std)
    progress = progress or (lambda label, total: (lambda n: None))
    report = judge(manifest, data, run_all(folder, manifest, x, arm_cpus, progress), confidence, folder)
    mismatch = calibration_mismatch(manifest, data.images) if "int8" in manifest.artifacts else None
    report["warnings"] = [mismatch] if mismatch else []
    if per_layer > 0 and {"fp32", "int8"} <= set(manifest.artifacts):
        from .quant_error import layer_errors

        tick = progress("per-layer int8 error", 1)
        rows = layer_errors(folder / manifest.file("fp32"), folder / manifest.file("int8"), x[:per_layer])
        for row in rows:  # an exact tensor's -inf dB as null: --json stays strict JSON
            row.update({k: None for k, v in row.items() if isinstance(v, float) and not np.isfinite(v)})
        report["layers"] = {"images": min(per_layer, len(x)), "sorted_by": "added_db", "rows": rows}
        tick(1)
    return report


def run_all(folder: Path, manifest: Manifest, x: np.ndarray, arm_cpus: Sequence[str],
            progress: Callable[[str, int], Tick]) -> list[Scored]:
    """Outputs of each artifact the export has: torch, onnx, fp32, int8 (int16x8) on the host, then the TFLite
    files per core."""
    artifacts = manifest.artifacts
    scored = []
    if "weights" in artifacts and (manifest.source or {}).get("kind") != "exported_program":
        scored.append(Scored("torch", "local", "torch", torch_logits(folder, manifest, x, progress("torch fp32 (local)", len(x)))))
    if "onnx" in artifacts:
        path = folder / artifacts["onnx"].path
        scored.append(Scored("onnx", "local", "onnxruntime", onnx_logits(path, x, progress("ONNX Runtime (local)", len(x)))))
    for key in TFLITE_KINDS:
        if key in artifacts:
            logits, raw = tflite_logits(folder / artifacts[key].path, x, progress(f"TFLite {key} (local)", len(x)))
            scored.append(Scored(key, "local", "litert", logits, raw))
    if arm_cpus:
        from .qemu.env import environment

        from .devices.kinds import device_uri

        env = environment()
        for cpu in arm_cpus:
            for key in TFLITE_KINDS:
                if key in artifacts:
                    uri = device_uri("qemu", cpu)
                    tick = progress(f"TFLite {key} ({uri})", len(x))
                    logits, raw = arm_logits(env, cpu, folder / artifacts[key].path, x, tick)
                    scored.append(Scored(key, uri, "litert", logits, raw, emulated=True))
    return scored


def judge(manifest: Manifest, data: LabelledSet, scored: list[Scored], confidence: float,
          folder: Path) -> dict[str, Any]:
    by_key = {s.key: s for s in scored}
    results = [{"artifact": s.artifact, "device": s.device, "runtime": s.runtime, **score(s.logits, data.labels, confidence)}
               for s in scored]
    paired = []
    for first, second in (("torch@local", "int8@local"), ("fp32@local", "int8@local"), ("fp32@local", "int16x8@local")):
        if first in by_key and second in by_key:
            a, b = (topk_correct(by_key[k].logits, data.labels, 1) for k in (first, second))
            paired.append({"first": first, "second": second, "metric": "top1", "test": "McNemar exact",
                           **paired_difference(a.tolist(), b.tolist(), confidence)})
    arm = [arm_agreement(by_key[f"{s.artifact}@local"], s, data.files, data.root)
           for s in scored if s.emulated and f"{s.artifact}@local" in by_key]
    return {"kind": REPORT_KIND, "schema_version": 1, "model": manifest.slug, "arch": manifest.arch,
            "config": manifest.config, "resolution": manifest.resolution, "export": str(folder),
            "calibration": manifest.calibration, "images": data.summary(), "confidence": confidence,
            "figures": "measured: top-k accuracy on the given images", "results": results, "paired": paired,
            "arm": arm}
