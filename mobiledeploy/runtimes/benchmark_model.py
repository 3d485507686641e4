"""`benchmark_model` (TFLite's classic tool or LiteRT's), run on a device through its transport and harness.

Steps of one run: find the binary (given, cached, or LiteRT's official build downloaded for the
phone's ABI) and install it once per device (`bin/<sha256>/`); ask it `--help` once to know which
tool it is (runtimes/tool.py); push the model, the harness and, for LiteRT on a GPU, the accelerator
library; run the harness (core pinning, thermal readings, the binary with only flags it accepts);
read the BenchmarkResult proto it wrote (`--result_file_path`), else its printed summary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..benchmark_output import parse_benchmark_output
from ..devices.base import us_to_ms
from ..devices.harness import facts_from_block, harness_script, split_harness_output
from ..errors import MobiledeployError, RunnerError
from ..files import sha256_file
from ..artifact_kinds import artifacts_read_as
from .binary import GPU_LIBRARY, configured_binary, official_binary
from .result_proto import parse_result_proto
from .tool import BinaryKind, benchmark_flags, binary_kind

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult
    from .base import Transport

__all__ = ["BenchmarkModelRuntime", "fill_from_benchmark_output", "fill_from_result_proto", "delegation_record",
           "check_full_delegation"]

RESULT_FILE = "result.pb"


class BenchmarkModelRuntime:
    """Times a .tflite with a `benchmark_model` binary on a device reached by `transport`."""

    name = "benchmark_model"
    artifacts = artifacts_read_as(".tflite")

    def __init__(self, device: "Transport"):
        self.transport = device
        self.remote_root = device.remote_root  # the binary is installed once under it (bin/<sha256>/)
        self._installed: dict[str, str] = {}
        self._kinds: dict[str, BinaryKind] = {}
        self.facts: dict[str, Any] = {}

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str) -> None:
        result.config.update(accelerator=options.accelerator, require_full_delegation=options.require_full_delegation)
        binary, url = self._binary(options)
        remote_bin = self.install_binary(binary, result.observed)
        result.observed["benchmark_binary_url"] = url
        result.versions["benchmark_model_sha256"] = result.observed["benchmark_binary_sha256"]
        kind = self._kind(remote_bin)
        result.observed["benchmark_tool"] = kind.tool
        self._accelerator_files(kind, options, binary, url, remote_bin)
        self.transport.make_workdir(workdir)
        remote_model = f"{workdir}/{Path(target.artifact).name}"
        self.transport.push(Path(target.artifact), remote_model)
        self.transport.push(harness_script(), f"{workdir}/run.sh")
        flags = benchmark_flags(kind, options, f"{workdir}/{RESULT_FILE}", self._dispatch_dir(options, workdir))
        words = ["sh", f"{workdir}/run.sh", "--binary", remote_bin, "--graph", remote_model, "--exact",
                 "--threads", options.threads, "--cpu-mask", options.cpu_mask,
                 "--lib-dir", remote_bin.rpartition("/")[0], "--", *flags]
        self._measure(result, options, kind, words, f"{workdir}/{RESULT_FILE}")

    def _measure(self, result: "RunResult", options: "BenchOptions", kind: BinaryKind, words: list[Any],
                 result_file: str) -> None:
        """Run the harness; record what ran where (failing a required full delegation), then the figures."""
        parsed = parse_benchmark_output(self._harness(result, words))
        if kind.tool == "unknown":
            result.observed["benchmark_tool"] = "litert" if parsed.get("format") == "litert" else "classic"
        result.observed["delegation"] = delegation_record(parsed.get("delegation"), options)
        check_full_delegation(result.observed["delegation"], options)
        fill_from_benchmark_output(result, parsed)
        if kind.result_file:
            self._read_result_file(result, result_file)

    def _binary(self, options: "BenchOptions") -> tuple[Path, str | None]:
        """(the binary, the URL it was downloaded from or None): the one configured, else LiteRT's official one."""
        path = configured_binary(options.benchmark_binary)
        return (path, None) if path is not None else official_binary(self.transport.abi())

    def install_binary(self, binary: Path, config: dict[str, Any]) -> str:
        """Push the runner unless the device already has one with the same sha256 (bin/<sha256>/)."""
        sha = sha256_file(binary)
        remote = f"{self.remote_root}/bin/{sha}/benchmark_model"
        config.update(benchmark_binary=str(binary), benchmark_binary_sha256=sha)
        if sha in self._installed:
            config["benchmark_binary_pushed"] = False
            return remote
        pushed = self._install(binary, remote, sha)
        config["benchmark_binary_pushed"] = pushed
        self._installed[sha] = remote
        return remote

    def _install(self, local: Path, remote: str, sha: str) -> bool:
        """Push `local` to `remote` unless a file with that sha256 is there already; True when pushed."""
        proc = self.transport.shell(["sha256sum", remote], check=False, what="sha256sum")
        if proc.returncode == 0 and proc.stdout.split()[:1] == [sha]:
            return False
        self.transport.shell(["mkdir", "-p", remote.rpartition("/")[0]])
        self.transport.push(local, remote)
        self.transport.shell(["chmod", "755", remote])
        return True

    def _kind(self, remote_bin: str) -> BinaryKind:
        """Which tool the installed binary is, from its `--help` (asked once per binary)."""
        if remote_bin not in self._kinds:
            proc = self.transport.shell([remote_bin, "--help"], check=False, what="benchmark_model --help")
            self._kinds[remote_bin] = binary_kind(f"{proc.stdout}\n{proc.stderr}")
        return self._kinds[remote_bin]

    def _accelerator_files(self, kind: BinaryKind, options: "BenchOptions", binary: Path, url: str | None,
                           remote_bin: str) -> None:
        """LiteRT on a GPU: its accelerator library beside the binary on the phone (LD_LIBRARY_PATH)."""
        if kind.tool != "litert" or options.accelerator != "gpu":
            return
        library = binary.parent / GPU_LIBRARY
        if not library.is_file():
            if url is None:
                raise RunnerError(f"--accelerator gpu: LiteRT's benchmark_model needs {GPU_LIBRARY} beside {binary} "
                                  "(it is published beside the binary)")
            library, _ = official_binary(self.transport.abi(), GPU_LIBRARY)
        self._install(library, f"{remote_bin.rpartition('/')[0]}/{GPU_LIBRARY}", sha256_file(library))

    def _dispatch_dir(self, options: "BenchOptions", workdir: str) -> str | None:
        """NPU: the folder holding the vendor dispatch library on the phone (a host file is pushed there first)."""
        if options.accelerator != "npu" or not options.dispatch_library:
            return None
        local = Path(options.dispatch_library).expanduser()
        if not local.is_file():
            return options.dispatch_library  # a folder on the phone
        self.transport.push(local, f"{workdir}/dispatch/{local.name}")
        return f"{workdir}/dispatch"

    def _read_result_file(self, result: "RunResult", remote: str) -> None:
        """Pull and read the BenchmarkResult proto; the printed summary stays when it cannot be had."""
        with tempfile.TemporaryDirectory(prefix="mobiledeploy-result-") as tmp:
            local = Path(tmp) / RESULT_FILE
            try:
                self.transport.pull(remote, local)
                fill_from_result_proto(result, parse_result_proto(local.read_bytes()))
            except (MobiledeployError, OSError) as exc:
                result.observed["result_file_error"] = " ".join(str(exc).split())[:300]

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
        result.observed.update(cpu_mask_used=facts.get("cpu_mask") or None, taskset=facts.get("taskset"),
                               runner="benchmark_model")
        exit_code = int(block.get("runner_exit", "-1") or -1)
        if exit_code != 0:
            raise RunnerError(f"benchmark_model exited with status {exit_code}: {_last_words(runner_text)}")
        return runner_text


