"""The package's shape, read with `ast` (nothing imported): functions short enough to see whole, and a CLI
that parses, calls and prints, leaving measuring and heavy libraries to the core modules."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mobiledeploy"
CONVERTERS = REPO / "converters"  # mobiledeploy.converters (pyproject.toml, [tool.setuptools.package-dir])
MAX_BODY_LINES = 60
#: libraries a command never imports itself: the core modules it calls do (and --help stays instant)
HEAVY = {"torch", "tensorflow", "onnx", "onnxruntime", "ai_edge_litert", "sqlite3", "executorch"}
#: the pieces a core orchestrator chains (make or export targets, time or count, fan out to phones or threads,
#: evaluate, judge); a command calls the orchestrator (`measure.measure`, a `*_session`, `gating.run.run_gate`),
#: never the pieces
MEASURING = {"run_bench", "fan_out", "prepare_targets", "judge", "judge_exact", "export_targets", "lab_targets",
             "run_lab", "run_threads", "Thread", "load_labelled", "profile_target", "arm_profile", "by_device"}
#: the core's entry points: a command function (or a helper of it) calls at most ONE of them, and never in a
#: loop or a comprehension (a loop over targets or phones is orchestration); besides these, every `*_session`.
#: (`lab_session.per_phone_jobs` is not one: it runs a whole command per phone, and that command is the step)
STEPS = {"export_model", "measure", "evaluate", "compare", "run_gate", "gate_one_phone", "analyse",
         "store_accuracy", "judge_stored", "setup", "setup_executorch", "setup_onnxruntime",
         "setup_all"}
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
        elif isinstance(node, ast.Call) and _called(node) in MEASURING:
            found.append(f"calls {_called(node)}() (line {node.lineno})")
    return found


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_step(name: str | None) -> bool:
    return name is not None and (name in STEPS or name.endswith("_session"))


class _Steps:
    """Core steps a module's functions call, counted along the worst path through a function (an `if` whose
    branch returns or raises is a path of its own: `if lab: return on_lab(…)` then `one_device(…)` is one
    step each); a call of another function of the module counts that function's steps, and a step passed to a
    call (`_optional(setup_executorch, …)`) counts as called."""

    def __init__(self, tree: ast.Module, siblings: Callable[[str], _Steps | None] = lambda module: None):
        self.functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.memo: dict[str, int] = {}
        self.siblings = siblings  # another cli module's _Steps, by module name (`from .lab import …`)
        self.imported = {a.asname or a.name: (n.module, a.name) for n in ast.walk(tree)
                         if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module for a in n.names}

    def of_call(self, name: str | None) -> int:
        """Steps one call makes: 1 for a step; a helper's own, in this module or (imported) in a sibling."""
        if _is_step(name):
            return 1
        if name in self.functions:
            return self.of_function(name)
        module, function = self.imported.get(name or "", (None, None))
        other = self.siblings(module) if module else None
        return other.of_function(function) if other and function in other.functions else 0

    def of_function(self, name: str) -> int:
        if name not in self.memo:
            self.memo[name] = 0  # a recursive helper counts once
            self.memo[name] = self.path(self.functions[name].body)
        return self.memo[name]

    def of_node(self, node: ast.AST) -> int:
        """Steps called anywhere in `node` (not in functions defined inside it, which count where called)."""
        count = 0
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(child, ast.Call):
                count += self.of_call(_called(child))
                count += sum(1 for arg in child.args if isinstance(arg, ast.Name) and _is_step(arg.id))  # passed on
            count += self.of_node(child)
        return count

    def path(self, statements: list[ast.stmt]) -> int:
        worst = current = 0
        for stmt in statements:
            if isinstance(stmt, ast.If):
                body, orelse = self.path(stmt.body), self.path(stmt.orelse)
                test = self.of_node(stmt.test)
                if stmt.body and isinstance(stmt.body[-1], (ast.Return, ast.Raise)):
                    worst = max(worst, current + test + body)
                    current += test + orelse
                else:
                    current += test + max(body, orelse)
            elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.Try)):
                current += sum(self.of_node(item) for item in getattr(stmt, "items", [])) + self.path(stmt.body)
                current += max([self.path(h.body) for h in getattr(stmt, "handlers", [])] or [0])
                current += self.path(getattr(stmt, "finalbody", []))
            else:
                current += self.of_node(stmt)
        return max(worst, current)


def orchestration(source: str, siblings: dict[str, str] | None = None) -> list[str]:
    """Functions of one CLI module that chain core steps (more than one along a path, counting the helpers they
    call: the module's own and those imported from `siblings`, the other cli modules' sources by module name)
    or call one in a loop or comprehension (over targets, phones, devices)."""
    parsed: dict[str, _Steps] = {}

    def sibling(module: str) -> _Steps | None:
        if module not in parsed and module in (siblings or {}):
            parsed[module] = _Steps(ast.parse((siblings or {})[module]), sibling)
        return parsed.get(module)

    tree = ast.parse(source)
    steps = _Steps(tree, sibling)
    found = [f"{name}() chains {count} core steps" for name in steps.functions
             if (count := steps.of_function(name)) > 1]
    loops = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    for loop in (n for n in ast.walk(tree) if isinstance(n, loops)):
        for call in (n for n in ast.walk(loop) if isinstance(n, ast.Call)):
            if steps.of_call(_called(call)):
                found.append(f"calls {_called(call)}() in a loop (line {call.lineno})")
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


