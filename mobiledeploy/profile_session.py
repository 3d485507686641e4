"""The session of `profile`: check the device before any export, export (reusing) the one target, then its op
profile: exact Arm instructions per function and kernel kind on an emulated core (with a phone, its estimated
ms per kind too), the device's op profiler elsewhere.

The CLI parses the options, calls these with its progress display and prints (no orchestration in cli/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["ProfileRequest", "check_profile", "profile_session", "phone_profile_session", "arm_profile"]


@dataclass(frozen=True)
class ProfileRequest:
    """What `profile` was asked: the model (its ref, name and config), the precision and input size, the timing
    options, profiled runs, the runtime (litert: the .tflite; executorch: the .pte) and, on a qemu: device, the
    phone whose estimated ms per kernel kind to add."""

    ref: str
    name: str
    config: dict[str, Any]
    precision: str
    size: tuple[int, int]
    options: Any  # records.BenchOptions
    runs: int
    runtime: str = "litert"
    phone: str | None = None


def check_profile(device: str, options: Any, threads: int, adb_server: str | None, db: str | None,
                  warn: Callable[[str], None]) -> None:
    """The device's options and, for a phone (whose op profile is a stored run), its database and the phone
    itself: before any export. A thread-count warning goes to `warn`."""
    from .devices import check_options
    from .devices.kinds import kind_of
    from .preflight import ask_phone, check_db, check_threads

    check_options(device, options)
    if warning := check_threads(threads, device):
        warn(warning)
    if kind_of(device).reached_by_adb:
        check_db(db)
        ask_phone(device, adb_server)


def profile_session(device: str, req: ProfileRequest, adb_server: str | None, db: str | None,
                    progress: Callable[[str], None]) -> Any:
    """Export (reusing) the one target, then its op profile: exact Arm instructions per function on qemu:,
    the device's op profiler elsewhere (ExecuTorch's .pte: profiling_pte)."""
    from .devices.kinds import kind_of
    from .measure import prepare_targets
    from .profiling import profile_target
    from .registry import config_slug

    if req.runtime == "executorch":
        from .profiling_pte import pte_profile

        return pte_profile(device, req.ref, req.name, req.config, req.precision, req.size, req.options.threads,
                           req.runs, progress)
    (target,) = prepare_targets([req.ref], (req.precision,), req.size, progress)
    progress(f"op profile {target.name} on {device}")
    if kind_of(device).profiler == "arm":
        return arm_profile(device, target, req.name, req.config, runs=min(req.runs, 3), phone=req.phone)
    label = config_slug(req.name, {k: v for k, v in req.config.items() if k != "input_shape"})
    return profile_target(device, target, req.name, req.config, label, req.options, adb_server, db, runs=req.runs)


def phone_profile_session(device: str, req: ProfileRequest, adb_server: str | None, db: str | None,
                          warn: Callable[[str], None], progress: Callable[[str], None]) -> Any:
    """`profile` on one phone of a lab (run in that phone's thread): its checks (`check_profile`), then its
    profile (`profile_session`)."""
    check_profile(device, req.options, req.options.threads, adb_server, db, warn)
    return profile_session(device, req, adb_server, db, progress)


def arm_profile(device: str, target: Any, name: str, config: dict[str, Any], runs: int, phone: str | None = None) -> Any:
    """Exact instructions per function and kernel kind on an emulated core, joined to the analysis' MACs; with a
    phone, the same run also gives estimated ms per kind (mobiledeploy.estimate)."""
    from .devices import parse_device_uri
    from .errors import RunnerError
    from .profiling import macs_by_op
    from .qemu.env import environment
    from .qemu.profile import attribute
    from .qemu.run import run_guest
    from .runtimes import artifact_for

    cpu = parse_device_uri(device)[1]
    estimated = None
    if phone:
        from .estimate.phones import phone as phone_profile
        from .estimate.run import estimate_guest

        guest, estimated = estimate_guest(target.artifact, phone_profile(phone), runs=runs, warmup=1)
    else:
        guest = run_guest(environment(), cpu, target.artifact, runs=runs, warmup=1, profile=True)
    if not guest.counts.blocks or not guest.maps:
        raise RunnerError(f"the profiled run of {target.name} on {device} recorded no blocks")
    profile = attribute(guest.counts.blocks, guest.maps, runs, model=target.name, precision=target.precision,
                        artifact=artifact_for(target.runtime, target.precision), cpu=cpu,
                        macs_by_op=macs_by_op(name, config, target))
    if estimated is not None:
        from .estimate.run import kinds_of

        by_kind = {k["kind"]: k for k in kinds_of(estimated)}
        for k in profile.kinds:
            k["estimated_ms"] = by_kind.get(k["kind"], {}).get("estimated_ms")
        profile.estimate = {**estimated.estimate.to_dict(), "phone_label": phone_profile(phone).label}
    return profile
