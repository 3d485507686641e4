"""A host build of the `benchmark_model` contract, for tests and hosts without a phone.

Accepts TFLite `benchmark_model`'s flags (`--graph`, `--num_threads`, `--num_runs`,
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

DEFAULTS: dict[str, Any] = {
    "graph": "", "num_threads": -1, "num_runs": 50, "min_secs": 1.0, "max_secs": 150.0,
    "warmup_runs": 1, "warmup_min_secs": 0.5, "enable_op_profiling": False, "use_xnnpack": True,
    "report_peak_memory_footprint": False, "memory_footprint_check_interval_ms": 50, "verbose": False,
}


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
    log(text.rstrip("\n"))  # one TFLITE_LOG(INFO) call: only the first line carries the prefix


def main(argv: list[str] | None = None) -> int:
    flags, unknown = parse_flags(sys.argv[1:] if argv is None else argv)
    log("STARTING!")
    for arg in unknown:
        log(f"WARNING: unconsumed cmdline flag {arg}")
    log(f"Log parameter values verbosely: [{int(flags['verbose'])}]")
    log(f"Min num runs: [{flags['num_runs']}]")
    log(f"Num threads: [{flags['num_threads']}]")
    log(f"Min warmup runs: [{flags['warmup_runs']}]")
    log(f"Graph: [{flags['graph']}]")
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


def benchmark(flags: dict[str, Any], start_rss_kb: int, monitor: PeakMemoryMonitor | None) -> int:
    graph = flags["graph"]
    if not graph:
        error("Please specify the name of your TF Lite input file with --graph")
        error("Benchmarking failed.")
        return 1
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if flags["use_xnnpack"] else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    threads = flags["num_threads"] if flags["num_threads"] > 0 else None
    start = now_us()
    try:
        interpreter = Interpreter(model_path=graph, num_threads=threads, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
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
    log(f"Inference timings in us: Init: {init_us}, First inference: {warmup.values[0] if warmup.values else 0}, "
        f"Warmup (avg): {g6(warmup.avg())}, Inference (avg): {g6(regular.avg())}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to "
        "the actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={g6((init_rss_kb - start_rss_kb) / 1024.0)} "
        f"overall={g6((max_rss_kb() - start_rss_kb) / 1024.0)}")
    if monitor and monitor.peak_mb > 0:
        log(f"Overall peak memory footprint (MB) via periodic monitoring: {g6(monitor.peak_mb)}")
    if flags["enable_op_profiling"] and regular.values:
        print_profiles(init_us, regular, len(interpreter._get_ops_details()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
