"""The report of a compare across a lab of phones: each phone's measured speedups side by side.

`write_by_device_report` writes by_device.html (self-contained) and by_device.md in the report folder, with
one grouped-bar plot (per model: the theoretical speedup, then each phone's measured speedup with its 95%
interval) and the side-by-side table; each phone's own full compare report goes to `<folder>/<phone>/`.
Plain data in: (phone dict as `fanout.PhoneRun.to_dict()`, compare rows) pairs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from .report import _d, _png, _pyplot, _short, _write_page, write_compare_report

__all__ = ["write_by_device_report", "plot_speedups_by_device", "side_by_side_rows"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def side_by_side_rows(per_phone: Sequence[tuple[dict[str, Any], Sequence[Any]]]) -> list[dict[str, Any]]:
    """One dict per (model, precision, resolution): its theoretical speedup and each phone's measured one
    (`<phone>` → 'x [low, high]', `<phone>_x` → the number)."""
    table: dict[tuple[Any, ...], dict[str, Any]] = {}
    for phone, rows in per_phone:
        for row in map(_d, rows):
            key = (row["model"], row["precision"], row["resolution"], row.get("runtime") or "")
            entry = table.setdefault(key, {"model": row["model"], "precision": row["precision"],
                                           "resolution": row["resolution"],
                                           "theoretical_speedup": row.get("theoretical_speedup")})
            entry[f"{phone['phone']}_x"] = row.get("measured_speedup")
            entry[f"{phone['phone']}_ci"] = row.get("measured_speedup_ci")
            entry[phone["phone"]] = _speedup(row)
    return list(table.values())


def _speedup(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return "FAILED"
    if row.get("baseline"):
        return "baseline"
    ci = row.get("measured_speedup_ci")
    return "—" if row.get("measured_speedup") is None else (
        f"{row['measured_speedup']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))


def plot_speedups_by_device(per_phone: Sequence[tuple[dict[str, Any], Sequence[Any]]]) -> bytes | None:
    """Grouped bars per model: theoretical (grey), then each phone's measured speedup (95% CI whiskers)."""
    phones = [phone["phone"] for phone, _ in per_phone]
    rows = [r for r in side_by_side_rows(per_phone) if any(r.get(f"{p}_x") for p in phones)
            and not all(r.get(p) == "baseline" for p in phones)]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(rows) * (len(phones) + 1) / 2 + 2), 4.2))
    width = 0.8 / (len(phones) + 1)
    xs = range(len(rows))
    ax.bar([x - 0.4 + width / 2 for x in xs], [r.get("theoretical_speedup") or 0 for r in rows], width,
           color="#bbbbbb", label="theoretical (MAC ratio)")
    for i, phone in enumerate(phones):
        values = [r.get(f"{phone}_x") or 0 for r in rows]
        cis = [r.get(f"{phone}_ci") or [v, v] for r, v in zip(rows, values)]
        err = [[max(0.0, v - ci[0]) for v, ci in zip(values, cis)], [max(0.0, ci[1] - v) for v, ci in zip(values, cis)]]
        ax.bar([x - 0.4 + width * (i + 1.5) for x in xs], values, width, yerr=err, capsize=2,
               color=_COLORS[i % len(_COLORS)], label=_short(phone))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{_short(r['model'])}\n{r['precision']} {r['resolution']}" for r in rows], fontsize=7)
    ax.set_ylabel("speedup over baseline (x)")
    ax.set_title("Measured speedup per phone (95% CI) beside the theoretical one", fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def write_by_device_report(out_dir: str | Path, per_phone: Sequence[tuple[dict[str, Any], Sequence[Any]]], *,
                           meta: dict[str, Any] | None = None,
                           title: str = "Theory vs measurement across phones") -> dict[str, Path]:
    """by_device.html / by_device.md (+ the plot) in `out_dir`, and each phone's compare report in a subfolder."""
    out = Path(out_dir)
    phones = [phone for phone, _ in per_phone]
    phone_columns = [("phone", "phone", ""), ("device", "device", ""), ("machine_class", "machine class", ""),
                     ("status", "status", ""), ("error", "error", "")]
    columns = [("model", "model", ""), ("precision", "precision", ""), ("resolution", "resolution", ""),
               ("theoretical_speedup", "theoretical", "x"), *((p["phone"], p["phone"], "") for p in phones)]
    blocks: list[tuple[str, Any]] = [
        ("p", "Each phone's models are set against the baseline timed on the same phone, in its own interleaved "
              "session; measured speedup = baseline median / model median (95% bootstrap CI)."),
        ("h2", "Phones"), ("table", (phones, phone_columns)),
        ("h2", "Measured speedup per phone"), ("table", (side_by_side_rows(per_phone), columns)),
        ("png", ("speedups_by_device.png", plot_speedups_by_device(per_phone), "Measured speedup per phone")),
    ]
    written = _write_page(out, "by_device", title, meta or {}, blocks)
    for phone, rows in per_phone:
        if rows:
            write_compare_report(out / _slug(phone["phone"]), rows, meta={**(meta or {}), "device": phone["device"],
                                                                        "machine class": phone.get("machine_class")},
                                 title=f"Theory vs measurement on {phone['phone']}")
    return written


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "phone"

