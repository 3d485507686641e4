"""Reports people would rather look at: matplotlib plots, one self-contained HTML page, Markdown.

`write_compare_report` draws latency vs MACs on log-log axes (with the line of latency
proportional to mult-adds through the baseline), measured vs theoretical speedup bars (with
confidence intervals and the paper's figures where the suite has them) and the per-layer gap
chart (share of time vs share of MACs per op type); `write_guidelines_report` draws the guideline
micro-benchmarks. The HTML embeds the PNGs as base64 (one file to mail around); the Markdown
links the PNGs written beside it. Every file is written atomically (temp file + rename).

Input is plain data: `CompareRow`/`Attribution`/`GuidelineResult` objects or their dicts.
matplotlib (the `report` extra) is imported only here, with the Agg backend.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from pathlib import Path
from typing import Any, Sequence

from .files import write_atomic
from .records import RunResult
from .stability import described

__all__ = ["write_compare_report", "write_guidelines_report", "plot_latency_vs_macs", "plot_speedups",
           "plot_attribution", "plot_guidelines"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
_MARKERS = {"fp32": "o", "int8": "s"}


def _d(item: Any) -> dict[str, Any]:
    """A row, attribution or guideline result as a dict; a dict saved before the rename has its `format`
    (a precision) read as `precision`."""
    if isinstance(item, dict):
        return {**item, "precision": item["format"]} if "precision" not in item and "format" in item else item
    return described(item) if isinstance(item, RunResult) else item.to_dict()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


# --- plots -----------------------------------------------------------------------------------------

def plot_latency_vs_macs(rows: Sequence[Any]) -> bytes | None:
    """Median latency vs MACs, log-log, one series per resolution and precision, the proportional
    line (latency ∝ MACs) through each baseline. None when no row has both numbers."""
    data = [_d(r) for r in rows]
    points = [r for r in data if r.get("macs") and r.get("median_ms")]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    series = sorted({(r["resolution"], r["precision"]) for r in points}, key=lambda s: (_pixels(s[0]), s[1]))
    resolutions = sorted({s[0] for s in series}, key=_pixels)
    xmin = min(r["macs"] for r in points) / 1.5
    xmax = max(r["macs"] for r in points) * 1.5
    for res, precision in series:
        color = _COLORS[resolutions.index(res) % len(_COLORS)]
        group = [r for r in points if r["resolution"] == res and r["precision"] == precision]
        ax.scatter([r["macs"] for r in group], [r["median_ms"] for r in group], color=color,
                   marker=_MARKERS.get(precision, "^"), s=46, label=f"{res} {precision}", zorder=3,
                   facecolors=color if precision != "int8" else "none")
        for r in group:
            ax.annotate(_short(r["model"]), (r["macs"], r["median_ms"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points", color=color)
        base = next((r for r in group if r.get("baseline")), None)
        if base:
            k = base["median_ms"] / base["macs"]
            ax.plot([xmin, xmax], [k * xmin, k * xmax], linestyle="--", linewidth=1, color=color, alpha=0.6)
    # the paper's latency at the same input size, at this model's MACs for that size (the paper's
    # FLOPs column is for 224x224 only)
    published = {(r["key"], r["resolution"]): r for r in points if r.get("paper_ms")}
    for res in resolutions:
        group = [r for (key, r_res), r in published.items() if r_res == res]
        if group:
            color = _COLORS[resolutions.index(res) % len(_COLORS)]
            ax.scatter([r["macs"] for r in group], [r["paper_ms"] for r in group], marker="*", s=70,
                       color=color, alpha=0.45, label=f"{res} paper (Snapdragon 820)", zorder=2)
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xmin, xmax)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    for axis in (ax.yaxis,):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    ax.set_xlabel("mult-adds (MACs, the papers' FLOPs)")
    ax.set_ylabel("median latency (ms)")
    ax.set_title("Latency vs mult-adds (dashed: latency proportional to MACs through the baseline)", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def plot_speedups(rows: Sequence[Any]) -> bytes | None:
    """Theoretical vs measured speedup over the baseline (CI whiskers; the paper's where known)."""
    data = [_d(r) for r in rows if not _d(r).get("baseline")]
    data = [r for r in data if r.get("theoretical_speedup") or r.get("measured_speedup")]
    if not data:
        return None
    plt = _pyplot()
    precisions = sorted({r["precision"] for r in data})
    width_in = max(7.0, 0.9 * max(sum(r["precision"] == p for r in data) for p in precisions) + 2)
    fig, axes = plt.subplots(len(precisions), 1, figsize=(width_in, 3.8 * len(precisions)), squeeze=False)
    has_paper = any(r.get("paper_measured_speedup") for r in data)
    for ax, precision in zip(axes[:, 0], precisions):
        group = [r for r in data if r["precision"] == precision]
        xs = range(len(group))
        bar = 0.27 if has_paper else 0.38
        theo = [r.get("theoretical_speedup") or 0 for r in group]
        meas = [r.get("measured_speedup") or 0 for r in group]
        err = [[max(0.0, m - (r.get("measured_speedup_ci") or [m, m])[0]) for m, r in zip(meas, group)],
               [max(0.0, (r.get("measured_speedup_ci") or [m, m])[1] - m) for m, r in zip(meas, group)]]
        ax.bar([x - bar for x in xs] if has_paper else [x - bar / 2 for x in xs], theo, bar,
               label="theoretical (MAC ratio)", color="#bbbbbb")
        ax.bar([x for x in xs] if has_paper else [x + bar / 2 for x in xs], meas, bar, yerr=err, capsize=3,
               label="measured here (95% CI)", color="#1f77b4")
        if has_paper:
            ax.bar([x + bar for x in xs], [r.get("paper_measured_speedup") or 0 for r in group], bar,
                   label="paper, Snapdragon 820", color="#ff7f0e")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{_short(r['model'])}\n{r['resolution']}" for r in group], fontsize=7)
        ax.set_ylabel("speedup over baseline (x)")
        ax.set_title(f"{precision}: measured vs theoretical speedup", fontsize=10)
        ax.grid(True, axis="y", alpha=0.25)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def plot_attribution(attributions: Sequence[Any], top: int = 10) -> bytes | None:
    """Per op type: share of time vs share of MACs (and of memory access), one panel per model."""
    data = [_d(a) for a in attributions if _d(a).get("categories")]
    if not data:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(data), figsize=(5.2 * len(data), 0.45 * top + 1.8), squeeze=False)
    for ax, att in zip(axes[0], data):
        cats = sorted(att["categories"], key=lambda c: -(c["time_share"] + c["mac_share"]))[:top]
        cats.reverse()
        ys = range(len(cats))
        h = 0.27
        ax.barh([y + h for y in ys], [c["time_share"] * 100 for c in cats], h, label="time", color="#d62728")
        ax.barh(list(ys), [c["mac_share"] * 100 for c in cats], h, label="MACs", color="#1f77b4")
        ax.barh([y - h for y in ys], [c["memory_share"] * 100 for c in cats], h, label="memory access",
                color="#999999")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([c["label"] for c in cats], fontsize=8)
        ax.set_xlabel("share (%)")
        ax.set_title(f"{_short(att.get('model', ''))} ({att.get('precision', '')})", fontsize=9)
        ax.grid(True, axis="x", alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Where the time goes vs where the mult-adds are", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def plot_guidelines(results: Sequence[Any]) -> bytes | None:
    """Relative throughput per variant (reference = 1), one panel per guideline and precision."""
    data = [_d(r) for r in results if any(v.get("relative_speed") for v in _d(r)["variants"])]
    if not data:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(data), figsize=(max(5.5, 3.8 * len(data)), 3.8), squeeze=False)
    for ax, res in zip(axes[0], data):
        variants = res["variants"]
        key = "relative_throughput" if any(v.get("relative_throughput") for v in variants) else "relative_speed"
        vals = [v.get(key) or 0 for v in variants]
        cis = [v.get(f"{key}_ci") or [val, val] for v, val in zip(variants, vals)]
        err = [[max(0.0, val - ci[0]) for val, ci in zip(vals, cis)], [max(0.0, ci[1] - val) for val, ci in zip(vals, cis)]]
        colors = ["#999999"] + ["#1f77b4"] * (len(vals) - 1)
        ax.bar(range(len(vals)), vals, yerr=err, capsize=3, color=colors)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels([v["label"] for v in variants], rotation=30, fontsize=7, ha="right")
        ax.set_title(f"{res['id']} ({res.get('precision', '')}): {res['verdict']}", fontsize=9)
        ax.set_ylabel("relative speed per MAC" if key == "relative_throughput" else "relative speed")
        ax.grid(True, axis="y", alpha=0.25)
    fig.tight_layout()
    return _png(fig)


