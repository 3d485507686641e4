"""One registry: every architecture is reachable by name (or a short alias) and built from plain config."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .errors import ConfigError

__all__ = ["Declared", "parse_label", "parse_model_ref", "config_slug", "ModelSpec", "register_model", "list_models", "get_spec", "build_model", "build_from_config", "canonical_name", "register_source", "ENTRY_POINT_GROUP"]


class Declared(NamedTuple):
    """A published complexity figure: mult-adds and params (None where not published).

    `tolerance` is the relative error allowed; papers that label a family by a round number
    ("ShuffleNet 0.5x (38 MFLOPs)" for every g) get a wider one than exact table entries.
    `plus_elementwise` names op types whose outputs the paper's counter adds to its FLOPs
    (CondenseNet's counts each ReLU output as one op): `comparable_macs` adds them back.
    """

    macs: float | None
    params: float | None
    source: str
    tolerance: float = 0.02
    plus_elementwise: tuple[str, ...] = ()

    def comparable_macs(self, report: Any) -> int:
        """The figure of a ComplexityReport counted the way the paper counts it."""
        by_op = report.by_op()
        return report.macs + sum(by_op.get(op, {}).get("elementwise", 0) for op in self.plus_elementwise)


def parse_label(label: str) -> dict[str, Any]:
    """'g=3,scale=0.5,resolution=160' → {'g': 3, 'scale': 0.5, 'resolution': 160}."""
    out: dict[str, Any] = {}
    for part in filter(None, label.split(",")):
        key, _, raw = part.partition("=")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw in ("True", "False"):
            value = raw == "True"
        out[key.strip()] = value
    return out


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of one architecture.

    `builder(**config)` returns an `nn.Module`; `defaults` is its full default config;
    `choices` maps a config key to its valid values (shown in errors and `mobiledeploy models`);
    `paper` cites where the architecture and its complexity table come from;
    `source` describes a user's own model (see `mobiledeploy.sources`: kind, ref, path, sha256), whose
    `input_shape` is the one it declares (None: given with --input-shape);
    `declared` maps a config label ('g=3,scale=0.5', optionally with 'resolution=160', see
    `parse_label`) to a published `Declared` figure, so tests check the analysis against papers.
    """

    name: str
    builder: Callable[..., Any]
    family: str
    paper: str
    aliases: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    declared: dict[str, Declared] = field(default_factory=dict)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    source: dict[str, Any] | None = None
    input_shape: tuple[int, ...] | None = None

    def resolve(self, config: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults, reject unknown keys and values outside `choices`."""
        unknown = sorted(set(config) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ConfigError(f"{self.name} has no option {', '.join(unknown)} (options: {valid})")
        full = {**self.defaults, **{k: v for k, v in config.items() if v is not None}}
        for key, valid in self.choices.items():
            if full[key] not in valid:
                shown = ", ".join(str(v) for v in valid)
                raise ConfigError(f"{self.name}: {key}={full[key]} is not valid (choose from {shown})")
        return full


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    aliases: tuple[str, ...] = (),
    choices: dict[str, tuple[Any, ...]] | None = None,
    declared: dict[str, Declared] | None = None,
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder under `name`; its keyword defaults are the model's default config.

    Raises ValueError on a name or alias that is already taken.
    """

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        _check_free(name, aliases, builder)
        defaults = {
            p.name: p.default
            for p in inspect.signature(builder).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        extra = {"mean": mean, "std": std}
        spec = ModelSpec(
            name=name,
            builder=builder,
            family=family,
            paper=paper,
            aliases=tuple(aliases),
            defaults=defaults,
            choices=dict(choices or {}),
            declared=dict(declared or {}),
            **{k: v for k, v in extra.items() if v is not None},
        )
        _REGISTRY[name] = spec
        for alias in aliases:
            _ALIASES[alias] = name
        return builder

    return decorate


def _check_free(name: str, aliases: tuple[str, ...], builder: Callable[..., Any]) -> None:
    """ValueError when `name` or an alias is taken: by a registration, or in the table by another builder
    (the table's own builder registering itself on import is the registration the table stands for)."""
    specs, table_aliases = _table()
    for key in (name, *aliases):
        held = key if key in specs else table_aliases.get(key)
        if key in _REGISTRY or key in _ALIASES or (held and (held != name or specs[held].builder.ref != builder_ref(builder))):
            raise ValueError(f"model name {key!r} is already registered")


def builder_ref(builder: Callable[..., Any]) -> str:
    """'module:qualname' of a builder, as the table (mobiledeploy/model_table.py) names it."""
    return f"{getattr(builder, '__module__', '')}:{getattr(builder, '__qualname__', '')}"


class TableBuilder:
    """The builder of a table entry, 'module:function': its module (and torch) is imported on the first call."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.__module__, _, self.__qualname__ = ref.partition(":")

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.__module__), self.__qualname__)

    def __call__(self, **config: Any) -> Any:
        return self.load()(**config)

    def __repr__(self) -> str:
        return f"TableBuilder({self.ref!r})"


_TABLE: dict[str, ModelSpec] = {}
_TABLE_ALIASES: dict[str, str] = {}


def _table() -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """The built-in models as mobiledeploy/model_table.py lists them (names, options, papers: no torch), loaded once."""
    if not _TABLE:
        from .model_table import MODELS

        for name, row in MODELS.items():
            declared = {label: Declared(*figure) for label, figure in row["declared"].items()}
            _TABLE[name] = ModelSpec(name=name, builder=TableBuilder(row["builder"]), family=row["family"],
                                     paper=row["paper"], aliases=row["aliases"], defaults=dict(row["defaults"]),
                                     choices=dict(row["choices"]), declared=declared, mean=row["mean"], std=row["std"])
            _TABLE_ALIASES.update({alias: name for alias in row["aliases"]})
    return _TABLE, _TABLE_ALIASES


#: the package whose import registers the built-in families. It is loaded by name, the way plugins are:
#: the families depend on the registry, never the other way round. The names, options and papers of the
#: built-in families are also in mobiledeploy/model_table.py (generated from the registrations,
#: `python -m mobiledeploy.registry_table --write`; tests/test_registry.py holds the two equal), so that naming,
#: validating and listing models imports neither torch nor the families: a family is imported when a model
#: of it is built.
BUILTIN_FAMILIES = "mobiledeploy.models"
ENTRY_POINT_GROUP = "mobiledeploy.models"
_plugins_loaded: list[bool] = []


def _ensure_plugins() -> None:
    if not _plugins_loaded:
        _plugins_loaded.append(True)
        _load_plugins()


def load_builtins() -> None:
    """Import every built-in family (and torch): their registrations replace the table's entries."""
    importlib.import_module(BUILTIN_FAMILIES)


def _load_plugins() -> None:
    """Third-party architectures: each entry point of the group `mobiledeploy.models` names a module that
    registers models on import (`@register_model`), or a builder registered under the entry point's name."""
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            known = {builder_ref(s.builder) for s in [*_REGISTRY.values(), *_table()[0].values()]}
            if callable(loaded) and not inspect.ismodule(loaded) and builder_ref(loaded) not in known:
                register_model(ep.name, family="third-party", paper=f"entry point {ep.value}")(loaded)
        except Exception as exc:  # one broken plugin must not take the zoo down with it
            warnings.warn(f"mobiledeploy.models entry point {ep.name!r} ({ep.value}) not loaded: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)


def _find(key: str) -> str | None:
    """The canonical name of `key` among registrations and the table, or None."""
    specs, aliases = _table()
    for names, alias_map in ((_REGISTRY, _ALIASES), (specs, aliases)):
        if key in names:
            return key
        if key in alias_map:
            return alias_map[key]
    return None


def canonical_name(name: str) -> str:
    """The registered name of an arch, an alias, or a user's model ('net.py:build', 'net.onnx': registered now).

    The table and the registrations made so far answer first; a name they do not know loads the third-party
    plugins, then the built-in families (a family registered but missing from a stale table), before it is
    refused."""
    from .sources import split_source_ref

    key = name.strip().lower().replace("-", "_")
    found = _find(key)
    source = split_source_ref(name) if found is None else None
    if source is not None and not source[1]:
        return register_source(source[0])
    for load in (_ensure_plugins, load_builtins):
        if found is None:
            load()
            found = _find(key)
    if found is not None:
        return found
    known = ", ".join(sorted({*_REGISTRY, *_ALIASES, *_table()[0], *_table()[1]}))
    raise ConfigError(f"unknown architecture {name!r} (known: {known})")


def get_spec(name: str) -> ModelSpec:
    """The registration of `name` when its family is imported, else the table's entry (the same but the builder,
    which imports the family when called)."""
    key = canonical_name(name)
    return _REGISTRY.get(key) or _table()[0][key]


def list_models(pattern: str = "*") -> list[str]:
    """Canonical names matching a shell-style pattern (also matched against aliases), sorted."""
    _ensure_plugins()
    specs = {**_table()[0], **_REGISTRY}
    return sorted(
        name
        for name, spec in specs.items()
        if spec.source is None and any(fnmatch.fnmatch(n, pattern) for n in (name, *spec.aliases))
    )


def build_model(name: str, /, *, seed: int | None = 0, **config: Any) -> Any:
    """Build a registered model with seeded init (see `mobiledeploy.models.common.init_weights`). A model
    option named `seed` cannot be given here: `build_from_config` takes any option name."""
    return build_from_config(name, config, seed=seed)


def build_from_config(name: str, config: dict[str, Any], /, *, seed: int | None = 0) -> Any:
    """`build_model` with the options as a dict, so that a builder's own keywords (`seed`, `name`, any)
    never meet this function's arguments."""
    spec = get_spec(name)
    full = spec.resolve(config)
    from .models.common import init_weights

    if spec.source is not None:
        model = _build_source(spec, full, seed)
    else:
        model = spec.builder(**full)
        if seed is not None:
            init_weights(model, seed)
    model.eval()
    model.mobiledeploy_spec = spec  # type: ignore[attr-defined]
    model.mobiledeploy_config = full  # type: ignore[attr-defined]
    return model


def _build_source(spec: ModelSpec, config: dict[str, Any], seed: int | None) -> Any:
    """A user's model, built by its own code (its own init, seeded): one line when it is not an nn.Module."""
    import torch

    if spec.builder is None:
        raise ConfigError(f"{spec.source['ref']} is an ONNX file: there is no PyTorch model to build")  # type: ignore[index]
    if seed is not None:
        torch.manual_seed(seed)
    kwargs = {k: v for k, v in config.items() if v is not None}
    try:
        model = spec.builder(**kwargs)
    except ConfigError:
        raise
    except SystemExit as exc:  # the user's code ended the process: one line that says so, never its exit code
        from .sources import exit_said

        raise ConfigError(f"{spec.source['ref']} {exit_said(exc)} while building the model") from None  # type: ignore[index]
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(f"{spec.source['ref']} failed to build the model: {type(exc).__name__}: {first}") from None  # type: ignore[index]
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"{spec.source['ref']} returned {type(model).__name__}, not a torch.nn.Module")  # type: ignore[index]
    return model


def register_source(head: str) -> str:
    """Register the user's model `head` names ('net.py:build', 'pkg.mod:build', 'net.onnx', 'net.pt2') for
    this process, under a name from its file and callable ('net_build', 'net_onnx'); returns the name."""
    from .sources import load_source

    _ensure_plugins()
    loaded = load_source(head)
    held = _REGISTRY.get(loaded.name) or _table()[0].get(loaded.name)
    if held is not None and (held.source or {}).get("path") != loaded.path:
        what = held.source["ref"] if held.source else "a registered architecture"
        raise ConfigError(f"{head} and {what} would both be named {loaded.name!r}: rename one")
    _REGISTRY[loaded.name] = ModelSpec(
        name=loaded.name, builder=loaded.builder, family="your own", paper=loaded.ref,  # type: ignore[arg-type]
        defaults=dict(loaded.defaults), source=loaded.describe(), input_shape=loaded.input_shape,
    )
    return loaded.name


def parse_model_ref(ref: str) -> tuple[str, dict[str, Any]]:
    """'v1:g=3,scale=0.5' → ('shufflenet_v1', {'g': 3, 'scale': 0.5}); resolution stays in the dict.

    A source ref ('net.py:build:width=8', 'net.onnx', see `mobiledeploy.sources`) registers that model
    first; 'input_shape=1x3x64x64' stays in the dict like resolution."""
    from .sources import split_source_ref

    source = split_source_ref(ref)
    if source is not None:
        return register_source(source[0]), parse_label(source[1])
    name, _, label = ref.partition(":")
    return canonical_name(name), parse_label(label)


def config_slug(name: str, config: dict[str, Any], resolution: tuple[int, int] | None = None) -> str:
    """A short, stable folder name: the arch, the options that set it apart, the input size.

    'shufflenet_v1-g3-scale1.0-224x224'. Options listed in `choices` always appear; others only
    when they differ from the default. A value that cannot be part of a folder name (a path separator,
    '..', a space, a non-ASCII letter, over 64 characters) is refused, never cleaned: two values must not
    share a folder.
    """
    spec = get_spec(name)
    full = spec.resolve(config)
    parts = [spec.name]
    for key in sorted(full):
        if key in spec.choices or full[key] != spec.defaults.get(key):
            value = full[key]
            shown = f"{int(value) if isinstance(value, bool) else value}"
            if not _SLUG_VALUE.fullmatch(shown) or ".." in shown:
                raise ConfigError(f"{spec.name}: {key}={shown!r} cannot be part of the artifact folder's name "
                                  "(letters, digits, '.', '_', '+', '-'; at most 64): give another value")
            parts.append(f"{key}{shown}")
    if resolution:
        parts.append(f"{resolution[0]}x{resolution[1]}")
    return "-".join(parts)


_SLUG_VALUE = re.compile(r"[A-Za-z0-9_.+-]{0,64}")  # empty: the key alone
