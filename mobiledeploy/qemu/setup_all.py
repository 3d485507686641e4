"""`mobiledeploy qemu setup`: the LiteRT environment (`env.setup`), then each optional part made from an aarch64
wheel when the host has its package (ExecuTorch's runner, ONNX Runtime). A part that cannot be set up is a
warning: the LiteRT environment is ready either way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["SetupResult", "setup_all"]


@dataclass(frozen=True)
class SetupResult:
    """The verified environment and the versions each optional part recorded (None: not set up)."""

    env: Any  # env.Environment
    executorch: dict[str, Any] | None
    onnxruntime: dict[str, Any] | None


def setup_all(cpus: tuple[str, ...], force: bool, say: Callable[[str], None]) -> SetupResult:
    """Build (or find) the environment for `cpus`, then the optional parts; `say` gets every progress line and
    each part's warning ('warning: …')."""
    from .env import setup
    from .executorch_env import setup_executorch
    from .onnxruntime_env import setup_onnxruntime

    env = setup(cpus=cpus, force=force, progress=say)
    executorch = _optional_part(setup_executorch, env.root, "ExecuTorch", "ExecuTorch {executorch} runner", say)
    onnxruntime = _optional_part(setup_onnxruntime, env.root, "ONNX Runtime", "ONNX Runtime {onnxruntime} (aarch64)",
                                 say)
    return SetupResult(env, executorch, onnxruntime)


def _optional_part(setup_part: Callable[..., Any], root: Path, title: str, ready: str,
                   say: Callable[[str], None]) -> dict[str, Any] | None:
    """Setup of one optional part (when the host has its package); a failure is a warning only. `ready` is
    formatted with the versions the part recorded."""
    from ..errors import MobiledeployError

    try:
        guest = setup_part(root, say)
    except MobiledeployError as exc:
        say(f"warning: {title} on qemu: devices is not set up: {exc}")
        return None
    if guest is not None:
        say(f"{ready.format(**guest.versions)} ready in {guest.root}")
    return guest.versions if guest else None