# --- pages -----------------------------------------------------------------------------------------

def _short(label: str) -> str:
    return label if len(label) <= 28 else label[:27] + "…"


def _pixels(res: str) -> int:
    try:
        h, w = res.split("x")
        return int(h) * int(w)
    except ValueError:
        return 0


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "ci":
        return f"[{value[0]:.2f}, {value[1]:.2f}]"
    if kind == "M":
        return f"{value / 1e6:.1f} M"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


COMPARE_COLUMNS = [
    ("model", "model", ""), ("precision", "precision", ""), ("resolution", "resolution", ""), ("macs", "MACs", "M"),
    ("median_ms", "median ms", ""), ("theoretical_speedup", "theoretical", "x"),
    ("measured_speedup", "measured", "x"), ("measured_speedup_ci", "95% CI", "ci"), ("efficiency", "efficiency", "pct"),
    ("paper_ms", "paper ms", ""), ("paper_measured_speedup", "paper measured", "x"),
    ("paper_theoretical_speedup", "paper theoretical", "x"), ("status", "status", ""),
]
# estimated ms (a phone profile applied to counted qemu: runs) get their own table, never a column of the measured one
ESTIMATE_COLUMNS = [
    ("model", "model", ""), ("precision", "precision", ""), ("resolution", "resolution", ""),
    ("estimate_phone", "phone profile", ""), ("estimated_ms", "estimated ms", ""),
    ("estimated_band_pct", "band ±%", ""), ("estimated_speedup", "estimated speedup", "x"),
    ("measured_speedup", "instruction ratio (exact)", "x"), ("paper_ms", "paper ms", ""),
    ("paper_measured_speedup", "paper speedup", "x"),
]
GUIDELINE_ESTIMATE_COLUMNS = [
    ("label", "variant", ""), ("estimated_ms", "estimated ms", ""), ("estimated_band_pct", "band ±%", ""),
    ("estimated_relative_speed", "estimated relative speed", "x"), ("relative_speed", "relative speed (counted)", "x"),
]
ATTRIBUTION_COLUMNS = [
    ("label", "op type", ""), ("layers", "layers", ""), ("ops", "ops timed", ""), ("time_share", "time", "pct"),
    ("mac_share", "MACs", "pct"), ("memory_share", "memory", "pct"), ("gap", "time - MACs", "gap"),
    ("gmacs_per_s", "GMAC/s", ""), ("gbytes_per_s", "GB/s", ""), ("macs_per_byte", "MAC/byte", ""),
]
GUIDELINE_COLUMNS = [
    ("label", "variant", ""), ("macs", "MACs", "M"), ("median_ms", "median ms", ""),
    ("relative_speed", "relative speed", "x"), ("relative_throughput", "per MAC", "x"),
    ("relative_throughput_ci", "95% CI (per MAC)", "ci"), ("paper", "paper's direction", ""),
]


