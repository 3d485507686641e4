"""Fixtures for the export pipeline tests (tests/test_export.py).

Wired into tests/conftest.py through `pytest_plugins`.

* `exports` (session): `exports(key)` → `Exported` for one of `EXPORT_CASES`, exported by
  `export_model` into a temp dir of the run the first time a test asks for it and shared after that,
  across pytest-xdist workers too (a file lock; a failure is remembered and re-raised, not retried). Every shared export runs under
  `OfflineGuard`, and records what the guard saw.
* `OfflineGuard`: a context manager that makes every socket connection and name lookup raise
  `NetworkBlocked` and remembers each attempt, so an export that tries the network (and perhaps
  swallows the error) is caught either way.
* `tflite_graph(path, delegates)`: the interpreter of a .tflite file, its ops and its tensors by index.
"""

from __future__ import annotations

import os
import pickle
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

# key → (arch, config, resolution). Small on purpose: two cores, shared. AlexNet (61 M parameters) took 95 s to
# export here at any input size; its export and Arm figures are benchmarks/bench_arm.py's (README's Arm table).
EXPORT_CASES: dict[str, tuple[str, dict[str, Any], int]] = {
    "v1_g3": ("shufflenet_v1", {"g": 3, "scale": 0.25}, 64),
    "v1_g8": ("shufflenet_v1", {"g": 8, "scale": 0.25}, 64),
}


class NetworkBlocked(RuntimeError):
    """Raised by OfflineGuard for any connection or name lookup."""


class OfflineGuard:
    """Within the `with` block, socket connections and DNS lookups raise NetworkBlocked."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._patch = pytest.MonkeyPatch()

    def _blocker(self, what: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            shown = [a for a in args if not isinstance(a, socket.socket)]
            self.attempts.append(f"{what}{tuple(shown)!r}")
            raise NetworkBlocked(f"network access attempted during an offline test: {what}{tuple(shown)!r}")

        return blocked

    def __enter__(self) -> "OfflineGuard":
        self._patch.setattr(socket.socket, "connect", self._blocker("socket.connect"))
        self._patch.setattr(socket.socket, "connect_ex", self._blocker("socket.connect_ex"))
        self._patch.setattr(socket, "create_connection", self._blocker("socket.create_connection"))
        self._patch.setattr(socket, "getaddrinfo", self._blocker("socket.getaddrinfo"))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._patch.undo()


@dataclass
class Exported:
    key: str
    arch: str
    config: dict[str, Any]
    resolution: int
    out_root: Path
    result: Any  # ExportResult
    seconds: float
    network_attempts: list[str] = field(default_factory=list)


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every process of this test run sees: under pytest-xdist each worker has its own base temp
    folder, and their common parent belongs to this run alone."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Exported]:
    pytest.importorskip("onnx2tf")
    from filelock import FileLock

    from mobiledeploy.converters import export_model

    built: dict[str, Exported | BaseException] = {}
    shared = _shared_root(tmp_path_factory) / "shared-exports"
    shared.mkdir(exist_ok=True)
    # The environment of the session, not of the test that happens to ask first: a test that points
    # MOBILEDEPLOY_CACHE or XDG_CACHE_HOME at its own folder (the binary downloads do) must not leave the
    # shared export without its Arm stage.
    session_env = dict(os.environ)

    def build(key: str) -> Exported | BaseException:
        arch, config, resolution = EXPORT_CASES[key]
        out_root = shared / f"export-{key}"
        out_root.mkdir()
        start = time.perf_counter()
        try:
            with OfflineGuard() as guard, pytest.MonkeyPatch.context() as env:
                for name in set(os.environ) - set(session_env):
                    env.delenv(name)
                for name, value in session_env.items():
                    if os.environ.get(name) != value:
                        env.setenv(name, value)
                env.setenv("MOBILEDEPLOY_ARM_CHECK", "on")  # the one place the suite's exports run it
                result = export_model(arch, config, resolution=resolution, out_dir=out_root)
            return Exported(key, arch, config, resolution, out_root, result, time.perf_counter() - start,
                            guard.attempts)
        except Exception as exc:  # remembered: later tests fail fast with the same error
            return exc

    def get(key: str) -> Exported:
        # One export per key for the whole run: the first process to take the lock builds it and pickles
        # what it got (the result or the error); every other process (xdist worker) reads that.
        if key not in built:
            record = shared / f"{key}.pickle"
            with FileLock(str(shared / f"{key}.lock")):
                if record.exists():
                    built[key] = pickle.loads(record.read_bytes())
                else:
                    built[key] = build(key)
                    try:
                        data = pickle.dumps(built[key])
                    except Exception:  # an error that does not pickle: the other workers get its text
                        data = pickle.dumps(RuntimeError(f"shared export {key} failed: {built[key]!r}"))
                    record.write_bytes(data)
        value = built[key]
        if isinstance(value, BaseException):
            raise value
        return value

    return get


@dataclass
class TfliteGraph:
    interpreter: Any
    ops: list[dict[str, Any]]
    tensors: dict[int, dict[str, Any]]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
        return counts


def tflite_graph(path: str | Path, delegates: bool = False, threads: int = 1) -> TfliteGraph:
    """The graph as written (`delegates=False`: builtin kernels, no XNNPACK rewriting it into DELEGATE
    nodes), or as LiteRT runs it by default (`delegates=True`)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return TfliteGraph(interpreter, interpreter._get_ops_details(), tensors)
