"""A user's own model, from outside the zoo: a Python callable, an ONNX file or a torch ExportedProgram.

A source ref names one: 'path/net.py:build', 'pkg.module:build', 'net.onnx', 'net.pt2', each optionally
followed by ':KEY=VALUE,...' (the callable's keyword arguments, or 'input_shape=1x3x64x64'). Loading
one gives a `LoadedSource`; the registry turns it into a `ModelSpec` so every command takes it like an
arch. Nothing here imports the registry.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

__all__ = ["LoadedSource", "split_source_ref", "load_source", "parse_input_shape", "image_input_shape", "exit_said"]

_MODULE_CALLABLE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+:[A-Za-z_]\w*$")
_FILE_SUFFIXES = {".onnx": "onnx", ".pt2": "exported_program"}


@dataclass(frozen=True)
class LoadedSource:
    """What a source ref names. `builder(**kwargs)` returns an nn.Module (None for ONNX files);
    `defaults` are its keyword arguments; `input_shape` the one it declares (None: must be given)."""

    kind: str
    ref: str
    name: str
    path: str
    sha256: str
    builder: Callable[..., Any] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "path": self.path, "sha256": self.sha256}


def split_source_ref(ref: str) -> tuple[str, str] | None:
    """'net.py:build:width=8' → ('net.py:build', 'width=8'); None when `ref` names no source (an arch)."""
    ref = ref.strip()
    for suffix in _FILE_SUFFIXES:
        at = ref.lower().find(suffix)
        if at > 0 and ref[at + len(suffix):at + len(suffix) + 1] in ("", ":"):
            end = at + len(suffix)
            return ref[:end], ref[end + 1:]
    at = ref.find(".py:")
    if at > 0:
        head, _, label = ref[at + 4:].partition(":")
        return ref[:at + 4] + head, label
    head, sep, label = ref.partition(":")
    head2, _, label2 = label.partition(":")
    if sep and _MODULE_CALLABLE.match(f"{head}:{head2}"):
        return f"{head}:{head2}", label2
    return None


def load_source(head: str) -> LoadedSource:
    """Load what `head` ('net.py:build', 'pkg.mod:build', 'net.onnx', 'net.pt2') names; ConfigError when it
    cannot be read or is not a model."""
    kind = next((k for s, k in _FILE_SUFFIXES.items() if head.lower().endswith(s)), "callable")
    if kind == "callable":
        return _load_callable(head)
    path = _existing_file(head)
    if kind == "onnx":
        return LoadedSource(kind, head, _slug_name(path.stem, "onnx"), str(path), _sha256(path),
                            input_shape=_onnx_shape(path))
    return _load_exported_program(head, path)


def _sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"model file not found: {text}")
    return path.resolve()


def _slug_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^a-z0-9]+", "_", p.lower()).strip("_") for p in parts if p)


def _load_callable(head: str) -> LoadedSource:
    where, _, attr = head.rpartition(":")
    if not where or not attr:
        raise ConfigError(f"--model-fn takes FILE.py:NAME or package.module:NAME, got {head!r}")
    module, path = _import(where)
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ConfigError(f"{where} has no callable {attr!r}")
    stem = Path(path).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]
    return LoadedSource("callable", head, _slug_name(stem, attr), path, _sha256(path), builder=fn,
                        defaults=_keyword_defaults(fn), input_shape=_declared_shape(fn))


def _import(where: str) -> tuple[Any, str]:
    """The module `where` names (a .py path or a dotted name) and its file; one line when it fails."""
    try:
        if where.endswith(".py"):
            path = _existing_file(where)
            name = f"mobiledeploy_user_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module, str(path)
        module = importlib.import_module(where)
    except ConfigError:
        raise
    except SystemExit as exc:  # the user's module ended the process: say so, never exit with its code silently
        raise ConfigError(f"cannot import {where}: it {exit_said(exc)} while being imported") from None
    except Exception as exc:
        raise ConfigError(f"cannot import {where}: {type(exc).__name__}: {_first_line(exc)}") from None
    path = getattr(module, "__file__", None)
    if not path:
        raise ConfigError(f"{where} is not a module loaded from a file")
    return module, str(Path(path).resolve())


def _keyword_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """Keyword arguments the callable takes: their defaults, None for required ones."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in params if p.kind in kinds and p.name != "self"}


