"""benchmarks/bench_modern.py --write: new rows merge into the table already written, the others' rows stay."""

from benchmarks.bench_modern import _merged

HEAD = "| model | input | converts |\n|---|---|---|\n"


def test_a_model_measured_again_replaces_its_row_and_the_others_stay() -> None:
    old = HEAD + ("| repvit_m1 (reparameterized) | 224 | yes |\n| levit_128s | 224 | yes |\n"
                  "- levit_128s (reparameterized): refused by the Arm check\n- GELU: old rule\n- SOFTMAX: float only\n\nOne run on commit a.\n")
    new = HEAD + ("| levit_128s | 224 | no: onnx2tf |\n| fastvit_t8 (reparameterized) | 256 | yes |\n"
                  "- GELU: new rule\n\nThe rows of levit_128s, fastvit_t8: on commit b.\n")
    assert _merged(old, new) == HEAD + (
        "| repvit_m1 (reparameterized) | 224 | yes |\n| levit_128s | 224 | no: onnx2tf |\n"
        "| fastvit_t8 (reparameterized) | 256 | yes |\n- GELU: new rule\n- SOFTMAX: float only\n\n"
        "One run on commit a.\nThe rows of levit_128s, fastvit_t8: on commit b.\n")
