"""TFLite's `benchmark_model` binary, run on a device through its transport and the device harness.

Steps of one run: find the binary and install it once per device (`bin/<sha256>/`), push the model
and `android_harness/run.sh` into the run's folder, run the harness (core pinning, thermal readings,
the binary), and turn the binary's printed summary into RunResult fields.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..benchmark_output import parse_benchmark_output
from ..devices.base import ms
from ..devices.harness import facts_from_block, harness_script, split_harness_output
from ..errors import RunnerError
from ..files import sha256_file
from .binary import find_benchmark_binary

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult
    from .base import Transport

__all__ = ["BenchmarkModelRuntime", "fill_from_benchmark_output"]


class BenchmarkModelRuntime:
    """Times a .tflite with a `benchmark_model` binary on a device reached by `transport`."""

    name = "benchmark_model"
    reports = frozenset({"run_stats", "op_profile", "memory"})

    def __init__(self, transport: "Transport", remote_root: str):
        self.transport = transport
        self.remote_root = remote_root
        self._installed: dict[str, str] = {}
        self.facts: dict[str, Any] = {}

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str) -> None:
        binary = find_benchmark_binary(options.benchmark_binary)
        remote_bin = self.install_binary(binary, result.config)
        result.versions["benchmark_model_sha256"] = result.config["benchmark_binary_sha256"]
        self.transport.make_workdir(workdir)
        remote_model = f"{workdir}/{Path(target.artifact).name}"
        self.transport.push(Path(target.artifact), remote_model)
        self.transport.push(harness_script(), f"{workdir}/run.sh")
        self._time(result, workdir, remote_bin, remote_model, options)

    def install_binary(self, binary: Path, config: dict[str, Any]) -> str:
        """Push the runner unless the device already has one with the same sha256 (bin/<sha256>/)."""
        sha = sha256_file(binary)
        remote = f"{self.remote_root}/bin/{sha}/benchmark_model"
        config.update(benchmark_binary=str(binary), benchmark_binary_sha256=sha)
        if sha in self._installed:
            config["benchmark_binary_pushed"] = False
            return remote
        proc = self.transport.shell(["sha256sum", remote], check=False, what="sha256sum")
        present = proc.returncode == 0 and proc.stdout.split()[:1] == [sha]
        if not present:
            self.transport.shell(["mkdir", "-p", f"{self.remote_root}/bin/{sha}"])
            self.transport.push(binary, remote)
            self.transport.shell(["chmod", "755", remote])
        config["benchmark_binary_pushed"] = not present
        self._installed[sha] = remote
        return remote

    def _time(self, result: "RunResult", workdir: str, remote_bin: str, remote_model: str,
              options: "BenchOptions") -> None:
        words = ["sh", f"{workdir}/run.sh", "--binary", remote_bin, "--graph", remote_model,
                 "--threads", options.threads, "--runs", options.runs, "--warmup", options.warmup,
                 "--min-secs", f"{options.min_secs:g}", "--cpu-mask", options.cpu_mask]
        if options.op_profiling:
            words.append("--op-profiling")
        runner_text = self._harness(result, words)
        fill_from_benchmark_output(result, parse_benchmark_output(runner_text))

    def _harness(self, result: "RunResult", words: list[Any]) -> str:
        """Run the device harness; its facts go to the result, the runner's text is returned (exit 0 only)."""
        proc = self.transport.shell(words, timeout=self.transport.run_timeout_s, check=False, what="benchmark run",
                                    on_timeout=lambda m: RunnerError(f"{m}: the benchmark did not finish"))
        block, runner_text = split_harness_output(proc.stdout)
        if block is None:
            raise self.transport.lost(proc)
        facts = facts_from_block(block)
        self.facts = {k: v for k, v in facts.items() if k != "thermal_after"}
        result.device_info = facts
        result.config.update(cpu_mask_used=facts.get("cpu_mask") or None, taskset=facts.get("taskset"),
                             runner="benchmark_model")
        exit_code = int(block.get("runner_exit", "-1") or -1)
        if exit_code != 0:
            last = next((line.strip() for line in reversed(runner_text.splitlines()) if line.strip()), "no output")
            raise RunnerError(f"benchmark_model exited with status {exit_code}: {last[:300]}")
        return runner_text


def fill_from_benchmark_output(result: "RunResult", parsed: dict[str, Any]) -> "RunResult":
    """benchmark_model's summary → the RunResult fields (it prints stats, not per-run timings)."""
    if parsed.get("failed"):
        raise RunnerError("benchmark_model reported 'Benchmarking failed.'")
    stats = parsed.get("inference") or {}
    result.status, result.error = "ok", None
    result.runs = int(stats.get("count", 0)) or result.runs
    result.mean_ms = ms(stats.get("avg", parsed.get("inference_avg_us")))
    result.std_ms = ms(stats.get("std"))
    result.min_ms, result.max_ms = ms(stats.get("min")), ms(stats.get("max"))
    result.median_ms, result.p95_ms = ms(stats.get("median")), ms(stats.get("p95"))
    if result.mean_ms and result.std_ms is not None:
        result.cv = result.std_ms / result.mean_ms
    result.init_ms = ms(parsed.get("init_us"))
    result.first_ms = ms(parsed.get("first_us"))
    result.warmup_ms = ms(parsed.get("warmup_avg_us"))
    result.memory_delta_mb = parsed.get("memory_overall_mb")
    result.peak_memory_mb = parsed.get("peak_memory_mb")
    result.op_profile = parsed.get("op_profile")
    result.config["benchmark_output_format"] = parsed.get("format")
    return result
