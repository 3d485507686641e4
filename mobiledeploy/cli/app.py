"""The Typer app, the error boundary and the options every model-taking command shares."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

from ..errors import MobiledeployError

app = typer.Typer(
    name="mobiledeploy",
    help="Take efficient CNNs from a PyTorch reference to ARM phones, and measure how fast they really are.\n\n"
    "Example: mobiledeploy info --arch v1 --g 3",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

Arch = Annotated[str, typer.Option("--arch", "-a", help="Architecture or alias (see `mobiledeploy models`).")]
Groups = Annotated[Optional[int], typer.Option("--g", "--groups", help="ShuffleNet v1 group count: 1, 2, 3, 4 or 8.")]
Scale = Annotated[Optional[float], typer.Option("--scale", help="Width multiplier, e.g. 0.5 for ShuffleNet 0.5x.")]
Alpha = Annotated[Optional[float], typer.Option("--alpha", help="MobileNet width multiplier α.")]
Resolution = Annotated[str, typer.Option("--resolution", "-r", help="Input size: N or HxW (e.g. 224, 480x640).")]
Options = Annotated[
    Optional[list[str]], typer.Option("--set", help="Other model option as KEY=VALUE (repeatable), e.g. --set se=16.")
]
Weights = Annotated[Optional[str], typer.Option("--weights", help="A state_dict file to load instead of seeded init.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]


def model_config(g: int | None, scale: float | None, alpha: float | None, options: list[str] | None) -> dict[str, Any]:
    """The options the user actually gave, as a registry config (unset ones fall back to defaults)."""
    from ..registry import parse_label

    config: dict[str, Any] = {"g": g, "scale": scale, "alpha": alpha}
    for item in options or []:
        if "=" not in item:
            raise MobiledeployError(f"--set takes KEY=VALUE, got {item!r}")
        config.update(parse_label(item))
    return {k: v for k, v in config.items() if v is not None}


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"mobiledeploy: error: {message}\n")
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app; toolkit errors become one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except MobiledeployError as exc:
        sys.stderr.write(f"mobiledeploy: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("mobiledeploy: interrupted\n")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        # Usage errors of the click Typer bundles (its own copy in recent versions): duck-typed.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            sys.stderr.write("mobiledeploy: aborted\n")
            return 130
        raise
    return 0
