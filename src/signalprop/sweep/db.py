"""The sweep database: one SQLite file, one row per run, written only by the sweep driver.

Each change is one short transaction, so a killed driver leaves every row it committed.
Rows are also recoverable: every run directory keeps its own ``result.json``, and a sweep
re-run imports finished runs from there before deciding what still has to run.

Statuses: ``pending`` (never started), ``running`` (started by a driver; if no driver
holds the sweep lock, the run was interrupted and will resume), ``completed``,
``diverged`` (both final), ``failed`` (an exception; retried on the next run).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

from signalprop.results._serial import encode_float

FINAL = ("completed", "diverged")
STATUSES = ("pending", "running", *FINAL, "failed")
DB_NAME = "sweep.sqlite"
_METRIC_COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    config      TEXT NOT NULL,   -- TrainConfig as JSON
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    step        INTEGER,         -- updates applied (diverged: the step whose loss was NaN/Inf)
    total_steps INTEGER,
    train_loss  REAL, train_acc REAL, test_loss REAL, test_acc REAL,
    metrics     TEXT,            -- final metrics as JSON
    started     REAL, finished REAL,  -- Unix times of the last attempt
    seconds     REAL,            -- training time, summed over resumed attempts
    history     TEXT,            -- path of the run's metrics.jsonl
    attempts    INTEGER NOT NULL DEFAULT 0,
    worker      TEXT,            -- host:pid or Ray task of the last attempt
    error       TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,      -- 'spec': which sweep this database holds (JSON)
    value TEXT NOT NULL
);
"""


class SweepDBError(RuntimeError):
    """The database is locked, corrupt or unreadable; the message says what to do.

    Examples:
        >>> _ = Path("sweep.sqlite").write_text("not a database")
        >>> try:
        ...     SweepDB("sweep.sqlite")
        ... except SweepDBError as err:
        ...     print(err)
        sweep.sqlite is not a readable SQLite database (file is not a database); it was left
        untouched. Move it aside and rerun the sweep: finished runs are recovered from
        runs/*/result.json
    """


class SweepDB:
    """Rows of a sweep. Open with ``SweepDB(path)``; every method commits on return.

    Examples:
        >>> with SweepDB("sweep.sqlite") as db:
        ...     db.add_runs([("run0", "lr=0.1 seed=0", "{}", 0, "runs/run0/metrics.jsonl")])
        ...     db.counts()["pending"], db.rows()[0]["label"]
        1
        (1, 'lr=0.1 seed=0')
    """

    def __init__(self, path: str | Path, timeout: float = 30.0, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise SweepDBError(f"no sweep database at {self.path}: the sweep has not run yet")
        self.conn = self._guard(lambda: sqlite3.connect(self.path, timeout=timeout,
                                                       isolation_level=None))
        if create:
            self._guard(lambda: self.conn.executescript(_SCHEMA))
        else:
            self._guard(lambda: self.conn.execute("SELECT count(*) FROM runs").fetchone())

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise SweepDBError(
                    f"the sweep database {self.path} is locked by another process ({e}); "
                    "wait for it or stop it, then rerun: committed rows are kept, and runs "
                    "that finished meanwhile are recovered from their result.json") from None
            raise SweepDBError(f"sweep database {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise SweepDBError(
                f"{self.path} is not a readable SQLite database ({e}); it was left untouched. "
                f"Move it aside and rerun the sweep: finished runs are recovered from "
                f"{self.path.parent / 'runs'}/*/result.json") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SweepDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes ------------------------------------------------------------------------
    def add_runs(self, rows: list[tuple[str, str, str, int, str]]) -> int:
        """Insert (run_id, label, config_json, seed, history) as pending unless present;
        returns how many were new."""
        def do() -> int:
            before = self.conn.total_changes
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO runs (run_id, label, config, seed, status, history) "
                    "VALUES (?, ?, ?, ?, 'pending', ?)", rows)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return self.conn.total_changes - before
        return self._guard(do)

    def mark_started(self, run_id: str, worker: str) -> None:
        self._guard(lambda: self.conn.execute(
            "UPDATE runs SET status='running', started=?, finished=NULL, error=NULL, "
            "worker=?, attempts=attempts+1 WHERE run_id=?", (time.time(), worker, run_id)))

    def record_result(self, run_id: str, result: dict[str, Any]) -> None:
        """Store a finished attempt: ``result`` is a TrainResult dict, or
        ``{"status": "failed", "error": ...}``."""
        metrics = {k: _float(v) for k, v in (result.get("metrics") or {}).items()}
        cols = [metrics.get(k) for k in _METRIC_COLUMNS]
        self._guard(lambda: self.conn.execute(
            "UPDATE runs SET status=?, step=?, total_steps=?, train_loss=?, train_acc=?, "
            "test_loss=?, test_acc=?, metrics=?, finished=?, seconds=?, error=?, "
            "worker=coalesce(?, worker) WHERE run_id=?",
            (result["status"], result.get("step"), result.get("total_steps"), *cols,
             json.dumps({k: encode_float(v) for k, v in metrics.items()}), time.time(),
             result.get("seconds"), result.get("error") or result.get("message") or None,
             result.get("worker"), run_id)))

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` in the ``meta`` table (replacing any)."""
        self._guard(lambda: self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))

    # --- reads -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """The ``meta`` value under ``key``; None when unset (or the database predates it).

        Examples:
            >>> with SweepDB("sweep.sqlite") as db:
            ...     db.set_meta("spec", "{}")
            ...     db.meta("spec"), db.meta("other")
            ('{}', None)
        """
        def do() -> str | None:
            try:
                row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):  # opened read-only before the table existed
                    return None
                raise
            return row[0] if row else None
        return self._guard(do)

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict, in insertion order."""
        def do() -> list[dict[str, Any]]:
            cur = self.conn.execute("SELECT * FROM runs ORDER BY rowid")
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        return self._guard(do)

    def counts(self) -> dict[str, int]:
        """Number of rows per status (every status listed, zeros included)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._guard(lambda: self.conn.execute(
                "SELECT status, count(*) FROM runs GROUP BY status").fetchall()):
            out[status] = n
        return out


def _float(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v)
    return float(v)
