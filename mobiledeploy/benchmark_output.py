"""`parse_benchmark_output`: the text TFLite's `benchmark_model` prints, as numbers.

Accepted forms (samples in tests/fixtures/benchmark_model/, sources in SOURCES.md):

- current: `Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …`,
  one `count=… first=… curr=… min=… max=… avg=… std=… [p5=… median=… p95=…]` line per phase
  (warm-up, then regular runs), `Memory footprint delta from the start of the tool (MB): init=… overall=…`
  and, with `--report_peak_memory_footprint=true`,
  `Overall peak memory footprint (MB) via periodic monitoring: …`;
- TF 2.3/2.4: the same timings with `Peak memory footprint (MB): init=… overall=…`;
- legacy: `Average inference timings in us: Warmup: …, Init: …, Inference: …` (or `no stats: …`);
- LiteRT (`litert/tools/benchmark_litert_model.h`, `BenchmarkLoggingListener::OnBenchmarkEnd`, the
  tool built from `benchmark_litert_model_main.cc` that LiteRT publishes as `benchmark_model`): a block of
  `INFO: [benchmark_litert_model.h:NN] ` lines, `Model initialization: X ms`, `Warmup (first): X ms`,
  `Warmup (avg): X ms (N runs)`, `Inference (avg|min|max): X ms`, `Inference (std): X`,
  `Throughput: X MB/s`, `Init footprint` / `Overall footprint` / `Peak memory: X MB` (no
  `Inference timings in us` line; the per-phase `count=…` lines are still printed);
- delegation, from `tflite/core/subgraph.cc`: `Replacing N out of M node(s) with delegate (NAME) node,
  yielding K partitions[ for subgraph I (NAME)].`, one line per delegate applied;
- with `--enable_op_profiling=true`: the "Operator-wise Profiling Info for Regular Benchmark Runs"
  tables (or, in legacy output, the untitled tables), read by their header so both the layouts
  with and without a `[start]` column parse.

Lines may carry a logger prefix (`INFO: `, LiteRT's `INFO: [file.h:NN] `, logcat's `I tflite  : `,
indentation). Times are
microseconds (`*_us`), memory megabytes (`*_mb`), op times milliseconds (`*_ms`) as printed.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import RunnerError

__all__ = ["parse_benchmark_output", "run_stats_from_line", "delegation_from_lines"]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf"
_CURRENT = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUM}), First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warmup>{_NUM}), Inference \(avg\): (?P<inference>{_NUM})"
)
_LEGACY = re.compile(r"Average inference timings in us: (?P<body>.*)$")
_LEGACY_KEYS = {"Warmup": "warmup_avg_us", "Init": "init_us", "Inference": "inference_avg_us",
                "no stats": "inference_avg_us", "with stats": "inference_with_stats_avg_us"}
_MEMORY = re.compile(
    rf"(?P<label>Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
    rf"init=(?P<init>{_NUM}) overall=(?P<overall>{_NUM})"
)
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: (?P<peak>{_NUM})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\): (?P<size>{_NUM})")
_SESSION = re.compile(rf"Initialized session in (?P<ms>{_NUM}) ?ms")
_RUNNING = re.compile(r"Running benchmark for at least (?P<n>\d+) iterations")
_STAT_LINE = re.compile(r"(?:^|[\s:])(?P<stats>count=\d+.*)$")
_STAT_PAIR = re.compile(rf"(\w+)=({_NUM})")
_TITLE = re.compile(r"^=+ (?P<title>.+?) =+$")
_OP_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs"
_INIT_SECTION = "Profiling Info for Benchmark Initialization"
_LOG_PREFIX = re.compile(r"^\s*(?:(?:INFO|WARNING|WARN|ERROR|VERBOSE): (?:\[[\w.\-]+:\d+\] )?"
                         r"|(?:\S+\s+)*?[VDIWEF] (?:tflite|litert)\s*: )?")
_LITERT_MS = re.compile(rf"^(?P<label>Model initialization|Warmup \(first\)|Warmup \(avg\)|Inference \(avg\)|"
                        rf"Inference \(min\)|Inference \(max\)|Inference \(std\)|Init footprint|Overall footprint|"
                        rf"Peak memory|Throughput):\s+(?P<value>{_NUM})(?: ms| MB/s| MB)?(?: \((?P<runs>\d+) runs\))?$")
_LITERT_KEYS = {"Model initialization": "init_us", "Warmup (first)": "first_us", "Warmup (avg)": "warmup_avg_us",
                "Inference (avg)": "inference_avg_us", "Inference (min)": "inference_min_us",
                "Inference (max)": "inference_max_us", "Inference (std)": "inference_std_us",
                "Init footprint": "memory_init_mb", "Overall footprint": "memory_overall_mb",
                "Peak memory": "peak_memory_mb", "Throughput": "throughput_mb_per_s"}
_LITERT_TITLE = "========== BENCHMARK RESULTS =========="
_DELEGATED = re.compile(r"Replacing (?P<n>\d+) out of (?P<m>\d+) node\(s\) with delegate \((?P<name>[^)]*)\) node, "
                        r"yielding (?P<k>\d+) partitions(?: for subgraph (?P<sub>\d+))?")


def _strip(line: str) -> str:
    return _LOG_PREFIX.sub("", line.rstrip("\r\n"), count=1)


def run_stats_from_line(line: str) -> dict[str, float] | None:
    """'count=50 first=… curr=… min=… max=… avg=… std=… p5=… median=… p95=…' → a dict (us).

    `count=1 curr=X` (every value equal) becomes min=max=avg=median=X with std=0.
    """
    match = _STAT_LINE.search(line)
    if not match or match.group("stats").startswith("count=0"):
        return None
    stats = {k: float(v) for k, v in _STAT_PAIR.findall(match.group("stats"))}
    if "avg" not in stats and "curr" in stats:  # all values the same
        for key in ("first", "min", "max", "avg", "p5", "median", "p95"):
            stats.setdefault(key, stats["curr"])
        stats["std"] = 0.0
    stats["count"] = int(stats["count"])
    return stats


def parse_benchmark_output(text: str) -> dict[str, Any]:
    """Parse one `benchmark_model` run. Raises RunnerError when no inference timings are found.

    Returns a dict with (absent when the output lacks them): `format` ("current"/"legacy"),
    `init_us`, `first_us`, `warmup_avg_us`, `inference_avg_us`, `warmup` and `inference` (run
    stats dicts: count, first, curr, min, max, avg, std, p5, median, p95 in us), `memory_init_mb`,
    `memory_overall_mb`, `memory_label`, `peak_memory_mb`, `model_size_mb`, `session_init_ms`,
    `op_profile` (list of {node_type, name, start_ms, first_ms, avg_ms, percent, cdf_percent,
    mem_kb, times_called}), `op_summary` (per node type), `init_profile`, `failed` (the tool
    printed "Benchmarking failed.").
    """
    lines = [_strip(line) for line in text.splitlines()]
    out: dict[str, Any] = {"failed": any(line.strip() == "Benchmarking failed." for line in lines)}
    out.update(_summary(lines))
    out.update(_litert_block(lines))
    out.update(_phase_stats(lines))
    if delegation := delegation_from_lines(lines):
        out["delegation"] = delegation
    out.update(_memory(lines))
    out.update(_profiles(lines))
    if "inference_avg_us" not in out and "inference" not in out:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
        raise RunnerError(f"benchmark_model printed no inference timings (last line: {last[:200]!r})")
    if "inference_avg_us" not in out:
        out["inference_avg_us"] = out["inference"]["avg"]
    if "inference" not in out and out.get("format") == "litert":
        out["inference"] = _litert_stats(out)
    return out


def _litert_block(lines: list[str]) -> dict[str, Any]:
    """LiteRT's `========== BENCHMARK RESULTS ==========` block: times in ms (kept here as *_us), memory in MB."""
    start = next((i for i, line in enumerate(lines) if line.strip() == _LITERT_TITLE), None)
    if start is None:
        return {}
    out: dict[str, Any] = {"format": "litert", "memory_label": "LiteRT overall footprint"}
    for line in lines[start + 1:]:
        if line.strip().startswith("=" * 10):
            break
        if not (m := _LITERT_MS.match(line.strip())):
            continue
        key, value = _LITERT_KEYS[m["label"]], float(m["value"])
        out[key] = value * 1000.0 if key.endswith("_us") else value
        if m["runs"]:
            out["warmup_runs" if key == "warmup_avg_us" else "inference_runs"] = int(m["runs"])
    return out


