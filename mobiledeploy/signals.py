"""SIGINT and SIGTERM as an exception that unwinds, for the CLI and the benchmark scripts alike.

The handler raises `Interrupted` (a KeyboardInterrupt), so every `finally` and `with` runs as for Ctrl-C:
temp export folders are removed, reports written. The process then exits 128 + the signal (130 for
SIGINT, 143 for SIGTERM). `cli/app.py`'s `main` and `run_script` (benchmarks/*.py) both use it.

    if __name__ == "__main__":
        sys.exit(run_script(main, "bench_executorch"))
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. A KeyboardInterrupt, so every `finally` and cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def reset() -> None:
    """Forget signals received before (a new command in the same process)."""
    _received.clear()


def received() -> bool:
    """Whether SIGINT or SIGTERM has arrived since `reset`."""
    return bool(_received)


def interrupt_exit_code() -> int:
    """128 + the signal that interrupted this process (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def signal_name() -> str:
    """'SIGINT' or 'SIGTERM': the signal `interrupt_exit_code` stands for."""
    return signal.Signals(interrupt_exit_code() - 128).name


def _on_signal(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def install() -> dict[int, Any]:
    """Our handlers for SIGINT and SIGTERM; returns the previous ones (for `restore`)."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup, `cmd &`: stay deaf as asked
                previous[signum] = signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # not the main thread (an embedding application): leave its handlers
            pass
    return previous


def restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def run_script(main: Callable[[], Any], name: str) -> int:
    """Run a benchmark script's `main` under these handlers: on SIGINT/SIGTERM its cleanups run, one line
    names the signal on stderr and the exit code is 130/143; a toolkit error (a bad option, a missing setup) is
    one line and its exit code, as in the CLI; otherwise `main`'s own code (None → 0)."""
    from .errors import MobiledeployError

    reset()
    previous = install()
    try:
        code = main()
    except MobiledeployError as exc:
        sys.stderr.write(f"{name}: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{name}: interrupted by {signal_name()}\n")
        return interrupt_exit_code()
    finally:
        restore(previous)
    return code if isinstance(code, int) else 0
