"""The session of `calibrate`: export (reusing) a small suite, time it on the user's phone through the bench
harness, estimate the same artifacts on the profile's emulated core, fit the profile's free parameter and save
the profile (mobiledeploy.estimate.calibrate).

The CLI parses the options, calls this with its progress display and prints (no orchestration in cli/).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["calibrate_session"]


def calibrate_session(device: str, base: Any, name: str, refs: list[str], resolution: str, options: Any,
                      adb_server: str | None, db: str | None, progress: Callable[[str], None]) -> tuple[Any, Any]:
    """Export (reusing), time on the phone, estimate on the emulated core, fit, save: (the fit, the saved
    profile's path)."""
    import dataclasses

    from .analysis import parse_resolution
    from .errors import RunnerError
    from .estimate.calibrate import fit, save_profile
    from .estimate.run import estimate_artifact
    from .measure import measure, prepare_targets

    raw = dataclasses.replace(base, cycle_scale=1.0)
    targets = prepare_targets(refs, ("fp32",), parse_resolution(resolution), progress)
    report = measure([str(t.artifact) for t in targets], device, options, precisions=("fp32",), db=db,
                     adb_server=adb_server, progress=progress)
    failed = [r for r in report.results if not r.ok or r.median_ms is None]
    if failed or len(report.results) != len(targets):
        raise RunnerError(f"the suite did not run on {device}: {failed[0].error if failed else 'results missing'}")
    raw_ms = []
    for t in targets:
        progress(f"estimate {t.name} on {base.qemu_cpu}")
        raw_ms.append(estimate_artifact(t.artifact, raw).estimate.ms)
    result = fit([t.name for t in targets], [r.median_ms for r in report.results], raw_ms)
    source = f"calibrate on {device}: {len(targets)} models, fp32, 1 thread, median of {options.runs} runs"
    return result, save_profile(base, name, result, source)