def _litert_stats(out: dict[str, Any]) -> dict[str, float]:
    """Run stats from LiteRT's block alone (no `count=` line): count, avg, min, max, std in us."""
    stats = {"count": out.get("inference_runs", 0), "avg": out["inference_avg_us"]}
    for key in ("min", "max", "std"):
        if f"inference_{key}_us" in out:
            stats[key] = out[f"inference_{key}_us"]
    return stats


def delegation_from_lines(lines: list[str]) -> dict[str, Any] | None:
    """What ran where, from TFLite's `Replacing N out of M node(s) with delegate (NAME) node, yielding K
    partitions` lines (tflite/core/subgraph.cc) of the main subgraph. The first delegate applied (the
    accelerator asked for) sees the whole graph; later ones (XNNPACK taking what a GPU left) are listed
    in `applied`."""
    found = [m for line in lines if (m := _DELEGATED.search(line)) and int(m["sub"] or 0) == 0]
    if not found:
        return None
    m = found[0]
    nodes, delegated = int(m["m"]), int(m["n"])
    out = {"delegate": m["name"], "nodes": nodes, "delegated_nodes": delegated, "cpu_nodes": nodes - delegated,
           "partitions": int(m["k"])}
    if len(found) > 1:
        out["applied"] = [{"delegate": f["name"], "delegated_nodes": int(f["n"]), "nodes": int(f["m"]),
                           "partitions": int(f["k"])} for f in found]
    return out


