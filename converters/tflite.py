"""ONNX → TFLite through onnx2tf (1.x): fp32, and full-integer int8 calibrated on our own inputs.

onnx2tf turns the ONNX graph into an NHWC TensorFlow graph (a tf_keras model, nothing saved);
both TFLite files are converted from that graph here, with TFLITE_BUILTINS only, so a graph that
would need Flex (Select TF) ops fails to convert instead of shipping. int8 is full-integer:
per-channel int8 weights, int8 activations, int8 input and output tensors. We convert rather than
let onnx2tf write its seven TFLite variants: the two we ship cost a third of the time.

Offline: onnx2tf reads sample images from `SAMPLE_DATA_NAME` in its working directory and
downloads them when the file is missing, so conversion runs in a work directory holding a
synthetic file of that name. TensorFlow's logs go to a file there, not to the terminal.
"""

from __future__ import annotations

import re

import contextlib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mobiledeploy.errors import ExportError

__all__ = [
    "SAMPLE_DATA_NAME",
    "captured_output",
    "tflite_int16x8",
    "working_directory",
    "import_tensorflow",
    "onnx_to_keras",
    "tflite_fp32",
    "tflite_int8",
    "inspect_tflite",
    "require_builtin_ops",
    "unsupported_ops",
    "unsupported_line",
]

SAMPLE_DATA_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"


@contextlib.contextmanager
def captured_output(log_path: str | Path) -> Iterator[Path]:
    """Send all stdout and stderr, Python's and the C libraries', to `log_path` for the duration."""
    log_path = Path(log_path)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield log_path
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@contextlib.contextmanager
def working_directory(path: str | Path) -> Iterator[Path]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield Path(path)
    finally:
        os.chdir(previous)


