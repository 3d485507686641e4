"""The Typer app, the error boundary and the options every model-taking command shares."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import MobiledeployError
from ..signals import interrupt_exit_code, signal_name
from ..signals import install as install_signal_handlers
from ..signals import received as signal_received
from ..signals import reset as reset_signals
from ..signals import restore as restore_signal_handlers

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
Calibration = Annotated[str, typer.Option(
    "--calibration", help="int8 calibration of implicit exports: a directory of images, or 'synthetic'.")]
CalibSamples = Annotated[int, typer.Option("--calib-samples", help="Calibration inputs for int8 (implicit exports).")]
ArtifactsRoot = Annotated[Optional[Path], typer.Option(
    "--out", "--artifacts", help="Artifacts root of implicit exports: OUT/<arch-config-HxW>/ (default artifacts/).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]
ModelFn = Annotated[Optional[str], typer.Option(
    "--model-fn", help="Your own model: a callable returning an nn.Module, as FILE.py:NAME or package.module:NAME "
    "(its keyword arguments with --set KEY=VALUE).")]
OnnxFile = Annotated[Optional[str], typer.Option("--onnx", help="Your own model as an ONNX file (starts at the ONNX stage).")]
ExportedProgramFile = Annotated[Optional[str], typer.Option(
    "--exported-program", help="Your own model as a torch.export.save file (.pt2).")]
InputShape = Annotated[Optional[str], typer.Option(
    "--input-shape", help="Input of your own model, NCHW 1x3xHxW (default: the shape the model declares).")]


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"mobiledeploy {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Take efficient CNNs from a PyTorch reference to ARM phones, and measure how fast they really are."""


def model_config(g: int | None, scale: float | None, alpha: float | None, options: list[str] | None) -> dict[str, Any]:
    """The options the user actually gave, as a registry config (unset ones fall back to defaults)."""
    from ..registry import parse_label

    config: dict[str, Any] = {"g": g, "scale": scale, "alpha": alpha}
    for item in options or []:
        if "=" not in item:
            raise MobiledeployError(f"--set takes KEY=VALUE, got {item!r}")
        config.update(parse_label(item))
    return {k: v for k, v in config.items() if v is not None}


def model_choice(arch: str | None, model_fn: str | None, onnx: str | None, exported_program: str | None,
                 config: dict[str, Any], input_shape: str | None) -> tuple[str, dict[str, Any]]:
    """(name, config) of the one model the options give: a zoo arch, or the user's own, registered now."""
    from ..errors import ConfigError
    from ..registry import register_source

    given = [(opt, value) for opt, value in (("--arch", arch), ("--model-fn", model_fn), ("--onnx", onnx),
                                             ("--exported-program", exported_program)) if value]
    if len(given) != 1:
        raise ConfigError("give one model: --arch NAME, --model-fn FILE.py:NAME, --onnx FILE.onnx or "
                          f"--exported-program FILE.pt2 (got {' and '.join(o for o, _ in given) or 'none'})")
    option, value = given[0]
    if option == "--arch":
        if input_shape is not None:
            raise ConfigError("--input-shape is for your own model (--model-fn, --onnx, --exported-program); "
                              "zoo models take --resolution")
        return value, config
    suffix = {"--onnx": ".onnx", "--exported-program": ".pt2"}.get(option)
    if suffix and not value.lower().endswith(suffix):
        raise ConfigError(f"{option} takes a {suffix} file, got {value}")
    if option == "--model-fn" and (":" not in value or value.lower().endswith((".onnx", ".pt2"))):
        raise ConfigError(f"--model-fn takes FILE.py:NAME or package.module:NAME, got {value!r}")
    if suffix and config:
        raise ConfigError(f"{option} takes no model options (--set, --g, --scale, --alpha): the file fixes the model")
    extra = {"input_shape": input_shape} if input_shape is not None else {}
    return register_source(value), {**config, **extra}


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"mobiledeploy: error: {message}\n")
    raise SystemExit(code)


_activity: list[str] = []


def set_activity(text: str) -> None:
    """What the command is doing now (a stage, a run), named in the line printed when it is interrupted."""
    _activity[:] = [text]


def _interrupted_line(argv: list[str]) -> str:
    name = signal_name()
    command = next((a for a in argv if not a.startswith("-")), "mobiledeploy")
    during = f": {_activity[0]}" if _activity else ""
    return f"mobiledeploy: interrupted by {name} during {command}{during}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app; toolkit errors become one line on stderr and exit code 2;
    SIGINT and SIGTERM unwind (temp files removed, reports written) and exit 130 and 143."""
    args = list(sys.argv[1:] if argv is None else argv)
    reset_signals()
    _activity.clear()
    previous = install_signal_handlers()
    try:
        try:
            code = _run(args)
        except KeyboardInterrupt:  # arrived outside the command (while starting or ending)
            code = 130
        if code == 130 or signal_received():
            sys.stderr.write(_interrupted_line(args))
            return interrupt_exit_code()
        return code
    finally:
        restore_signal_handlers(previous)


def usage_error_line(exc: Any) -> str:
    """A usage error (unknown option, bad value) as one line, like every other error, naming the help to read."""
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "mobiledeploy"
    message = " ".join(exc.format_message().split()).rstrip(".")
    return f"mobiledeploy: error: {message} (see `{path} --help`)"


def _run(argv: list[str]) -> int:
    try:
        returned = app(args=argv, standalone_mode=False)
    except MobiledeployError as exc:
        sys.stderr.write(f"mobiledeploy: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        # Usage errors of the click Typer bundles (its own copy in recent versions): duck-typed.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not callable(getattr(exc, "format_message", None)):
                exc.show()  # a command given no arguments: its help
            else:
                sys.stderr.write(usage_error_line(exc) + "\n")
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    # standalone_mode=False: Typer returns the code of an Exit (130 for a KeyboardInterrupt it caught)
    return returned if isinstance(returned, int) else 0