def _summary(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if m := _CURRENT.search(line):
            out.update(format="current", init_us=float(m["init"]), first_us=float(m["first"]),
                       warmup_avg_us=float(m["warmup"]), inference_avg_us=float(m["inference"]))
        elif m := _LEGACY.search(line):
            out["format"] = "legacy"
            for part in m["body"].split(","):
                key, _, value = part.partition(":")
                if key.strip() in _LEGACY_KEYS and re.fullmatch(_NUM, value.strip()):
                    out[_LEGACY_KEYS[key.strip()]] = float(value)
        elif m := _MODEL_SIZE.search(line):
            out["model_size_mb"] = float(m["size"])
        elif m := _SESSION.search(line):
            out["session_init_ms"] = float(m["ms"])
    return out


def _phase_stats(lines: list[str]) -> dict[str, Any]:
    """The warm-up and regular-run stat lines (not the op profiler's 'Timings (microseconds)')."""
    phases = ("warmup", "inference")
    out: dict[str, Any] = {}
    loose: list[dict[str, float]] = []
    phase = -1
    for line in lines:
        if _RUNNING.search(line):
            phase += 1
            continue
        if not line.lstrip().startswith("count="):
            continue
        stats = run_stats_from_line(line)
        if stats is None:
            continue
        if 0 <= phase < len(phases) and phases[phase] not in out:
            out[phases[phase]] = stats
        else:
            loose.append(stats)
    if not out and loose:  # output without the "Running benchmark…" lines (e.g. trimmed logs)
        out.update(zip(phases[-len(loose[-2:]):], loose[-2:]))
    return out


def _memory(lines: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in lines:
        if m := _MEMORY.search(line):
            out.update(memory_label=m["label"], memory_init_mb=float(m["init"]),
                       memory_overall_mb=float(m["overall"]))
        elif m := _PEAK.search(line):
            out["peak_memory_mb"] = float(m["peak"])
    return out


def _profiles(lines: list[str]) -> dict[str, Any]:
    """Op-profiling tables: 'Run Order' of the regular runs, 'Summary by node type'."""
    section, title, header = "", "", None
    tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for raw in lines:
        line = raw.strip()
        if line.rstrip(":") in (_OP_SECTION, _INIT_SECTION):
            section = line.rstrip(":")
            continue
        if m := _TITLE.match(line):
            title, header = m["title"], None
            continue
        if not title:
            continue
        cells = [c.strip() for c in raw.split("\t") if c.strip()]
        if header is None:
            if cells and cells[0].lower() in ("[node type]",):
                header = [_column(c) for c in cells]
            continue
        if len(cells) != len(header):
            title, header = "", None
            continue
        tables.setdefault((section, title), []).append(_row(header, cells))
    out: dict[str, Any] = {}
    regular = _OP_SECTION if any(s == _OP_SECTION for s, _ in tables) else ""
    if (regular, "Run Order") in tables:
        out["op_profile"] = tables[(regular, "Run Order")]
    if (regular, "Summary by node type") in tables:
        out["op_summary"] = tables[(regular, "Summary by node type")]
    if (_INIT_SECTION, "Run Order") in tables:
        out["init_profile"] = tables[(_INIT_SECTION, "Run Order")]
    return out


_COLUMNS = {"[node type]": "node_type", "[start]": "start_ms", "[first]": "first_ms", "[avg ms]": "avg_ms",
            "[%]": "percent", "[cdf%]": "cdf_percent", "[mem kb]": "mem_kb", "[times called]": "times_called",
            "[name]": "name", "[count]": "count", "[avg %]": "percent", "[cdf %]": "cdf_percent"}


def _column(cell: str) -> str:
    return _COLUMNS.get(cell.lower(), cell.strip("[]").lower().replace(" ", "_"))


def _row(header: list[str], cells: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, cell in zip(header, cells):
        if key in ("node_type", "name"):
            row[key] = cell
        elif key in ("times_called", "count"):
            row[key] = int(float(cell))
        else:
            try:
                row[key] = float(cell.rstrip("%"))
            except ValueError:
                row[key] = cell
    return row