def import_tensorflow(log_path: str | Path) -> None:
    """Import tensorflow, tf_keras and onnx2tf quietly (their import-time logs go to `log_path`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        with captured_output(log_path):
            import onnx2tf  # noqa: F401
            import tensorflow  # noqa: F401
            import tf_keras  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"TFLite export needs the export extras (pip install 'mobiledeploy[export]'): {exc}") from None


def _log_tail(log_path: Path, lines: int = 1) -> str:
    try:
        raw = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))  # onnx2tf colours its log
        text = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(text[-lines:])


@contextlib.contextmanager
def depthwise_after_shuffles() -> Iterator[None]:
    """Make onnx2tf see a depthwise Conv fed by a rewritten channel shuffle as depthwise.

    onnx2tf picks DepthwiseConv2D when `group` equals the last (NHWC channel) dimension of the
    TF input tensor, checked *before* it transposes an NCHW-shaped input to NHWC. The output of a
    shuffle's exit Transpose (layout.NCHW_EXIT_SUFFIX) is such an NCHW-shaped tensor, so every
    ShuffleNet v1 depthwise conv became a grouped CONV_2D (groups = channels): a different
    kernel from the one the paper times. While this is active, a Conv reading that tensor gets
    it transposed to NHWC first; the transpose pair cancels in the TFLite graph as before.
    """
    import onnx2tf.ops.Conv as conv_op
    import tensorflow as tf

    from .layout import NCHW_EXIT_SUFFIX

    original = conv_op.make_node

    def make_node(*args: Any, **kwargs: Any) -> Any:
        node, layers = kwargs.get("graph_node"), kwargs.get("tf_layers_dict")
        x = node.inputs[0] if node is not None and node.inputs else None
        producer = x.inputs[0] if x is not None and x.inputs else None
        entry = layers.get(x.name) if layers is not None and x is not None else None
        nchw = entry.get("tf_node") if entry else None
        if producer is None or not str(producer.name).endswith(NCHW_EXIT_SUFFIX) or len(getattr(nchw, "shape", ())) != 4:
            return original(*args, **kwargs)
        entry["tf_node"] = tf.transpose(nchw, [0, 2, 3, 1])
        try:
            return original(*args, **kwargs)
        finally:
            entry["tf_node"] = nchw

    conv_op.make_node = make_node
    try:
        yield
    finally:
        conv_op.make_node = original


def onnx_to_keras(onnx_path: str | Path, workdir: str | Path, sample_data: np.ndarray, strict: bool = False) -> Any:
    """The NHWC tf_keras model onnx2tf builds from `onnx_path`, built inside `workdir`, offline.

    `sample_data` (20, 128, 128, 3) float32 in [0, 1] is written where onnx2tf looks for its
    sample images, so it never downloads them. `strict` turns on onnx2tf's strict mode: at each
    Reshape (and some reductions) of rank >= 3 it runs the graph built so far on its sample data and
    tries every transposition of the input for the one closest to ONNX Runtime's output (onnx2tf
    1.28.8, ops/Reshape.py, `disable_strict_mode`): 9.6-12 s of ShuffleNet v1's 12 s in onnx2tf, and the
    same graph for every zoo model. The pipeline converts without it and retries with it when the fp32
    parity check fails.
    """
    import onnx2tf

    workdir = Path(workdir).resolve()
    np.save(workdir / SAMPLE_DATA_NAME, np.asarray(sample_data, dtype=np.float32))
    log = workdir / "onnx2tf.log"
    try:
        with working_directory(workdir), captured_output(log), depthwise_after_shuffles():
            model = onnx2tf.convert(
                input_onnx_file_path=str(Path(onnx_path).resolve()),
                output_folder_path=str(workdir / "tf"),
                not_use_onnxsim=True,  # simplified with onnxslim already; onnxsim runs as a subprocess
                disable_strict_mode=not strict,
                disable_model_save=True,
                copy_onnx_input_output_names_to_tflite=False,  # would run flatc and curl a schema
                verbosity="error",
                non_verbose=True,
            )
    except (Exception, SystemExit) as exc:
        raise ExportError(_conversion_failure(onnx_path, log, exc)) from None
    if model is None:
        raise ExportError(_conversion_failure(onnx_path, log, None))
    return model


def unsupported_ops(onnx_path: str | Path) -> dict[str, list[str]]:
    """{op type: [node names]} of the ONNX file's ops onnx2tf has no converter for: it converts an op with
    its module `onnx2tf/ops/<OpType>.py` (onnx2tf.py, `importlib.import_module(f'onnx2tf.ops.{optype}')`).
    Reads the folder, imports nothing (onnx2tf's import loads TensorFlow)."""
    import importlib.util

    import onnx

    spec = importlib.util.find_spec("onnx2tf")
    if spec is None or not spec.submodule_search_locations:
        return {}
    known = {p.stem for folder in spec.submodule_search_locations for p in (Path(folder) / "ops").glob("*.py")}
    found: dict[str, list[str]] = {}
    for node in onnx.load(str(onnx_path), load_external_data=False).graph.node:
        if node.op_type not in known:
            found.setdefault(node.op_type, []).append(node.name)
    return found


def _conversion_failure(onnx_path: str | Path, log: Path, exc: BaseException | None) -> str:
    """One line naming the op onnx2tf stopped at (type and node) and its error, not the file it read (an
    intermediate of the pipeline's) nor onnx2tf's advice on its own parameter files."""
    import onnx

    missing = unsupported_ops(onnx_path)
    if missing:
        return unsupported_line(missing)
    name = getattr(exc, "onnx_op_name", None)
    node = next((n for n in onnx.load(str(onnx_path), load_external_data=False).graph.node if n.name == name), None) \
        if name else None
    why = _raised(_log_tail(log, 40).split(" | ")) or (
        f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}" if exc is not None else _log_tail(log))
    where = f" at node {node.name!r} ({node.op_type})" if node is not None else (f" at node {name!r}" if name else "")
    return f"onnx2tf could not convert the model{where}: {why.removeprefix('ERROR: ')}"


#: onnx2tf's advice after every failure (onnx2tf 1.28.8, utils/common_functions.py print_wrapper_func): not a cause
_ADVICE = ("input_onnx_file_path:", "onnx_op_name:", "Read this and deal with it", "Alternatively, if the input OP",
           "If the input OP of ONNX", "Also, for models that include", "The trace log is below")


def _raised(lines: list[str]) -> str:
    """The error onnx2tf's log holds: the last exception raised (with the line that says why when TensorFlow wraps
    it as 'Exception encountered when calling layer'), else its last error line that is not its standing advice."""
    raised = [i for i, ln in enumerate(lines) if re.match(r"[\w.]+(Error|Exception): ", ln)]
    if raised:
        i = raised[-1]
        detail = lines[i + 1] if "Exception encountered" in lines[i] and i + 1 < len(lines) else ""
        return f"{lines[i]} {detail}".strip()
    errors = [ln for ln in lines if "error" in ln.lower() and not any(a in ln for a in _ADVICE)]
    return errors[-1].removeprefix("ERROR: ") if errors else ""


def unsupported_line(missing: dict[str, list[str]]) -> str:
    def nodes(names: list[str]) -> str:
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        return f" (node {names[0]!r}{more})" if names[0] else (f" ({len(names)} nodes)" if more else "")

    shown = ", ".join(f"{op}{nodes(names)}" for op, names in sorted(missing.items()))
    return (f"onnx2tf has no conversion for {shown}: no TFLite file can be made of this model "
            "(--formats onnx exports the ONNX file alone)")


def _converter(keras_model: Any) -> Any:
    import tensorflow as tf

    fn = tf.function(
        lambda *inputs: keras_model(inputs),
        input_signature=[tf.TensorSpec(t.shape, t.dtype, t.name) for t in keras_model.inputs],
    )
    # The tf.function, not the keras model, is the trackable object: given a keras model, the converter
    # first writes it out as a SavedModel, and tf_keras serialises every layer config, the constants
    # onnx2tf folds into them included (AlexNet: 15 minutes of deepcopy and JSON for 244 MB of weights).
    # With a tf.function it freezes the concrete function directly: same graph, seconds.
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)


