"""An accuracy report as rows people read: the table the CLI prints and the HTML + Markdown page.

Plain data in (the dict `accuracy.evaluate` returns), strings out; the page is written by `report._write_page`
(atomic files, the HTML self-contained).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["result_rows", "paired_rows", "layer_rows", "plot_layers", "LAYER_COLUMNS", "arm_lines", "summary", "write_accuracy_report", "RESULT_COLUMNS", "PAIRED_COLUMNS"]

RESULT_COLUMNS = [("artifact", "artifact", ""), ("device", "device", ""), ("runtime", "runtime", ""),
                  ("top1", "top-1", ""), ("top1_ci", "95% CI", ""), ("top5", "top-5", ""), ("top5_ci", "95% CI (top-5)", ""),
                  ("images", "images", "")]
PAIRED_COLUMNS = [("pair", "pair", ""), ("difference", "top-1 difference", ""), ("ci", "95% CI", ""),
                  ("discordant", "only first / only second right", ""), ("p_value", "McNemar exact p", "")]
LAYER_COLUMNS = [("rank", "#", ""), ("op", "op", ""), ("tensor", "tensor", ""), ("added_db", "added dB", ""),
                 ("nsr_db", "NSR dB", ""), ("rmse_over_scale", "RMSE/scale", "")]
_NAMES = {"torch": "torch fp32", "onnx": "ONNX", "fp32": "TFLite fp32", "int8": "TFLite int8", "int16x8": "TFLite int16x8"}


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def _ci(entry: dict[str, Any]) -> str:
    return f"[{entry['low'] * 100:.1f}, {entry['high'] * 100:.1f}]"


def result_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"artifact": _NAMES.get(r["artifact"], r["artifact"]), "device": r["device"], "runtime": r["runtime"],
             "top1": _pct(r["top1"]["accuracy"]), "top1_ci": _ci(r["top1"]), "top5": _pct(r["top5"]["accuracy"]),
             "top5_ci": _ci(r["top5"]), "images": str(r["top1"]["n"])} for r in report["results"]]


def layer_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-layer table (quant_error.layer_errors rows), worst added damage first."""
    rows = (report.get("layers") or {}).get("rows") or []
    return [{"rank": str(i), "op": f"{r['op']} #{r['op_index']}", "tensor": _short(r["tensor"]),
             "added_db": f"{r['added_db']:+.1f}", "nsr_db": "exact" if r["nsr_db"] is None else f"{r['nsr_db']:.1f}",
             "rmse_over_scale": "—" if r["rmse_over_scale"] is None else f"{r['rmse_over_scale']:.2f}"}
            for i, r in enumerate(rows, 1)]


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def plot_layers(report: dict[str, Any], top: int = 20) -> bytes | None:
    """Horizontal bars: the error each of the `top` worst int8 ops adds (dB), with the error accumulated there."""
    rows = ((report.get("layers") or {}).get("rows") or [])[:top]
    if not rows:
        return None
    from .report import _png, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    labels = [f"{r['op']} #{r['op_index']} {_short(r['tensor'], 28)}" for r in rows][::-1]
    ax.barh(labels, [r["added_db"] for r in rows][::-1], color="#d62728", label="added by the op (dB)")
    ax.scatter([r["nsr_db"] if r["nsr_db"] is not None else float("nan") for r in rows][::-1], labels, color="#1f77b4", zorder=3, label="accumulated NSR (dB)")
    ax.axvline(0, color="#555", linewidth=0.8)
    ax.set_xlabel("dB (noise-to-signal of int8 vs fp32; higher is worse)")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"int8 error per layer, worst {len(rows)} (measured on {report['layers']['images']} images)", fontsize=10)
    return _png(fig)


def _named(key: str) -> str:
    artifact, device = key.split("@", 1)
    return f"{_NAMES.get(artifact, artifact)} ({device})"


def paired_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"pair": f"{_named(p['second'])} − {_named(p['first'])}", "difference": f"{p['difference'] * 100:+.2f} pt",
             "ci": f"[{p['low'] * 100:+.1f}, {p['high'] * 100:+.1f}]",
             "discordant": f"{p['only_first']} / {p['only_second']}", "p_value": f"{p['p_value']:.3g}"}
            for p in report["paired"]]


def arm_lines(report: dict[str, Any]) -> list[str]:
    """One line per Arm result against the host: identical, or which images differ and by how much."""
    lines = []
    for a in report["arm"]:
        what = f"{_NAMES.get(a['artifact'], a['artifact'])} on {a['device']} vs {_named(a['against'])}"
        if a["identical"]:
            lines.append(f"{what}: identical outputs on all {report['images']['images']} images")
            continue
        shown = ", ".join(f"{e['file']} ({e['max_difference']:.3g})" for e in a["examples"][:5])
        lines.append(f"{what}: {a['images_differing']} image(s) differ, by at most {a['max_difference']:.3g} "
                     f"{a['unit']}; {a['predictions_differing']} prediction(s) change; e.g. {shown}")
    return lines


def summary(report: dict[str, Any]) -> dict[str, str]:
    """What was evaluated, on what, and what kind of figures: the lines above every table."""
    images = report["images"]
    calibration = report.get("calibration") or {}
    return {"model": f"{report['model']} (export {report['export']})",
            "images": f"{images['images']} from {images['root']} ({images['classes']} classes, {images['class_map']}); "
                      f"{images['skipped']} file(s) skipped",
            "figures": f"{report['figures']}; intervals: Wilson {report['confidence']:.0%}",
            "int8 calibration": f"{calibration.get('source')} ({calibration.get('samples')} images)" if calibration else ""}


def write_accuracy_report(out_dir: str | Path, report: dict[str, Any]) -> dict[str, Path]:
    """accuracy.html (self-contained) and accuracy.md in `out_dir`."""
    from .report import _write_page

    blocks: list[tuple[str, Any]] = [("h2", "Top-1 / top-5 per artifact and device"),
                                     ("table", (result_rows(report), RESULT_COLUMNS))]
    blocks += [("p", f"Warning: {w}") for w in report.get("warnings") or []]
    if report["paired"]:
        blocks += [("h2", "fp32 against int8, paired on the same images"),
                   ("table", (paired_rows(report), PAIRED_COLUMNS))]
    if report["arm"]:
        blocks += [("h2", "Arm against the host"), *[("p", line) for line in arm_lines(report)]]
    if report.get("layers"):
        blocks += [("h2", "int8 error per layer (against the fp32 model's same tensor), worst first"),
                   ("png", ("layers.png", plot_layers(report), "Error added per int8 op")),
                   ("table", (layer_rows(report)[:30], LAYER_COLUMNS))]
    return _write_page(Path(out_dir), "accuracy", f"Accuracy of {report['model']}", summary(report), blocks)
