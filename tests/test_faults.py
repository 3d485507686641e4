"""Bad input and faults, as a user meets them: the CLI run as a subprocess, one case per row.

Every case asserts the exit code, exactly one `mobiledeploy:` line on stderr (the error, warning or
interrupt line), no traceback, no file left behind that the command should not have written, and
the results database untouched where nothing was measured. Signals are sent for real, mid-export,
mid-bench and mid-gate. Models are tiny (ShuffleNet v1 0.25x g=3 at 64x64, fp32 only) and exported
once per session.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable

import pytest

CLI = Path(sys.executable).with_name("mobiledeploy")
TINY = ["--arch", "v1", "--g", "3", "--scale", "0.25", "--resolution", "64"]
TINY_REF = "v1:g=3,scale=0.25,resolution=64"
SLUG = "shufflenet_v1-g3-scale0.25-64x64"
FAKE_ADB = """#!/bin/sh
# adb that sees one phone, R58M123ABC, and can connect nothing; logs its calls to $FAKE_ADB_LOG if set.
[ -n "$FAKE_ADB_LOG" ] && echo "$*" >> "$FAKE_ADB_LOG"
for a in "$@"; do
  case "$a" in
    devices) printf 'List of devices attached\\nR58M123ABC\\tdevice\\n\\n'; exit 0;;
    connect) echo "failed to connect to '$3': Connection refused"; exit 1;;
  esac
done
exit 1
"""

pytestmark = pytest.mark.skipif(not CLI.exists(), reason="the mobiledeploy console script is not installed in this venv")


# --- running the CLI ------------------------------------------------------------------------------

def env_for(home: Path, **extra: str) -> dict[str, str]:
    # a fresh user: their own HOME and caches (MOBILEDEPLOY_CACHE would point every case at the caller's Arm setup)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MOBILEDEPLOY_DB", "MOBILEDEPLOY_CACHE", "ANDROID_ADB_SERVER_ADDRESS")}
    return {**env, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
            "COLUMNS": "200", "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def tool_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mobiledeploy:")]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


def _imported_modules(proc: subprocess.CompletedProcess) -> set[str]:
    """The top-level modules a run started with PYTHONPROFILEIMPORTTIME=1 imported; their lines leave stderr."""
    lines = proc.stderr.splitlines(keepends=True)
    profile = [ln for ln in lines if ln.startswith("import time:")]
    proc.stderr = "".join(ln for ln in lines if not ln.startswith("import time:"))
    return {ln.rsplit("|", 1)[1].strip().split(".")[0] for ln in profile if "|" in ln}


def assert_one_line(proc: subprocess.CompletedProcess | Any, expected: str) -> str:
    lines = tool_lines(proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory, exports) -> Path:
    """A folder with the tiny model exported into ./artifacts and a raw-latency gate baseline of it. The export is
    a copy of the run's shared one (tests/conftest_export.py, the same request as `export TINY`): the gate below
    reuses it (checked), so the suite converts that model once."""
    import shutil

    root = tmp_path_factory.mktemp("faults-work")
    env = env_for(root / "home", MOBILEDEPLOY_DB=str(root / "setup.db"))
    shared = exports("v1_g3").result.path
    assert shared.name == SLUG
    shutil.copytree(shared, root / "artifacts" / SLUG)
    before = _digests(root / "artifacts" / SLUG)
    proc = subprocess.run([str(CLI), "gate", "--baseline", "baseline.json", "--update-baseline", "--model", TINY_REF,
                           "--reference", "none", "--formats", "fp32", "--rounds", "3", "--runs", "5"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert _digests(root / "artifacts" / SLUG) == before, "the copied export was not reused"
    return root


@dataclass
class Case:
    """argv ({tmp}, {file}, {dir}, {tiny}, {junk_db}, {foreign_db}, {fake_adb}, {work}), the exit code, the
    one line's text ('' with `stdout`: stderr empty; '' alone: no error or warning line), the files it may leave
    in tmp (patterns); `db`: 'absent' (never created) or 'same' (bytes unchanged)."""

    args: list[str]
    code: int
    line: str
    leaves: set[str] = field(default_factory=set)
    db: str = "absent"
    env: dict[str, str] = field(default_factory=dict)
    in_work: bool = False  # run in the folder holding the exported tiny model
    stdout: str = ""
    check: Callable[[Path, subprocess.CompletedProcess], None] | None = None
    setup: Callable[[Path, Path], None] | None = None  # (tmp, the session's work folder)
    unprivileged: bool = False  # run without root's right to write anywhere (a read-only folder stays read-only)


def _check_no_adb_run(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert not (tmp / "PWNED").exists()


def _copy_export_with_notes(tmp: Path, work: Path) -> None:
    import shutil

    shutil.copytree(work / "artifacts" / SLUG, tmp / "artifacts" / SLUG)
    (tmp / "artifacts" / SLUG / "NOTES.txt").write_text("my notes\n")


def _check_notes_kept(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert (tmp / "artifacts" / SLUG / "NOTES.txt").read_text() == "my notes\n"
    assert sorted(p.name for p in (tmp / "artifacts").iterdir()) == [SLUG]  # no temp build left beside it


def _check_failed_connect_disconnected(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    calls = (tmp / "adb.log").read_text().splitlines()
    connect = next(i for i, c in enumerate(calls) if c.endswith("connect 10.9.9.9:5555"))
    assert any(c.endswith("disconnect 10.9.9.9:5555") for c in calls[connect + 1:]), calls


def _check_threads_line(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    count = os.cpu_count()
    assert f"more than the {count} core(s) of this host" in proc.stderr and f"than with {count}\n" in proc.stderr


def _check_not_exported(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert not (tmp / "artifacts").exists()


def _copy_default_export(tmp: Path, work: Path) -> None:
    """The default export of the tiny model in ./artifacts, and a --weights file holding the same weights."""
    import shutil

    shutil.copytree(work / "artifacts" / SLUG, tmp / "artifacts" / SLUG)
    shutil.copy(work / "artifacts" / SLUG / "model.pt", tmp / "mine.pt")
    (tmp / "default.json").write_text(json.dumps(_digests(tmp / "artifacts" / SLUG)))


def _digests(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _check_own_folder_and_identity(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    """bench --weights: a folder of its own beside the default export (left byte for byte as it was), and the
    run stored under that name with the weights' sha256."""
    import hashlib

    sha = hashlib.sha256((tmp / "mine.pt").read_bytes()).hexdigest()
    mine = f"{SLUG}-w{sha[:8]}"
    assert sorted(p.name for p in (tmp / "artifacts").iterdir()) == [SLUG, mine]
    assert _digests(tmp / "artifacts" / SLUG) == json.loads((tmp / "default.json").read_text())
    with sqlite3.connect(tmp / "r.db") as con:
        [(model, config)] = con.execute("SELECT model, config FROM runs").fetchall()
    assert model == mine and json.loads(config)["weights_sha256"] == sha
    assert f"{mine} " in proc.stdout  # the table names it too


