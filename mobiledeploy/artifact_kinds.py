"""The kinds of file an export makes, declared once: the key of each in a manifest's `artifacts`, its file
name in the artifact folder, and the precision a runtime times it at.

The converters name their files from here (`converters.manifest.FILE_NAMES`, the export formats), a runtime
declares the file type it reads (`artifacts_read_as(".tflite")`) and `bench`/`measure` map (runtime,
precision) to a manifest entry through it. Adding an artifact kind is one entry here (and the converter
stage that makes it). A leaf module: it imports nothing else of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

__all__ = ["ArtifactKind", "ARTIFACT_KINDS", "FILE_NAMES", "EXPORT_FORMATS", "ON_REQUEST_FORMATS", "PRECISIONS", "DEFAULT_PRECISIONS", "artifacts_read_as",
           "suffix_of", "export_request"]


@dataclass(frozen=True)
class ArtifactKind:
    key: str                 # its entry in manifest.json `artifacts`, and its `export --formats` name
    file_name: str           # its file in the artifact folder
    precision: str | None    # what a runtime times it as (fp32, int8, int16x8); None: not a model to time (the weights)
    exported: bool = True    # an export format (`export --formats`), in the order the pipeline makes them
    every_export: bool = False  # every export makes it, asked for or not (each model goes through ONNX)
    on_request: bool = False    # made only when asked for by name (not in the default export)

    @property
    def suffix(self) -> str:
        return PurePath(self.file_name).suffix


ARTIFACT_KINDS: dict[str, ArtifactKind] = {kind.key: kind for kind in (
    ArtifactKind("weights", "model.pt", None, exported=False),
    ArtifactKind("onnx", "model.onnx", "fp32", every_export=True),
    ArtifactKind("fp32", "model_fp32.tflite", "fp32"),
    ArtifactKind("int8", "model_int8.tflite", "int8"),
    # TFLite's int16x8 mode: int16 activations, int8 weights (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)
    ArtifactKind("int16x8", "model_int16x8.tflite", "int16x8", on_request=True),
    ArtifactKind("pte_fp32", "model_fp32.pte", "fp32", on_request=True),  # ExecuTorch (the executorch extra)
    ArtifactKind("pte_int8", "model_int8.pte", "int8", on_request=True),
)}

#: manifest key → file name in the artifact folder
FILE_NAMES: dict[str, str] = {key: kind.file_name for key, kind in ARTIFACT_KINDS.items()}
#: what an export makes by default, in the order they are made (each from the one before)
EXPORT_FORMATS: tuple[str, ...] = tuple(key for key, kind in ARTIFACT_KINDS.items()
                                        if kind.exported and not kind.on_request)
#: what an export makes only when asked for by name
ON_REQUEST_FORMATS: tuple[str, ...] = tuple(key for key, kind in ARTIFACT_KINDS.items() if kind.on_request)
#: the precisions a bench target can have (`bench --formats`)
PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys(k.precision for k in ARTIFACT_KINDS.values() if k.precision))
#: the precisions timed when none are named: those of the kinds every export makes (int16x8 only on request)
DEFAULT_PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys(k.precision for k in ARTIFACT_KINDS.values()
                                                          if k.precision and not k.on_request))


def artifacts_read_as(suffix: str) -> dict[str, str]:
    """precision → manifest key of the artifacts with this file suffix: '.tflite' → {"fp32": "fp32", "int8":
    "int8"}, '.onnx' → {"fp32": "onnx"}. What a runtime that reads such files times."""
    return {kind.precision: key for key, kind in ARTIFACT_KINDS.items()
            if kind.precision and kind.suffix == suffix}


def suffix_of(key: str) -> str:
    """The file suffix of a manifest artifact key ('onnx' → '.onnx')."""
    return ARTIFACT_KINDS[key].suffix


def export_request(keys: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The export formats to ask for to have `keys`: those every export makes left out, unless nothing else is
    asked (('fp32', 'onnx') → ('fp32',); ('onnx',) → ('onnx',))."""
    return tuple(k for k in keys if not ARTIFACT_KINDS[k].every_export) or tuple(keys)
