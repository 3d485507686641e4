"""`mobiledeploy devices`: the phones a farm (DeviceFarmer/STF) or the adb server offers."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .app import Json, app, print_json
from .console import stdout_console
from .options import AdbServerOpt

__all__ = ["devices_cmd"]


@app.command("devices")
def devices_cmd(
    device: Annotated[Optional[str], typer.Option(
        "--device", "-d", help="A farm (stf:http://HOST:PORT/?FILTERS, token in $STF_TOKEN) or a list of phones "
        "(adb:A,adb:B); default: every phone the adb server sees.")] = None,
    adb_server: AdbServerOpt = None,
    json_out: Json = False,
) -> None:
    """What a farm (DeviceFarmer/STF) or the adb server offers: model, SoC, ABI, Android SDK and whether it is free.

    Example: mobiledeploy devices
    Example: STF_TOKEN=... mobiledeploy devices --device 'stf:https://farm.example/?abi=arm64-v8a' --json
    """
    from ..lab_session import offered_phones

    rows, source = offered_phones(device, adb_server)
    if json_out:
        print_json({"source": source, "devices": rows})
        return
    _print_devices(rows, source)


def _print_devices(rows: list[dict[str, Any]], source: str) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"phones offered by {escape(source)}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    columns = ["serial", "model", "manufacturer", "soc", "abi", "sdk", "free"] + (["matches"] if any(
        "matches" in r for r in rows) else []) + (["state"] if any("state" in r for r in rows) else [])
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(_cell(row.get(col))) for col in columns))
    stdout_console().print(table)
    if not rows:
        stdout_console().print("[dim]no phone[/]")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value in (None, "") else str(value)
