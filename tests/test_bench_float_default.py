"""benchmarks/bench_float_default.py --count: the counted table compares each int8 variant with full-integer int8."""

from benchmarks.bench_float_default import count_table


def row(model: str, variant: str, instructions: int | None, partitions: int = 1) -> dict:
    found = {"model": model, "resolution": 128, "variant": variant,
             "fp32_arm": {"instructions": 4_000_000, "partitions": 1}}
    return {**found, "arm": {"instructions": instructions, "partitions": partitions}} if instructions else found


def test_each_counted_variant_is_shown_against_full_integer_after_the_fp32_file() -> None:
    rows = [row("a", "full-integer", 2_000_000, 18), row("a", "default", 2_000_000, 18), row("a", "+gelu", 1_500_000),
            row("a", "+softmax", None), row("b", "full-integer", None)]
    lines = count_table(rows, "cortex-a76").splitlines()
    assert "cortex-a76 instructions per inference (counted)" in lines[0]
    assert lines[2:] == ["| a | 128 | fp32 | 4,000,000 | 2.000× | 1 |",
                         "| a | 128 | int8 full-integer | 2,000,000 | 1.000× | 18 |",
                         "| a | 128 | int8 default | 2,000,000 | 1.000× | 18 |",
                         "| a | 128 | int8 +gelu | 1,500,000 | 0.750× | 1 |"]