_BRANCHES = ("def cmd(lab, stored):\n    if stored:\n        return compare(stored)\n    if lab:\n"
             "        return lab_session(lab, lambda p: run_gate(p))\n    run_gate(None)\n")
_ACROSS = "def cmd(lab):\n    from .lab import on_lab\n    on_lab(lab)\n    return compare_session(None)\n"
_CHAINED = ["cmd() chains 2 core steps"]
#: (a cli module's source, the sibling cli modules it may import (by name), what `orchestration` reports)
ORCHESTRATION_CASES = [
    ("def cmd():\n    exported = export_model(1)\n    return evaluate(exported)\n", (), _CHAINED),
    ("def _a():\n    return export_model(1)\n\ndef _b(x):\n    return evaluate(x)\n\ndef cmd():\n    _b(_a())\n",
     (), _CHAINED),  # through its own helpers
    ("def cmd(refs):\n    first = measure(refs[:1])\n    return first, measure(refs[1:])\n", (), _CHAINED),
    ("def cmd(phones):\n    for p in phones:\n        bench_session(p)\n    return [measure(p) for p in phones]\n",
     (), [*_CHAINED, "calls bench_session() in a loop (line 3)", "calls measure() in a loop (line 4)"]),
    (_BRANCHES, (), _CHAINED),  # lab_session and run_gate on one path
    (_BRANCHES.replace("lab_session(lab, ", "per_phone_jobs(lab, "), (), []),  # the job per phone is the one step
    ("def show(rows):\n    for r in rows:\n        print_json(r)\n", (), []),
    (_ACROSS, ({"lab": "def on_lab(lab):\n    return lab_compare_session(lab)\n"},), _CHAINED),
    (_ACROSS, (), []),  # without the sibling's source its helper is unknown
    ("def cmd(root):\n    setup(root)\n    _optional(setup_executorch, root)\n", (), _CHAINED),  # a step passed on
    ("def _one(p):\n    return measure([p])\n\ndef cmd(phones):\n    while phones:\n        _one(phones.pop())\n",
     (), ["calls _one() in a loop (line 6)"]),
]


def test_the_checks_see_what_they_look_for():
    signature = "def cmd(\n" + "".join(f"    a{i}: int = 0,\n" for i in range(80)) + ") -> None:\n"
    doc = '    """Help.\n\n' + "    Example: x\n" * 30 + '    """\n'
    short = signature + doc + "    x = 1\n" * 60
    assert long_functions(short, "m") == []
    assert long_functions(short + "    x = 2\n", "m") == ["m:1 cmd (61 lines)"]
    lazy = "def f():\n    import torch.nn\n    from tensorflow import lite\n    return bench.run_bench(1)\n"
    assert cli_problems(lazy) == ["imports torch.nn", "imports tensorflow", "calls run_bench() (line 4)"]
    assert cli_problems("from ..bench import run_bench\nprint_json(parse_precisions('fp32'))\n") == []
    assert cli_problems("def f(p):\n    run_threads([Thread(target=p)], stop)\n") == [
        "calls run_threads() (line 2)", "calls Thread() (line 2)"]
    for source, siblings, expected in ORCHESTRATION_CASES:
        assert orchestration(source, *siblings) == expected, source
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


#: commands that still chain core steps themselves; must name exactly the modules that do, and end empty
STILL_ORCHESTRATING: set[str] = set()


def test_cli_modules_hold_no_orchestration():
    """A command parses its options, calls ONE core function and prints: no cli/ function chains two core steps
    (export then evaluate, export_targets then a lab run, two measures) or calls one per target or phone."""
    sources = {path.stem: path.read_text() for path in sorted((PACKAGE / "cli").glob("*.py"))}
    found = {f"{name}.py": orchestration(source, sources) for name, source in sources.items()}
    chaining = {name for name, problems in found.items() if problems}
    assert chaining == STILL_ORCHESTRATING, {name: found[name] for name in chaining ^ STILL_ORCHESTRATING}


def test_the_names_the_checks_look_for_are_the_cores():
    """Every piece and step the checks name is a function (or class) of the package: a renamed one would make the
    check blind without failing it."""
    defined = {n.name for path in [*PACKAGE.rglob("*.py"), *CONVERTERS.rglob("*.py")]
               for n in ast.walk(ast.parse(path.read_text()))
               if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not path.is_relative_to(PACKAGE / "cli")}
    assert sorted((MEASURING | STEPS) - defined - {"Thread"}) == []


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


def command_imports(source: str) -> list[str]:
    """The other command modules (`*_cmd`) one cli module imports from, at any depth."""
    return [node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
            and node.level == 1 and (node.module or "").endswith("_cmd")]


def test_no_command_module_imports_another():
    """What several commands share (preflight, a lab's fan-out, warnings, tables) lives in a cli module that defines
    no command, so a command's module can change without reaching into another's."""
    assert command_imports("def f():\n    from .bench_cmd import preflight\n    from .lab import per_phone\n") == [
        "bench_cmd"]
    found = {path.name: command_imports(path.read_text()) for path in sorted((PACKAGE / "cli").glob("*.py"))
             if path.name != "__init__.py"}  # the package registers every command by importing it
    assert {name: mods for name, mods in found.items() if mods} == {}