def _last_words(text: str) -> str:
    """The runner's last line, and its last ERROR line when that says more ('Benchmarking failed.' alone does not)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    error = next((line for line in reversed(lines) if line.startswith("ERROR")), None)
    return last[:300] + (f" ({error[:300]})" if error and error != last else "")


def delegation_record(found: dict[str, Any] | None, options: "BenchOptions") -> dict[str, Any]:
    """What ran where (TFLite's delegation line), with the accelerator asked for."""
    return {"accelerator": options.accelerator, **(found or {})}


def check_full_delegation(record: dict[str, Any], options: "BenchOptions") -> None:
    """A run that required full delegation and left nodes on the CPU fails, even when the tool did not check."""
    if options.require_full_delegation and record.get("cpu_nodes"):
        raise RunnerError(f"full delegation was required but {record['delegate']} took {record['delegated_nodes']} of "
                          f"{record['nodes']} nodes ({record['cpu_nodes']} left on the CPU)")


def fill_from_result_proto(result: "RunResult", proto: dict[str, Any]) -> "RunResult":
    """BenchmarkResult (ms as float32, memory in KB / MB) → the RunResult fields; the source is recorded."""
    latency, memory = proto.get("latency_metrics") or {}, proto.get("memory_metrics") or {}
    value = lambda key: None if key not in latency else round(latency[key], 4)  # noqa: E731  float32: 0.1 us
    result.mean_ms, result.std_ms = value("avg_ms"), value("stddev_ms")
    result.min_ms, result.max_ms = value("min_ms"), value("max_ms")
    result.median_ms, result.p95_ms = value("median_ms"), value("p95_ms")
    result.init_ms, result.first_ms, result.warmup_ms = value("init_ms"), value("first_inference_ms"), value("average_warm_up_ms")
    if result.mean_ms and result.std_ms is not None:
        result.cv = result.std_ms / result.mean_ms
    if "overall_footprint_kb" in memory:
        result.memory_delta_mb = round(memory["overall_footprint_kb"] / 1024.0, 4)
    if memory.get("peak_mem_mb"):
        result.peak_memory_mb = round(memory["peak_mem_mb"], 4)
    result.runs = int((proto.get("misc_metrics") or {}).get("num_runs") or result.runs)
    result.observed["result_source"] = "result_file"
    return result


def fill_from_benchmark_output(result: "RunResult", parsed: dict[str, Any]) -> "RunResult":
    """benchmark_model's summary → the RunResult fields (it prints stats, not per-run timings)."""
    if parsed.get("failed"):
        raise RunnerError("benchmark_model reported 'Benchmarking failed.'")
    stats = parsed.get("inference") or {}
    result.status, result.error = "ok", None
    result.runs = int(stats.get("count", 0)) or result.runs
    result.mean_ms = us_to_ms(stats.get("avg", parsed.get("inference_avg_us")))
    result.std_ms = us_to_ms(stats.get("std"))
    result.min_ms, result.max_ms = us_to_ms(stats.get("min")), us_to_ms(stats.get("max"))
    result.median_ms, result.p95_ms = us_to_ms(stats.get("median")), us_to_ms(stats.get("p95"))
    if result.mean_ms and result.std_ms is not None:
        result.cv = result.std_ms / result.mean_ms
    result.init_ms = us_to_ms(parsed.get("init_us"))
    result.first_ms = us_to_ms(parsed.get("first_us"))
    result.warmup_ms = us_to_ms(parsed.get("warmup_avg_us"))
    result.memory_delta_mb = parsed.get("memory_overall_mb")
    result.peak_memory_mb = parsed.get("peak_memory_mb")
    result.op_profile = parsed.get("op_profile")
    result.observed.update(benchmark_output_format=parsed.get("format"), result_source="text")
    return result