def _check_junit_status(status: str, headline: str) -> Callable[[Path, subprocess.CompletedProcess], None]:
    """The three reports exist and say `status` (the Markdown in its `headline`)."""
    def check(tmp: Path, proc: subprocess.CompletedProcess) -> None:
        suite = ET.parse(tmp / "gate.xml").getroot().find("testsuite")
        assert {p.get("name"): p.get("value") for p in suite.find("properties")}["status"] == status
        assert (tmp / "gate.md").read_text().startswith(f"## {headline}")
        assert json.loads((tmp / "gate.json").read_text())["verdict"]["status"] == status

    return check


OWN = """import torch
from torch import nn


def build(width: int = 8, tag: str = "a", seed: int = 0, name: str = "mine") -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 4))


def quits() -> nn.Module:
    raise SystemExit("no GPU here")
"""


def _own_model(tmp: Path, work: Path | None) -> None:
    """own.py (a builder that declares `seed` and `name`), and exits.py, which calls sys.exit(3) on import."""
    (tmp / "own.py").write_text(OWN)
    (tmp / "exits.py").write_text("import sys\n\nsys.exit(3)\n\n\ndef build():\n    pass\n")


def _onnx_files(tmp: Path, work: Path | None) -> None:
    """two.onnx (two outputs) and lp.onnx (an LpPool, which onnx2tf has no converter for), both 1x3x16x16."""
    import onnx
    from onnx import TensorProto, helper

    def io(name: str, shape: list[int]) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    two = helper.make_graph([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"])], "two",
                            [io("x", [1, 3, 16, 16])], [io("a", [1, 3, 16, 16]), io("b", [1, 3, 16, 16])])
    lp = helper.make_graph([helper.make_node("LpPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], p=2,
                                             name="my_lppool"), helper.make_node("Flatten", ["p"], ["y"])], "lp",
                           [io("x", [1, 3, 16, 16])], [io("y", [1, 192])])
    for graph, name in ((two, "two.onnx"), (lp, "lp.onnx")):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(tmp / name))


def _corrupt_pt2(tmp: Path, work: Path | None) -> None:
    (tmp / "corrupt.pt2").write_bytes(b"PK\x03\x04 not a zip archive" * 50)


def _unreadable_arm_env(tmp: Path, work: Path | None) -> None:
    """An Arm environment whose env.json cannot be read (a folder in its place: as unreadable for root)."""
    (tmp / "cache" / "arm64" / "env.json").mkdir(parents=True)


def _exact_baselines(tmp: Path, work: Path | None) -> None:
    """arm.json (a valid instruction baseline), entries-dict.json and instructions-abc.json (wrong shapes)."""
    from mobiledeploy.gating.exact import KIND

    entry = {"ref": TINY_REF, "format": "fp32", "cpu": "cortex-a76", "instructions": 1e6, "environment": {}}
    for name, entries in (("arm.json", [entry]), ("entries-dict.json", {"a": 1}),
                          ("instructions-abc.json", [{**entry, "instructions": "abc"}])):
        (tmp / name).write_text(json.dumps({"schema_version": 1, "kind": KIND, "entries": entries}))


