"""Accuracy evaluations in the results store: a table of their own beside `runs`, in the same SQLite file.

An evaluation is one `mobiledeploy accuracy` call: `accuracy_reports` keeps its whole report (JSON), and
`accuracy` one row per artifact and device (top-1/top-5 with their intervals) for queries. The tables are
created on first use (CREATE TABLE IF NOT EXISTS) on a store opened through `ResultsStore`, which checks the
file and migrates `runs` first; nothing here changes the `runs` schema.
"""

from __future__ import annotations

import datetime as _dt
import json
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ResultsError

if TYPE_CHECKING:
    from .converters.manifest import Manifest

__all__ = ["store_accuracy", "list_accuracy"]

_TABLES = (
    """CREATE TABLE IF NOT EXISTS accuracy_reports (
        evaluation_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, model TEXT NOT NULL, images INTEGER NOT NULL,
        dataset TEXT NOT NULL, git TEXT, report TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS accuracy (
        id INTEGER PRIMARY KEY AUTOINCREMENT, evaluation_id TEXT NOT NULL REFERENCES accuracy_reports(evaluation_id),
        model TEXT NOT NULL, artifact TEXT NOT NULL, device TEXT NOT NULL, runtime TEXT NOT NULL,
        images INTEGER NOT NULL, top1 REAL NOT NULL, top1_low REAL NOT NULL, top1_high REAL NOT NULL,
        top5 REAL NOT NULL, top5_low REAL NOT NULL, top5_high REAL NOT NULL, artifact_sha256 TEXT)""",
    "CREATE INDEX IF NOT EXISTS accuracy_by_model ON accuracy (model, artifact, device)",
)


def _open(db: str | Path | None) -> Any:
    from .results import ResultsStore

    store = ResultsStore(db)
    try:
        for statement in _TABLES:
            store.db.execute(statement)
    except sqlite3.DatabaseError as exc:
        store.close()
        raise ResultsError(f"cannot write accuracy to {store.path}: {exc}") from None
    return store


def store_accuracy(report: dict[str, Any], db: str | Path | None = None, manifest: Manifest | None = None) -> str:
    """Store one evaluation (all its rows in one transaction); returns its evaluation id."""
    from .results import git_commit

    evaluation_id = uuid.uuid4().hex[:12]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    shas = {key: entry.sha256 for key, entry in (manifest.artifacts if manifest else {}).items()}
    store = _open(db)
    try:
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute("INSERT INTO accuracy_reports VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (evaluation_id, created, report["model"], report["images"]["images"], report["images"]["root"],
                          git_commit(), json.dumps(report, default=str)))
        for r in report["results"]:
            sha = shas.get("weights" if r["artifact"] == "torch" else r["artifact"])
            store.db.execute(
                "INSERT INTO accuracy (evaluation_id, model, artifact, device, runtime, images, top1, top1_low, "
                "top1_high, top5, top5_low, top5_high, artifact_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (evaluation_id, report["model"], r["artifact"], r["device"], r["runtime"], r["top1"]["n"],
                 r["top1"]["accuracy"], r["top1"]["low"], r["top1"]["high"], r["top5"]["accuracy"], r["top5"]["low"],
                 r["top5"]["high"], sha))
        store.db.execute("COMMIT")
    except BaseException:
        if store.db.in_transaction:
            store.db.execute("ROLLBACK")
        raise
    finally:
        store.close()
    return evaluation_id


def list_accuracy(db: str | Path | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """Stored accuracy rows, newest evaluation first (each row with its evaluation's created_at)."""
    store = _open(db)
    try:
        query = ("SELECT a.*, r.created_at, r.dataset FROM accuracy a JOIN accuracy_reports r USING (evaluation_id)"
                 + (" WHERE a.model = ?" if model else "") + " ORDER BY r.created_at DESC, a.id")
        return [dict(row) for row in store.db.execute(query, (model,) if model else ())]
    finally:
        store.close()