def _declared_shape(fn: Callable[..., Any]) -> tuple[int, ...] | None:
    """The input a callable declares: `input_shape = (1, 3, 64, 64)` or `example_input = torch.zeros(...)`."""
    shape = getattr(fn, "input_shape", None)
    example = getattr(fn, "example_input", None)
    if shape is None and example is not None:
        first = example[0] if isinstance(example, (tuple, list)) else example
        shape = getattr(first, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def _load_exported_program(head: str, path: Path) -> LoadedSource:
    def build() -> Any:
        import torch

        program = load_program(path).module()

        class ExportedProgramModule(torch.nn.Module):
            """The program as an nn.Module; its graph was fixed in eval or train mode when exported, so
            train()/eval() only set the flag (the program's own module refuses them)."""

            def __init__(self) -> None:
                super().__init__()
                self.program = program

            def train(self, mode: bool = True) -> "ExportedProgramModule":
                self.training = mode
                return self

            def forward(self, x: Any) -> Any:
                return self.program(x)

        return ExportedProgramModule()

    return LoadedSource("exported_program", head, _slug_name(path.stem, "pt2"), str(path), _sha256(path),
                        builder=build, input_shape=_exported_program_shape(path))


def load_program(path: Path) -> Any:
    """torch.export.load, or one line saying why not: torch logs a traceback of its own (logger
    'torch.export') before it raises, and a newer schema's error only says to check it; that log is
    kept from stderr and its last line is the reason given."""
    import logging

    import torch

    logger, kept = logging.getLogger("torch.export"), _KeptRecords()  # torch gives it a stderr handler of its own
    propagate, handlers = logger.propagate, logger.handlers[:]
    logger.propagate, logger.handlers = False, [kept]
    try:
        return torch.export.load(str(path))
    except Exception as exc:
        said = f"{type(exc).__name__}: {_first_line(exc)}"
        logged = kept.last_error()
        if logged and ("above" in said or not str(exc).strip()):
            said = logged
        raise ConfigError(f"cannot load ExportedProgram {path.name}: {said}") from None
    finally:
        logger.propagate, logger.handlers = propagate, handlers


class _KeptRecords(logging.Handler):
    """Holds torch.export's log records instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def last_error(self) -> str | None:
        """The last line of the last logged traceback (or message): the error torch ran into."""
        import traceback

        for record in reversed(self.records):
            text = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else record.getMessage()
            lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return None


def _exported_program_shape(path: Path) -> tuple[int, ...] | None:
    """The static shape of the program's one tensor input; None when a dimension is dynamic."""
    program = load_program(path)
    specs = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    if len(specs) != 1:
        raise ConfigError(f"{path.name} takes {len(specs)} inputs; mobiledeploy exports models with one image input")
    value = nodes[specs[0].arg.name].meta.get("val")
    dims = list(getattr(value, "shape", []))
    if not all(isinstance(d, int) for d in dims):
        return None
    return tuple(dims)


def _onnx_shape(path: Path) -> tuple[int, ...] | None:
    """The static shape of the file's one input (a dynamic batch taken as 1); None when another dim is dynamic."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise ConfigError(f"cannot read ONNX file {path.name}: {type(exc).__name__}: {_first_line(exc)}") from None
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    dims = [[d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim] for v in inputs]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs)
        static = all(d and None not in d for d in dims)
        raise ConfigError(f"{path.name} has {len(inputs)} inputs ({names}){'' if static else ' and no static shapes'}: "
                          "mobiledeploy exports models with one image input")
    if len(graph.output) != 1:  # parity would check the first output only, and a TFLite runtime reads one
        names = ", ".join(v.name for v in graph.output)
        raise ConfigError(f"{path.name} has {len(graph.output)} outputs ({names}): mobiledeploy exports models with "
                          "one tensor output")
    shape = dims[0]
    if shape and shape[0] is None:
        shape[0] = 1
    return tuple(shape) if shape and None not in shape else None  # type: ignore[arg-type]


def parse_input_shape(text: Any) -> tuple[int, ...]:
    """'1x3x224x224' (or a sequence of ints) → (1, 3, 224, 224)."""
    if isinstance(text, (tuple, list)):
        parts = [str(d) for d in text]
    else:
        parts = str(text).lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--input-shape takes dimensions like 1x3x224x224, got {text!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"--input-shape takes positive dimensions like 1x3x224x224, got {text!r}")
    return shape


def image_input_shape(shape: tuple[int, ...], what: str) -> tuple[int, int]:
    """(H, W) of a batch-1 3-channel NCHW image input: the inputs every stage (calibration, parity) makes."""
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 3:
        shown = "x".join(map(str, shape))
        raise ConfigError(f"{what} takes input {shown}; mobiledeploy exports batch-1 RGB image models (1x3xHxW)")
    return shape[2], shape[3]


def exit_said(exc: SystemExit) -> str:
    """What a SystemExit from a user's code said: 'called sys.exit(3)', 'raised SystemExit: no GPU'."""
    if isinstance(exc.code, str):
        return f"raised SystemExit: {_first_line(exc)}"
    return f"called sys.exit({'' if exc.code is None else exc.code})"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