def _cell(row: dict[str, Any], key: str, kind: str) -> str:
    value = row.get(key)
    if kind == "gap" and value is not None:
        return f"{value * 100:+.1f} pt"
    return _fmt(value, kind)


def _html_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r, key, kind))}</td>" for key, _, kind in columns) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r, key, kind).replace("|", "\\|") for key, _, kind in columns) + " |")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}
.meta{color:#555;font-size:13px}"""


def _page(title: str, sections: list[str]) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>\n")


def _meta_lines(meta: dict[str, Any]) -> list[str]:
    lines = [f"{k}: {v}" for k, v in meta.items() if v not in (None, "", [], {})]
    lines.append(f"generated: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}")
    return lines


def _write_page(out_dir: Path, stem: str, title: str, meta: dict[str, Any], blocks: list[tuple[str, Any]]) -> dict[str, Path]:
    """blocks: ("h2", text) / ("p", text) / ("table", (rows, columns)) / ("png", (file name, bytes, caption))."""
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    html_parts = ["<div class='meta'>" + "<br>".join(html.escape(line) for line in _meta_lines(meta)) + "</div>"]
    md_parts = [f"# {title}", "", *[f"- {line}" for line in _meta_lines(meta)], ""]
    for kind, content in blocks:
        if kind == "h2":
            html_parts.append(f"<h2>{html.escape(content)}</h2>")
            md_parts += [f"## {content}", ""]
        elif kind == "p":
            html_parts.append(f"<p>{html.escape(content)}</p>")
            md_parts += [content, ""]
        elif kind == "table":
            rows, columns = content
            html_parts.append(_html_table(rows, columns))
            md_parts += [_md_table(rows, columns), ""]
        elif kind == "png":
            name, data, caption = content
            if data is None:
                continue
            written[name] = write_atomic(out_dir / name, data)
            encoded = base64.b64encode(data).decode()
            html_parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{encoded}'>"
                              f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            md_parts += [f"![{caption}]({name})", ""]
    written["html"] = write_atomic(out_dir / f"{stem}.html", _page(title, html_parts))
    written["markdown"] = write_atomic(out_dir / f"{stem}.md", "\n".join(md_parts) + "\n")
    return written


def write_compare_report(out_dir: str | Path, rows: Sequence[Any], *, attributions: Sequence[Any] = (),
                         meta: dict[str, Any] | None = None, title: str = "Theory vs measurement") -> dict[str, Path]:
    """compare.html (self-contained), compare.md and the PNGs it links, in `out_dir`."""
    data = [_d(r) for r in rows]
    atts = [_d(a) for a in attributions]
    blocks: list[tuple[str, Any]] = [
        ("p", "Theoretical speedup = baseline MACs / model MACs; measured speedup = baseline median latency / "
              "model median latency (95% bootstrap CI); efficiency = measured / theoretical. Each relative to the "
              "baseline at the same resolution and precision."),
        ("h2", "Speedups over the baseline"),
        ("table", (data, COMPARE_COLUMNS)),
        ("png", ("latency_vs_macs.png", plot_latency_vs_macs(data), "Latency vs MACs (log-log)")),
        ("png", ("speedups.png", plot_speedups(data), "Measured vs theoretical speedup")),
    ]
    estimated = [r for r in data if r.get("estimated_ms") is not None]
    if estimated:
        calibration = "; ".join(dict.fromkeys(str(r.get("estimate_calibration") or "") for r in estimated))
        blocks += [("h2", "Estimated milliseconds (not measured)"),
                   ("p", "A phone profile applied to the counted runs above (single thread, mobiledeploy.estimate): "
                         f"estimates with their band, never measured latencies. Calibration: {calibration}."),
                   ("table", (estimated, ESTIMATE_COLUMNS))]
    if atts:
        blocks += [("h2", "Per-layer attribution"),
                   ("png", ("per_layer_gap.png", plot_attribution(atts), "Share of time vs share of MACs per op type"))]
        for att in atts:
            blocks.append(("p", f"{att.get('model')} ({att.get('precision')}): times from {att.get('source')}; "
                                f"{'; '.join(att.get('notes') or [])}"))
            blocks.append(("table", (att["categories"], ATTRIBUTION_COLUMNS)))
    return _write_page(Path(out_dir), "compare", title, meta or {}, blocks)


def write_guidelines_report(out_dir: str | Path, results: Sequence[Any], *, meta: dict[str, Any] | None = None,
                            title: str = "ShuffleNet v2 guidelines on this device") -> dict[str, Path]:
    """guidelines.html, guidelines.md and guidelines.png in `out_dir`."""
    data = [_d(r) for r in results]
    blocks: list[tuple[str, Any]] = [("png", ("guidelines.png", plot_guidelines(data), "Relative speed per variant"))]
    for res in data:
        blocks += [("h2", f"{res['id']} ({res['precision']}): {res['title']} — {res['verdict']}"),
                   ("p", f"Paper ({res['source']}): {res['claim']}. {res['summary']}"),
                   ("table", (res["variants"], GUIDELINE_COLUMNS))]
        if any(v.get("estimated_ms") is not None for v in res["variants"]):
            blocks += [("p", "Estimated milliseconds (not measured; the verdict above is not decided by them):"),
                       ("table", (res["variants"], GUIDELINE_ESTIMATE_COLUMNS))]
    return _write_page(Path(out_dir), "guidelines", title, meta or {}, blocks)
