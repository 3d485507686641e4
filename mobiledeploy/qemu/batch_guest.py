"""Run a .tflite on many inputs inside the emulated Arm64 userland and keep every output (accuracy on Arm).

Like `guest.py` this runs under the aarch64 Python, which has only the standard library, numpy and
ai-edge-litert, so it imports nothing of mobiledeploy. Uncounted (no marker syscalls): the accuracy check
needs the outputs, not the instructions.

    python3.11 batch_guest.py MODEL.tflite INPUTS.npz OUTPUTS.npz

INPUTS.npz holds "x": (N, *input shape) already in the input's dtype (quantised by the host, as for the
host's own run); OUTPUTS.npz gets "y": (N, *output shape), the raw output tensors.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    model, inputs, outputs = argv[1:4]
    interpreter = Interpreter(model_path=model, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    with np.load(inputs, allow_pickle=False) as data:
        feeds = data["x"]
    results = []
    for x in feeds:
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    np.savez(outputs, y=np.stack(results) if results else np.zeros((0,)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
