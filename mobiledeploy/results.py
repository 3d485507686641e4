"""The results store: one SQLite file, a versioned schema, one row per timed run.

Default path: `$MOBILEDEPLOY_DB`, else `~/.local/share/mobiledeploy/results.db`
(`$XDG_DATA_HOME/mobiledeploy/results.db` when XDG_DATA_HOME is set).

A run is written twice, each time in its own transaction: `begin()` inserts it as
status 'failed' with error 'interrupted: …' before the device starts, and `finish()` replaces
that with the real outcome. A crash, a Ctrl-C or a lost device therefore leaves a failed row,
never a success. WAL journaling and a busy timeout let several processes write at once.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import time
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ResultsError
from .records import RunResult
from .stability import described

__all__ = ["ResultsStore", "check_database", "default_db_path", "git_commit", "SCHEMA_VERSION", "INTERRUPTED"]

SCHEMA_VERSION = 7
INTERRUPTED = "interrupted: the run did not complete (Ctrl-C, crash or lost device)"
BUSY_TIMEOUT_MS = 30_000

_STATS = ("median_ms", "p90_ms", "p95_ms", "mean_ms", "std_ms", "cv", "min_ms", "max_ms", "init_ms", "first_ms",
          "warmup_ms", "peak_memory_mb", "memory_delta_mb")
#: Arm instructions per inference (qemu: devices), from schema 2
_COUNTS = ("instructions", "init_instructions", "first_instructions")
_JSON = ("config", "observed", "device_info", "versions", "timings_us", "op_profile", "instruction_counts")
_NULLABLE_JSON = ("timings_us", "op_profile", "instruction_counts")

MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def migration(version: int) -> Callable[[Callable[[sqlite3.Connection], None]], Callable[[sqlite3.Connection], None]]:
    def register(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
        MIGRATIONS[version] = fn
        return fn

    return register


@migration(1)
def _v1(db: sqlite3.Connection) -> None:
    stats = ",\n".join(f"    {name} REAL" for name in _STATS)
    db.execute(f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    session_id TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    model TEXT NOT NULL,
    format TEXT NOT NULL,
    device TEXT NOT NULL,
    device_model TEXT,
    device_soc TEXT,
    artifact TEXT,
    sha256 TEXT,
    threads INTEGER,
    runs INTEGER,
    warmup INTEGER,
    macs INTEGER,
{stats},
    gmacs_per_s REAL,
    wall_s REAL,
    git_commit TEXT,
    config TEXT NOT NULL DEFAULT '{{}}',
    device_info TEXT NOT NULL DEFAULT '{{}}',
    versions TEXT NOT NULL DEFAULT '{{}}',
    timings_us TEXT,
    op_profile TEXT
)""")
    db.execute("CREATE INDEX runs_by_time ON runs (started_at)")
    db.execute("CREATE INDEX runs_by_target ON runs (model, format, device)")


@migration(2)
def _v2(db: sqlite3.Connection) -> None:
    """Exact counts from emulated Arm cores: instructions per inference, init and first inference."""
    for name in _COUNTS:
        db.execute(f"ALTER TABLE runs ADD COLUMN {name} REAL")
    db.execute("ALTER TABLE runs ADD COLUMN instruction_counts TEXT")


@migration(3)
def _v3(db: sqlite3.Connection) -> None:
    """Why a failed run failed (records.ErrorKind), a column instead of a class name inside config."""
    db.execute("ALTER TABLE runs ADD COLUMN error_kind TEXT")


@migration(4)
def _v4(db: sqlite3.Connection) -> None:
    """How each run was timed (`runtimes.RUNTIMES`), a column; runs stored before it had their device kind's
    only runtime (litert on local, benchmark_model on adb:, counted on qemu:), written out here as the kinds
    were then, so that this step stays the same whatever the device kinds become; other devices: none."""
    db.execute("ALTER TABLE runs ADD COLUMN runtime TEXT")
    db.execute("UPDATE runs SET runtime = CASE WHEN device = 'local' THEN 'litert' "
               "WHEN device LIKE 'adb:_%' THEN 'benchmark_model' "
               "WHEN device = 'qemu' OR device LIKE 'qemu:_%' THEN 'counted' END")
    db.execute("CREATE INDEX runs_by_runtime ON runs (model, format, device, runtime)")


@migration(5)
def _v5(db: sqlite3.Connection) -> None:
    """A run's round and cpu_share, columns instead of keys inside config (its session was a column already)."""
    db.execute("ALTER TABLE runs ADD COLUMN round INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE runs ADD COLUMN cpu_share REAL")
    for row_id, text in db.execute("SELECT id, config FROM runs").fetchall():
        config = json.loads(text or "{}")
        moved = (config.pop("round", None), config.pop("cpu_share", None), config.pop("session", None))
        if moved != (None, None, None):
            db.execute("UPDATE runs SET round = ?, cpu_share = ?, config = ? WHERE id = ?",
                       (int(moved[0] or 0), moved[1], json.dumps(config, default=str), row_id))


