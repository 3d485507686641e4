"""SIGINT/SIGTERM in the benchmark scripts (mobiledeploy/signals.py, shared with the CLI): their cleanups run,
the temp export folder is removed, the exit code is 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mobiledeploy import signals

REPO = Path(__file__).resolve().parents[1]


def test_run_script_unwinds_on_sigterm_and_returns_143(tmp_path):
    made = tmp_path / "scratch"

    def main() -> int:
        made.mkdir()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            return 0
        finally:
            made.rmdir()

    before = signal.getsignal(signal.SIGTERM)
    assert signals.run_script(main, "bench_x") == 143
    assert not made.exists()
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    assert signals.run_script(lambda: None, "bench_x") == 0 and signals.run_script(lambda: 3, "bench_x") == 3


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigterm_mid_benchmark_script_removes_its_temp_folder_and_exits_143(tmp_path):
    """bench_export.py makes its temp folder at once, then exports in a child process: SIGTERM while the
    child works. (bench_executorch.py, whose export folder a stopped run used to leave, unwinds the same
    way; its subprocess needs ~13 s of torch and executorch imports, too dear for the suite.)"""
    env = {**os.environ, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_export", "--resolution", "32"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("bench-export-*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # the export child is under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "bench_export: interrupted by SIGTERM" in err
    assert not list(tmp_path.glob("bench-export-*"))


def test_run_script_turns_a_toolkit_error_into_one_line_and_its_exit_code(capsys):
    from mobiledeploy.errors import ConfigError, NoPhoneError

    def bad_option():
        raise ConfigError("unknown emulated CPU 'cortex-x99':\n choose one of cortex-a53, cortex-a76")

    def no_phone():
        raise NoPhoneError("no phone answered")

    assert signals.run_script(bad_option, "bench_x") == 2
    assert signals.run_script(no_phone, "bench_x") == 1
    assert capsys.readouterr().err.splitlines() == [
        "bench_x: error: unknown emulated CPU 'cortex-x99': choose one of cortex-a53, cortex-a76",
        "bench_x: error: no phone answered"]
