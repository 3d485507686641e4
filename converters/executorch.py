"""PyTorch → ExecuTorch `.pte` with the XNNPACK delegate, fp32 and int8, parity and delegation.

fp32: `torch.export.export` → `executorch.exir.to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`
→ `.to_executorch()`. int8: PT2E (`torchao.quantization.pt2e.quantize_pt2e.prepare_pt2e`, calibration on the
export's calibration inputs, the same ones TFLite int8 is calibrated on, `convert_pt2e`) with ExecuTorch's
`XNNPACKQuantizer` and `get_symmetric_quantization_config(is_per_channel=True)`, then lowered the same way.
These are the steps of ExecuTorch 1.5's XNNPACK backend guide ("Building and Running ExecuTorch with XNNPACK
Backend", docs.pytorch.org/executorch) and of `executorch/examples/xnnpack/aot_compiler.py`.

The int8 program keeps float input and output (quantise/dequantise nodes at its edges, run by XNNPACK), where
the TFLite int8 file takes and returns int8. What XNNPACK took and what stayed on ExecuTorch's portable ops is
read from the lowered graph (`executorch.devtools.backend_debug.get_delegation_info`).

Needs the optional extra (`pip install 'mobiledeploy[executorch]'`); everything heavy is imported inside functions.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from mobiledeploy.artifact_kinds import FILE_NAMES, ON_REQUEST_FORMATS
from mobiledeploy.errors import ConfigError, ExportError, RunnerError, SetupError

__all__ = ["PTE_FILES", "PTE_STAGES", "EXTRA_HINT", "INT8_SCHEME", "executorch_available", "require_executorch",
           "check_source", "export_pte", "pte_stages", "pte_outputs", "load_method", "delegation_summary"]

#: manifest artifact key → file name in the artifact folder
PTE_FILES = {key: FILE_NAMES[key] for key in ON_REQUEST_FORMATS if FILE_NAMES[key].endswith(".pte")}
PTE_STAGES = {
    "pte_fp32": "ExecuTorch fp32 (.pte, XNNPACK delegate)",
    "pte_fp32_parity": "parity: ExecuTorch fp32 vs torch",
    "pte_int8": "ExecuTorch int8 (PT2E, XNNPACK quantizer, calibration)",
    "pte_int8_parity": "parity: ExecuTorch int8 vs ExecuTorch fp32",
}
EXTRA_HINT = "pip install 'mobiledeploy[executorch]'"
INT8_SCHEME = ("PT2E, XNNPACKQuantizer symmetric: per-channel int8 weights, int8 activations; "
               "float input and output (quantised inside the program)")


def executorch_available() -> bool:
    """executorch and torchao are installed (found without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("executorch", "torchao"))


def require_executorch(what: str = "the .pte formats") -> None:
    """SetupError (one line naming the extra, exit 2) when ExecuTorch is not installed."""
    if not executorch_available():
        raise SetupError(f"{what} need ExecuTorch, which is not installed: {EXTRA_HINT}")


def export_pte(model: Any, shape: tuple[int, ...], path: Path, ref: str, calibration: np.ndarray | None = None) -> dict[str, Any]:
    """Write `model` as a .pte at `path` (int8 when `calibration` inputs are given); returns the manifest entry's
    own part: inputs, outputs, delegation (and the int8 scheme). ExportError names the stage that failed."""
    import torch

    example = (torch.zeros(shape),)
    program = _stage(ref, "torch.export", lambda: torch.export.export(model.eval(), example))
    if calibration is not None:
        quantized = _stage(ref, "PT2E quantisation", lambda: _quantize(program, calibration))
        program = _stage(ref, "torch.export (quantised)", lambda: torch.export.export(quantized, example))
    edge = _stage(ref, "to_edge_transform_and_lower (XNNPACK)", lambda: _lower(program))
    delegation = _delegation(edge)
    executorch_program = _stage(ref, "to_executorch", edge.to_executorch)
    path.write_bytes(executorch_program.buffer)
    with torch.no_grad():
        out_shape = list(model(example[0]).shape)
    entry: dict[str, Any] = {
        "inputs": [{"name": "input", "shape": list(shape), "dtype": "float32", "layout": "NCHW", "quantization": None}],
        "outputs": [{"name": "output", "shape": out_shape, "dtype": "float32", "layout": None, "quantization": None}],
        "delegation": delegation,
    }
    if calibration is not None:
        entry["scheme"] = INT8_SCHEME
    return entry


