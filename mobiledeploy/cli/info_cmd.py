"""`mobiledeploy models` and `mobiledeploy info`: the registry and the theoretical cost."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .app import Alpha, Arch, Groups, Json, Options, Resolution, Scale, app, model_config, print_json


@app.command("models")
def models_cmd(
    pattern: Annotated[Optional[str], typer.Argument(help="Shell-style filter, e.g. 'shufflenet*'.")] = None,
    json_out: Json = False,
) -> None:
    """List registered architectures, their aliases, options and papers.

    Example: mobiledeploy models 'shufflenet*'
    """
    from ..errors import ConfigError
    from ..registry import get_spec, list_models

    names = list_models(pattern or "*")
    if not names:
        raise ConfigError(f"no registered architecture matches {pattern!r} (`mobiledeploy models` lists them all)")
    rows = []
    for name in names:
        spec = get_spec(name)
        rows.append({
            "name": name,
            "aliases": list(spec.aliases),
            "family": spec.family,
            "defaults": spec.defaults,
            "choices": {k: list(v) for k, v in spec.choices.items()},
            "paper": spec.paper,
        })
    if json_out:
        print_json({"models": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="registered architectures")
    for col in ("name", "aliases", "options (choices)", "paper"):
        table.add_column(col, overflow="fold")
    for row in rows:
        opts = ", ".join(
            f"{k}∈{{{','.join(map(str, row['choices'][k]))}}}" if k in row["choices"] else f"{k}={v}"
            for k, v in row["defaults"].items()
        )
        table.add_row(row["name"], ", ".join(row["aliases"]), opts, row["paper"])
    Console().print(table)


@app.command("info")
def info_cmd(
    arch: Arch,
    g: Groups = None,
    scale: Scale = None,
    alpha: Alpha = None,
    resolution: Resolution = "224",
    options: Options = None,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="Show every layer, not only totals and stages.")] = False,
    json_out: Json = False,
) -> None:
    """Theoretical cost of a model: mult-adds ("FLOPs" in the papers), params, memory access.

    Example: mobiledeploy info --arch v1 --g 3 --scale 0.5 --per-layer
    """
    from ..analysis import analyse

    report = analyse(arch, resolution, **model_config(g, scale, alpha, options))
    if json_out:
        print_json(report.to_dict(per_layer=True))
        return
    print_report(report, per_layer)


def print_report(report, per_layer: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Column, Table

    console = Console()
    cfg = ", ".join(f"{k}={v}" for k, v in report.config.items())
    console.print(f"[bold]{report.arch}[/] ({cfg}) input {'x'.join(map(str, report.input_shape))}")
    if per_layer:
        table = Table(Column("layer", no_wrap=True), "op", "output", "mult-adds", "params", "memory access")
        for layer in report.layers:
            table.add_row(layer.name, layer.op, "x".join(map(str, layer.out_shape[1:])),
                          f"{layer.macs:,}", f"{layer.params:,}", f"{layer.memory_access:,}")
        console.print(table)
    ops = Table("op type", "count", "mult-adds", "share", "memory access", "share", title="by op type")
    for op, row in sorted(report.by_op().items(), key=lambda kv: -kv[1]["memory_access"]):
        ops.add_row(op, str(row["count"]), f"{row['macs'] / 1e6:.2f} M", f"{row['macs'] / max(report.macs, 1):.0%}",
                    f"{row['memory_access'] / 1e6:.2f} M", f"{row['memory_access'] / max(report.memory_access, 1):.0%}")
    console.print(ops)
    if report.stages:
        console.print("stages: " + ", ".join(f"{s['name']}={s['out_channels']}" for s in report.stages))
    console.print(
        f"[bold]mult-adds[/] {report.macs / 1e6:.1f} M (the papers' \"FLOPs\": conv + linear multiply-accumulates)  "
        f"[bold]params[/] {report.params / 1e6:.3f} M  [bold]memory access[/] {report.memory_access / 1e6:.1f} M elements  "
        f"[bold]element-wise[/] {report.elementwise / 1e6:.1f} M"
    )
    if report.unknown_ops:
        console.print(f"[yellow]not counted (no handler): {', '.join(report.unknown_ops)}[/]")
