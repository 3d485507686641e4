"""Which of the two tools called `benchmark_model` a binary is, and the flags each one accepts.

- `classic`: TFLite's tflite/tools/benchmark/benchmark_model (`--use_xnnpack`, `--enable_op_profiling`);
- `litert`: LiteRT's build of litert/tools/benchmark_litert_model_main.cc (`--use_cpu/gpu/npu`,
  `--dispatch_library_path`, no `--use_xnnpack`).

Both print their flags for `--help` (`Flags::Usage`, tflite/tools/command_line_flags.cc:
`\t--NAME=DEFAULT\tTYPE\toptional\tTEXT`), so a binary is told apart by what it says it accepts, and
is only ever given flags from that list. A binary whose `--help` lists no flags (a wrapper, an old
build) is `unknown`: it gets the classic flags, as before, and is named by its first run's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RunnerError

if TYPE_CHECKING:
    from ..records import BenchOptions

__all__ = ["BinaryKind", "binary_kind", "benchmark_flags", "LITERT_ONLY"]

_FLAG = re.compile(r"^\s*--([A-Za-z][\w\-]*)=", re.MULTILINE)
#: flags only LiteRT's tool has (litert/tools/benchmark_litert_model.h, GetFlags)
LITERT_ONLY = frozenset({"use_npu", "use_cpu", "dispatch_library_path", "compiler_plugin_library_path"})


@dataclass(frozen=True)
class BinaryKind:
    tool: str  # "classic" | "litert" | "unknown" (told by its first run)
    flags: frozenset[str]

    @property
    def result_file(self) -> bool:
        return "result_file_path" in self.flags

    def accepts(self, flag: str) -> bool:
        return self.tool == "unknown" or flag in self.flags


def binary_kind(help_text: str) -> BinaryKind:
    """The tool behind a binary, from what it printed for `--help` ('unknown' when it lists no --graph flag)."""
    flags = frozenset(_FLAG.findall(help_text))
    if "graph" not in flags:
        return BinaryKind("unknown", frozenset())
    return BinaryKind("litert" if flags & LITERT_ONLY else "classic", flags)


def benchmark_flags(kind: BinaryKind, options: "BenchOptions", result_file: str | None,
                    dispatch_dir: str | None = None) -> list[str]:
    """The flags after `--graph` (which the harness passes) that the options need, each checked against what
    the binary accepts."""
    wanted: list[tuple[str, object, bool]] = [  # (flag, value, required)
        ("num_threads", options.threads, True), ("num_runs", options.runs, True),
        ("warmup_runs", options.warmup, True), ("min_secs", f"{options.min_secs:g}", True),
        ("warmup_min_secs", 0, False)]
    wanted += _accelerator_flags(kind, options, dispatch_dir)
    if options.require_full_delegation and not (kind.tool == "litert" and options.accelerator == "cpu"):
        wanted.append(("require_full_delegation", "true", True))  # LiteRT aborts on it with use_cpu: checked after
    if options.op_profiling:  # LiteRT's profiler prints TFLite's ProfileSummarizer tables (litert/runtime/profiler.cc)
        wanted.append(("use_profiler" if kind.tool == "litert" else "enable_op_profiling", "true", True))
    if result_file and kind.result_file:
        wanted.append(("result_file_path", result_file, True))
    missing = [name for name, _, required in wanted if required and not kind.accepts(name)]
    if missing:
        raise RunnerError(f"this {kind.tool} benchmark_model has no --{', --'.join(missing)} flag, which "
                          f"{_why(missing)} needs: pass a --benchmark-binary that has it")
    return [f"--{name}={_text(value)}" for name, value, _ in wanted if kind.accepts(name)]


def _accelerator_flags(kind: BinaryKind, options: "BenchOptions", dispatch_dir: str | None) -> list[tuple[str, object, bool]]:
    unit, full = options.accelerator, options.require_full_delegation
    if kind.tool != "litert":
        if unit == "npu":
            raise RunnerError(f"--accelerator npu needs LiteRT's benchmark_model (this binary is {kind.tool}: its "
                              "--help lists no --use_npu): leave out --benchmark-binary to download LiteRT's")
        return [("use_gpu", "true", True)] if unit == "gpu" else [("use_xnnpack", "true", False)]
    # LiteRT: use_cpu adds the CPU as a fallback, which full delegation forbids (benchmark_litert_model.cc aborts)
    flags: list[tuple[str, object, bool]] = [("use_cpu", "false" if full and unit != "cpu" else "true", True)]
    if unit == "gpu":
        flags.append(("use_gpu", "true", True))
    elif unit == "npu":
        flags += [("use_npu", "true", True), ("dispatch_library_path", dispatch_dir or "", True)]
    return flags


def _why(missing: list[str]) -> str:
    reasons = {"enable_op_profiling": "--op-profiling", "use_profiler": "--op-profiling",
               "require_full_delegation": "--require-full-delegation",
               "use_gpu": "--accelerator gpu", "use_npu": "--accelerator npu"}
    return ", ".join(dict.fromkeys(reasons.get(name, "a benchmark run") for name in missing))


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
