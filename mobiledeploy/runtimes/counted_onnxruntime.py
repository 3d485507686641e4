"""Counted ONNX Runtime on an emulated Arm64 core: the `qemu:CPU` device's `onnxruntime` runtime. The export's
model.onnx runs in the aarch64 onnxruntime wheel (the host's version, `qemu/onnxruntime_env.py`) under QEMU, one
thread on the CPU execution provider, and every inference is measured in Arm instructions, as `counted` measures
LiteRT's; Arm parity is checked on a seeded input against the host's ONNX Runtime on the same file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact_kinds import artifacts_read_as
from .counted import EmulatedRuntime, arm_guest, check_one_thread

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["CountedOnnxRuntimeRuntime", "ARM_TOLERANCE"]

#: largest error of the Arm output relative to the host's output range that counts as the same function
#: (the kernels differ, x86 AVX vs Arm NEON MLAS: summation order, fused multiply-adds)
ARM_TOLERANCE = 1e-4


#: guest threads a run may start: one. The threads `import onnxruntime` used to start (1 to 7 more) were ONNX
#: Runtime's 1DS telemetry, timer-driven and writing a SQLite store shared by every process; the guest turns it off
#: (ORT_DISABLE_TELEMETRY, `qemu/guest_onnx.py`), so the session runs alone on the calling thread (intra-op 1,
#: sequential), as LiteRT's guest does, and a second thread fails the run instead of moving its count.
GUEST_THREADS = 1


class CountedOnnxRuntimeRuntime(EmulatedRuntime):
    """Runs a .onnx on one emulated core; reports instructions per run, init (session creation, graph optimisation
    included) and first inference, and the Arm output against the host's."""

    name = "onnxruntime"
    artifacts = artifacts_read_as(".onnx")

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str = "") -> None:
        from ..qemu.onnxruntime_env import onnxruntime_guest
        from ..qemu.run import run_guest

        check_one_thread(options)
        guest = arm_guest(onnxruntime_guest, self.env.root)
        model = Path(target.artifact)
        feeds = _seeded_inputs(model)
        run = run_guest(self.env, self.cpu, model, runs=options.runs, warmup=options.warmup, inputs=feeds,
                        want_outputs=True, script="guest_onnx.py", pythonpath=guest.site, max_threads=GUEST_THREADS)
        self.record(result, run, "onnxruntime (aarch64 wheel, CPUExecutionProvider, qemu-user)",
                    delegation=run.delegation, guest_threads=run.counts.vcpus,
                    arm_parity=arm_parity(model, feeds, run.outputs))
        result.versions["onnxruntime (aarch64)"] = str(guest.versions.get("onnxruntime"))


def _seeded_inputs(model: Path) -> list[Any]:
    """The inputs the host's ONNX Runtime runs get (`runtimes.onnxruntime.bind_inputs`, seed 0)."""
    from .onnxruntime import bind_inputs, onnx_session

    _, feeds, _ = bind_inputs(onnx_session(model), 0)
    return list(feeds.values())


def arm_parity(model: Path, feeds: list[Any], arm_outputs: list[Any]) -> dict[str, Any]:
    """Every Arm output against the host ONNX Runtime's on the same inputs: the largest error relative to the
    host's output range."""
    import numpy as np

    from .onnxruntime import onnx_session

    session = onnx_session(model)
    host = session.run(None, {node.name: x for node, x in zip(session.get_inputs(), feeds)})
    if len(host) != len(arm_outputs) or any(h.shape != a.shape for h, a in zip(host, arm_outputs)):
        return {"passed": False, "error": "the Arm outputs differ from the host's in number or shape"}
    max_rel = 0.0
    for h, a in zip(host, arm_outputs):
        span = float(np.max(h) - np.min(h)) or 1.0
        max_rel = max(max_rel, float(np.max(np.abs(a.astype(np.float64) - h))) / span)
    return {"reference": "onnxruntime on the host", "max_rel": max_rel, "tolerance": ARM_TOLERANCE,
            "passed": bool(max_rel <= ARM_TOLERANCE)}
