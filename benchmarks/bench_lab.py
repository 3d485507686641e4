"""What a lab fan-out saves and what a farm's lifecycle costs, measured against the test farm on loopback.

Phones are the fake device-side adb servers of tests/adbd.py, handed out by the fake DeviceFarmer farm of
tests/fakestf.py and reached by the real adb client. Their "benchmark binary" first sleeps `--phone-s`
seconds (the phone's own compute, which a real phone does on its own CPU, not this host's) and then runs the
host stand-in (android_harness/host_benchmark_model.py) on a tiny model, so the figures are the toolkit's:

- one after another: `bench --device stf:URL?serial=S` for each phone in turn (each reserves, runs, releases:
  the shell loop a lab replaces, a process start included per phone);
- fan-out: `bench --device stf:URL?count=N` once (all reserved, timed at once, released);
  alternated `--repeats` times in this one run; printed: both wall times and their ratio (ideal: N);
- lifecycle: reserve + remoteConnect + adb connect, then adb disconnect + DELETE remoteConnect + DELETE
  reservation, per phone (ms, median of `--cycles`).

    python benchmarks/bench_lab.py [--quick] [--phones 3] [--phone-s 2] [--repeats 2] [--cycles 10] [--json]

Measured on the shared 2-core host (2026-12-03, defaults): one after another 21.8 s, fan-out 8.1 s: 2.69x of
an ideal 3x; per phone, reserve + remoteConnect + adb connect 58 ms, release 22 ms (median of 10).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOKEN = "bench-lab-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 phones, 1 s each, 1 repeat, 5 cycles")
    parser.add_argument("--phones", type=int, default=3)
    parser.add_argument("--phone-s", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.phones, args.phone_s, args.repeats, args.cycles = 3, 1.0, 1, 5
    if shutil.which("adb") is None:
        sys.stderr.write("bench_lab: needs the adb client (make adb)\n")
        return 2
    work = Path(tempfile.mkdtemp(prefix="md-bench-lab-"))
    try:
        figures = _measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    else:
        _print(figures)
    return 0


def _measure(args: argparse.Namespace, work: Path) -> dict:
    from tests.conftest_adb import AdbEnv, free_port
    from tests.fakestf import FakeStf, FarmPhoneSpec

    adb = AdbEnv(shutil.which("adb"), free_port(), work / "adb-home")
    (work / "adb-home").mkdir()
    adb.run("start-server", timeout=30)
    specs = [FarmPhoneSpec(f"PH-{i:04d}", f"Phone {i}", f"soc{i}", "34") for i in range(args.phones)]
    farm = FakeStf(work / "farm", specs, TOKEN)
    env = {**adb.env, "STF_TOKEN": TOKEN, "MOBILEDEPLOY_DB": str(work / "results.db"), "MOBILEDEPLOY_ARM_CHECK": "off"}
    model, runner = _tiny_model(work), _sleeping_runner(work, args.phone_s)
    bench = [sys.executable, "-m", "mobiledeploy", "bench", "--model", str(model), "--benchmark-binary", str(runner),
             "--runs", "3", "--warmup", "1", "--json"]
    try:
        sequential, fanned = [], []
        for _ in range(args.repeats):
            sequential.append(_timed(lambda: [_run([*bench, "--device", farm.uri(f"serial={s.serial}")], env)
                                              for s in specs]))
            fanned.append(_timed(lambda: _run([*bench, "--device", farm.uri(f"count={args.phones}")], env)))
        lifecycle = _lifecycle(farm, specs[0].serial, adb.env, args.cycles)
    finally:
        farm.stop()
        adb.run("kill-server", timeout=15)
    seq, fan = statistics.median(sequential), statistics.median(fanned)
    return {"phones": args.phones, "phone_s": args.phone_s, "repeats": args.repeats, "one_after_another_s": seq,
            "fan_out_s": fan, "speedup": seq / fan, "lifecycle_ms": lifecycle, "measured": "wall clock, this host"}


def _lifecycle(farm, serial: str, env: dict, cycles: int) -> dict:
    """Per phone: reserve + remoteConnect + adb connect (open), and adb disconnect + both DELETEs (release)."""
    from mobiledeploy.devices.adb import AdbDevice
    from mobiledeploy.devices.stf import Farm

    saved = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = env["ANDROID_ADB_SERVER_PORT"]
    reserve_ms, release_ms = [], []
    try:
        for _ in range(cycles):
            lab = Farm.open(farm.uri(f"serial={serial}"), token=TOKEN)
            start = time.perf_counter()
            with lab.reserve() as phones:
                AdbDevice(phones[0].address).open()
                reserve_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
            release_ms.append((time.perf_counter() - start) * 1000)
    finally:
        if saved is None:
            os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
        else:
            os.environ["ANDROID_ADB_SERVER_PORT"] = saved
    return {"reserve_and_connect": statistics.median(reserve_ms), "release": statistics.median(release_ms)}


def _tiny_model(work: Path) -> Path:
    from tests.conftest_bench import _MAKE_TINY

    subprocess.run([sys.executable, "-c", _MAKE_TINY, str(work)], check=True, capture_output=True, timeout=300)
    return work / "tiny_fp32.tflite"


def _sleeping_runner(work: Path, seconds: float) -> Path:
    """benchmark_model that first sleeps (the phone's own compute time), then runs the host stand-in."""
    stand_in = REPO / "android_harness" / "host_benchmark_model.py"
    path = work / "runner" / "benchmark_model"
    path.parent.mkdir()
    path.write_text(f"#!/bin/sh\ncase \" $* \" in *--help*) ;; *) sleep {seconds} ;; esac\n"
                    f"exec {sys.executable} {stand_in} \"$@\"\n")
    path.chmod(0o755)
    return path


def _run(argv: list[str], env: dict) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"bench_lab: {' '.join(argv[3:5])} failed ({proc.returncode}): {proc.stderr[-500:]}")


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _print(f: dict) -> None:
    print(f"{f['phones']} phones, each run sleeping {f['phone_s']:g} s on the 'phone' (median of {f['repeats']}, "
          "alternated, wall clock on this host)")
    print(f"  one after another : {f['one_after_another_s']:.1f} s")
    print(f"  fan-out           : {f['fan_out_s']:.1f} s")
    print(f"  speedup           : {f['speedup']:.2f}x (ideal {f['phones']}x)")
    lc = f["lifecycle_ms"]
    print(f"  per phone: reserve + remoteConnect + adb connect {lc['reserve_and_connect']:.0f} ms; "
          f"release (adb disconnect, 2 DELETEs) {lc['release']:.0f} ms")


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "bench_lab"))
