"""The package's import graph, lazy (in-function) imports included, has no cycle.

Modules are read with `ast`, not imported, so an import written inside a function counts as much as
one at the top: a cycle that only closes at run time is still a layering error.
A module loaded by name (`importlib.import_module`, as the registry discovers the model families
and third-party plugins) is discovery, not a dependency, and is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the folders behind the one `mobiledeploy` namespace (pyproject.toml, [tool.setuptools.package-dir])
ROOTS = {"mobiledeploy": REPO / "mobiledeploy", "mobiledeploy.models": REPO / "models",
         "mobiledeploy.converters": REPO / "converters", "mobiledeploy.android_harness": REPO / "android_harness",
         "mobiledeploy.benchmarks": REPO / "benchmarks"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "mobiledeploy" and parts and parts[0] in {"models", "converters", "benchmarks"}:
                continue
            found[name] = path
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Every module of the package that `module` imports, at any depth of its code."""
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            edges.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            for alias in node.names:
                child = f"{target}.{alias.name}"
                edges.add(child if child in known else target)
    return {e for e in edges if e in known and e != module}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_lazy_and_relative_imports():
    edges = graph()
    assert "mobiledeploy.cli.export_cmd" in edges["mobiledeploy.cli"]            # `from . import export_cmd`
    assert "mobiledeploy.errors" in edges["mobiledeploy.converters.pipeline"]    # absolute, across folders
    assert "mobiledeploy.qemu.run" in edges["mobiledeploy.runtimes.counted"]     # lazy, inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    found = cycles(graph())
    if found:
        pytest.fail("import cycles: " + "; ".join(" <-> ".join(c) for c in found))
