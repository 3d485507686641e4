"""The export's Arm stage: each .tflite run by the aarch64 LiteRT on an emulated core (qemu:CPU).

Run when the emulated environment is set up (`mobiledeploy qemu setup`), skipped (and said so in
the manifest) when it is not, or when `MOBILEDEPLOY_ARM_CHECK=off` asks for a faster export (the
stage costs two emulated processes, ~9 s of CPU; the export starts fp32's while it converts int8). For
one held-out input it records, per artifact: the Arm output
against the torch reference (fp32) and against the host's LiteRT output (fp32: relative error;
int8: the largest difference in quantisation steps), int8 against the Arm fp32 output (cosine),
and the Arm instructions and XNNPACK delegation of that run.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .delegation import explain
from .parity import FP32_TOLERANCE, error_stats, feed_tensor, int8_parity, read_output

__all__ = ["ArmCheck", "arm_stage", "ARM_CHECK_CPU"]

ARM_CHECK_CPU = "cortex-a76"
#: the environment variable that turns the stage off (off, 0, no, false)
ARM_CHECK_ENV = "MOBILEDEPLOY_ARM_CHECK"


def arm_check_disabled() -> bool:
    return os.environ.get(ARM_CHECK_ENV, "").strip().lower() in ("off", "0", "no", "false")


def arm_stage(files: dict[str, Path], holdout: np.ndarray, reference: np.ndarray, floor: float,
              cpu: str = ARM_CHECK_CPU) -> dict[str, Any]:
    """{"cpu", "fp32": {...}, "int8": {...}, "passed"} or {"skipped": reason} without the environment."""
    with ArmCheck(holdout, cpu) as check:
        for fmt, path in files.items():
            check.start(fmt, path)
        return check.report(reference, floor)


class ArmCheck:
    """The Arm stage, each artifact's emulated run started as soon as its file is written: the pipeline starts
    fp32's before the int8 conversion (5.8 s emulated for ShuffleNet v1 1x fp32, int8's 2.7 s), in a thread
    (a separate process: its count is exact whatever else runs). Leaving the `with` block waits for what
    was started."""

    def __init__(self, holdout: np.ndarray, cpu: str = ARM_CHECK_CPU) -> None:
        from mobiledeploy.qemu.env import EmulatorMissingError, environment

        self.cpu, self.sample = cpu, np.asarray(holdout[0], dtype=np.float32)
        self.skipped: str | None = None
        self.env: Any = None
        if arm_check_disabled():
            self.skipped = f"turned off ({ARM_CHECK_ENV}={os.environ[ARM_CHECK_ENV]})"
        else:
            try:
                self.env = environment()
            except EmulatorMissingError as exc:
                self.skipped = str(exc)
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.runs: dict[str, tuple[Path, np.ndarray, Future]] = {}

    def __enter__(self) -> "ArmCheck":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def start(self, fmt: str, path: Path) -> None:
        """Start `path`'s emulated run on one held-out input (nothing when the stage is skipped)."""
        from mobiledeploy.qemu.run import run_guest
        from mobiledeploy.runtimes.litert import input_details

        if self.skipped is None:
            feed = feed_tensor(input_details(path)[0], self.sample)
            self.runs[fmt] = (path, feed, self.pool.submit(run_guest, self.env, self.cpu, path, runs=1, warmup=0,
                                                           inputs=[feed], want_outputs=True))

    def locate(self, path: Path, feed: np.ndarray) -> dict[str, Any]:
        """{"first_difference": {op, node, tensor, max_steps, elements, of} | None, "verdict", "why"[, "tolerance_steps"]}:
        every op's output of `path` on the host and on the emulated core (converters/arm_locate.py)."""
        import tempfile

        from mobiledeploy.qemu.parity import host_run
        from mobiledeploy.qemu.run import run_guest

        from .arm_locate import all_outputs_model, first_difference, judge

        with tempfile.TemporaryDirectory(prefix="mobiledeploy-locate-") as tmp:
            every = Path(tmp) / "every_output.tflite"
            order = all_outputs_model(path, every)
            host, _ = host_run(every, [feed])
            arm = run_guest(self.env, self.cpu, every, runs=1, warmup=0, inputs=[feed], want_outputs=True).outputs
        found = first_difference(order, host, arm)
        return {"first_difference": found, **judge(found)}

    def report(self, reference: np.ndarray, floor: float) -> dict[str, Any]:
        """What the started runs found, against the host's LiteRT, torch (fp32) and the Arm fp32 output (int8)."""
        from mobiledeploy.devices.kinds import device_uri
        from mobiledeploy.qemu.parity import host_run

        if self.skipped is not None:
            return {"skipped": self.skipped, "passed": True}
        report: dict[str, Any] = {"device": device_uri("qemu", self.cpu), "samples": 1}
        arm_float: dict[str, np.ndarray] = {}
        for fmt, (path, feed, future) in self.runs.items():
            (host_raw, *_), (out, *_) = host_run(path, [feed])
            guest = future.result()
            arm_raw = guest.outputs[0]
            arm_float[fmt] = read_output(out, arm_raw)
            entry: dict[str, Any] = {"instructions": guest.counts.runs[0], "delegation": explain(guest.delegation)}
            if np.issubdtype(host_raw.dtype, np.integer):
                steps = int(np.max(np.abs(arm_raw.astype(np.int64) - host_raw.astype(np.int64))))
                entry.update(vs_host_steps=steps, passed=steps <= 1)
                if steps:  # which op differs first, and whether that is a documented ISA difference
                    entry.update(self.locate(path, feed))
                    entry["passed"] = steps <= 1 or entry["verdict"] == "isa_difference"
                if "fp32" in arm_float:
                    entry["vs_arm_fp32"] = int8_parity(arm_float["fp32"], arm_float[fmt], floor)
                    entry["passed"] = entry["passed"] and entry["vs_arm_fp32"]["passed"]
            else:
                entry["vs_torch"] = error_stats(reference[:1], arm_float[fmt], FP32_TOLERANCE)
                host = read_output(out, host_raw)
                span = float(np.max(host) - np.min(host)) or 1.0
                entry["vs_host_max_rel"] = float(np.max(np.abs(arm_float[fmt] - host))) / span
                entry["passed"] = entry["vs_torch"]["passed"]
            report[fmt] = entry
        report["passed"] = all(report[f]["passed"] for f in self.runs)
        return report
