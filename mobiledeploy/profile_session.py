"""The session of `profile`: check the device before any export, export (reusing) the one target, then its op
profile: exact Arm instructions per function and kernel kind on an emulated core (with a phone, its estimated
ms per kind too), the device's op profiler elsewhere.

The CLI parses the options, calls these with its progress display and prints (no orchestration in cli/).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["check_profile", "profile_session", "arm_profile"]


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


def profile_session(device: str, ref: str, name: str, config: dict[str, Any], precision: str, size: Any, options: Any,
                    adb_server: str | None, db: str | None, runs: int, progress: Callable[[str], None],
                    phone: str | None = None, runtime: str = "litert") -> Any:
    """Export (reusing) the one target, then its op profile: exact Arm instructions per function on qemu:,
    the device's op profiler elsewhere (ExecuTorch's .pte: profiling_pte)."""
    from .devices.kinds import kind_of
    from .measure import prepare_targets
    from .profiling import profile_target
    from .registry import config_slug

    if runtime == "executorch":
        from .profiling_pte import pte_profile

        return pte_profile(device, ref, name, config, precision, size, options.threads, runs, progress)
    (target,) = prepare_targets([ref], (precision,), size, progress)
    progress(f"op profile {target.name} on {device}")
    if kind_of(device).profiler == "arm":
        return arm_profile(device, target, name, config, runs=min(runs, 3), phone=phone)
    label = config_slug(name, {k: v for k, v in config.items() if k != "input_shape"})
    return profile_target(device, target, name, config, label, options, adb_server, db, runs=runs)


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
