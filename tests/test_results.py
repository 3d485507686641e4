"""The SQLite results store: schema versions, two-phase writes, interrupts, concurrent writers, CLI."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mobiledeploy import results as results_mod
from mobiledeploy.bench import BenchOptions, BenchTarget, run_bench
from mobiledeploy.cli import main
from mobiledeploy.devices.kinds import KINDS
from mobiledeploy.errors import ResultsError
from mobiledeploy.results import INTERRUPTED, SCHEMA_VERSION, ResultsStore, default_db_path, git_commit
from mobiledeploy.records import RunResult


def make_result(run_id: str = "r1", status: str = "ok", **kw) -> RunResult:
    result = RunResult(model="shufflenet_v1-g3-scale0.5-224x224", precision="int8", device="local", artifact="/a/m.tflite",
                       sha256="ab" * 32, threads=1, runs=0, warmup=5, run_id=run_id, started_at="2025-01-01T00:00:00+00:00",
                       macs=37_600_000, device_info={"model": "Pixel 6", "soc": "gs101"}, versions={"python": "3.11"},
                       round=0, status=status, **kw)
    if status == "ok":
        result.with_timings([1000.0, 1100.0, 1200.0, 1300.0])
    return result


def test_default_path(monkeypatch, tmp_path):
    monkeypatch.setenv("MOBILEDEPLOY_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("MOBILEDEPLOY_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "mobiledeploy" / "results.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_db_path() == Path.home() / ".local" / "share" / "mobiledeploy" / "results.db"


def test_schema_meta_and_wal(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.db"
    ResultsStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ResultsError, match="schema version 99"):
        ResultsStore(path)


def test_migration_upgrades_an_old_database_keeping_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    with ResultsStore(path) as store:
        store.finish(make_result("old"))

    def v8(db):
        db.execute("ALTER TABLE runs ADD COLUMN note TEXT")

    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 8)
    monkeypatch.setitem(results_mod.MIGRATIONS, 8, v8)
    with ResultsStore(path) as store:
        assert store.schema_version == 8
        assert [r["run_id"] for r in store.list()] == ["old"]
        assert "note" in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}


def test_schema_1_database_gains_instruction_counts(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 1)
    with ResultsStore(path) as store:  # a database written by a schema-1 mobiledeploy
        store.db.execute("INSERT INTO runs (run_id, started_at, status, model, format, device, median_ms) "
                         "VALUES ('timed', '2026-11-01T00:00:00+00:00', 'ok', 'm', 'fp32', 'local', 1.5)")
        assert "instructions" not in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
    monkeypatch.undo()
    counted = make_result("counted")
    counted.instruction_counts, counted.instructions = [26_177_531, 26_177_533], 26_177_532.0
    counted.init_instructions, counted.first_instructions = 13_381_998.0, 26_194_831.0
    gone = make_result("gone").failed("device vanished")
    gone.error_kind = "device"
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        store.finish(counted)
        store.finish(gone)
        rows = {r["run_id"]: r for r in store.list()}
    assert rows["gone"]["error_kind"] == "device" and rows["timed"]["error_kind"] is None
    assert rows["timed"]["instructions"] is None and rows["timed"]["median_ms"] is not None
    assert rows["timed"]["runtime"] == "litert"  # stored before runtimes were recorded: local's only one then
    assert rows["counted"]["instruction_counts"] == [26_177_531, 26_177_533]
    assert rows["counted"]["instructions"] == 26_177_532.0 and rows["counted"]["first_instructions"] == 26_194_831.0


def test_schema_3_database_records_the_runtime_of_its_old_runs(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 3)
    with ResultsStore(path) as store:  # a database written by a schema-3 mobiledeploy
        for run_id, device in (("host", "local"), ("phone", "adb:R58M"), ("arm", "qemu:cortex-a53"), ("odd", "ssh:x")):
            store.db.execute("INSERT INTO runs (run_id, started_at, status, model, format, device, median_ms, config) "
                             "VALUES (?, '2026-11-01T00:00:00+00:00', 'ok', 'm', 'fp32', ?, 1.5, '{\"round\": 0}')",
                             (run_id, device))
        assert "runtime" not in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
    monkeypatch.undo()
    # the migration is frozen: today's device kinds (here local's default runtime changed) do not enter it
    monkeypatch.setitem(KINDS, "local", replace(KINDS["local"], runtimes=("onnxruntime", "litert")))
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = {r["run_id"]: r for r in store.list()}
        store.finish(make_result("ort", runtime="onnxruntime"))
        assert [r["run_id"] for r in store.list(runtime="onnxruntime")] == ["ort"]
        assert {r["run_id"] for r in store.list(runtime="litert")} == {"host"}
    assert {k: r["runtime"] for k, r in rows.items()} == {"host": "litert", "phone": "benchmark_model",
                                                          "arm": "counted", "odd": ""}
    assert all(r["median_ms"] == 1.5 and r["model"] == "m" for r in rows.values())


def test_schema_4_database_moves_round_and_cpu_share_out_of_config(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 4)
    with ResultsStore(path) as store:  # a database written by a schema-4 mobiledeploy: both inside config
        store.db.execute("INSERT INTO runs (run_id, session_id, started_at, status, model, format, device, median_ms, "
                         "config) VALUES ('old', 'S1', '2026-11-01T00:00:00+00:00', 'ok', 'm', 'fp32', 'local', 1.5, "
                         "'{\"round\": 2, \"cpu_share\": 0.75, \"cpus\": [0]}')")
        store.db.execute("INSERT INTO runs (run_id, started_at, status, model, format, device, config) "
                         "VALUES ('phone', '2026-11-01T00:00:01+00:00', 'failed', 'm', 'fp32', 'adb:X', '{}')")
    monkeypatch.undo()
    with ResultsStore(path) as store:
        rows = {r["run_id"]: r for r in store.list()}
        columns = {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
    assert {"round", "cpu_share"} <= columns
    old = rows["old"]
    assert (old["round"], old["cpu_share"], old["session_id"], old["config"]) == (2, 0.75, "S1", {})
    assert old["observed"] == {"cpus": [0]}  # and schema 6 moves what the runner reported
    assert (rows["phone"]["round"], rows["phone"]["cpu_share"], rows["phone"]["config"]) == (0, None, {})
    assert old["median_ms"] == 1.5 and old["model"] == "m"


def test_round_session_and_cpu_share_are_fields_stored_in_columns(tmp_path):
    result = make_result("r", cpu_share=0.5)
    result.round, result.session_id = 3, "S9"
    with ResultsStore(tmp_path / "r.db") as store:
        store.finish(result)
        row = store.get("r")
        raw = store.db.execute("SELECT round, cpu_share, session_id, config FROM runs").fetchone()
    assert (row["round"], row["cpu_share"], row["session_id"]) == (3, 0.5, "S9")
    assert tuple(raw)[:3] == (3, 0.5, "S9") and json.loads(raw[3]) == {}
    # a --json file written before they were fields had them in config: they move over when read
    older = RunResult.from_dict({**make_result("x").to_dict(), "round": None, "cpu_share": None, "session_id": None,
                                 "config": {"round": 4, "cpu_share": 0.25, "session": "S0", "g": 3}})
    assert (older.round, older.cpu_share, older.session_id, older.config) == (4, 0.25, "S0", {"g": 3})


def test_schema_5_database_moves_what_the_runner_reported_out_of_config(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 5)
    old_config = {"arch": "shufflenet_v1", "g": 3, "resolution": [64, 64], "threads": 1, "runs_requested": 5,
                  "accelerator": "gpu", "runner": "benchmark_model", "error_type": "RunnerError",
                  "delegation": {"accelerator": "gpu", "nodes": 5}, "benchmark_binary_pushed": True}
    with ResultsStore(path) as store:  # a database written by a schema-5 mobiledeploy: one config for both
        store.db.execute("INSERT INTO runs (run_id, started_at, status, model, format, device, config) "
                         "VALUES ('old', '2026-11-01T00:00:00+00:00', 'failed', 'm', 'fp32', 'adb:X', ?)",
                         (json.dumps(old_config),))
        assert "observed" not in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
    monkeypatch.undo()
    # the migration is frozen: what the runners write now does not enter it
    monkeypatch.setattr("mobiledeploy.records._OBSERVED_IN_CONFIG", frozenset())
    with ResultsStore(path) as store:
        old = store.get("old")
        store.finish(make_result("new"))
        new = store.get("new")
    assert old["config"] == {"arch": "shufflenet_v1", "g": 3, "resolution": [64, 64], "threads": 1,
                             "runs_requested": 5, "accelerator": "gpu"}  # what was asked
    assert old["observed"] == {"runner": "benchmark_model", "error_type": "RunnerError",
                               "delegation": {"accelerator": "gpu", "nodes": 5}, "benchmark_binary_pushed": True}
    assert (new["config"], new["observed"]) == ({}, {})


def test_a_json_file_from_before_observed_reads_with_what_the_runner_reported_moved():
    written = make_result("x").to_dict()
    del written["observed"]
    written["config"] = {"g": 3, "threads": 1, "delegation": {"partitions": 1}, "error_type": "NotRun", "cpus": [0]}
    older = RunResult.from_dict(written)
    assert older.config == {"g": 3, "threads": 1}
    assert older.observed == {"delegation": {"partitions": 1}, "error_type": "NotRun", "cpus": [0]}
    # written today: both keys as they are, whatever their names
    today = RunResult.from_dict({**written, "config": {"cpu": "asked"}, "observed": {"g": "seen"}})
    assert (today.config, today.observed) == ({"cpu": "asked"}, {"g": "seen"})


def test_schema_6_database_calls_its_format_column_precision(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    monkeypatch.setattr(results_mod, "SCHEMA_VERSION", 6)
    with ResultsStore(path) as store:  # a database written by a schema-6 mobiledeploy: a `format` column
        store.db.execute("INSERT INTO runs (run_id, started_at, status, model, format, device, median_ms) "
                         "VALUES ('old', '2026-11-01T00:00:00+00:00', 'ok', 'm', 'int8', 'local', 1.5)")
    monkeypatch.undo()
    with ResultsStore(path) as store:
        store.finish(make_result("new"))
        rows = {r["run_id"]: r for r in store.list()}
        columns = {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
        indexed = {row[2] for row in store.db.execute("SELECT * FROM pragma_index_info('runs_by_target')")}
    assert "precision" in columns and "format" not in columns and indexed == {"model", "precision", "device"}
    assert (rows["old"]["precision"], rows["new"]["precision"]) == ("int8", "int8")
    assert "format" not in rows["new"]  # written under the new key only


def test_a_json_file_from_before_precision_reads_its_format_key():
    written = make_result("x").to_dict()
    assert written["precision"] == "int8" and "format" not in written
    older = {("format" if k == "precision" else k): v for k, v in written.items()}
    result = RunResult.from_dict(older)
    assert result.precision == "int8" and not hasattr(result, "format")  # the old name: read from files only
    assert RunResult.from_dict({**older, "precision": "fp32"}).precision == "fp32"  # both keys: the new one


def test_begin_is_failed_until_finish(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        result = make_result("run-a")
        row_id = store.begin(result, session_id="s1", git="c" * 40)
        pending = store.get("run-a")
        assert pending["status"] == "failed" and pending["error"] == INTERRUPTED and pending["median_ms"] is None
        assert store.finish(result, session_id="s1", git="c" * 40) == row_id
        done = store.get("run-a")
        assert done["status"] == "ok" and done["error"] is None and done["id"] == row_id
        assert done["timings_us"] == [1000.0, 1100.0, 1200.0, 1300.0]
        assert done["median_ms"] == 1.15 and done["mean_ms"] == 1.15 and done["min_ms"] == 1.0
        assert done["git_commit"] == "c" * 40 and done["session_id"] == "s1"
        assert done["device_info"] == {"model": "Pixel 6", "soc": "gs101"} and done["macs"] == 37_600_000
        assert done["gmacs_per_s"] == pytest.approx(37.6e6 / 1.15e-3 / 1e9)
        assert len(store.list()) == 1


def test_failed_result_stays_failed_and_status_is_checked(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        failed = make_result("run-b", status="failed", error="DeviceGoneError: gone")
        store.finish(failed)
        assert store.get("run-b")["status"] == "failed"
        with pytest.raises(ValueError):
            store.finish(make_result("run-c", status="running"))
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("INSERT INTO runs (run_id, started_at, status, model, precision, device) "
                             "VALUES ('x', 'now', 'success', 'm', 'f', 'd')")


def test_list_filters_and_limit(tmp_path):
    with ResultsStore(tmp_path / "r.db") as store:
        for i in range(5):
            store.finish(make_result(f"r{i}", status="ok" if i % 2 else "failed", error=None if i % 2 else "x"))
        assert [r["run_id"] for r in store.list(2)] == ["r4", "r3"]
        assert {r["run_id"] for r in store.list(status="ok")} == {"r1", "r3"}
        assert store.list(model="nope") == []


class InterruptingDevice:
    uri = "local"

    def info(self):
        return {}

    def run(self, target, options, run_id=None):
        raise KeyboardInterrupt

    def cleanup(self):
        pass

    def close(self):
        pass


def test_ctrl_c_during_a_run_leaves_a_failed_record(tmp_path, monkeypatch):
    monkeypatch.setattr("mobiledeploy.devices.open_device", lambda uri, adb_server=None: InterruptingDevice())
    target = BenchTarget(name="m", artifact=tmp_path / "m.tflite", precision="fp32", sha256="0" * 64)
    with pytest.raises(KeyboardInterrupt):
        run_bench("local", [target], BenchOptions(), db=tmp_path / "r.db")
    with ResultsStore(tmp_path / "r.db") as store:
        rows = store.list()
    assert [(r["model"], r["status"], r["error"]) for r in rows] == [("m", "failed", INTERRUPTED)]


def _writer(path: str, worker: int, count: int) -> None:
    with ResultsStore(path) as store:
        for i in range(count):
            result = make_result(f"w{worker}-{i}")
            store.begin(result)
            store.finish(result)


def test_concurrent_writers_do_not_corrupt(tmp_path):
    path = str(tmp_path / "r.db")
    ResultsStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with ResultsStore(path) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = store.list()
    assert len(rows) == 100 and all(r["status"] == "ok" for r in rows)


def _open_and_write(path: str, n: int, barrier: Any, errors: Any) -> None:
    try:
        barrier.wait()
        with ResultsStore(path) as store:
            store.begin(make_result(f"m{n}"))
        errors.put("")
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.put(repr(exc))


def test_writers_that_create_the_database_at_once_all_open_it(tmp_path):
    """Runs counted side by side (the exact gate), or two commands started together, may create a new
    database file at once: every one must open it (its switch to WAL takes a lock SQLite does not wait
    for; without the retry about one trial in five failed here)."""
    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        path = str(tmp_path / f"fresh{trial}.db")
        barrier, errors = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_and_write, args=(path, n, barrier, errors)) for n in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [e for e in (errors.get(timeout=10) for _ in procs) if e] == []
        with ResultsStore(path) as store:
            assert len(store.list()) == 6


def test_git_commit_inside_and_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) is None
    repo = tmp_path / "proj"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, env=env).stdout.strip()
    assert git_commit(repo) == head and len(head) == 40


def test_results_cli_json_and_table(results_db, capsys):
    with ResultsStore(results_db) as store:
        store.finish(make_result("r1"))
        store.finish(make_result("r2", status="failed", error="adb does not see X"))
    assert main(["results", "--json", "--limit", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["db"] == str(results_db) and data["schema_version"] == SCHEMA_VERSION
    assert [(r["run_id"], r["status"], r["error"]) for r in data["results"]] == [("r2", "failed", "adb does not see X")]
    assert main(["results", "--db", str(results_db)]) == 0
    out = capsys.readouterr().out
    assert "2 run(s)" in out and "adb does not see X" in out and "1.15" in out
    assert main(["results", "--status", "maybe"]) == 2


def test_unreadable_database_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    assert main(["results", "--db", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mobiledeploy: error: cannot open the results database") and err.count("\n") == 1
