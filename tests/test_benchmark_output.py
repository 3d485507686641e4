"""parse_benchmark_output on real benchmark_model output (tests/fixtures/benchmark_model/SOURCES.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mobiledeploy.benchmark_output import delegation_from_lines, parse_benchmark_output, run_stats_from_line
from mobiledeploy.errors import RunnerError

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"
HOST_RUNNER = Path(__file__).resolve().parents[1] / "android_harness" / "host_benchmark_model.py"


def parse(name: str) -> dict:
    return parse_benchmark_output((FIXTURES / name).read_text())


def test_every_fixture_has_a_source():
    sources = (FIXTURES / "SOURCES.md").read_text()
    for path in FIXTURES.glob("*.txt"):
        assert f"`{path.name}`" in sources


def test_current_format_with_percentiles_and_info_prefix():
    out = parse("ti_am62x_cpu.txt")
    assert out["format"] == "current" and out["failed"] is False
    assert (out["init_us"], out["first_us"], out["warmup_avg_us"], out["inference_avg_us"]) == (5579, 1357602, 1.3576e6, 1.24027e6)
    assert out["inference"] == {"count": 50, "first": 1249964, "curr": 1240143, "min": 1238588, "max": 1252566,
                                "avg": 1.24027e6, "std": 2565, "p5": 1238753, "median": 1239807, "p95": 1247415}
    # one warm-up run: "count=1 curr=X p5=X median=X p95=X" (all values equal)
    assert out["warmup"]["count"] == 1 and out["warmup"]["min"] == out["warmup"]["max"] == 1357602
    assert out["warmup"]["std"] == 0.0
    assert (out["memory_init_mb"], out["memory_overall_mb"]) == (6.36328, 109.832)
    assert out["memory_label"] == "Memory footprint delta from the start of the tool"
    assert out["model_size_mb"] == 67.3128 and out["session_init_ms"] == 5.579
    assert "peak_memory_mb" not in out and "op_profile" not in out


def test_current_format_xnnpack():
    out = parse("ti_am62x_xnnpack.txt")
    assert out["init_us"] == 614333 and out["inference_avg_us"] == 899641
    assert out["inference"]["median"] == 899281 and out["inference"]["p95"] == 904305
    assert out["inference"]["std"] == 1549
    assert (out["memory_init_mb"], out["memory_overall_mb"]) == (146.363, 150.141)


def test_scientific_notation_and_op_profiling_tables():
    out = parse("riscv_mobilenet_v1_op_profiling.txt")
    assert out["init_us"] == 17187 and out["first_us"] == 3512391
    assert out["warmup_avg_us"] == 3.51239e6 and out["inference_avg_us"] == 2.95034e6
    assert out["inference"] == {"count": 50, "first": 2990275, "curr": 2913402, "min": 2727568, "max": 3189954,
                                "avg": 2.95034e6, "std": 109798}
    assert (out["memory_init_mb"], out["memory_overall_mb"]) == (4.21094, 46.0859)
    ops = out["op_profile"]  # the Run Order table of the regular runs, not the initialization table
    assert len(ops) == 31
    assert ops[0] == {"node_type": "CONV_2D", "start_ms": 0.066, "first_ms": 87.754, "avg_ms": 60.957,
                      "percent": 2.066, "cdf_percent": 2.066, "mem_kb": 0.0, "times_called": 1,
                      "name": "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0"}
    assert ops[-1]["node_type"] == "SOFTMAX" and ops[-1]["avg_ms"] == 0.233 and ops[-1]["cdf_percent"] == 100.0
    assert sum(op["node_type"] == "DEPTHWISE_CONV_2D" for op in ops) == 13
    summary = {row["node_type"]: row for row in out["op_summary"]}
    assert summary["CONV_2D"]["count"] == 15 and summary["CONV_2D"]["avg_ms"] == 2651.853
    assert summary["DEPTHWISE_CONV_2D"]["percent"] == 10.065
    assert out["init_profile"] == [{"node_type": "AllocateTensors", "start_ms": 0.0, "first_ms": 1.356, "avg_ms": 1.356,
                                    "percent": 100.0, "cdf_percent": 100.0, "mem_kb": 0.0, "times_called": 1,
                                    "name": "AllocateTensors/0"}]


def test_legacy_average_timings_and_untitled_profile():
    out = parse("tf_readme_legacy_op_profiling.txt")
    assert out["format"] == "legacy"
    assert (out["warmup_avg_us"], out["init_us"], out["inference_avg_us"]) == (83235, 38467, 79760.9)
    assert "inference" not in out  # only the op profiler's "Timings (microseconds)" line, which is not a phase
    assert len(out["op_profile"]) == 31
    assert out["op_profile"][6] == {"node_type": "CONV_2D", "start_ms": 19.352, "first_ms": 6.652, "avg_ms": 6.652,
                                    "percent": 0.167, "cdf_percent": 0.652, "mem_kb": 0.0, "times_called": 0,
                                    "name": "[MobilenetV1/MobilenetV1/Conv2d_3_pointwise/Relu6]"}
    assert out["op_summary"][0]["node_type"] == "CONV_2D" and out["op_summary"][0]["percent"] == 89.27


def test_tf24_peak_memory_form_without_phase_headers():
    out = parse("yolov5s_tf24_cpu.txt")
    assert (out["init_us"], out["first_us"], out["warmup_avg_us"], out["inference_avg_us"]) == (16242, 360262, 304586, 249684)
    assert out["inference"]["count"] == 50 and out["inference"]["std"] == 1442 and "warmup" not in out
    assert out["memory_label"] == "Peak memory footprint"
    assert (out["memory_init_mb"], out["memory_overall_mb"]) == (4.92969, 138.809)


def test_failed_run_raises_runner_error_naming_the_last_line():
    with pytest.raises(RunnerError, match="Benchmarking failed"):
        parse("yolov5s_tf24_nnapi_failed.txt")


def test_periodic_peak_memory_line_and_logcat_prefix():
    # the line as LiteRT's benchmark_model.cc prints it, behind an `adb logcat` prefix
    text = ("05-30 15:16:46.366  3380  3380 I tflite  : Inference timings in us: Init: 126059, First inference: 32942, "
            "Warmup (avg): 12581.9, Inference (avg): 12167.6\n"
            "INFO: Overall peak memory footprint (MB) via periodic monitoring: 93.2383\n")
    out = parse_benchmark_output(text)
    assert out["init_us"] == 126059 and out["inference_avg_us"] == 12167.6 and out["peak_memory_mb"] == 93.2383


def test_run_stats_line_variants():
    assert run_stats_from_line("count=0") is None
    assert run_stats_from_line("count=3 curr=7(all same) p5=7 median=7 p95=7")["avg"] == 7
    assert run_stats_from_line("Timings (microseconds): count=1 curr=1356") is not None  # callers filter these


def test_no_output_is_a_runner_error():
    with pytest.raises(RunnerError, match="no inference timings"):
        parse_benchmark_output("")


def test_host_runner_prints_what_the_parser_reads(tiny_tflite):
    proc = subprocess.run([sys.executable, str(HOST_RUNNER), f"--graph={tiny_tflite['int8']}", "--num_threads=1",
                           "--num_runs=12", "--warmup_runs=2", "--min_secs=0", "--warmup_min_secs=0",
                           "--enable_op_profiling=true", "--report_peak_memory_footprint=true"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = parse_benchmark_output(proc.stderr)  # like the real tool, it logs on stderr
    assert out["format"] == "current" and out["inference"]["count"] == 12 and out["warmup"]["count"] == 2
    assert out["inference"]["min"] <= out["inference"]["median"] <= out["inference"]["p95"] <= out["inference"]["max"]
    assert out["first_us"] == out["warmup"]["first"] and out["peak_memory_mb"] > 0
    assert out["op_profile"][0]["node_type"] == "INVOKE" and out["op_summary"][0]["percent"] == 100.0
    assert out["init_profile"][0]["node_type"] == "AllocateTensors"


def test_host_runner_fails_like_the_real_tool(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer")
    proc = subprocess.run([sys.executable, str(HOST_RUNNER), f"--graph={bad}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Benchmarking failed." in proc.stderr
    with pytest.raises(RunnerError):
        parse_benchmark_output(proc.stderr)


def test_litert_block_and_delegation_from_the_sources():
    out = parse("litert_gpu_partial_from_source.txt")
    assert out["format"] == "litert" and out["failed"] is False
    # the block is in ms with two decimals, kept here as us; the count= lines keep their exact integers
    assert (out["init_us"], out["first_us"], out["warmup_avg_us"], out["inference_avg_us"]) == (412700, 9120, 7080, 5960)
    assert (out["inference_runs"], out["warmup_runs"]) == (20, 3)
    assert (out["inference_min_us"], out["inference_max_us"], out["inference_std_us"]) == (5870, 6230, 90)
    assert out["inference"] == {"count": 20, "first": 5998, "curr": 5902, "min": 5871, "max": 6230, "avg": 5961.4,
                                "std": 88, "p5": 5871, "median": 5940, "p95": 6201}
    assert (out["memory_init_mb"], out["memory_overall_mb"], out["peak_memory_mb"]) == (38.25, 41.5, 52.75)
    assert out["throughput_mb_per_s"] == 1209.46 and out["model_size_mb"] == 7.21
    assert out["delegation"] == {
        "delegate": "LiteRtGpuAccelerator", "nodes": 130, "delegated_nodes": 118, "cpu_nodes": 12, "partitions": 3,
        "applied": [{"delegate": "LiteRtGpuAccelerator", "delegated_nodes": 118, "nodes": 130, "partitions": 3},
                    {"delegate": "TfLiteXNNPackDelegate", "delegated_nodes": 12, "nodes": 15, "partitions": 2}]}


def test_litert_block_alone_gives_the_run_stats():
    text = "".join(line for line in (FIXTURES / "litert_gpu_partial_from_source.txt").read_text().splitlines(True)
                   if "count=" not in line)
    out = parse_benchmark_output(text)
    assert out["inference"] == {"count": 20, "avg": 5960.0, "min": 5870.0, "max": 6230.0, "std": 90.0}


def test_old_delegation_line_without_subgraph_and_other_subgraphs():
    lines = ["INFO: Replacing 31 out of 31 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions.",
             "VERBOSE: Replacing 2 out of 4 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions "
             "for subgraph 1 (while_body)."]
    assert delegation_from_lines(lines) == {"delegate": "TfLiteXNNPackDelegate", "nodes": 31, "delegated_nodes": 31,
                                            "cpu_nodes": 0, "partitions": 1}
    assert delegation_from_lines(["INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]) is None


@pytest.mark.parametrize("flavour", ["classic", "litert"])
def test_host_runner_speaks_both_tools(tiny_tflite, tmp_path, flavour):
    from mobiledeploy.runtimes.result_proto import parse_result_proto

    result_file = tmp_path / "result.pb"
    proc = subprocess.run([sys.executable, str(HOST_RUNNER), f"--graph={tiny_tflite['fp32']}", "--num_threads=1",
                           "--num_runs=8", "--warmup_runs=2", "--min_secs=0", "--warmup_min_secs=0",
                           f"--result_file_path={result_file}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "MOBILEDEPLOY_STANDIN": flavour})
    assert proc.returncode == 0, proc.stderr
    out = parse_benchmark_output(proc.stderr)
    assert out["format"] == ("litert" if flavour == "litert" else "current")
    assert ("Inference timings in us" in proc.stderr) == (flavour == "classic")
    assert out["delegation"]["delegate"] == "TfLiteXNNPackDelegate" and out["delegation"]["nodes"] >= 5
    proto = parse_result_proto(result_file.read_bytes())
    assert proto["misc_metrics"]["num_runs"] == out["inference"]["count"] == 8
    assert proto["misc_metrics"]["num_warmup_runs"] == 2
    latency = proto["latency_metrics"]
    assert latency["median_ms"] == pytest.approx(out["inference"]["median"] / 1000, rel=1e-6)  # float32 in the proto
    assert latency["min_ms"] <= latency["p5_ms"] <= latency["median_ms"] <= latency["p95_ms"] <= latency["max_ms"]
    assert proto["memory_metrics"]["overall_footprint_kb"] >= proto["memory_metrics"]["init_footprint_kb"]


def test_host_runner_help_lists_only_its_tools_flags():
    helps = {flavour: subprocess.run([sys.executable, str(HOST_RUNNER), "--help"], capture_output=True, text=True,
                                     timeout=60, env={**os.environ, "MOBILEDEPLOY_STANDIN": flavour})
             for flavour in ("classic", "litert")}
    assert all(proc.returncode == 1 and proc.stderr.startswith("ERROR: usage: ") for proc in helps.values())
    assert "--use_xnnpack=true" in helps["classic"].stderr and "--use_xnnpack" not in helps["litert"].stderr
    assert "--dispatch_library_path=" in helps["litert"].stderr and "--use_npu" not in helps["classic"].stderr