def _convert(converter: Any, path: Path, what: str) -> Path:
    log = path.with_name(path.name + ".log")
    try:
        with captured_output(log):
            flatbuffer = converter.convert()
    except Exception as exc:
        raise ExportError(f"TFLite {what} conversion failed: {_conversion_error(exc)}") from None
    finally:
        log.unlink(missing_ok=True)
    path.write_bytes(flatbuffer)
    return path


def _conversion_error(exc: Exception) -> str:
    """The converter's error in one line: the TensorFlow ops TFLite has no builtin for, by name, when that is
    the cause (the MLIR text names a source line inside site-packages), else its first error line."""
    text = str(exc)
    missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if missing:
        return (f"the graph needs TensorFlow op{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which TFLite has "
                "no builtin for (an ONNX op of the same name that onnx2tf lowered as is)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()] or [type(exc).__name__]
    return next((ln for ln in lines if "error:" in ln), lines[0])


def tflite_fp32(keras_model: Any, path: str | Path) -> Path:
    """Float32 TFLite, builtin ops only; NHWC input as onnx2tf lays it out."""
    import tensorflow as tf

    path = Path(path)
    converter = _converter(keras_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return _convert(converter, path, "fp32")


def tflite_int8(keras_model: Any, path: str | Path, calibration_nchw: np.ndarray, fp32_path: str | Path | None = None,
                float_layers: Sequence[str] = (), float_readers: bool = True) -> Path:
    """Full-integer int8 TFLite: per-channel int8 weights, int8 activations, int8 input and output.

    `calibration_nchw` holds normalised NCHW inputs (what the torch model takes), one per step of
    the representative dataset; they are fed NHWC like every TFLite input. Given the fp32 file made
    from the same `keras_model`, the int8 file is calibrated and quantised from it
    instead of converting the graph a second time (`_fp32_quantizer`). `float_layers`: ops (by output tensor
    name) kept in float (`float_layers.rename_for_float`; needs `fp32_path`), with the ops that read them unless
    not `float_readers`.
    """
    import tensorflow as tf

    path = Path(path)
    samples = np.ascontiguousarray(np.asarray(calibration_nchw, dtype=np.float32).transpose(0, 2, 3, 1))

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None]]

    quantize = _fp32_quantizer() if fp32_path is not None else None
    if float_layers and quantize is None:
        raise ExportError("--float-layers needs TensorFlow's MLIR quantiser functions (tensorflow 2.21 has them)")
    if quantize is not None:
        fp32 = Path(fp32_path).read_bytes()
        return _convert(_FlatbufferQuantizer(lambda f, d: quantize(f, d, tuple(float_layers), float_readers), fp32,
                                             representative_dataset), path, "int8")
    converter = _converter(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = representative_dataset
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = False  # per-channel weights (the default), made explicit
    return _convert(converter, path, "int8")


def tflite_int16x8(fp32_path: str | Path, path: str | Path, calibration_nchw: np.ndarray) -> Path:
    """TFLite's int16x8 mode from the fp32 file: int16 activations (symmetric, zero point 0), per-channel int8
    weights, int64 biases, int16 input and output. What TFLiteConverter does for target_spec.supported_ops =
    [EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]: the MLIR quantiser does not take int16
    activations, so TF 2.21's TFLiteConverterBase._quantize (tensorflow/lite/python/lite.py) calibrates and
    quantises with the older calibrator, `calibrate_and_quantize(..., activations_type=int16, bias_type=int64)`
    (bias_type: QuantizationMode.bias_type). No float fallback: an op without an int16 kernel fails the conversion."""
    import tensorflow as tf
    from tensorflow.lite.python import lite
    from tensorflow.lite.python.optimize import calibrator

    samples = np.ascontiguousarray(np.asarray(calibration_nchw, dtype=np.float32).transpose(0, 2, 3, 1))

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            yield [sample[None]]

    def quantize(fp32: bytes, dataset: Any) -> bytes:
        model = calibrator.Calibrator(calibrator.add_intermediate_tensors(fp32), [], [])
        return model.calibrate_and_quantize(lite.RepresentativeDataset(dataset).input_gen, tf.int16, tf.int16, False,
                                            tf.int16, tf.int64, disable_per_channel=False)

    return _convert(_FlatbufferQuantizer(quantize, Path(fp32_path).read_bytes(), representative_dataset), Path(path),
                    "int16x8")


def _fp32_quantizer() -> Any:
    """What TFLiteConverter.convert() does after its float conversion for full-integer post-training quantisation
    with the MLIR quantizer (TF 2.21 tensorflow/lite/python/lite.py: TFLiteConverterBase._quantize, then
    _optimize_tflite_model's buffer deduplication), as one function of the float flatbuffer; None when this
    TensorFlow lacks those private functions (the converter then converts the graph again).

    The converter's float conversion for int8 gives the fp32 export's graph: for every zoo model the int8 file
    made this way had the same ops, weights and quantisation parameters as the converter's (all but the
    conversion-metadata buffer) and bitwise the same outputs, 1.5 s (a quarter of the int8 stage) sooner."""
    try:
        import tensorflow as tf
        from tensorflow.lite.python import lite
        from tensorflow.lite.python.optimize import calibrator

        steps = (calibrator.add_intermediate_tensors, calibrator.Calibrator, lite._mlir_quantize,
                 lite._deduplicate_readonly_buffers, lite.RepresentativeDataset)
    except (ImportError, AttributeError):
        return None
    add_intermediate_tensors, calibrator_class, mlir_quantize, deduplicate, dataset_class = steps

    def quantize(fp32: bytes, representative_dataset: Any, float_layers: tuple[str, ...] = (),
                 readers: bool = True) -> bytes:
        denied = None
        if float_layers:
            from .float_layers import rename_for_float

            fp32, denied = rename_for_float(fp32, float_layers, readers)
        model = calibrator_class(add_intermediate_tensors(fp32), [], []).calibrate(dataset_class(representative_dataset).input_gen)
        model = mlir_quantize(model, False, input_data_type=tf.int8, output_data_type=tf.int8,
                              enable_variable_quantization=False, disable_per_channel_for_dense_layers=False,
                              denylisted_nodes=denied)
        return deduplicate(model)

    return quantize


class _FlatbufferQuantizer:
    """`convert()` like a TFLiteConverter's, quantising an fp32 flatbuffer (for `_convert`'s log and errors)."""

    def __init__(self, quantize: Any, fp32: bytes, representative_dataset: Any) -> None:
        self.quantize, self.fp32, self.representative_dataset = quantize, fp32, representative_dataset

    def convert(self) -> bytes:
        return self.quantize(self.fp32, self.representative_dataset)


def inspect_tflite(path: str | Path) -> dict[str, Any]:
    """Op counts by type, custom ops, and the io tensors of a .tflite file, read from its flatbuffer.

    Reads the schema directly (no interpreter, so no delegate rewrites the graph first). Inputs
    and outputs are in the manifest's io format: 4-D tensors are NHWC, 2-D ones NC.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append("CUSTOM:" + (code.CustomCode() or b"").decode())
        else:
            codes.append(op_names.get(builtin, str(builtin)))
    counts: Counter[str] = Counter()
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for j in range(sub.OperatorsLength()):
            counts[codes[sub.Operators(j).OpcodeIndex()]] += 1
    main = model.Subgraphs(0)

    def describe(index: int) -> dict[str, Any]:
        tensor = main.Tensors(index)
        shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
        quant = tensor.Quantization()
        q = None
        if quant is not None and quant.ScaleLength() > 0:
            q = {"scale": float(quant.Scale(0)), "zero_point": int(quant.ZeroPoint(0)) if quant.ZeroPointLength() else 0}
        layout = {4: "NHWC", 2: "NC"}.get(len(shape), "")
        return {"name": (tensor.Name() or b"").decode(), "shape": shape,
                "dtype": type_names.get(tensor.Type(), str(tensor.Type())), "layout": layout, "quantization": q}

    return {
        "op_counts": dict(sorted(counts.items())),
        "custom_ops": sorted(op for op in counts if op.startswith("CUSTOM:")),
        "inputs": [describe(main.Inputs(i)) for i in range(main.InputsLength())],
        "outputs": [describe(main.Outputs(i)) for i in range(main.OutputsLength())],
    }


def require_builtin_ops(path: str | Path, info: dict[str, Any] | None = None) -> None:
    """Raise ExportError when a .tflite file uses Flex (Select TF) or other custom ops."""
    info = info or inspect_tflite(path)
    if info["custom_ops"]:
        flex = [op for op in info["custom_ops"] if op.startswith("CUSTOM:Flex")]
        kind = "TensorFlow (Flex) ops" if flex else "custom ops"
        names = ", ".join(op.removeprefix("CUSTOM:") for op in info["custom_ops"])
        raise ExportError(f"{Path(path).name} needs {kind} that stock TFLite runtimes lack: {names}")