@migration(6)
def _v6(db: sqlite3.Connection) -> None:
    """What the runner reported (delegation, error_type, runner, estimate, ...), a column of its own instead of
    keys inside config (which keeps what was asked). The keys the runners wrote into config until then are
    listed here as they were, so that this step stays the same whatever the runners write later."""
    reported = {"arm_parity", "benchmark_binary", "benchmark_binary_pushed", "benchmark_binary_sha256",
                "benchmark_binary_url", "benchmark_output_format", "benchmark_tool", "bracket_instructions", "cpu",
                "cpu_mask_used", "cpus", "delegate", "delegation", "emulated_wall_s", "error_type", "estimate",
                "etdump", "execution_provider", "graph_optimization", "guest_threads", "input_dtypes",
                "op_profile_source", "remote_dir", "result_file_error", "result_source", "runner", "runner_binary",
                "runner_pushed", "runner_sha256", "taskset", "threadpool_threads", "timing"}
    db.execute("ALTER TABLE runs ADD COLUMN observed TEXT NOT NULL DEFAULT '{}'")
    for row_id, text in db.execute("SELECT id, config FROM runs").fetchall():
        config = json.loads(text or "{}")
        observed = {k: config.pop(k) for k in list(config) if k in reported}
        if observed:
            db.execute("UPDATE runs SET config = ?, observed = ? WHERE id = ?",
                       (json.dumps(config, default=str), json.dumps(observed, default=str), row_id))


@migration(7)
def _v7(db: sqlite3.Connection) -> None:
    """The column `format` holds a precision (fp32, int8, ...), never an artifact kind: it is called `precision`
    (SQLite 3.25+ renames it in the indexes too)."""
    db.execute("ALTER TABLE runs RENAME COLUMN format TO precision")


