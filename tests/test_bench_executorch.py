"""benchmarks/bench_executorch.py resumes: a (model, core) block of rows already in --results is not measured again."""

from __future__ import annotations

from benchmarks.bench_executorch import HEADER, done_rows, pairs_for


def test_done_rows_are_the_blocks_with_every_runtime(tmp_path):
    results = tmp_path / "zoo.md"
    assert done_rows(results) == set() and done_rows(None) == set()
    slug = "shufflenet_v1-g3-scale1.0-224x224"  # slug_of("v1:g=3", 224), whose registry import costs seconds
    row = "| {slug} | {cpu} | {rt} | 1.000M | — | — | 1.00 / — | 1.00 / — | 1 / — | 1.0e-07 / — |"
    lines = [HEADER]
    lines += [row.format(slug=slug, cpu="cortex-a76", rt=rt) for rt in ("litert", "executorch", "onnxruntime")]
    lines += [row.format(slug=slug, cpu="cortex-a53", rt="litert")]  # a block cut short: measured again
    results.write_text("\n".join(lines) + "\n")
    assert done_rows(results) == {(slug, "cortex-a76")}


def test_fp32_only_leaves_out_every_int8_file():
    pairs = pairs_for(("fp32",))
    assert set(pairs) == {"litert", "executorch", "onnxruntime"}
    assert all(list(table) == ["fp32"] for table in pairs.values())
    assert pairs_for(("fp32", "int8"))["executorch"] == {"fp32": "pte_fp32", "int8": "pte_int8"}