def pte_stages(tmp: Path, model: Any, shape: tuple[int, ...], ref: str, wanted: tuple[str, ...], inputs: Any,
               reference: np.ndarray, floor: float, parity: dict[str, dict[str, Any]], stage: Any,
               require: Any) -> dict[str, dict[str, Any]]:
    """The .pte artifacts `wanted` asks for, each with its parity (fp32 vs `reference`, int8 vs the .pte fp32's
    outputs on the held-out inputs, as TFLite's); `require(what, parity)` raises when one does not pass."""
    from .manifest import file_entry
    from .parity import FP32_TOLERANCE, error_stats, int8_parity

    artifacts: dict[str, dict[str, Any]] = {}
    with stage("pte_fp32"):
        entry = export_pte(model, shape, tmp / PTE_FILES["pte_fp32"], ref)
        artifacts["pte_fp32"] = {**file_entry(tmp, PTE_FILES["pte_fp32"]), **entry}
    with stage("pte_fp32_parity"):
        fp32_out = pte_outputs(tmp / PTE_FILES["pte_fp32"], inputs.holdout)
        parity["pte_fp32"] = {"reference": parity["onnx"]["reference"], **error_stats(reference, fp32_out, FP32_TOLERANCE)}
        require("ExecuTorch fp32", parity["pte_fp32"])
    if "pte_int8" in wanted:
        with stage("pte_int8"):
            entry = export_pte(model, shape, tmp / PTE_FILES["pte_int8"], ref, calibration=inputs.calibration)
            artifacts["pte_int8"] = {**file_entry(tmp, PTE_FILES["pte_int8"]), **entry}
        with stage("pte_int8_parity"):
            parity["pte_int8"] = int8_parity(fp32_out, pte_outputs(tmp / PTE_FILES["pte_int8"], inputs.holdout), floor)
            require("ExecuTorch int8", parity["pte_int8"])
    return artifacts


def _stage(ref: str, stage: str, step: Any) -> Any:
    """Run one step of the .pte export; its failure in one line: the model, the stage and the first line of why."""
    try:
        return step()
    except Exception as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        raise ExportError(f"{ref} cannot be exported to ExecuTorch at stage '{stage}': "
                          f"{type(exc).__name__}: {first[:300]}") from None


def _quantize(program: Any, calibration: np.ndarray) -> Any:
    """The PT2E int8 module of an exported fp32 program, calibrated on `calibration` (NCHW float32, one by one)."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for x in np.ascontiguousarray(calibration, dtype=np.float32):
            prepared(torch.from_numpy(x[None]))
    return convert_pt2e(prepared)


def _lower(program: Any) -> Any:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])


def _delegation(edge: Any) -> dict[str, Any]:
    """{"runtime", "partitions", "nodes", "delegated_nodes", "delegated": {op: n}, "not_delegated": {op: n}}: what
    XNNPACK took and what runs on ExecuTorch's portable (or optimised) CPU ops, by edge op."""
    from importlib import metadata

    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(edge.exported_program().graph_module)
    # `getitem` nodes unpack a delegate call's outputs: bookkeeping of the graph, not an op that runs
    by_op = {op: b for op, b in info.delegation_by_operator.items() if op != "getitem"}
    delegated = {op: b.delegated for op, b in sorted(by_op.items()) if b.delegated}
    left = {op: b.non_delegated for op, b in sorted(by_op.items()) if b.non_delegated}
    return {
        "runtime": f"executorch {metadata.version('executorch')}, XnnpackPartitioner (read from the lowered graph)",
        "partitions": info.num_delegated_subgraphs,
        "nodes": sum(delegated.values()) + sum(left.values()),
        "delegated_nodes": sum(delegated.values()),
        "delegated": delegated,
        "not_delegated": left,
    }


def delegation_summary(entry: dict[str, Any]) -> str:
    """'1 XNNPACK partition, 12/14 nodes; portable ops: aten.view_copy.default×2'."""
    parts = entry.get("partitions", 0)
    text = (f"{parts} XNNPACK partition{'s' if parts != 1 else ''}, "
            f"{entry.get('delegated_nodes', 0)}/{entry.get('nodes', 0)} nodes")
    left = entry.get("not_delegated") or {}
    if left:
        text += "; portable ops: " + ", ".join(f"{op}×{n}" for op, n in left.items())
    return text


def load_method(path: str | Path, enable_etdump: bool = False) -> Any:
    """The `forward` method of a .pte loaded in ExecuTorch's runtime (pybindings); RunnerError in one line when
    the file does not load."""
    require_executorch("the executorch runtime")
    from executorch.runtime import Runtime

    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"model file not found: {path}")
    try:
        program = Runtime.get().load_program(path, enable_etdump=enable_etdump)
        method = program.load_method("forward")
    except Exception as exc:  # the pybindings raise RuntimeError with ExecuTorch's error code
        raise RunnerError(f"ExecuTorch cannot load {path.name}: {' '.join(str(exc).split())[:300]}") from None
    if method is None:
        raise RunnerError(f"ExecuTorch cannot load {path.name}: it has no 'forward' method")
    return method


def pte_outputs(path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """Run a .pte on NCHW `inputs` one sample at a time; float outputs."""
    import torch

    method = load_method(path)
    outs = []
    for x in np.ascontiguousarray(inputs, dtype=np.float32):
        try:
            result = method.execute([torch.from_numpy(x[None].copy())])
        except Exception as exc:
            raise ExportError(f"ExecuTorch fails to run {Path(path).name}: {' '.join(str(exc).split())[:300]}") from None
        outs.append(result[0].detach().numpy().astype(np.float32))
    return np.concatenate(outs)


def check_source(kind: str, ref: str) -> None:
    """.pte exports start from a PyTorch model: an ONNX file has none (ConfigError, one line)."""
    if kind == "onnx":
        raise ConfigError(f"{ref} is an ONNX file: the .pte formats are exported from PyTorch (--arch, --model-fn or "
                          "--exported-program)")
