"""The export's Arm stage: each .tflite run by the aarch64 LiteRT on an emulated core (qemu:CPU).

Run when the emulated environment is set up (`mobiledeploy qemu setup`), skipped (and said so in
the manifest) when it is not, or when `MOBILEDEPLOY_ARM_CHECK=off` asks for a faster export (the
stage costs two emulated processes, ~10 s). For one held-out input it records, per artifact: the Arm output
against the torch reference (fp32) and against the host's LiteRT output (fp32: relative error;
int8: the largest difference in quantisation steps), int8 against the Arm fp32 output (cosine),
and the Arm instructions and XNNPACK delegation of that run.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .delegation import explain
from .parity import FP32_TOLERANCE, error_stats, feed_tensor, int8_parity, read_output

__all__ = ["arm_stage", "ARM_CHECK_CPU"]

ARM_CHECK_CPU = "cortex-a76"
#: the environment variable that turns the stage off (off, 0, no, false)
ARM_CHECK_ENV = "MOBILEDEPLOY_ARM_CHECK"


def arm_check_disabled() -> bool:
    return os.environ.get(ARM_CHECK_ENV, "").strip().lower() in ("off", "0", "no", "false")


def arm_stage(files: dict[str, Path], holdout: np.ndarray, reference: np.ndarray, floor: float,
              cpu: str = ARM_CHECK_CPU) -> dict[str, Any]:
    """{"cpu", "fp32": {...}, "int8": {...}, "passed"} or {"skipped": reason} without the environment."""
    from mobiledeploy.qemu.env import EmulatorMissingError, environment
    from mobiledeploy.qemu.run import run_guest

    if arm_check_disabled():
        return {"skipped": f"turned off ({ARM_CHECK_ENV}={os.environ[ARM_CHECK_ENV]})", "passed": True}
    try:
        env = environment()
    except EmulatorMissingError as exc:
        return {"skipped": str(exc), "passed": True}
    from mobiledeploy.qemu.parity import host_run
    from mobiledeploy.runtimes.litert import input_details

    report: dict[str, Any] = {"device": f"qemu:{cpu}", "samples": 1}
    feeds = {fmt: feed_tensor(input_details(path)[0], np.asarray(holdout[0], dtype=np.float32)) for fmt, path in files.items()}
    # The emulated runs are separate processes and their counts exact whatever else runs: both at once.
    with ThreadPoolExecutor(max_workers=max(1, len(files))) as pool:
        guests = {fmt: pool.submit(run_guest, env, cpu, path, runs=1, warmup=0, inputs=[feeds[fmt]], want_outputs=True)
                  for fmt, path in files.items()}
        hosts = {fmt: host_run(path, [feeds[fmt]]) for fmt, path in files.items()}
        runs = {fmt: future.result() for fmt, future in guests.items()}
    arm_float: dict[str, np.ndarray] = {}
    for fmt in files:
        (host_raw, *_), (out, *_) = hosts[fmt]
        guest = runs[fmt]
        arm_raw = guest.outputs[0]
        arm_float[fmt] = read_output(out, arm_raw)
        entry: dict[str, Any] = {"instructions": guest.counts.runs[0], "delegation": explain(guest.delegation)}
        if np.issubdtype(host_raw.dtype, np.integer):
            steps = int(np.max(np.abs(arm_raw.astype(np.int64) - host_raw.astype(np.int64))))
            entry.update(vs_host_steps=steps, passed=steps <= 1)
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
    report["passed"] = all(report[f]["passed"] for f in files)
    return report
