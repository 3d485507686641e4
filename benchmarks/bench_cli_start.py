"""What naming a zoo model costs a CLI call, side by side in one run: the command as it runs now (the registry
answers names, options and the export request from mobiledeploy/model_table.py, torch is not imported) against
the same command in a process that first imports the model families (`mobiledeploy.models`, which imports torch),
as every name lookup did before the table. Fresh processes, alternated (the order flips every round), wall
seconds, medians and their ratio.

    python -m benchmarks.bench_cli_start [--rounds 5] [--quick]

Commands (`--help` imported neither before nor now, so it is not here): `info` refused for a bad option (`--g 5`: validation only); with qemu set up
(`make arm`) and without `--quick`, `bench --device qemu:cortex-a76` of ShuffleNet v1 0.25x at 64x64 int8,
exported once before the timed rounds (the rounds reuse the export: the request is checked, nothing is built).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EAGER = "import mobiledeploy.models, sys; from mobiledeploy.cli import main; sys.exit(main(sys.argv[1:]))"
LAZY = "import sys; from mobiledeploy.cli import main; sys.exit(main(sys.argv[1:]))"
TINY = ["--arch", "v1", "--g", "3", "--scale", "0.25", "--resolution", "64"]


def commands(work: Path, quick: bool) -> dict[str, list[str]]:
    found = {"info --g 5 (refused)": ["info", "--arch", "v1", "--g", "5"]}
    if not quick and _qemu_ready():
        found["bench qemu:cortex-a76 (export reused)"] = [
            "bench", "--device", "qemu:cortex-a76", *TINY, "--formats", "int8", "--db", str(work / "r.db"),
            "--out", str(work / "artifacts"), "--json"]
    return found


def _qemu_ready() -> bool:
    from mobiledeploy.errors import MobiledeployError
    from mobiledeploy.qemu.env import environment

    try:
        environment()
    except MobiledeployError:
        return False
    return True


def run_s(code: str, args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="no qemu bench command; 3 rounds")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="bench-cli-start-") as tmp:
        work = Path(tmp)
        table = commands(work, args.quick)
        for argv_ in table.values():  # warm: page cache, and the one export the qemu rounds reuse
            run_s(LAZY, argv_, work)
        times: dict[str, dict[str, list[float]]] = {name: {"table": [], "families": []} for name in table}
        for round_ in range(rounds):
            order = [("table", LAZY), ("families", EAGER)]
            for name, argv_ in table.items():
                for label, code in order if round_ % 2 == 0 else order[::-1]:
                    times[name][label].append(run_s(code, argv_, work))
        sys.stdout.write(f"{'command':40} {'table s':>9} {'families s':>11} {'ratio':>7}   (medians of {rounds}, wall s)\n")
        for name, pair in times.items():
            lazy, eager = statistics.median(pair["table"]), statistics.median(pair["families"])
            sys.stdout.write(f"{name:40} {lazy:9.2f} {eager:11.2f} {lazy / eager:7.2f}\n")
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_cli_start"))