def default_db_path() -> Path:
    if env := os.environ.get("MOBILEDEPLOY_DB"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mobiledeploy" / "results.db"


def check_database(path: str | os.PathLike) -> int:
    """The schema version of an existing results database, read without writing anything (no journal,
    no migration). Raises ResultsError for a file that is not one or comes from a newer mobiledeploy."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"cannot open the results database {path}: it is a directory")
    try:
        db = sqlite3.connect(_readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return 0  # an empty file: a new database
            if "meta" not in tables:
                raise ResultsError(f"{path} is an SQLite database but not a mobiledeploy results database "
                                   f"(tables: {', '.join(sorted(tables))})")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ResultsError(f"cannot open the results database {path}: {exc}") from None
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{path} has schema version {version}; this mobiledeploy reads up to "
                           f"{SCHEMA_VERSION} (upgrade mobiledeploy)")
    return version


def _readonly_uri(path: Path) -> str:
    """A URI that opens `path` without writing. A WAL database needs its shared-memory file to be read; in a
    folder that cannot be written SQLite cannot make one ("attempt to write a readonly database"), so
    there the file is read as immutable (nothing can write it there either)."""
    writable = os.access(path.absolute().parent, os.W_OK | os.X_OK)
    return f"{path.absolute().as_uri()}?mode=ro{'' if writable else '&immutable=1'}"


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """HEAD of the git repository around `cwd` (the user's project), None outside one."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    head = proc.stdout.strip()
    return head if proc.returncode == 0 and len(head) >= 40 else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """`with ResultsStore(path) as store:` … `store.begin(result)`, `store.finish(result)`, `store.list()`."""

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False):
        """`readonly`: only read (`results` on a store in a folder it cannot write); no migration then."""
        self.path = Path(path).expanduser() if path else default_db_path()
        if self.path.exists():
            check_database(self.path)  # never migrate (write into) a foreign or newer database
        if readonly:
            self._open_readonly()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._set_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ResultsError(f"cannot open the results database {self.path}: {exc}") from None

    def _open_readonly(self) -> None:
        """Open without writing anything (no WAL switch, no migration; see `_readonly_uri`)."""
        try:
            self.db = sqlite3.connect(_readonly_uri(self.path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                      isolation_level=None)
            self.db.row_factory = sqlite3.Row
            version = self.schema_version
        except (sqlite3.DatabaseError, OSError, TypeError) as exc:
            raise ResultsError(f"cannot read the results database {self.path}: {exc}") from None
        if version != SCHEMA_VERSION:
            self.db.close()
            raise ResultsError(f"{self.path} is of results schema {version} and cannot be written here: this "
                               f"mobiledeploy reads schema {SCHEMA_VERSION} after a migration that writes into "
                               "it; copy it to a folder you can write, and pass that with --db")

    def _set_wal(self) -> None:
        """WAL journaling. Switching a new database to it takes an exclusive lock for which SQLite does not
        wait (busy_timeout does not apply): two writers creating the same file at once retry here."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise ResultsError(f"{self.path} has schema version {version}; this mobiledeploy reads up to "
                                   f"{SCHEMA_VERSION} (upgrade mobiledeploy)")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](db)
            if version != SCHEMA_VERSION:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", (_now(),))

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()["value"])

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: Any, *rest: Any) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> "ResultsStore._Tx":
        return ResultsStore._Tx(self.db)

    # ------------------------------------------------------------------ writing
    def begin(self, result: RunResult, *, session_id: str | None = None, git: str | None = None) -> int:
        """Insert `result` as failed/interrupted before it runs; returns the row id for `finish`. The session is
        `session_id`, else the result's own."""
        cleared = {key: None for key in (*_STATS, *_COUNTS, *_NULLABLE_JSON, "wall_s", "cpu_share")}
        placeholder = RunResult.from_dict({**result.to_dict(), **cleared, "status": "failed", "error": INTERRUPTED})
        return self._write(placeholder, session_id=session_id, git=git, finished=False)

    def finish(self, result: RunResult, *, session_id: str | None = None, git: str | None = None) -> int:
        """Record the final outcome of a run (replacing its `begin` row, matched by run_id)."""
        if result.status not in ("ok", "failed"):
            raise ValueError(f"status {result.status!r} is neither ok nor failed")
        return self._write(result, session_id=session_id, git=git, finished=True)

    def _write(self, result: RunResult, *, session_id: str | None, git: str | None, finished: bool) -> int:
        """Insert, or update the row with the same run_id, in one transaction."""
        row = self._row(result, session_id, git, finished)
        updates = {k: v for k, v in row.items() if k not in ("run_id", "started_at")}
        try:
            with self._transaction() as db:
                found = db.execute("SELECT id FROM runs WHERE run_id = ?", (result.run_id,)).fetchone()
                if found:
                    db.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in updates)} WHERE id = ?",
                               [*updates.values(), found["id"]])
                    return int(found["id"])
                cursor = db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                                    list(row.values()))
                return int(cursor.lastrowid)
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"cannot write to {self.path}: {exc}") from None

    @staticmethod
    def _row(result: RunResult, session_id: str | None, git: str | None, finished: bool) -> dict[str, Any]:
        if not result.run_id:
            raise ValueError("a RunResult needs a run_id to be stored")
        data = result.to_dict()
        info = result.device_info or {}
        row: dict[str, Any] = {
            "run_id": result.run_id, "session_id": session_id or result.session_id,
            "started_at": result.started_at or _now(), "round": result.round, "cpu_share": result.cpu_share,
            "finished_at": _now() if finished else None, "status": result.status, "error": result.error,
            "error_kind": result.error_kind,
            "model": result.model, "precision": result.precision, "device": result.device, "runtime": result.runtime or None,
            "device_model": info.get("model"), "device_soc": info.get("soc"), "artifact": result.artifact,
            "sha256": result.sha256, "threads": result.threads, "runs": result.runs, "warmup": result.warmup,
            "macs": result.macs, **{k: data[k] for k in (*_STATS, *_COUNTS)}, "gmacs_per_s": result.gmacs_per_s,
            "wall_s": result.wall_s, "git_commit": git,
        }
        for key in _JSON:
            value = data[key]
            row[key] = None if value is None and key in _NULLABLE_JSON else json.dumps(value, default=str)
        return row

    # ------------------------------------------------------------------ reading
    def list(self, limit: int | None = None, *, model: str | None = None, device: str | None = None,
             status: str | None = None, runtime: str | None = None) -> list[dict[str, Any]]:
        """Stored runs, newest first, as RunResult dicts plus id, session_id, git_commit, finished_at."""
        where, args = [], []
        for column, value in (("model", model), ("device", device), ("status", status), ("runtime", runtime)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        try:
            return [self._from_row(row) for row in self.db.execute(sql, args)]
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"cannot read {self.path}: {exc}") from None

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return self._from_row(row) if row else None

    @staticmethod
    def _from_row(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        for key in _JSON:
            data[key] = json.loads(data[key]) if data[key] is not None else None
        result = described(RunResult.from_dict(data))
        extra = {k: data[k] for k in ("id", "session_id", "git_commit", "finished_at")}
        return {**extra, **result}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.list())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
