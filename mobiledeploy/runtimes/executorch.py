"""ExecuTorch in this process: a `local` runtime beside LiteRT and ONNX Runtime. It times an export's .pte (fp32 or
int8, the XNNPACK delegate inside) through ExecuTorch's Python runtime (`executorch.runtime`, the C++ runtime behind
pybindings) with the same phases, timed loop and statistics as the others (`runtimes.inprocess`), so the three can
be timed interleaved in one session. Needs the optional extra: `pip install 'mobiledeploy[executorch]'`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact_kinds import artifacts_read_as
from .inprocess import InProcessRuntime, time_phases

if TYPE_CHECKING:
    from ..records import BenchOptions, RunResult

__all__ = ["ExecuTorchRuntime", "time_pte", "pte_delegation", "pte_op_profile"]


class ExecuTorchRuntime(InProcessRuntime):
    """Times a .pte in this process; reports per-run timings, memory growth and the delegation its export recorded
    (what XNNPACK took, what runs on ExecuTorch's portable ops)."""

    name = "executorch"
    artifacts = artifacts_read_as(".pte")

    def time_file(self, model: Path, **how: Any) -> dict[str, Any]:
        return time_pte(model, **how)

    def describe(self, model: Path, options: "BenchOptions", result: "RunResult", timing: dict[str, Any]) -> None:
        from importlib import metadata

        result.observed.update(runner="executorch.runtime (pybindings)", delegate="XnnpackBackend",
                               input_dtypes=timing["input_dtypes"], threadpool_threads=timing["threadpool_threads"])
        if options.op_profiling:  # per kernel, from ExecuTorch's ETDump (runtimes/pte_profile.py), after the timing
            result.op_profile = pte_op_profile(model, runs=min(options.runs, 20), threads=options.threads)
            result.observed["op_profile_source"] = "ExecuTorch ETDump (event tracer), read by executorch.devtools.Inspector"
        found = pte_delegation(model)
        if found is not None:
            result.observed["delegation"] = found
        result.versions["executorch"] = metadata.version("executorch")


def time_pte(model: Path, *, threads: int = 1, runs: int = 50, warmup: int = 5, min_secs: float = 0.0,
             cpu_mask: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Load `model` in ExecuTorch and time it (`inprocess.time_phases`: init = program load + method load, XNNPACK's
    graph built then; first, warm-up, the timed loop of `method.execute`, cpu_share, memory growth).

    ExecuTorch's XNNPACK work runs on its process-wide threadpool, set to `threads` for the run (1: the calling
    thread only) and put back after."""
    from mobiledeploy.converters.executorch import load_method

    def prepare(method: Any) -> tuple[Any, dict[str, Any]]:
        feeds, dtypes = _inputs(method, seed)
        return partial(method.execute, feeds), {"input_dtypes": dtypes}

    with _threadpool(threads) as count:
        timing = time_phases(lambda: load_method(model), prepare, threads=threads, runs=runs, warmup=warmup,
                             min_secs=min_secs, cpu_mask=cpu_mask)
    return {**timing, "threadpool_threads": count}


def pte_op_profile(model: Path, *, runs: int = 20, threads: int = 1, seed: int = 0) -> list[dict[str, Any]]:
    """Run `model` `runs` times in this process with the event tracer on: its per-kernel rows
    (`pte_profile.rows_from_etdump`), the delegate's operators and the portable ops."""
    import tempfile

    from executorch.runtime import Runtime

    from ..converters.executorch import load_method
    from .pte_profile import rows_from_etdump

    load_method(model)  # a .pte that does not load: the toolkit's one-line error
    # Loaded and freed inside the block: XNNPACK's delegate keeps the threadpool it was loaded with, which
    # `_unsafe_reset_threadpool` destroys (a method loaded before the reset, or freed after it, touches freed memory).
    with _threadpool(threads), tempfile.TemporaryDirectory(prefix="mobiledeploy-etdump-") as tmp:
        program = Runtime.get().load_program(Path(model), enable_etdump=True)
        method = program.load_method("forward")
        feeds, _ = _inputs(method, seed)
        for _ in range(runs):
            method.execute(feeds)
        etdump = Path(tmp) / "model.etdump"
        program.write_etdump_result_to_file(str(etdump), str(Path(tmp) / "debug.bin"))
        del method, program
        return rows_from_etdump(etdump)


def _inputs(method: Any, seed: int) -> tuple[list[Any], list[str]]:
    """Seeded inputs (as LiteRT's and ONNX Runtime's runs get: standard normal) of the method's input shapes."""
    import numpy as np
    import torch

    from ..qemu.guest import input_data

    rng = np.random.default_rng(seed)
    meta = method.metadata
    feeds = []
    for i in range(meta.num_inputs()):
        shape = list(meta.input_tensor_meta(i).sizes())
        feeds.append(torch.from_numpy(np.ascontiguousarray(input_data(rng, np.dtype("float32"), shape, None))))
    return feeds, ["float32"] * len(feeds)


class _threadpool:
    """ExecuTorch's threadpool at `threads` inside the block (`_unsafe_reset_threadpool`), its old size after."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> int:
        from executorch.extension.pybindings import portable_lib

        self.lib = portable_lib
        self.saved = portable_lib._threadpool_get_thread_count()
        portable_lib._unsafe_reset_threadpool(self.threads)
        return int(portable_lib._threadpool_get_thread_count())

    def __exit__(self, *exc: Any) -> None:
        self.lib._unsafe_reset_threadpool(self.saved)


def pte_delegation(model: Path) -> dict[str, Any] | None:
    """The delegation the export recorded for this file (manifest.json beside it, matched by sha256), in the record
    other runtimes use: nodes, delegated_nodes, partitions, cpu_nodes, not_delegated by op; None if not recorded."""
    from ..converters.manifest import manifest_beside
    from ..files import sha256_file

    manifest, digest = manifest_beside(model), sha256_file(model)
    delegation = next((e.delegation for e in (manifest.artifacts.values() if manifest else ())
                       if e.sha256 == digest and e.delegation), None)
    if delegation is None:
        return None
    return {"accelerator": "cpu", "delegate": "XnnpackBackend", **delegation.to_dict(),
            "cpu_nodes": (delegation.nodes or 0) - (delegation.delegated_nodes or 0)}