def _baseline_from_elsewhere(tmp: Path, work: Path | None) -> None:
    """repo/arm.json, an instruction baseline whose model ref is a file outside its folder (no git here)."""
    from mobiledeploy.gating.exact import KIND

    (tmp / "repo").mkdir()
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "net.py").write_text("open('PWNED', 'w')\n\n\ndef build():\n    pass\n")
    entry = {"ref": f"{tmp}/elsewhere/net.py:build", "format": "fp32", "cpu": "cortex-a76", "instructions": 1e6}
    (tmp / "repo" / "arm.json").write_text(json.dumps({"schema_version": 1, "kind": KIND, "entries": [entry]}))


def _read_only_store(tmp: Path, work: Path | None) -> None:
    """ro/r.db: a results database (WAL, current schema) in a folder nobody may write, itself read-only."""
    from mobiledeploy.results import ResultsStore

    with ResultsStore(tmp / "ro" / "r.db"):
        pass
    (tmp / "ro" / "r.db").chmod(0o444)
    (tmp / "ro").chmod(0o555)


def _check_no_escape(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert not list(tmp.parent.glob("**/ESCAPED")) and not (tmp / "out").exists()


def _check_own_export(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    [folder] = (tmp / "out").iterdir()
    assert folder.name.startswith("own_build-namex-seed3-32x32-m")
    assert json.loads((folder / "manifest.json").read_text())["config"] == {"width": 8, "tag": "a", "seed": 3, "name": "x"}


def _check_reports_name_the_exact_gate(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert (tmp / "gate.md").read_text().startswith("## ⚠️ Arm instruction gate cannot judge — `qemu:cortex-a76`")
    assert json.loads((tmp / "gate.json").read_text())["verdict"]["device"] == "qemu:cortex-a76"


def _check_store_read(tmp: Path, proc: subprocess.CompletedProcess) -> None:
    assert "0 run(s) in" in proc.stdout and sorted(p.name for p in (tmp / "ro").iterdir()) == ["r.db"]


CASES: dict[str, Case] = {
    # --- bad input of every kind (names, URIs, files, databases): one line naming what is wrong
    "unknown_arch": Case(["info", "--arch", "no_such_net"], 2, "unknown architecture"),
    "bad_g": Case(["info", "--arch", "v1", "--g", "5"], 2, "g=5"),
    "export_out_under_a_file": Case(["export", *TINY, "--out", "{file}/sub"], 2, "cannot create output directory"),
    "unknown_device_uri": Case(["bench", "--device", "phone", "--model", "{tiny}"], 2, "unknown device"),
    "corrupt_tflite": Case(["bench", "--model", "{tmp}/corrupt.tflite", "--db", "{tmp}/r.db"], 1, "corrupt",
                           leaves={"r.db", "r.db-wal", "r.db-shm"}, db="written"),
    "unknown_serial": Case(["bench", "--device", "adb:NOPE", "--model", "{tiny}", "--db", "{tmp}/r.db"], 1,
                           "adb does not see NOPE", env={"MOBILEDEPLOY_ADB": "{fake_adb}"},
                           leaves={"r.db", "r.db-wal", "r.db-shm"}, db="written"),
    "shell_metacharacters_in_serial": Case(
        ["bench", "--device", "adb:x;touch {tmp}/PWNED", "--model", "{tiny}", "--db", "{tmp}/r.db"], 1,
        "does not see", env={"MOBILEDEPLOY_ADB": "{fake_adb}"}, leaves={"r.db", "r.db-wal", "r.db-shm"},
        db="written", check=_check_no_adb_run),
    "adb_missing": Case(["bench", "--device", "adb:R58M123ABC", "--model", "{tiny}", "--db", "{tmp}/r.db"], 1,
                        "apt-get install adb", env={"PATH": "{tmp}/empty-bin", "MOBILEDEPLOY_ADB": ""},
                        leaves={"r.db", "r.db-wal", "r.db-shm"}, db="written"),
    "corrupt_db": Case(["results", "--db", "{junk_db}"], 2, "file is not a database", db="same"),
    "foreign_db": Case(["bench", "--model", "{tiny}", "--db", "{foreign_db}"], 2, "not a mobiledeploy results database",
                       db="same"),
    "bad_calibration": Case(["export", *TINY, "--calibration", "{tmp}/nope", "--out", "{tmp}/out"], 2,
                            "does not exist"),
    # --- typos, a weights file that is not a state_dict, threads and options a command does not take
    "results_db_typo": Case(["results", "--db", "{tmp}/typo.db"], 2, "does not exist"),
    "models_no_match": Case(["models", "nomatch*"], 2, "no registered architecture matches 'nomatch*'"),
    "weights_pickled_module": Case(["export", *TINY, "--weights", "{tmp}/whole.pt", "--out", "{tmp}/out/deep"], 2,
                                   "pickled nn.Module"),
    "threads_above_cores": Case(["bench", "--model", "{tiny}", "--threads", "512", "--runs", "3", "--warmup", "0",
                                 "--db", "{tmp}/r.db"], 0, "warning: --threads 512 is more than the",
                                leaves={"r.db", "r.db-wal", "r.db-shm"}, db="written", check=_check_threads_line),
    "unknown_option": Case(["guidelines", "--no-such-option", "x"], 2,
                           "No such option: --no-such-option (see `mobiledeploy guidelines --help`)"),
    "option_value_of_the_wrong_type": Case(["bench", "--model", "{tiny}", "--runs", "many"], 2,
                                           "Invalid value for '--runs'"),
    # --- output paths, the results database and the device are checked before any work
    "gate_junit_under_a_file": Case(["gate", "--baseline", "{work}/baseline.json", "--junit", "{file}/sub/x.xml",
                                     "--db", "{tmp}/r.db"], 2, "cannot write --junit"),
    "gate_markdown_is_a_dir": Case(["gate", "--baseline", "{work}/baseline.json", "--markdown", "{dir}",
                                    "--db", "{tmp}/r.db"], 2, "is a directory"),
    "gate_out_under_a_file": Case(["gate", "--baseline", "{work}/baseline.json", "--out", "{file}/g.json",
                                   "--db", "{tmp}/r.db"], 2, "cannot write --out"),
    "gate_db_under_a_file": Case(["gate", "--baseline", "{work}/baseline.json", "--db", "{file}/r.db"], 2,
                                 "cannot write --db"),
    "compare_report_under_a_file": Case(["compare", "--models", "v1:g=3,scale=0.25", "--resolutions", "64x64",
                                         "--report", "{file}/rep", "--db", "{tmp}/r.db"], 2, "cannot write --report"),
    "guidelines_report_is_a_file": Case(["guidelines", "--report", "{file}", "--db", "{tmp}/r.db"], 2,
                                        "it is a file"),
    "bench_db_under_a_file": Case(["bench", *TINY, "--db", "{file}/r.db"], 2, "cannot write --db"),
    "bench_bad_db_before_export": Case(["bench", *TINY, "--db", "{junk_db}"], 2, "file is not a database", db="same"),
    "bench_absent_phone_before_export": Case(["bench", "--device", "adb:ABSENT", *TINY, "--db", "{tmp}/r.db"], 1,
                                             "adb does not see ABSENT", env={"MOBILEDEPLOY_ADB": "{fake_adb}"}),
    "compare_absent_phone_before_export": Case(["compare", "--device", "adb:ABSENT", "--models", "v1:g=3,scale=0.25",
                                                "--resolutions", "64x64", "--db", "{tmp}/r.db"], 1,
                                               "adb does not see ABSENT", env={"MOBILEDEPLOY_ADB": "{fake_adb}"}),
    "profile_absent_phone_before_export": Case(["profile", "--device", "adb:ABSENT", *TINY, "--db", "{tmp}/r.db"], 2,
                                               "adb does not see ABSENT", env={"MOBILEDEPLOY_ADB": "{fake_adb}"}),
    "gate_against_bad_db_before_export": Case(["gate", "--against", "{work}/artifacts", "--device", "local", "--model",
                                               TINY_REF, "--formats", "fp32", "--db", "{junk_db}"], 2,
                                              "file is not a database", db="same", setup=lambda tmp, work: None,
                                              check=_check_not_exported),
    "gate_absent_phone_before_export": Case(["gate", "--device", "adb:ABSENT", "--baseline", "{work}/baseline.json",
                                             "--db", "{tmp}/r.db", "--junit", "{tmp}/gate.xml", "--markdown",
                                             "{tmp}/gate.md", "--out", "{tmp}/gate.json"], 2, "adb does not see ABSENT",
                                            env={"MOBILEDEPLOY_ADB": "{fake_adb}"},
                                            leaves={"gate.xml", "gate.md", "gate.json"},
                                            check=_check_junit_status("error", "⚠️ Latency gate cannot judge")),
    # --- the gate writes its reports on every way it ends, errors included
    "gate_no_baseline_writes_reports": Case(["gate", "--baseline", "{tmp}/none.json", "--junit", "{tmp}/gate.xml",
                                             "--markdown", "{tmp}/gate.md", "--out", "{tmp}/gate.json"], 2,
                                            "no baseline at", leaves={"gate.xml", "gate.md", "gate.json"},
                                            check=_check_junit_status("error", "⚠️ Latency gate cannot judge")),
    "gate_skipped_writes_every_report": Case(["gate", "--baseline", "{dir}", "--if-no-baseline", "skip",
                                              "--junit", "{tmp}/gate.xml", "--markdown", "{tmp}/gate.md",
                                              "--out", "{tmp}/gate.json"], 0, "gate skipped",
                                             leaves={"gate.xml", "gate.md", "gate.json"},
                                             check=_check_junit_status("skipped", "⚠️ Latency gate skipped")),
    "gate_skip_does_not_need_the_db": Case(["gate", "--baseline", "{dir}", "--if-no-baseline", "skip",
                                            "--db", "{junk_db}"], 0, "gate skipped", db="same"),
    # --- adb failures say what was tried (the server address, the serial)
    "adb_server_unreachable": Case(["bench", "--device", "adb:R58M123ABC", "--adb-server", "127.0.0.1:1",
                                    "--model", "{tiny}", "--db", "{tmp}/r.db"], 1,
                                   "cannot reach the adb server at 127.0.0.1:1",
                                   leaves={"r.db", "r.db-wal", "r.db-shm"}, db="written"),
    "failed_adb_connect_is_disconnected": Case(
        ["bench", "--device", "adb:10.9.9.9:5555", "--model", "{tiny}", "--db", "{tmp}/r.db"], 1,
        "adb cannot reach 10.9.9.9:5555", env={"MOBILEDEPLOY_ADB": "{fake_adb}", "FAKE_ADB_LOG": "{tmp}/adb.log"},
        leaves={"r.db", "r.db-wal", "r.db-shm", "adb.log"}, db="written", check=_check_failed_connect_disconnected),
    "version": Case(["--version"], 0, "", stdout="mobiledeploy "),
    # --- nothing a user made is lost: an export folder with foreign files is not replaced
    "export_never_deletes_a_users_file": Case(["export", *TINY, "--formats", "fp32", "--force"], 2,
                                              "did not write (NOTES.txt)", setup=_copy_export_with_notes,
                                              check=_check_notes_kept),
    "bench_weights_never_rebuild_the_default_export": Case(
        ["bench", *TINY, "--formats", "fp32", "--weights", "mine.pt", "--runs", "3", "--warmup", "0",
         "--db", "{tmp}/r.db"], 0, "", leaves={"r.db", "r.db-wal", "r.db-shm", "artifacts/*"}, db="written",
        setup=_copy_default_export, check=_check_own_folder_and_identity),
    # --- user model refs and their options: one line, exit 2, checked before any export or measurement
    "set_value_with_a_slash": Case(["export", "--model-fn", "{tmp}/own.py:build", "--set", "tag=x/y", "--input-shape",
                                    "1x3x32x32", "--formats", "onnx", "--out", "{tmp}/out"], 2,
                                   "own_build: tag='x/y' cannot be part of the artifact folder's name",
                                   setup=_own_model, check=_check_no_escape),
    "set_value_escaping_out": Case(["export", "--model-fn", "{tmp}/own.py:build", "--set", "tag=…/../../ESCAPED",
                                    "--input-shape", "1x3x32x32", "--formats", "onnx", "--out", "{tmp}/out"], 2,
                                   "cannot be part of the artifact folder's name", setup=_own_model,
                                   check=_check_no_escape),
    "builder_keywords_seed_and_name": Case(["export", "--model-fn", "{tmp}/own.py:build", "--set", "seed=3", "--set",
                                            "name=x", "--input-shape", "1x3x32x32", "--formats", "onnx", "--out",
                                            "{tmp}/out"], 0, "", leaves={"out", "out/*"}, setup=_own_model,
                                           check=_check_own_export),
    "calibration_too_big_for_memory": Case(["export", "--model-fn", "{tmp}/own.py:build", "--input-shape",
                                            "1x3x8000x8000", "--out", "{tmp}/out"], 2,
                                           "with 32 calibration and 8 held-out samples needs", setup=_own_model),
    "user_module_calls_sys_exit": Case(["export", "--model-fn", "{tmp}/exits.py:build", "--input-shape", "1x3x32x32",
                                        "--out", "{tmp}/out"], 2, "exits.py: it called sys.exit(3) while being imported",
                                       setup=_own_model),
    "builder_raises_system_exit": Case(["export", "--model-fn", "{tmp}/own.py:quits", "--input-shape", "1x3x32x32",
                                        "--formats", "onnx", "--out", "{tmp}/out"], 2,
                                       "own.py:quits raised SystemExit: no GPU here while building the model",
                                       setup=_own_model),
    "corrupt_pt2": Case(["export", "--exported-program", "{tmp}/corrupt.pt2", "--out", "{tmp}/out"], 2,
                        "cannot load ExportedProgram corrupt.pt2: BadZipFile", setup=_corrupt_pt2),
    "two_output_onnx": Case(["export", "--onnx", "{tmp}/two.onnx", "--out", "{tmp}/out"], 2,
                            "two.onnx has 2 outputs (a, b): mobiledeploy exports models with one tensor output",
                            setup=_onnx_files),
    "onnx2tf_unsupported_op": Case(["export", "--onnx", "{tmp}/lp.onnx", "--formats", "fp32", "--out", "{tmp}/out"], 2,
                                   "onnx2tf has no conversion for LpPool (node 'my_lppool')", setup=_onnx_files),
    "benchmark_binary_missing": Case(["bench", "--device", "adb:R58M123ABC", "--model", "{tiny}", "--benchmark-binary",
                                      "{tmp}/nope", "--db", "{tmp}/r.db"], 2, "/nope does not exist: give the benchmark_model file",
                                     env={"MOBILEDEPLOY_ADB": "{fake_adb}"}),
    "benchmark_binary_is_a_dir": Case(["bench", "--device", "adb:R58M123ABC", "--model", "{tiny}", "--benchmark-binary",
                                       "{dir}", "--db", "{tmp}/r.db"], 2, "is a directory: give the benchmark_model file",
                                      env={"MOBILEDEPLOY_ADB": "{fake_adb}"}),
    "benchmark_binary_on_local": Case(["bench", "--model", "{tiny}", "--benchmark-binary", "{file}", "--db", "{tmp}/r.db"],
                                      2, "--benchmark-binary is for adb:SERIAL devices"),
    "arm_env_unreadable": Case(["bench", "--device", "qemu:cortex-a76", "--model", "{tiny}", "--db", "{tmp}/r.db"], 2,
                               "env.json cannot be read: Is a directory", env={"MOBILEDEPLOY_CACHE": "{tmp}/cache"},
                               setup=_unreadable_arm_env),
    "results_store_in_a_read_only_folder": Case(["results", "--db", "{tmp}/ro/r.db"], 0, "", setup=_read_only_store,
                                                unprivileged=True, check=_check_store_read),
    "exact_baseline_entries_not_a_list": Case(["gate", "--baseline", "{tmp}/entries-dict.json"], 2,
                                              "'entries' must be a list of objects", setup=_exact_baselines),
    "exact_baseline_instructions_not_a_number": Case(["gate", "--baseline", "{tmp}/instructions-abc.json"], 2,
                                                     "'instructions' must be a number", setup=_exact_baselines),
    "exact_update_baseline_under_a_file": Case(["gate", "--baseline", "{file}/arm.json", "--update-baseline", "--device",
                                                "qemu:cortex-a76", "--model", TINY_REF], 2, "cannot write --baseline"),
    "exact_update_baseline_read_only_folder": Case(["gate", "--baseline", "{tmp}/ro/arm.json", "--update-baseline",
                                                    "--device", "qemu:cortex-a76", "--model", TINY_REF], 2,
                                                   "is not writable", setup=_read_only_store, unprivileged=True),
    # --- a baseline's file ref is code the gate runs: outside its repository only when allowed
    "baseline_ref_outside_its_repository": Case(["gate", "--baseline", "{tmp}/repo/arm.json"], 2,
                                                "outside its repository", setup=_baseline_from_elsewhere,
                                                check=_check_no_adb_run),
    "baseline_ref_outside_allowed": Case(["gate", "--baseline", "{tmp}/repo/arm.json", "--allow-outside-refs"], 2,
                                         "not set up", setup=_baseline_from_elsewhere, check=_check_no_adb_run),
    "exact_gate_reports_say_arm_instructions": Case(
        ["gate", "--baseline", "{tmp}/arm.json", "--junit", "{tmp}/gate.xml", "--markdown", "{tmp}/gate.md", "--out",
         "{tmp}/gate.json"], 2, "not set up", leaves={"gate.xml", "gate.md", "gate.json"}, setup=_exact_baselines,
        check=_check_reports_name_the_exact_gate),
}
NEEDS_WORK = {"export_never_deletes_a_users_file", "bench_weights_never_rebuild_the_default_export",
              "gate_against_bad_db_before_export", "gate_junit_under_a_file", "gate_markdown_is_a_dir", "gate_out_under_a_file", "gate_db_under_a_file",
              "gate_absent_phone_before_export"}
NEEDS_ADB = {"adb_server_unreachable"}
#: the cheap cases that import torch before their one line: a user's model (--model-fn, --exported-program) is
#: torch's, weights are read with torch.load, the --onnx export fails in onnx2tf after the torch-side stages, and a
#: name neither the table nor a plugin knows imports the families (a family missing from a stale table) before it
#: is refused. Every other cheap case names, validates or refuses without torch.
NEEDS_TORCH = {"unknown_arch", "weights_pickled_module", "set_value_with_a_slash", "set_value_escaping_out",
               "calibration_too_big_for_memory", "builder_raises_system_exit", "corrupt_pt2", "onnx2tf_unsupported_op"}


def _fixture_files(tmp: Path, tiny: Path) -> dict[str, str]:
    regular = tmp / "regular_file"
    regular.write_text("not a directory\n")
    folder = tmp / "a_dir"
    folder.mkdir()
    (tmp / "corrupt.tflite").write_bytes(b"TFL3 but not really a flatbuffer" * 10)
    junk = tmp / "junk.db"
    junk.write_bytes(b"not sqlite at all\n" * 100)
    foreign = tmp / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    (tmp / "empty-bin").mkdir()
    fake_adb = tmp / "fake-bin" / "adb"
    fake_adb.parent.mkdir()
    fake_adb.write_text(FAKE_ADB)
    fake_adb.chmod(0o755)
    return {"tmp": str(tmp), "file": str(regular), "dir": str(folder), "tiny": str(tiny), "junk_db": str(junk),
            "foreign_db": str(foreign), "fake_adb": str(fake_adb)}


def _whole_module(path: Path) -> None:
    import torch

    from mobiledeploy.registry import build_model

    torch.save(build_model("shufflenet_v1", g=3, scale=0.25), path)


def _unprivileged() -> list[str]:
    """A prefix that runs a command without the right to write where the folder's mode says no: nothing for a
    user, and for root (which may write anywhere) setpriv dropping CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return []
    import shutil

    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): a read-only folder cannot be made")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.mark.parametrize("name", list(CASES))
def test_fault(name: str, tmp_path: Path, tiny_tflite, request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    if name in NEEDS_ADB and not any((Path(d) / "adb").exists() for d in os.environ["PATH"].split(":")):
        pytest.skip("the adb client is not installed (make adb)")
    work = request.getfixturevalue("work") if name in NEEDS_WORK or case.in_work else None
    values = {**_fixture_files(tmp_path, tiny_tflite["fp32"]), "work": str(work)}
    if name == "weights_pickled_module":
        _whole_module(tmp_path / "whole.pt")
    if case.setup:
        case.setup(tmp_path, work)
    before = files_under(tmp_path)
    dbs = {p: p.read_bytes() for p in (tmp_path / "junk.db", tmp_path / "foreign.db")}
    home = tmp_path / "home"
    env = env_for(home, **{k: v.format(**values) for k, v in case.env.items()})
    cheap = case.code == 2 or name.endswith("before_export")  # must fail before any conversion work
    if cheap:
        env["PYTHONPROFILEIMPORTTIME"] = "1"  # Python lists each module it imports on stderr
    cwd = tmp_path if case.setup else (work or tmp_path)
    work_before = files_under(work) if work else set()
    proc = subprocess.run([*(_unprivileged() if case.unprivileged else []), str(CLI),
                           *[a.format(**values) for a in case.args]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    imported = _imported_modules(proc)

    assert proc.returncode == case.code, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    if case.line:
        assert_one_line(proc, case.line)
    elif case.stdout:
        assert proc.stderr == "" and proc.stdout.startswith(case.stdout)
    else:  # nothing to say: progress lines only, no error or warning
        assert not tool_lines(proc.stderr) and "Traceback" not in proc.stderr, proc.stderr
    left = files_under(tmp_path) - before - {"home"}
    left = {p for p in left if not p.startswith("home/")}
    assert all(any(fnmatch(p, pattern) for pattern in case.leaves) for p in left), left
    assert not files_under(home / "data"), "the default results database was touched"
    if work:
        assert files_under(work) == work_before  # nothing exported, nothing half-written beside the artifacts
    if case.db == "absent":
        assert not (tmp_path / "r.db").exists() and not (tmp_path / "typo.db").exists()
    for path, data in dbs.items():
        assert path.read_bytes() == data, f"{path.name} was changed"
    if case.check:
        case.check(tmp_path, proc)
    if cheap:  # judged on what was imported, not on seconds (which a loaded machine stretches past any bound)
        assert {"tensorflow", "onnx2tf"}.isdisjoint(imported), f"{name}: a converter was imported before the check"
        if name not in NEEDS_TORCH:  # names, options and checks of the zoo come from mobiledeploy/model_table.py
            assert "torch" not in imported, f"{name}: torch was imported, but no model is built, loaded or exported"
        assert not (cwd / "artifacts").exists() or work  # never exported


# --- signals, sent for real -----------------------------------------------------------------------

def _default_signals() -> None:
    """In the child: SIGINT as a terminal gives it. A pytest started in the background (or an xdist worker)
    ignores SIGINT, children inherit that, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(CLI), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_signals)


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 120) -> str:
    """Read stderr until a line holding `text`; returns what was read."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    proc.kill()
    raise AssertionError(f"never printed {text!r}: {seen}")


def wait_for_rows(db: Path, status: str, timeout: float = 120) -> None:
    """Until the results database holds a run with this status (the bench is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    if con.execute("SELECT count(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]:
                        return
            except sqlite3.Error:
                pass
        time.sleep(0.2)
    raise AssertionError(f"no {status} run in {db} after {timeout} s")


def finish(proc: subprocess.Popen, seen: str = "") -> tuple[int, str]:
    _, rest = proc.communicate(timeout=120)
    return proc.returncode, seen + rest


SIGNALS = [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]


@pytest.mark.parametrize("signum, code, name", SIGNALS)
def test_signal_mid_export_exits_128_plus_signal_and_leaves_nothing(signum, code, name, tmp_path):
    out = tmp_path / "new" / "out"
    proc = start(["export", *TINY, "--out", str(out)], tmp_path, env_for(tmp_path / "home"))
    seen = wait_for_line(proc, "torch → ONNX")  # a stage ended: the export is under way
    proc.send_signal(signum)
    rc, err = finish(proc, seen)
    assert rc == code, err
    assert "Traceback" not in err
    [line] = tool_lines(err)
    assert line.startswith(f"mobiledeploy: interrupted by {name} during export: v1, stage '"), line
    assert not (tmp_path / "new").exists()  # the temp build dir and the --out folders it made: gone


@pytest.mark.parametrize("signum, code, name", SIGNALS)
def test_signal_mid_bench_stores_the_run_as_interrupted(signum, code, name, tmp_path, tiny_tflite):
    db = tmp_path / "r.db"
    proc = start(["bench", "--model", str(tiny_tflite["fp32"]), "--runs", "1000000", "--min-secs", "300",
                  "--db", str(db)], tmp_path, env_for(tmp_path / "home"))
    wait_for_rows(db, "failed")  # the run's placeholder row: it is timing now
    time.sleep(0.5)
    proc.send_signal(signum)
    rc, err = finish(proc)
    assert rc == code, err
    assert "Traceback" not in err
    [line] = tool_lines(err)
    assert line.startswith(f"mobiledeploy: interrupted by {name} during bench: [1/1] tiny_fp32 fp32 on local"), line
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, error FROM runs").fetchall()
    assert rows == [("failed", "interrupted: the run did not complete (Ctrl-C, crash or lost device)")]


@pytest.mark.parametrize("signum, code, name", SIGNALS)
def test_signal_mid_gate_writes_every_report_as_interrupted(signum, code, name, tmp_path, work):
    db = tmp_path / "r.db"
    reports = {"--junit": tmp_path / "gate.xml", "--markdown": tmp_path / "gate.md", "--out": tmp_path / "gate.json"}
    args = ["gate", "--baseline", str(work / "baseline.json"), "--rounds", "100000", "--db", str(db)]
    proc = start(args + [x for opt, path in reports.items() for x in (opt, str(path))], work,
                 env_for(tmp_path / "home"))
    wait_for_rows(db, "ok")  # at least one run measured
    proc.send_signal(signum)
    rc, err = finish(proc)
    assert rc == code, err
    assert "Traceback" not in err
    [line] = tool_lines(err)
    assert line.startswith(f"mobiledeploy: interrupted by {name} during gate: ["), line
    payload = json.loads(reports["--out"].read_text())
    assert payload["verdict"]["status"] == "interrupted" and payload["verdict"]["exit_code"] == code
    assert payload["measured"] and all(m["model"] == SLUG for m in payload["measured"])
    assert f"interrupted by {name} after {len(payload['measured'])} run(s)" in payload["verdict"]["summary"]
    assert "Latency gate interrupted" in reports["--markdown"].read_text()
    error = ET.parse(reports["--junit"]).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp report files
    assert not [p for p in (work / "artifacts").iterdir() if p.name.startswith(".")]


def test_sigterm_mid_compare_writes_its_report_as_interrupted(tmp_path, work):
    db, report = tmp_path / "r.db", tmp_path / "rep"
    ref = TINY_REF.removesuffix(",resolution=64")
    proc = start(["compare", "--models", ref, "--baseline", ref, "--resolutions", "64x64", "--formats", "fp32",
                  "--rounds", "100000", "--runs", "5", "--report", str(report), "--db", str(db)], work,
                 env_for(tmp_path / "home"))
    wait_for_rows(db, "ok")  # at least one run measured
    proc.send_signal(signal.SIGTERM)
    rc, err = finish(proc)
    assert rc == 143, err
    assert "Traceback" not in err
    [line] = tool_lines(err)
    assert line.startswith("mobiledeploy: interrupted by SIGTERM during compare: ["), line
    markdown = (report / "compare.md").read_text()
    assert "interrupted by SIGTERM after" in markdown and "(interrupted)" in markdown
    assert sorted(p.name for p in report.iterdir() if p.name.startswith(".")) == []  # no temp report files


# --- calibration folders: too few images, unreadable files ---------------------------------------------

@pytest.mark.slow
def test_imagenet_style_calibration_folder_with_too_few_images(tmp_path):
    pytest.importorskip("PIL")
    import numpy as np
    from PIL import Image

    classes = tmp_path / "val"
    rng = np.random.default_rng(0)
    for cls, count in (("n01440764", 2), ("n01443537", 1)):
        (classes / cls).mkdir(parents=True)
        for i in range(count):
            Image.fromarray((rng.random((40, 50, 3)) * 255).astype("uint8")).save(classes / cls / f"{i}.png")
    out = tmp_path / "out"
    proc = subprocess.run([str(CLI), "export", *TINY, "--formats", "int8", "--calibration", str(classes),
                           "--calib-samples", "8", "--out", str(out), "--json"], cwd=tmp_path,
                          env=env_for(tmp_path / "home"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert_one_line(proc, "warning: calibrated on 3 image(s), fewer than the 8 asked for")
    calibration = json.loads(proc.stdout)["manifest"]["calibration"]
    assert calibration["samples"] == 3 and calibration["requested_samples"] == 8
    assert "fewer than the 8" in calibration["warning"]
    # an implicit export (here reused) says it too
    proc = subprocess.run([str(CLI), "bench", *TINY, "--formats", "int8", "--calibration", str(classes),
                           "--calib-samples", "8", "--out", str(out), "--runs", "3", "--warmup", "0",
                           "--db", str(tmp_path / "r.db")], cwd=tmp_path, env=env_for(tmp_path / "home"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert_one_line(proc, "warning: shufflenet_v1-g3-scale0.25-64x64-cal")
    assert "calibrated on 3 image(s), fewer than the 8 asked for" in proc.stderr
