"""ExecuTorch on a phone with the user's own executor_runner (issue 30): `--runtime executorch --runner PATH` on
`adb:` through the real adb client and the fake device (tests/adbd.py).

The stand-in runner below prints what ExecuTorch 1.x's examples/portable/executor_runner/executor_runner.cpp
prints: gflags' --help (`-model_path (Model serialized in flatbuffer format.) type: string ...`), its ET_LOG lines
(`I 00:00:00.000123 executorch:executor_runner.cpp:LINE] message`), `Model executed successfully N time(s) in
T ms.` and, built with the event tracer, `ETDump written to file 'PATH'.`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mobiledeploy.bench import BenchOptions, run_bench
from mobiledeploy.cli import main
from mobiledeploy.records import BenchTarget
from mobiledeploy.runtimes.executor_runner import parse_runner_output
from tests.conftest_bench import adb_env, fake_device, make_runner, results_db  # noqa: F401

pytestmark = pytest.mark.adb

STAND_IN = r'''
import sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
if "--help" in sys.argv:
    flags = ["model_path", "num_executions", "cpu_threads", "inputs"] + (["etdump_path"] if TRACER else [])
    for name in flags:
        print(f"    -{name} (what it does) type: string default: \"\"")
    sys.exit(1)  # gflags exits 1 after --help
log = lambda msg, level="I": print(f"{level} 00:00:00.000{len(msg):03d} executorch:executor_runner.cpp:42] {msg}")
try:
    data = open(args["model_path"], "rb").read()
except OSError:
    log(f"Failed to parse model file {args.get('model_path')}", "E")
    sys.exit(1)
if not data.startswith(b"PTE!"):
    log(f"Failed to parse model file {args['model_path']}", "E")
    sys.exit(1)
log(f"Model file {args['model_path']} is loaded.")
log("Using method forward")
n = int(args.get("num_executions", 1))
start = time.perf_counter()
for _ in range(n):
    sum(range(20000))
log(f"Model executed successfully {n} time(s) in {(time.perf_counter() - start) * 1e3:f} ms.")
log("1 outputs: ")
print("Output 0: tensor(sizes=[1, 10], [0.1, 0.2])")
if TRACER:
    open(args["etdump_path"], "wb").write(b"not a real etdump flatbuffer")
    log(f"ETDump written to file '{args['etdump_path']}'.")
'''


def stand_in(folder: Path, tracer: bool) -> Path:
    return make_runner(folder / "executor_runner", f"#!{sys.executable}\nTRACER = {tracer}\n{STAND_IN}")


def pte(tmp_path: Path, body: bytes = b"PTE! stand-in program") -> BenchTarget:
    path = tmp_path / "model fp32 (copy).pte"  # spaces and parentheses: every adb shell word is quoted
    path.write_bytes(body)
    return BenchTarget(name="net", artifact=path, precision="fp32", sha256="0", macs=None, config={}, runtime="executorch")


def test_the_runner_output_is_parsed_and_what_it_lacks_is_none() -> None:
    text = ("I 00:00:00.000100 executorch:executor_runner.cpp:120] Model file m.pte is loaded.\n"
            "I 00:00:01.100000 executorch:executor_runner.cpp:300] Model executed successfully 20 time(s) in 41.5 ms.\n"
            "I 00:00:01.200000 executorch:executor_runner.cpp:180] ETDump written to file '/data/x/model.etdump'.\n")
    assert parse_runner_output(text) == {"executions": 20, "total_ms": 41.5, "etdump": "/data/x/model.etdump",
                                         "error": None}
    old = parse_runner_output("I 00:00:00.1 executorch:executor_runner.cpp:9] Model executed successfully 10 time(s).")
    assert (old["executions"], old["total_ms"]) == (10, None)
    failed = parse_runner_output("E 00:00:00.000001 executorch:executor_runner.cpp:77] Failed to parse model file m")
    assert failed["executions"] is None and failed["error"] == "Failed to parse model file m"


def test_the_runner_is_pushed_once_and_its_output_read(fake_device, tmp_path: Path, results_db) -> None:
    runner = stand_in(tmp_path, tracer=True)
    options = BenchOptions(runs=7, warmup=0, runner=str(runner))
    report = run_bench(f"adb:{fake_device.serial}", [pte(tmp_path)], options, rounds=2, db=results_db)
    assert report.ok, [r.error for r in report.results]
    first, second = report.results
    assert (first.runtime, first.runs, first.status) == ("executorch", 7, "ok")
    assert 0 < first.mean_ms == first.median_ms and first.observed["runner"] == "executor_runner"
    assert [r.observed["runner_pushed"] for r in report.results] == [True, False]
    sends = [path for op, path in fake_device.sync_ops if op == "SEND" and "/executor_runner" in path]
    assert len(sends) == 1 and f"/bin/{first.observed['runner_sha256']}/" in sends[0]
    # the stand-in's ETDump is pulled; it is no real flatbuffer, so the Inspector's refusal is recorded, not hidden
    assert first.observed["etdump"]["bytes"] == len(b"not a real etdump flatbuffer")
    assert first.observed["etdump"]["parsed"] is False and "ED00" in first.observed["etdump"]["why"]
    ran = [c for c in fake_device.shell_commands if "--num_executions=7" in c]
    assert len(ran) == 2 and all("--cpu_threads=1" in c and "--etdump_path=" in c for c in ran)
    assert all("'--model_path=" in c and "(copy).pte'" in c for c in ran)  # the spaced path went quoted


def test_a_runner_without_the_event_tracer_is_asked_no_etdump(fake_device, tmp_path: Path, results_db) -> None:
    options = BenchOptions(runs=3, warmup=0, runner=str(stand_in(tmp_path, tracer=False)))
    [result] = run_bench(f"adb:{fake_device.serial}", [pte(tmp_path)], options, db=results_db).results
    assert result.status == "ok" and "etdump" not in result.config and result.op_profile is None
    assert not any("etdump" in c for c in fake_device.shell_commands)


def test_a_pte_the_runner_cannot_load_fails_the_run_in_one_line(fake_device, tmp_path: Path, results_db) -> None:
    options = BenchOptions(runs=3, warmup=0, runner=str(stand_in(tmp_path, tracer=False)))
    [result] = run_bench(f"adb:{fake_device.serial}", [pte(tmp_path, b"garbage")], options, db=results_db).results
    assert result.status == "failed" and "\n" not in result.error
    assert result.error.startswith("executor_runner failed on model fp32 (copy).pte: Failed to parse model file")


@pytest.mark.parametrize("what", ["not_executable", "missing", "not_a_runner"])
def test_a_runner_that_is_not_one_is_one_line_exit_2(what, fake_device, tmp_path: Path, results_db, capsys) -> None:
    runner = tmp_path / "executor_runner"
    if what == "not_executable":
        runner.write_text("#!/bin/sh\necho hi\n")
    elif what == "not_a_runner":
        make_runner(runner, "#!/bin/sh\necho 'usage: something else'\n")
    model = pte(tmp_path).artifact
    code = main(["bench", "--device", f"adb:{fake_device.serial}", "--runtime", "executorch", "--runner", str(runner),
                 "--model", str(model), "--runs", "3"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("mobiledeploy:")]
    assert code == 2 and "Traceback" not in err, err
    assert any(f"--runner {runner}" in ln for ln in lines) and len(lines) == 1, err
