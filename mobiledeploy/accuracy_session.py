"""The session of `accuracy`: check the devices, the labelled folder and that the model classifies its labels,
export (or reuse) the model, run every artifact on the decoded images (`accuracy.evaluate`) and store the
evaluation. The CLI builds an `AccuracyRequest`, calls `accuracy_session` with its displays and prints.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["AccuracyRequest", "accuracy_session", "emulated_cpus", "check_classifier_of"]

#: a display entered around one part of the session; what it yields is that part's progress callback
Display = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class AccuracyRequest:
    """Everything `accuracy` was asked: the labelled images, the model and its export's inputs, where to run."""

    images: Path
    name: str
    config: dict[str, Any]
    resolution: str = "224"
    weights: str | None = None
    labels: Path | None = None  # a labels file ('PATH LABEL' per line) instead of class folders
    classes: Path | None = None  # the model's class names in output order
    limit: int | None = None
    per_layer: int = 0  # int8 error per layer on the first N images
    devices: tuple[str, ...] = ("local",)
    calibration: str = "synthetic"
    calib_samples: int = 32
    out: Path | None = None  # the artifacts root
    int16_activations: bool = False  # also model_int16x8.tflite
    export_options: dict[str, Any] = field(default_factory=dict)  # float_layers, int8_cosine_floor, calibration_seed


def emulated_cpus(devices: tuple[str, ...] | list[str]) -> list[str]:
    """The emulated cores among --device values; the host is always evaluated. Phones are not (yet)."""
    from .devices.kinds import kind_of, parse_device_uri
    from .errors import ConfigError

    cpus = []
    for uri in devices:
        kind = kind_of(uri)
        if kind.host_cpus:
            continue
        if kind.unit != "instructions":
            raise ConfigError(f"accuracy runs on local and qemu:CPU devices, not {uri} (phones: not yet)")
        cpus.append(parse_device_uri(uri)[1])
    return list(dict.fromkeys(cpus))


def check_classifier_of(name: str, config: dict[str, Any], resolution: str, labels: list[int]) -> None:
    """ConfigError, before any export, when the model's outputs cannot be a classifier of these labels."""
    from .accuracy import check_classifier, output_shapes
    from .registry import get_spec

    shapes = output_shapes(name, config, resolution)
    if shapes is not None:
        check_classifier(shapes, labels, (get_spec(name).source or {}).get("ref", name))


def accuracy_session(req: AccuracyRequest, db: str | None, export_display: Display, image_display: Display,
                     exported: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Check (devices, folder, classifier: bad input fails before any export), export, evaluate every artifact
    and store: the evaluation (`accuracy.evaluate`'s report) with its `evaluation_id`. `exported` sees the
    export's Manifest before any image is decoded; each display is entered around its part (export stages,
    then one tick per image and artifact)."""
    from .accuracy_store import store_accuracy
    from .labelled import find_labelled

    arm_cpus = emulated_cpus(req.devices)
    found = find_labelled(req.images, req.labels, req.classes, req.limit)  # bad folders fail before any export
    check_classifier_of(req.name, req.config, req.resolution, found.labels)
    result = _export(req, export_display)
    if exported is not None:
        exported(result.manifest)
    report = _evaluate(result, found, arm_cpus, req.per_layer, image_display)
    report["evaluation_id"] = store_accuracy(report, db, result.manifest)
    return report


def _export(req: AccuracyRequest, display: Display) -> Any:
    from .converters import DEFAULT_OUT, export_model
    from .converters.pipeline import FORMATS

    extra = {"formats": (*FORMATS, "int16x8")} if req.int16_activations else {}
    with display() as progress:
        return export_model(req.name, req.config, resolution=req.resolution, out_dir=req.out or DEFAULT_OUT,
                            weights=req.weights, calibration=req.calibration, calib_samples=req.calib_samples,
                            progress=progress, **req.export_options, **extra)


def _evaluate(exported: Any, found: Any, arm_cpus: list[str], per_layer: int, display: Display) -> dict[str, Any]:
    from .accuracy import classifier_outputs, evaluate
    from .labelled import load_labelled

    classifier_outputs(exported.manifest, found.labels)  # before decoding every image
    h, w = exported.manifest.resolution
    with display() as progress:
        data = load_labelled(found, (h, w))
        return evaluate(exported.path, exported.manifest, data, arm_cpus, progress, per_layer=per_layer)
