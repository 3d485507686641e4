"""Fan-out: the same targets on many phones at once, one thread per phone, every run into one results store.

Each phone's runs carry `config.phone` (its label, serial, farm, address, model, SoC, ABI and machine class), so
the store and `compare --by-device` tell the phones apart. A phone that fails (unreachable, disconnected
mid-run) fails its own runs only: the others go on. An interrupt stops every phone: its reservations are given
back first (`release`), so the runs still on the phones fail fast, then the threads are waited for (bounded).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .bench import BenchRun, run_bench
from .devices.lab import Phone
from .errors import MobiledeployError
from .records import BenchOptions, BenchTarget, RunResult

__all__ = ["PhoneRun", "fan_out", "run_threads", "tag_targets", "lab_exit_code"]

Progress = Callable[[str], None]


class Cancelled(Exception):
    """The fan-out was interrupted: a phone's thread stops before its next run."""


@dataclass
class PhoneRun:
    """What one phone of a fan-out did: its runs (`bench`, stored) or the error that stopped it first."""

    phone: Phone
    machine_class: str | None = None
    bench: BenchRun | None = None
    error: str | None = None

    @property
    def results(self) -> list[RunResult]:
        return self.bench.results if self.bench else []

    @property
    def ok(self) -> bool:
        return self.error is None and self.bench is not None and self.bench.ok

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else (self.bench.exit_code if self.bench and self.error is None else 1)

    def failure(self) -> str | None:
        """One line: why this phone did not succeed (None when it did). A farm's phone that refuses this adb
        client says where its key is registered."""
        if self.ok:
            return None
        if self.error or not self.bench:
            line = self.error or "not run"
        else:
            failed = [r for r in self.results if not r.ok]
            line = self.bench.device_error or f"{len(failed)} of {len(self.results)} run(s) failed: {failed[0].error}"
        if "unauthorized" in line and self.phone.identity.get("farm"):
            line += (" (a farm's phone accepts only adb keys the farm knows: add ~/.android/adbkey.pub in STF's "
                     "Settings → Keys → ADB Keys)")
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"phone": self.phone.label, "device": self.phone.uri, "identity": self.phone.identity,
                "machine_class": self.machine_class, "status": "ok" if self.ok else "failed",
                "error": self.failure(), "session_id": self.bench.session_id if self.bench else None}


def tag_targets(targets: Sequence[BenchTarget], identity: dict[str, Any]) -> list[BenchTarget]:
    """The targets with the phone's identity in their config: every run on that phone records it."""
    return [replace(t, config={**(t.config or {}), "phone": dict(identity)}) for t in targets]


def lab_exit_code(runs: Sequence[PhoneRun]) -> int:
    """0 when every phone succeeded; else the worst phone's code (2: a setup step is missing, 1: runs failed)."""
    return max((run.exit_code for run in runs), default=1)


def fan_out(phones: Sequence[Phone], targets: Sequence[BenchTarget], options: BenchOptions, *, rounds: int = 1,
            db: str | Path | None = None, adb_server: str | None = None, progress: Progress | None = None,
            collected: list[RunResult] | None = None, release: Callable[[], None] | None = None,
            join_s: float = 30.0) -> list[PhoneRun]:
    """Time `targets` on every phone at once (`run_bench` per phone, in its own thread); wait for all.

    On an interrupt (KeyboardInterrupt, which SIGTERM also raises in the CLI): stop every phone before its
    next run, `release` the phones (a farm's reservations) so the run in flight fails fast, wait up to
    `join_s` for the threads, then re-raise."""
    runs = [PhoneRun(phone) for phone in phones]
    cancel = threading.Event()
    threads = [threading.Thread(target=_work, name=f"phone {run.phone.label}", daemon=True,
                                args=(run, targets, options, rounds, db, adb_server, progress, collected, cancel))
               for run in runs]
    def stop() -> None:
        cancel.set()
        if release is not None:
            release()

    run_threads(threads, stop, join_s)
    return runs


def run_threads(threads: Sequence[threading.Thread], on_interrupt: Callable[[], None], join_s: float = 30.0) -> None:
    """Start `threads` and wait for all of them. On an interrupt (KeyboardInterrupt, which SIGTERM also raises in
    the CLI): `on_interrupt()` (stop the work, release the phones), wait up to `join_s` for the threads, re-raise."""
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        on_interrupt()
        deadline = time.monotonic() + join_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        raise


def _work(run: PhoneRun, targets: Sequence[BenchTarget], options: BenchOptions, rounds: int,
          db: str | Path | None, adb_server: str | None, progress: Progress | None,
          collected: list[RunResult] | None, cancel: threading.Event) -> None:
    """One phone's thread: its facts (machine class), then its runs; never raises (a thread's error is its run's)."""
    def said(message: str) -> None:
        if cancel.is_set():
            raise Cancelled(f"{run.phone.label}: interrupted")
        if progress is not None:
            progress(f"{run.phone.label}: {message}")

    try:
        said("device facts")
        identity = {**run.phone.identity, **_facts(run.phone.uri, adb_server)}
        run.machine_class = identity.get("machine_class")
        run.phone.identity = identity
        run.bench = run_bench(run.phone.uri, tag_targets(targets, identity), options, rounds=rounds, db=db,
                              adb_server=adb_server, progress=said, collected=collected)
    except Cancelled as exc:
        run.error = str(exc)
    except MobiledeployError as exc:
        run.error = " ".join(str(exc).split())
    except Exception as exc:  # a thread must not die silently: the phone fails, the others go on
        run.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _facts(uri: str, adb_server: str | None) -> dict[str, Any]:
    """Model, SoC, ABI and machine class from the phone itself ({} when it cannot say: its runs will fail)."""
    from .devices import open_device
    from .devices.base import machine_class

    try:
        with open_device(uri, adb_server=adb_server) as device:
            facts = device.info()
    except MobiledeployError:
        return {}
    found = {key: facts.get(key) for key in ("model", "soc", "abi") if facts.get(key)}
    return {**found, "machine_class": machine_class(facts)}
