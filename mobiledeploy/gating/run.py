"""One gate run: which gate a request asks for (A/B, exact, wall-clock on a stored baseline), run it, and its
reports on every way it ends."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import MobiledeployError
from .reports import GateReports
from .request import GateOutput, GateRequest
from .status import ERROR, INTERRUPTED

__all__ = ["run_gate", "gate_one_phone", "reports_for"]


def reports_for(req: GateRequest) -> GateReports:
    """The --junit/--markdown/--out files of this request, labelled with what it is judged against."""
    return GateReports(req.junit, req.markdown, req.out, req.baseline or req.against or "", req.device or "local")


def run_gate(req: GateRequest, reports: GateReports, out: GateOutput, *, interrupt_code: Any = None) -> int:
    """The gate the request asks for; the exit code (0 pass, 1 regression, 2 cannot judge). An error or an
    interrupt is reported in the files too, then raised; `interrupt_code()` is 128 + the signal."""
    try:
        return _dispatch(req, reports, out)
    except KeyboardInterrupt:
        if interrupt_code is not None:
            code = interrupt_code()
            reports.status(INTERRUPTED, code, reports.interrupted_message(code))
        raise
    except MobiledeployError as exc:
        reports.status(ERROR, exc.exit_code, " ".join(str(exc).split()))
        raise


def _dispatch(req: GateRequest, reports: GateReports, out: GateOutput) -> int:
    """A/B (--against), the exact instruction gate, or the wall-clock gate on a stored baseline."""
    from ..errors import ConfigError
    from .exact_run import exact_devices, run_exact_gate, wants_exact
    from .reports import INSTRUCTIONS
    from .stored import gate_stored

    if (req.baseline is None) == (req.against is None):
        raise ConfigError("give --baseline (stored numbers) or --against REV|DIR (A/B on this device), not both")
    if req.against is not None:
        from .against import run_ab_gate

        if req.update_baseline or req.results:
            raise ConfigError("--against measures base and head now: it takes no --update-baseline or --results")
        return run_ab_gate(req, reports.measured, out)
    if wants_exact(req.baseline, req.device, req.update_baseline):
        reports.gate, reports.device = INSTRUCTIONS, req.device or exact_devices(req.baseline)
        return run_exact_gate(req, reports, out)
    return gate_stored(req, reports, out)


def gate_one_phone(req: GateRequest, phone: Any, out: GateOutput) -> int:
    """The wall-clock gate on one phone of a lab, its reports named after the phone (gate.xml → gate.PHONE.xml)."""
    suffix = re.sub(r"[^A-Za-z0-9._-]+", "_", phone.label)
    named = {k: (None if p is None else str(Path(p).with_name(f"{Path(p).stem}.{suffix}{Path(p).suffix}")))
             for k, p in (("junit", req.junit), ("markdown", req.markdown), ("out", req.out))}
    one = replace(req, device=phone.uri, **named)
    reports = GateReports(one.junit, one.markdown, one.out, req.baseline or "", phone.uri)
    return run_gate(one, reports, out)  # its reports say why it failed, as a gate on one device's do
