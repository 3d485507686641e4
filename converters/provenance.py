"""What made an export, as digests of files: the exporting code and the model's own code and data.

An artifact folder is reused only when its request matches (`pipeline._reusable`), and a cache whose
key misses an input lies: with only a hand-bumped revision in the key, a converter change that drops
a rewrite left every developer's old artifacts in place and the exact gate judged those.
So the request holds, besides the libraries' versions:

- `converters`: the sources of this package (every `*.py` under `converters/`), read once per process;
- `model`: the files that define the model, read when the request is made:
  a zoo model's module and the modules of its package it uses (plus the seeded init's module); a
  user's callable, its file and the modules it imports from the user's own folder (not site-packages,
  not mobiledeploy itself); an ONNX file, its external data files (the file's own sha256 is already
  `source.sha256`). Modules a builder imports only inside its body, when called, are not seen.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any

__all__ = ["code_digest", "converters_digest", "model_files", "files_digest", "onnx_external_data"]


def code_digest(spec: Any) -> dict[str, Any]:
    """{"converters": sha256, "model": sha256, "model_files": [names]} for a registry `ModelSpec`."""
    root, files = model_files(spec)
    return {"converters": converters_digest(), "model": files_digest(root, files),
            "model_files": [_shown(root, f) for f in files]}


@functools.lru_cache(maxsize=None)
def converters_digest() -> str:
    """sha256 over this package's Python sources (relative path and bytes of each, in sorted order)."""
    root = Path(__file__).resolve().parent
    return files_digest(root, sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts))


def files_digest(root: Path, files: list[Path]) -> str:
    """sha256 over (name relative to `root`, bytes) of each file; a missing file counts as such."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(_shown(root, path).encode() + b"\0")
        try:
            digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\n")
    return digest.hexdigest()


def model_files(spec: Any) -> tuple[Path, list[Path]]:
    """(the folder they are named from, the files that define `spec`'s model), sorted."""
    source = spec.source or {}
    if source.get("kind") == "onnx":
        path = Path(source["path"])
        return path.parent, onnx_external_data(path)
    if source.get("kind") == "exported_program":
        return Path(source["path"]).parent, []  # one file, already `source.sha256`
    module_name = getattr(spec.builder, "__module__", "") or ""
    if not source and module_name.startswith(BUILTIN_PREFIX):
        return builtin_files(module_name)
    module = sys.modules.get(module_name)
    if module is None or not getattr(module, "__file__", None):
        return Path("."), []
    if source.get("kind") == "callable":
        root = _user_root(module, Path(source["path"]))
        return root, sorted(_module_files(module, root, user=True))
    root = Path(module.__file__).resolve().parent
    files = _module_files(module, root, user=False)
    common = sys.modules.get("mobiledeploy.models.common")  # the seeded init (init_weights) of every zoo model
    if common is not None and Path(common.__file__).resolve().parent == root:
        files.add(Path(common.__file__).resolve())
    return root, sorted(files)


#: the built-in families' package (models/): their files are found by reading imports, so that a request can be
#: made without importing a family and torch (a bench or gate that reuses an export)
BUILTIN_PREFIX = "mobiledeploy.models."


def builtin_files(module_name: str) -> tuple[Path, list[Path]]:
    """(models/, the built-in family module's file, the files of the family modules it imports at any depth of
    its code (read with ast, nothing imported), transitively, and common.py: the seeded init of every zoo model)."""
    import ast
    import importlib.util

    root = Path(next(iter(importlib.util.find_spec(BUILTIN_PREFIX[:-1]).submodule_search_locations))).resolve()
    found: set[Path] = set()
    todo = [module_name]
    while todo:
        path = _builtin_path(root, todo.pop())
        if path is None or path in found:
            continue
        found.add(path)
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                base = BUILTIN_PREFIX + node.module if node.module else BUILTIN_PREFIX[:-1]
                todo += [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(BUILTIN_PREFIX):
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names if alias.name.startswith(BUILTIN_PREFIX)]
    common = root / "common.py"
    return root, sorted(found | ({common} if common.is_file() else set()))


def _builtin_path(root: Path, name: str) -> Path | None:
    """The file of module `name` of the built-in families, or None (not one of them, or a name it imports)."""
    if not name.startswith(BUILTIN_PREFIX):
        return None
    parts = name[len(BUILTIN_PREFIX):].split(".")
    for path in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if path.is_file():
            return path.resolve()
    return None


def onnx_external_data(path: Path) -> list[Path]:
    """The external data files an ONNX file's initializers name (relative to its folder), sorted."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return []
    names = set()
    for tensor in [*model.graph.initializer, *(n for node in model.graph.node for n in _attribute_tensors(node))]:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            names.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(path.parent / name for name in names)


def _attribute_tensors(node: Any) -> list[Any]:
    return [a.t for a in node.attribute if a.HasField("t")]


def _user_root(module: types.ModuleType, path: Path) -> Path:
    """The user's folder: a FILE.py's own folder; for package.module, the folder holding the top package."""
    name = module.__name__
    if name.startswith("mobiledeploy_user_") or "." not in name:
        return path.resolve().parent
    top = sys.modules.get(name.split(".")[0])
    where = getattr(top, "__file__", None) or next(iter(getattr(top, "__path__", []) or []), None)
    if where is None:
        return path.resolve().parent
    where = Path(where).resolve()
    return (where.parent if where.name == "__init__.py" else where).parent


def _module_files(module: types.ModuleType, root: Path, *, user: bool) -> set[Path]:
    """`module`'s file and those of the modules it uses (module globals, and the modules of objects it
    holds), transitively, that lie under `root`; for a user's model never a library's or mobiledeploy's."""
    found: dict[str, Path] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        path = _file_under(current, root, user)
        if path is None or current.__name__ in found:
            continue
        found[current.__name__] = path
        for value in list(vars(current).values()):
            owner = getattr(value, "__module__", None) or ""
            used = value if isinstance(value, types.ModuleType) else sys.modules.get(owner)
            if isinstance(used, types.ModuleType) and used.__name__ not in found:
                todo.append(used)
        prefix = current.__name__ + "."
        todo += [m for n, m in list(sys.modules.items()) if n.startswith(prefix) and isinstance(m, types.ModuleType)]
    return set(found.values())


def _file_under(module: types.ModuleType, root: Path, user: bool) -> Path | None:
    where = getattr(module, "__file__", None)
    if not where or not where.endswith(".py"):
        return None
    path = Path(where).resolve()
    if not path.is_relative_to(root):
        return None
    if user and (module.__name__.split(".")[0] == "mobiledeploy" or _is_library(path)):
        return None
    return path


@functools.lru_cache(maxsize=None)
def _library_dirs() -> tuple[Path, ...]:
    dirs = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
            sysconfig.get_paths()["stdlib"]}
    return tuple(Path(d).resolve() for d in dirs if d)


def _is_library(path: Path) -> bool:
    return any(path.is_relative_to(d) for d in _library_dirs()) or "site-packages" in path.parts


def _shown(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name
