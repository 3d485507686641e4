"""benchmarks/bench_modern.py --write: new rows merge into the table already written, the others' rows stay."""

from benchmarks.bench_modern import _merged

HEAD = ("| model | input | converts | MACs | torch flop counter / 2 | fp32 partitions | int8 partitions | int8 ops left "
        "| A76 fp32 instr | A76 int8 instr | int8 cosine |\n|---|---|---|---:|---|---:|---:|---|---:|---:|---:|\n")


def row(model: str, left: str = "—", converts: str = "yes") -> str:
    return f"| {model} | 224 | {converts} | 1.0M | same | 1 | 2 | {left} | 1.00M | 1.00M | 0.9990 |\n"


def test_a_model_measured_again_replaces_its_row_and_the_others_stay() -> None:
    old = HEAD + (row("repvit_m1 (reparameterized)", "GELU×27") + row("levit_128s", "SOFTMAX×11") +
                  "- levit_128s (reparameterized): refused by the Arm check\n- GELU: old rule\n- SOFTMAX: float only\n\n"
                  "One run on commit a.\n")
    new = HEAD + (row("levit_128s", "", "no: onnx2tf") + row("fastvit_t8 (reparameterized)", "SOFTMAX×3") +
                  "- GELU: new rule\n\nThe rows of levit_128s, fastvit_t8: on commit b.\n")
    assert _merged(old, new) == HEAD + (
        row("repvit_m1 (reparameterized)", "GELU×27") + row("levit_128s", "", "no: onnx2tf") +
        row("fastvit_t8 (reparameterized)", "SOFTMAX×3") + "- GELU: new rule\n- SOFTMAX: float only\n\n"
        "One run on commit a.\nThe rows of levit_128s, fastvit_t8: on commit b.\n")


def test_a_rule_no_row_needs_and_the_commit_of_a_replaced_row_go() -> None:
    """A rewrite that removed an op from every row removes its rule; an old closing line names only the rows it
    still measured, and goes when every one of them was measured again."""
    old = HEAD + (row("levit_128s", "STRIDED_SLICE×2, SOFTMAX×11") + row("repvit_m1", "GELU×27") + row("efficientvit_m0") +
                  "- GELU: float only\n- SOFTMAX: float only\n- STRIDED_SLICE: no known rule\n\n"
                  "The rows of levit_128s, repvit_m1: on commit a.\nThe rows of efficientvit_m0: on commit b.\n")
    new = HEAD + row("levit_128s", "SOFTMAX×11") + row("efficientvit_m0") + "\nThe rows of levit_128s, efficientvit_m0: on commit c.\n"
    merged = _merged(old, new)
    assert "STRIDED_SLICE" not in merged
    assert "- GELU: float only\n- SOFTMAX: float only\n" in merged
    assert merged.endswith("\nThe rows of repvit_m1: on commit a.\nThe rows of levit_128s, efficientvit_m0: on commit c.\n")
