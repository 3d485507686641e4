"""torch → ONNX → TFLite fp32 and int8, parity proven at every step, one manifest per export.

    from mobiledeploy.converters import export_model
    res = export_model("shufflenet_v1", {"g": 3})     # artifacts/shufflenet_v1-g3-scale1.0-224x224/
    res.manifest.parity["int8"]["cosine"]   # a typed Manifest (converters/manifest.py)

Importing this package is cheap: torch, TensorFlow and onnx2tf load inside the functions.
"""

from .manifest import FILE_NAMES, SCHEMA_VERSION, Manifest, read_manifest
from .pipeline import DEFAULT_OUT, FORMATS, STAGES, ExportResult, artifact_slug, export_model, resolve_formats

__all__ = [
    "DEFAULT_OUT",
    "FILE_NAMES",
    "FORMATS",
    "Manifest",
    "SCHEMA_VERSION",
    "STAGES",
    "ExportResult",
    "artifact_slug",
    "export_model",
    "read_manifest",
    "resolve_formats",
]
