"""`mobiledeploy qemu setup|status`: the emulated Arm64 environment behind the `qemu:CPU` devices."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .app import Json, app, print_json

qemu_app = typer.Typer(help="The emulated Arm64 environment (QEMU user mode + arm64 userland + counting plugin).\n\n"
                       "Example: mobiledeploy qemu setup", no_args_is_help=True)
app.add_typer(qemu_app, name="qemu")


def _say(message: str) -> None:
    sys.stderr.write(f"mobiledeploy: {message}\n")
    sys.stderr.flush()


@qemu_app.command("setup")
def setup_cmd(
    cpu: Annotated[Optional[list[str]], typer.Option("--cpu", help="Core views to build (repeatable; default: every CPU QEMU offers).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild everything, downloads included.")] = False,
    json_out: Json = False,
) -> None:
    """Build the Arm64 environment once (needs qemu-user, gcc and the package registries); later runs do nothing.

    Downloads the arm64 Debian userland and the aarch64 ai-edge-litert/numpy wheels (the host's versions; onnxruntime's
    and executorch's when the host has them),
    builds the instruction-counting QEMU plugin, writes a fixed /proc/cpuinfo and /sys view per emulated core,
    and verifies one counted run. Everything lives in $MOBILEDEPLOY_CACHE/arm64 (default ~/.cache/mobiledeploy/arm64).

    Example: mobiledeploy qemu setup
    Example: mobiledeploy qemu setup --cpu cortex-a76 --cpu cortex-a53 --json
    """
    from ..devices.qemu import parse_cpu
    from ..qemu.env import CPUS
    from ..qemu.setup_all import setup_all

    cpus = tuple(dict.fromkeys(parse_cpu(c) for c in cpu)) if cpu else tuple(CPUS)
    done = setup_all(cpus, force, _say)
    if json_out:
        env = done.env
        print_json({"root": str(env.root), "qemu": env.qemu, "versions": env.versions, "cpus": env.cpus,
                    "executorch": done.executorch, "onnxruntime": done.onnxruntime})


@qemu_app.command("status")
def status_cmd(json_out: Json = False) -> None:
    """Say whether the Arm64 environment is ready, with its versions and cores; exit 2 if it is not.

    Example: mobiledeploy qemu status --json
    """
    from ..qemu.env import environment

    env = environment()
    if json_out:
        print_json({"root": str(env.root), "qemu": env.qemu, "versions": env.versions, "cpus": env.cpus})
        return
    wheels = env.versions.get("wheels") or {}
    print(f"Arm64 environment: {env.root}")
    print(f"  QEMU {env.versions.get('qemu')}; ai-edge-litert {wheels.get('ai_edge_litert')} (aarch64), "
          f"numpy {wheels.get('numpy')}")
    for name, facts in env.cpus.items():
        print(f"  qemu:{name:<12} MIDR {facts.get('midr')}  {' '.join(facts.get('features') or [])}")
