"""The package's shape, read with `ast` (nothing imported): functions short enough to see whole, and a CLI
that parses, calls and prints, leaving measuring and heavy libraries to the core modules."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mobiledeploy"
CONVERTERS = REPO / "converters"  # mobiledeploy.converters (pyproject.toml, [tool.setuptools.package-dir])
MAX_BODY_LINES = 60
#: libraries a command never imports itself: the core modules it calls do (and --help stays instant)
HEAVY = {"torch", "tensorflow", "onnx", "onnxruntime", "ai_edge_litert", "sqlite3", "executorch"}
#: the pieces a core orchestrator chains (make targets, time or count, fan out to phones, judge); a command
#: calls the orchestrator (`measure.measure`, `export_model`, `gating.run.run_gate`), not the pieces
MEASURING = {"run_bench", "fan_out", "prepare_targets", "judge", "judge_exact"}
#: commands that still run measurements themselves: none (profile and calibrate orchestrate in
#: `profile_session`/`calibrate_session`); the set must name exactly the modules that do, and stays empty
STILL_MEASURING: set[str] = set()


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body: from its first statement after the docstring to its end (a Typer
    command's signature of options and its help text are not body)."""
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return node.end_lineno - body[0].lineno + 1


def long_functions(source: str, name: str) -> list[str]:
    return [f"{name}:{n.lineno} {n.name} ({body_lines(n)} lines)" for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(n) > MAX_BODY_LINES]


def cli_problems(source: str) -> list[str]:
    """Heavy imports (at any depth) and calls of measuring entry points in one CLI module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in HEAVY]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in HEAVY:
            found.append(f"imports {node.module}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in MEASURING:
                found.append(f"calls {name}() (line {node.lineno})")
    return found


def manifest_dict_reads(source: str) -> list[int]:
    """Lines that index a manifest as a dict (`manifest["parity"]`, `res.manifest.get(...)`, `m["artifacts"]`):
    outside converters/manifest.py a manifest is the typed `Manifest`."""
    def named(node: ast.AST) -> bool:
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        return name == "manifest" or name.endswith("_manifest")

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and named(node.value):
            found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and named(node.func.value):
            found.append(node.lineno)
    return found


def test_the_checks_see_what_they_look_for():
    signature = "def cmd(\n" + "".join(f"    a{i}: int = 0,\n" for i in range(80)) + ") -> None:\n"
    doc = '    """Help.\n\n' + "    Example: x\n" * 30 + '    """\n'
    short = signature + doc + "    x = 1\n" * 60
    assert long_functions(short, "m") == []
    assert long_functions(short + "    x = 2\n", "m") == ["m:1 cmd (61 lines)"]
    lazy = "def f():\n    import torch.nn\n    from tensorflow import lite\n    return bench.run_bench(1)\n"
    assert cli_problems(lazy) == ["imports torch.nn", "imports tensorflow", "calls run_bench() (line 4)"]
    assert cli_problems("from ..bench import run_bench\nprint_json(parse_precisions('fp32'))\n") == []
    reads = "a = res.manifest['parity']\nb = manifest.get('slug')\nc = manifest.parity['int8']\nd = x['manifest']\n"
    assert manifest_dict_reads(reads) == [1, 2]


def test_no_code_reads_a_manifest_as_a_dict():
    """The manifest is read and written in converters/manifest.py; everything else reads the typed `Manifest`."""
    paths = [*PACKAGE.rglob("*.py"), *CONVERTERS.rglob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    found = [f"{path.relative_to(REPO)}:{line}" for path in sorted(paths) if path != CONVERTERS / "manifest.py"
             for line in manifest_dict_reads(path.read_text())]
    assert found == []


def test_no_function_body_is_longer_than_sixty_lines():
    found = [line for path in sorted([*PACKAGE.rglob("*.py"), *CONVERTERS.rglob("*.py")])
             for line in long_functions(path.read_text(), str(path.relative_to(REPO)))]
    assert found == [], "functions longer than 60 lines: " + "; ".join(found)


def test_cli_modules_import_no_heavy_library_and_leave_measuring_to_the_core():
    problems = {path.name: cli_problems(path.read_text()) for path in sorted((PACKAGE / "cli").glob("*.py"))}
    heavy = {name: [p for p in found if p.startswith("imports")] for name, found in problems.items()}
    assert {name: found for name, found in heavy.items() if found} == {}
    measuring = {name for name, found in problems.items() if any(p.startswith("calls") for p in found)}
    assert measuring == STILL_MEASURING, {name: problems[name] for name in measuring ^ STILL_MEASURING}


def test_the_gate_names_no_emulated_core_itself():
    """The exact gate's default core is the exact device kind's default (`devices.kinds.KINDS`), not a literal."""
    found = []
    for path in sorted((PACKAGE / "gating").glob("*.py")):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.name}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Constant)
                  and isinstance(n.value, str) and "cortex-" in n.value and id(n) not in docs]
    assert found == []
    from mobiledeploy.gating.exact_run import _default_cpu, exact_kind

    assert (exact_kind(), _default_cpu()) == ("qemu", "cortex-a76")


def test_the_heavy_first_order_names_files_that_exist():
    """tests/conftest.py orders the heaviest files first for pytest-xdist; a renamed file would silently drop out."""
    from tests.conftest import HEAVY_FIRST

    assert len(set(HEAVY_FIRST)) == len(HEAVY_FIRST)
    assert [name for name in HEAVY_FIRST if not (Path(__file__).parent / name).is_file()] == []
