"""What a runtime is: how a model is timed, over whatever transport reaches the machine.

A transport (`devices/`) runs commands and moves files; a runtime turns (artifact, options) into
the figures of a `RunResult`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ..errors import MobiledeployError
    from ..records import BenchOptions, BenchTarget, RunResult

__all__ = ["Runtime", "Transport"]


class Transport(Protocol):
    """What a runtime needs from a device it runs on: commands, files, and what went wrong."""

    uri: str
    run_timeout_s: float
    remote_root: str  # where runs and installed binaries live on the device

    def shell(self, words: list[str | os.PathLike], *, timeout: float | None = None, check: bool = True,
              what: str = "", on_timeout: Callable[[str], "MobiledeployError"] | None = None
              ) -> subprocess.CompletedProcess: ...

    def push(self, local: Path, remote: str) -> None: ...

    def pull(self, remote: str, local: Path) -> None: ...

    def make_workdir(self, remote_dir: str) -> None:
        """Create a run's folder, removed after the run unless the options keep it."""

    def abi(self) -> str | None: ...

    def lost(self, proc: subprocess.CompletedProcess) -> "MobiledeployError":
        """The error for a command that stopped without its answer: the device went away, or the command died."""


class Runtime(Protocol):
    """Times one artifact over a transport, filling the RunResult it is given (raises the toolkit's errors).

    Every runtime is built the same way, `Runtime(device)`, by the device it runs on (`Device.runtime_named`);
    it keeps what it needs of the device (a transport, an emulated core) or nothing (in-process runtimes).
    `artifacts` is what it times per precision, from the artifact kinds (`artifact_kinds.artifacts_read_as`).
    """

    name: str
    artifacts: dict[str, str]  # precision → the manifest artifact it times: {"fp32": "fp32", …}, {"fp32": "onnx"}

    def __init__(self, device: Any) -> None: ...

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str) -> None: ...
