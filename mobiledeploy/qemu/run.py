"""One emulated run: a .tflite through aarch64 LiteRT (or a .onnx through aarch64 ONNX Runtime) under QEMU, every
phase counted exactly. `run_counted` is the one step every emulated run shares: the guest under a timeout, its
failure as one line, its counts file parsed."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import RunnerError
from .counts import Counts, CountsError, parse_counts
from .env import MARKER, Environment, guest_env

__all__ = ["GuestRun", "run_guest", "run_counted", "DEFAULT_TIMEOUT_S"]

#: an fp32 AlexNet at 224 needs ~0.3 G instructions per inference, about 10 s emulated
DEFAULT_TIMEOUT_S = 1800.0


@dataclass
class GuestRun:
    counts: Counts
    delegation: dict[str, Any]
    input_dtypes: list[str]
    wall_s: float
    outputs: list[Any] = field(default_factory=list)
    maps: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # what each extra plugin wrote, by its name


def run_guest(env: Environment, cpu: str, model: Path, *, runs: int = 3, warmup: int = 1, threads: int = 1,
              seed: int = 0, inputs: list[Any] | None = None, want_outputs: bool = False, profile: bool = False,
              timeout: float = DEFAULT_TIMEOUT_S, plugins: dict[str, str] | None = None,
              script: str = "guest.py", pythonpath: Path | None = None, max_threads: int | None = 1) -> GuestRun:
    """Run `model` on the emulated `cpu`; RunnerError (one line) when the guest fails or crashes.

    `plugins` maps a name to a further plugin's argument string (path and options, without `out=`): each
    writes into a file of its own, returned in `GuestRun.extra[name]`. `script` is the guest program beside this
    file (guest.py: LiteRT; guest_onnx.py: ONNX Runtime, whose wheel lies in `pythonpath`); `max_threads` the guest
    threads it may start (None: any number, the inference itself running on one)."""
    import numpy as np

    if not model.is_file():
        raise RunnerError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-qemu-") as tmp_name:
        tmp = Path(tmp_name)
        # The guest sees every model under one name of one length: the heap layout of its Python (and so the
        # alignment libc's memcpy meets inside an inference) must not depend on where the file lies. A
        # second process loading the same bytes from a longer path counted 4 instructions more in 1.4 M.
        link = tmp / f"model{model.suffix or '.tflite'}"
        link.symlink_to(model.resolve())
        request: dict[str, Any] = {"model": str(link), "threads": threads, "runs": runs, "warmup": warmup,
                                   "seed": seed, "marker": MARKER, "profile": profile, "reply": str(tmp / "reply.json")}
        if inputs is not None:
            np.savez(tmp / "inputs.npz", **{f"i{i}": np.asarray(x) for i, x in enumerate(inputs)})
            request["inputs"] = str(tmp / "inputs.npz")
        if want_outputs:
            request["outputs"] = str(tmp / "outputs.npz")
        (tmp / "request.json").write_text(json.dumps(request))
        counts_path = tmp / "counts.txt"
        extra = {name: (arg, tmp / f"{name}.txt") for name, arg in (plugins or {}).items()}
        argv = env.command(cpu, Path(__file__).with_name(script), str(tmp / "request.json"), counts=counts_path,
                           profile=profile, plugins=tuple(f"{arg},out={path}" for arg, path in extra.values()))
        extra_env = {"PYTHONPATH": str(pythonpath)} if pythonpath else None
        counts, wall = run_counted(argv, cpu, counts_path, timeout=timeout, extra_env=extra_env)
        try:
            reply = json.loads((tmp / "reply.json").read_text())
            written = {name: path.read_text() for name, (_arg, path) in extra.items()}
        except (OSError, ValueError) as exc:
            raise RunnerError(f"the emulated run on {cpu} left no usable reply: {exc}") from None
        outputs: list[Any] = []
        if want_outputs:
            with np.load(tmp / "outputs.npz") as data:
                outputs = [data[f"o{i}"] for i in range(len(data.files))]
    if max_threads is not None and counts.vcpus > max_threads:
        raise RunnerError(f"the guest ran {counts.vcpus} threads; exact counts need one (--threads 1)")
    return GuestRun(counts, reply.get("delegation") or {}, reply.get("input_dtypes") or [], wall, outputs,
                    reply.get("maps"), written)


def run_counted(argv: list[str], cpu: str, counts_path: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
                what: str = "emulated run", extra_env: dict[str, str] | None = None,
                quiet: Callable[[str], bool] | None = None) -> tuple[Counts, float]:
    """Run one counted guest command (`argv`, the counting plugin writing `counts_path`): its counts and wall
    seconds. RunnerError (one line) on a timeout, a failure or crash (`quiet` lines left out of its last words),
    or a counts file that is missing or damaged."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env={**guest_env(), **(extra_env or {})},
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RunnerError(f"the {what} on {cpu} took longer than {timeout:.0f} s") from None
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        if quiet is not None:
            keep = "\n".join(ln for ln in (proc.stderr or "").splitlines() if not quiet(ln))
            proc = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, keep)
        raise RunnerError(_failure(proc, cpu))
    try:
        return parse_counts(counts_path.read_text()), wall
    except (OSError, ValueError, CountsError) as exc:
        raise RunnerError(f"the {what} on {cpu} left no usable counts: {exc}") from None


def _failure(proc: subprocess.CompletedProcess, cpu: str) -> str:
    """One line: the signal that killed the guest (QEMU reports it as 'uncaught target signal'), or its last words."""
    text = (proc.stderr or "") + (proc.stdout or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("INFO:")]
    for line in lines:
        if "uncaught target signal" in line:
            return f"the model crashed under emulation on {cpu}: {line.removeprefix('qemu: ')}"
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"the emulated run on {cpu} was killed by {name}"
    last = lines[-1] if lines else f"exit code {proc.returncode}"
    return f"the emulated run on {cpu} failed: {last[:300]}"
