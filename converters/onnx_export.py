"""torch → ONNX: a fixed opset, named input and output, a graph simplified by onnxslim."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from mobiledeploy.errors import ExportError

__all__ = ["OPSET", "INPUT_NAME", "OUTPUT_NAME", "export_onnx", "import_onnx", "onnx_io", "onnx_op_counts", "onnx_opset"]

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}


def export_onnx(
    model: Any,
    input_shape: tuple[int, ...],
    path: str | Path,
    opset: int = OPSET,
    simplify: bool = True,
) -> Path:
    """Export `model` (eval mode, batch-1 NCHW input of `input_shape`) to `path`; returns `path`.

    The TorchScript-based exporter is used (`dynamo=False`): it needs no extra dependency and
    gives the plain Conv/Reshape/Transpose graphs onnx2tf converts best. Raises ExportError.
    """
    import onnx
    import torch

    path = Path(path)
    model.eval()
    dummy = torch.zeros(input_shape, dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (dummy,), str(path), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
            )
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"ONNX export failed at input {tuple(input_shape)}: {first_line}") from exc
    graph = onnx.load(str(path))
    if simplify:
        import onnxslim

        graph = onnxslim.slim(graph)
        onnx.save(graph, str(path))
    try:
        onnx.checker.check_model(graph, full_check=True)
    except Exception as exc:
        raise ExportError(f"exported ONNX graph is invalid: {exc}") from exc
    return path


def onnx_io(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) in the manifest's io format; 4-D tensors are NCHW, 2-D ones NC."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
        return {"name": value.name, "shape": shape, "dtype": _ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)),
                "layout": _layout(len(shape), channels_last=False), "quantization": None}

    initializers = {i.name for i in graph.initializer}
    inputs = [describe(v) for v in graph.input if v.name not in initializers]
    return inputs, [describe(v) for v in graph.output]


def onnx_op_counts(path: str | Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(sorted(Counter(node.op_type for node in graph.node).items()))


def _layout(rank: int, channels_last: bool) -> str:
    return {4: "NHWC" if channels_last else "NCHW", 2: "NC"}.get(rank, "")


def import_onnx(source: str | Path, input_shape: tuple[int, ...], path: str | Path, simplify: bool = True) -> Path:
    """A user's ONNX file, checked (ONNX checker), its one input fixed to `input_shape`, simplified by
    onnxslim, written to `path`. Raises ExportError naming what fails."""
    import onnx

    name = Path(source).name
    model = onnx.load(str(source))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{name} fails the ONNX checker: {_first_line(exc)}") from None
    initializers = {i.name for i in model.graph.initializer}
    value = next(v for v in model.graph.input if v.name not in initializers)
    for dim, size in zip(value.type.tensor_type.shape.dim, input_shape):
        dim.Clear()
        dim.dim_value = size
    for output in model.graph.output:  # shapes recomputed below; a stale symbolic batch would stay dynamic
        output.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        if simplify:
            import onnxslim

            model = onnxslim.slim(model)
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{name} at input {'x'.join(map(str, input_shape))}: {_first_line(exc)}") from None
    onnx.save(model, str(path))
    return Path(path)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def onnx_opset(path: str | Path) -> int | None:
    """The default-domain opset the file was written for."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
