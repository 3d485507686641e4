"""A host build of the `benchmark_model` contract, for tests and hosts without a phone.

It speaks either of the two tools called `benchmark_model`, chosen by $MOBILEDEPLOY_STANDIN:
`classic` (default, TFLite's tflite/tools/benchmark/benchmark_model.cc) or `litert` (the binary LiteRT
publishes, built from litert/tools/benchmark_litert_model_main.cc: its own flags, no `use_xnnpack`,
and the `INFO: [benchmark_litert_model.h:NN]` summary block of `BenchmarkLoggingListener`).
`--help` prints the flag list as `Flags::Usage` (tflite/tools/command_line_flags.cc) does; with
`--result_file_path=F` it writes the binary `tflite.tools.benchmark.BenchmarkResult` proto
(tflite/tools/benchmark/proto/benchmark_result.proto), encoded here by hand from the wire format.
Delegation is logged as tflite/core/subgraph.cc does (`Replacing N out of M node(s) with delegate ...`).

Accelerators are simulated, the timing always runs on this host's CPU: `--use_gpu=true` needs
`libLiteRtClGlAccelerator.so` on LD_LIBRARY_PATH (litert) and `--use_npu=true` a
`--dispatch_library_path` folder holding a `libLiteRtDispatch*.so`; the ops the simulated unit
cannot take are the op names in $MOBILEDEPLOY_STANDIN_UNSUPPORTED (comma list, default none), left on
the CPU; with `--require_full_delegation=true` any such op fails the run as the real tools do.

Classic flavour: accepts TFLite `benchmark_model`'s flags (`--graph`, `--num_threads`, `--num_runs`,
`--warmup_runs`, `--min_secs`, `--max_secs`, `--warmup_min_secs`, `--enable_op_profiling`,
`--use_xnnpack`, `--report_peak_memory_footprint`, `--memory_footprint_check_interval_ms`),
runs the model with the LiteRT interpreter, and prints on stderr what the current C++ tool prints
(tflite/tools/benchmark/benchmark_model.cc and xla/tsl/util/stats_calculator.h in LiteRT):
`INFO: `-prefixed lines, C++ stream number formatting (6 significant digits for averages,
integers for microsecond counts, `count=… p5=… median=… p95=…` with nth_element percentiles).
Exit status 0, or 1 after "Benchmarking failed." like the real tool.

Limitation: LiteRT's Python API has no per-operator profiler, so `--enable_op_profiling=true`
reports the whole graph as one node (type `INVOKE`, named by its op count) in the real tables.
Standalone on purpose (numpy + ai_edge_litert only): it stands in for a separate binary.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import threading
import time
from typing import Any, Callable

BASE: dict[str, Any] = {  # BenchmarkModel::DefaultParams (tflite/tools/benchmark/benchmark_model.cc)
    "graph": "", "num_threads": -1, "num_runs": 50, "min_secs": 1.0, "max_secs": 150.0,
    "warmup_runs": 1, "warmup_min_secs": 0.5, "report_peak_memory_footprint": False,
    "memory_footprint_check_interval_ms": 50, "verbose": False, "result_file_path": "",
    "require_full_delegation": False,
}
FLAVOURS: dict[str, dict[str, Any]] = {
    "classic": {**BASE, "enable_op_profiling": False, "use_xnnpack": True, "use_gpu": False},
    "litert": {**BASE, "use_cpu": True, "use_gpu": False, "use_npu": False, "use_profiler": False,
               "dispatch_library_path": "",
               "compiler_plugin_library_path": "", "signature_to_run_for": "", "model_runtime_info_output_file": ""},
}
FLAVOUR = os.environ.get("MOBILEDEPLOY_STANDIN", "classic")
DEFAULTS = FLAVOURS.get(FLAVOUR, FLAVOURS["classic"])
GPU_LIBRARY = "libLiteRtClGlAccelerator.so"


def log(message: str = "") -> None:
    sys.stderr.write(f"INFO: {message}\n")
    sys.stderr.flush()


def error(message: str) -> None:
    sys.stderr.write(f"ERROR: {message}\n")
    sys.stderr.flush()


def g6(value: float) -> str:
    """A double as a default C++ ostream prints it (precision 6, %g)."""
    if math.isnan(value):
        return "nan"
    return f"{value:g}"


def parse_flags(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    flags, unknown = dict(DEFAULTS), []
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name not in DEFAULTS:
            unknown.append(arg)
            continue
        if not eq and not isinstance(DEFAULTS[name], bool) and args:
            value = args.pop(0)
        kind = type(DEFAULTS[name])
        if kind is bool:
            flags[name] = (value or "true").lower() in ("1", "true")
        else:
            flags[name] = kind(value)
    return flags, unknown


class Stat:
    """tsl::StatWithPercentiles<int64_t>: what benchmark_model prints for a phase."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def add(self, value_us: int) -> None:
        self.values.append(value_us)

    def avg(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    def std(self) -> int:
        n, mean = len(self.values), self.avg()
        variance = sum(v * v for v in self.values) / n - mean * mean
        return int(math.sqrt(max(variance, 0.0)))

    def percentile(self, p: int) -> int:
        ordered = sorted(self.values)
        return ordered[-1] if p == 100 else ordered[len(ordered) * p // 100]

    def __str__(self) -> str:
        v = self.values
        if not v:
            return "count=0"
        if min(v) == max(v):
            text = f"count={len(v)} curr={v[-1]}" + ("(all same)" if len(v) > 1 else "")
        else:
            text = (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                    f"avg={g6(self.avg())} std={self.std()}")
        return text + f" p5={self.percentile(5)} median={self.percentile(50)} p95={self.percentile(95)}"


def now_us() -> int:
    return time.perf_counter_ns() // 1000


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_phase(invoke: Callable[[], None], min_runs: int, min_secs: float, max_secs: float) -> Stat:
    """BenchmarkModel::Run: at least min_runs and min_secs, stopping after max_secs."""
    log(f"Running benchmark for at least {min_runs} iterations and at least {g6(min_secs)} seconds "
        f"but terminate if exceeding {g6(max_secs)} seconds.")
    stat = Stat()
    now = now_us()
    min_finish, max_finish = now + int(min_secs * 1e6), now + int(max_secs * 1e6)
    run = 0
    while (run < min_runs or now < min_finish) and now <= max_finish:
        start = now_us()
        invoke()
        stat.add(now_us() - start)
        now = now_us()
        run += 1
    log(f"{stat}\n")
    return stat


class PeakMemoryMonitor:
    """MemoryUsageMonitor: samples the resident set every interval, keeps the peak (MB)."""

    def __init__(self, interval_ms: int) -> None:
        self.interval = max(interval_ms, 1) / 1000.0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            try:
                with open("/proc/self/statm") as f:
                    self.peak_mb = max(self.peak_mb, int(f.read().split()[1]) * page / 2**20)
            except (OSError, ValueError, IndexError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemoryMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fill_inputs(interpreter: Any) -> None:
    """Random inputs like the tool's: floats in [-1, 1], integers over their quantized range."""
    import numpy as np

    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        dtype, shape = np.dtype(detail["dtype"]), detail["shape"]
        if dtype.kind == "f":
            data = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        elif dtype.kind == "b":
            data = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        interpreter.set_tensor(detail["index"], data)


def field(value: Any, width: int) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return "\t" + text.rjust(width)


def op_table(title: str, rows: list[dict[str, Any]]) -> str:
    """StatsCalculator::GetStatsByMetric with the [start] column."""
    head = (field("[node type]", 24) + field("[start]", 17) + field("[first]", 9) + field("[avg ms]", 9)
            + field("[%]", 8) + field("[cdf%]", 8) + field("[mem KB]", 10) + field("[times called]", 9) + "\t[Name]")
    lines = [f"============================== {title} ==============================", head]
    for r in rows:
        lines.append(field(r["type"], 24) + field(r["start"], 17) + field(r["first"], 9) + field(r["avg"], 9)
                     + field(r["pct"], 7) + "%" + field(r["cdf"], 7) + "%" + field(0.0, 10)
                     + field(r["called"], 9) + "\t" + r["name"])
    return "\n".join(lines) + "\n\n"


def op_summary(rows: list[dict[str, Any]], total: Stat) -> str:
    head = (field("[Node type]", 24) + field("[count]", 9) + field("[avg ms]", 10) + field("[avg %]", 11)
            + field("[cdf %]", 11) + field("[mem KB]", 10) + field("[times called]", 10))
    lines = [f"Number of nodes executed: {len(rows)}",
             "============================== Summary by node type ==============================", head]
    cdf = 0.0
    for r in rows:
        cdf += r["pct"]
        lines.append(field(r["type"], 24) + field(1, 9) + field(r["avg"], 10) + field(r["pct"], 10) + "%"
                     + field(cdf, 10) + "%" + field(0.0, 10) + field(r["called"], 9))
    return ("\n".join(lines) + "\n\n" + f"Timings (microseconds): {total}\nMemory (bytes): count=0\n"
            f"{len(rows)} nodes observed\n")


def print_profiles(init_us: int, regular: Stat, n_ops: int) -> None:
    init_row = [{"type": "AllocateTensors", "start": 0.0, "first": init_us / 1e3, "avg": init_us / 1e3,
                 "pct": 100.0, "cdf": 100.0, "called": 1, "name": "AllocateTensors/0"}]
    init_stat = Stat()
    init_stat.add(init_us)
    rows = [{"type": "INVOKE", "start": 0.0, "first": regular.values[0] / 1e3, "avg": regular.avg() / 1e3,
             "pct": 100.0, "cdf": 100.0, "called": 1, "name": f"[whole graph, {n_ops} ops]:0"}]
    text = ("Profiling Info for Benchmark Initialization:\n" + op_table("Run Order", init_row)
            + op_table("Top by Computation Time", init_row) + op_summary(init_row, init_stat) + "\n\n\n"
            + "Operator-wise Profiling Info for Regular Benchmark Runs:\n" + op_table("Run Order", rows)
            + op_table("Top by Computation Time", rows) + op_summary(rows, regular))
    if FLAVOUR == "litert":  # the listener's summary_provider: LITERT_LOG(INFO, "\n%s", summary)
        litert_log(192, "\n" + text.rstrip("\n"))
    else:
        log(text.rstrip("\n"))  # one TFLITE_LOG(INFO) call: only the first line carries the prefix


def usage(program: str) -> str:
    """Flags::Usage: 'usage: PROGRAM <flags>', then one tab-separated line per flag."""
    names = {name: f"--{name}={str(value).lower() if isinstance(value, bool) else value}"
             for name, value in DEFAULTS.items()}
    width = max(len(n) for n in names.values())
    kinds = {bool: "bool", int: "int32", float: "float", str: "string"}
    lines = [f"usage: {program} <flags>", "Flags:"]
    lines += [f"\t{names[name].ljust(width)}\t{kinds[type(value)]}\toptional\t{name.replace('_', ' ')}"
              for name, value in DEFAULTS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--help"]:
        error(usage(sys.argv[0]))
        return 1
    flags, unknown = parse_flags(args)
    log("STARTING!")
    if unknown:
        sys.stderr.write(f"WARNING: Unconsumed cmdline flags: {' '.join(unknown)}\n")
    log(f"Log parameter values verbosely: [{int(flags['verbose'])}]")
    log(f"Min num runs: [{flags['num_runs']}]")
    log(f"Num threads: [{flags['num_threads']}]")
    log(f"Min warmup runs: [{flags['warmup_runs']}]")
    log(f"Graph: [{flags['graph']}]")
    if FLAVOUR == "classic":
        log(f"Enable op profiling: [{int(flags['enable_op_profiling'])}]")
        log(f"Use xnnpack: [{int(flags['use_xnnpack'])}]")
    start_rss_kb = max_rss_kb()
    monitor = PeakMemoryMonitor(flags["memory_footprint_check_interval_ms"]) if flags["report_peak_memory_footprint"] else None
    if monitor:
        monitor.__enter__()
    try:
        return benchmark(flags, start_rss_kb, monitor)
    finally:
        if monitor:
            monitor.__exit__()


def accelerator(flags: dict[str, Any]) -> str | None:
    """The simulated unit asked for ('gpu', 'npu'), None for the CPU; raises RuntimeError when its library is missing."""
    if flags.get("use_npu"):
        folder = flags.get("dispatch_library_path") or ""
        if not (os.path.isdir(folder) and any(n.startswith("libLiteRtDispatch") for n in os.listdir(folder))):
            raise RuntimeError(f"no NPU dispatch library (libLiteRtDispatch*.so) in --dispatch_library_path={folder!r}")
        return "npu"
    if flags.get("use_gpu"):
        dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
        if FLAVOUR == "litert" and not any(os.path.isfile(os.path.join(d, GPU_LIBRARY)) for d in dirs):
            raise RuntimeError(f"GPU accelerator library {GPU_LIBRARY} not found on LD_LIBRARY_PATH")
        return "gpu"
    return None


def delegation(interpreter: Any, unit: str | None) -> dict[str, Any]:
    """XNNPACK's real figure on the CPU (mobiledeploy.qemu.guest.delegation); a simulated one for gpu/npu."""
    if unit is None:
        from mobiledeploy.qemu.guest import delegation as xnnpack_delegation

        return {"delegate": "TfLiteXNNPackDelegate", **xnnpack_delegation(interpreter)}
    unsupported = {op for op in os.environ.get("MOBILEDEPLOY_STANDIN_UNSUPPORTED", "").split(",") if op}
    ops = [op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    taken = [op not in unsupported for op in ops]
    partitions = sum(1 for i, t in enumerate(taken) if t and (i == 0 or not taken[i - 1]))
    left: dict[str, int] = {}
    for op, t in zip(ops, taken):
        if not t:
            left[op] = left.get(op, 0) + 1
    name = {"gpu": "StandInGpuAccelerator", "npu": "StandInNpuDispatch"}[unit]
    return {"delegate": name, "nodes": len(ops), "delegated_nodes": sum(taken), "partitions": partitions,
            "not_delegated": left}


def load(flags: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    unit = accelerator(flags)
    use_xnnpack = unit is None and flags.get("use_xnnpack", flags.get("use_cpu", True))
    resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    threads = flags["num_threads"] if flags["num_threads"] > 0 else None
    interpreter = Interpreter(model_path=flags["graph"], num_threads=threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    info = delegation(interpreter, unit) if (use_xnnpack or unit) else {}
    if info:
        sys.stderr.write(f"VERBOSE: Replacing {info['delegated_nodes']} out of {info['nodes']} node(s) with delegate "
                         f"({info['delegate']}) node, yielding {info['partitions']} partitions for subgraph 0 (main).\n")
        if flags.get("require_full_delegation") and info["delegated_nodes"] < info["nodes"]:
            raise RuntimeError(f"full delegation was required but {info['nodes'] - info['delegated_nodes']} "
                               "node(s) were not delegated")
    return interpreter, info


def benchmark(flags: dict[str, Any], start_rss_kb: int, monitor: PeakMemoryMonitor | None) -> int:
    graph = flags["graph"]
    if not graph:
        error("Please specify the name of your TF Lite input file with --graph")
        error("Benchmarking failed.")
        return 1
    start = now_us()
    try:
        interpreter, _ = load(flags)
    except (ValueError, RuntimeError, OSError) as exc:
        error(f"Could not open '{graph}': {' '.join(str(exc).split())}")
        log("Benchmarking failed.")
        return 1
    init_us = now_us() - start
    init_rss_kb = max_rss_kb()
    log(f"Loaded model {graph}")
    log(f"The input model file size (MB): {g6(os.path.getsize(graph) / 1e6)}")
    log(f"Initialized session in {g6(init_us / 1e3)}ms.")
    fill_inputs(interpreter)
    invoke = interpreter.invoke
    try:
        warmup = run_phase(invoke, flags["warmup_runs"], flags["warmup_min_secs"], flags["max_secs"])
        regular = run_phase(invoke, flags["num_runs"], flags["min_secs"], flags["max_secs"])
    except RuntimeError as exc:
        error(" ".join(str(exc).split()))
        log("Benchmarking failed.")
        return 1
    if monitor:
        monitor.__exit__()
    memory = {"init_kb": init_rss_kb - start_rss_kb, "overall_kb": max_rss_kb() - start_rss_kb,
              "peak_mb": monitor.peak_mb if monitor else 0.0, "size_mb": os.path.getsize(graph) / 1e6}
    (print_litert_summary if FLAVOUR == "litert" else print_classic_summary)(init_us, warmup, regular, memory)
    if flags["result_file_path"]:
        write_result_file(flags["result_file_path"], init_us, warmup, regular, memory)
    if (flags.get("enable_op_profiling") or flags.get("use_profiler")) and regular.values:
        print_profiles(init_us, regular, len(interpreter._get_ops_details()))
    return 0


def print_classic_summary(init_us: int, warmup: Stat, regular: Stat, memory: dict[str, float]) -> None:
    """BenchmarkLoggingListener::OnBenchmarkEnd in tflite/tools/benchmark/benchmark_model.cc."""
    log(f"Inference timings in us: Init: {init_us}, First inference: {warmup.values[0] if warmup.values else 0}, "
        f"Warmup (avg): {g6(warmup.avg())}, Inference (avg): {g6(regular.avg())}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
        "the actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={g6(memory['init_kb'] / 1024.0)} "
        f"overall={g6(memory['overall_kb'] / 1024.0)}")
    if memory["peak_mb"] > 0:
        log(f"Overall peak memory footprint (MB) via periodic monitoring: {g6(memory['peak_mb'])}")


def litert_log(line: int, message: str) -> None:
    """LITERT_LOG(LITERT_INFO, ...): 'INFO: [benchmark_litert_model.h:LINE] MESSAGE'."""
    sys.stderr.write(f"INFO: [benchmark_litert_model.h:{line}] {message}\n")


def print_litert_summary(init_us: int, warmup: Stat, regular: Stat, memory: dict[str, float]) -> None:
    """BenchmarkLoggingListener::OnBenchmarkEnd in litert/tools/benchmark_litert_model.h (line numbers as there)."""
    first = warmup.values[0] if warmup.values else 0
    litert_log(89, "\n========== BENCHMARK RESULTS ==========")
    litert_log(94, f"Model initialization: {init_us / 1000.0:.2f} ms")
    litert_log(95, f"Warmup (first):       {first / 1000.0:.2f} ms")
    litert_log(97, f"Warmup (avg):         {warmup.avg() / 1000.0:.2f} ms ({len(warmup.values)} runs)")
    litert_log(99, f"Inference (avg):      {regular.avg() / 1000.0:.2f} ms ({len(regular.values)} runs)")
    litert_log(103, f"Inference (min):      {min(regular.values) / 1000.0:.2f} ms")
    litert_log(105, f"Inference (max):      {max(regular.values) / 1000.0:.2f} ms")
    litert_log(107, f"Inference (std):      {regular.std() / 1000.0:.2f}")
    litert_log(115, f"Throughput:           {memory['size_mb'] / (regular.avg() / 1e6):.2f} MB/s")
    litert_log(124, "\nMemory Usage:")
    litert_log(125, f"Init footprint:       {memory['init_kb'] / 1024.0:.2f} MB")
    litert_log(127, f"Overall footprint:    {memory['overall_kb'] / 1024.0:.2f} MB")
    if memory["peak_mb"] > 0:
        litert_log(132, f"Peak memory:          {memory['peak_mb']:.2f} MB")
    else:
        litert_log(134, "Peak memory usage not available. (peak_mem_mb <= 0)")
    litert_log(138, "======================================\n")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _message(fields: list[tuple[int, str, Any]]) -> bytes:
    """proto2 wire format: float = fixed32 (wire type 5), ints = varint (0), message = length-delimited (2)."""
    import struct

    out = b""
    for number, kind, value in fields:
        if kind == "float":
            out += _varint(number << 3 | 5) + struct.pack("<f", value)
        elif kind == "int":
            out += _varint(number << 3) + _varint(int(value))
        else:
            out += _varint(number << 3 | 2) + _varint(len(value)) + value
    return out


def write_result_file(path: str, init_us: int, warmup: Stat, regular: Stat, memory: dict[str, float]) -> None:
    """The BenchmarkResult proto the LiteRT listener writes (field numbers of benchmark_result.proto)."""
    ms = lambda us: us / 1000.0  # noqa: E731
    latency = _message([(1, "float", ms(regular.avg())), (2, "float", ms(min(regular.values))),
                        (3, "float", ms(max(regular.values))), (4, "float", ms(regular.std())),
                        (5, "float", ms(regular.percentile(50))), (6, "float", ms(regular.percentile(5))),
                        (7, "float", ms(regular.percentile(95))), (8, "float", ms(init_us)),
                        (9, "float", ms(warmup.values[0] if warmup.values else 0)), (10, "float", ms(warmup.avg()))])
    mem = [(1, "int", memory["init_kb"]), (2, "int", memory["overall_kb"])]
    mem += [(3, "float", memory["peak_mb"])] if memory["peak_mb"] > 0 else []
    misc = _message([(1, "float", memory["size_mb"]), (2, "int", len(regular.values)), (3, "int", len(warmup.values)),
                     (4, "float", memory["size_mb"] / (regular.avg() / 1e6))])
    with open(path, "wb") as f:
        f.write(_message([(2, "msg", latency), (3, "msg", _message(mem)), (4, "msg", misc)]))
    litert_log(181, f"Saved benchmark result to: {path}")


if __name__ == "__main__":
    sys.exit(main())
