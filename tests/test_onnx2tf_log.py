"""A failed onnx2tf conversion is said by the error it raised, not by onnx2tf's standing advice."""

from pathlib import Path

from mobiledeploy.converters.tflite import _log_tail, _raised

# the end of onnx2tf 1.28.8's log for EdgeNeXt's conv block (timm's channels-last LayerNorm + Linear), abridged
LOG = """\x1b[31mERROR:\x1b[0m The trace log is below.
Traceback (most recent call last):
  File "onnx2tf/ops/Add.py", line 281, in make_node
ValueError: Exception encountered when calling layer "tf.math.add_3" (type TFOpLambda).

Dimensions must be equal, but are 16 and 96 with input shapes: [1,16,16,96], [1,1,96,1].

Call arguments received by layer "tf.math.add_3" (type TFOpLambda):
\x1b[31mERROR:\x1b[0m input_onnx_file_path: /tmp/m.onnx
\x1b[31mERROR:\x1b[0m onnx_op_name: /b/mlp/mlp.0/Add
\x1b[31mERROR:\x1b[0m Read this and deal with it. https://github.com/PINTO0309/onnx2tf#parameter-replacement
\x1b[31mERROR:\x1b[0m Also, for models that include NonMaxSuppression in the post-processing, try the -onwdt option.
"""


def test_the_raised_error_and_its_reason_not_the_advice(tmp_path: Path) -> None:
    log = tmp_path / "onnx2tf.log"
    log.write_text(LOG)
    assert _raised(_log_tail(log, 40).split(" | ")) == (
        'ValueError: Exception encountered when calling layer "tf.math.add_3" (type TFOpLambda). '
        "Dimensions must be equal, but are 16 and 96 with input shapes: [1,16,16,96], [1,1,96,1].")
    advice = LOG[LOG.index("\x1b[31mERROR:\x1b[0m input_onnx_file_path"):]
    log.write_text("\x1b[31mERROR:\x1b[0m Unsupported op Foo\n" + advice)  # no exception raised: its own error line
    assert _raised(_log_tail(log, 40).split(" | ")) == "Unsupported op Foo"
