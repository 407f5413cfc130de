"""Read a running search's SQLite study with plain read-only SQL.

Polling with ``optuna.load_study`` while the search is still creating its tables races it: both
sides run Optuna's schema set-up, and the loser fails on ``alembic_version`` (seen in CI). A
read-only connection creates nothing and never locks the worker out; a half-built file reads as
empty.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

_FINISHED_STATES = "('COMPLETE', 'PRUNED')"


def _query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:  # tables not created yet, or the file is mid-write
        return []


def finished_count(db: Path) -> int:
    """Trials that completed or were pruned."""
    rows = _query(db, f"SELECT COUNT(*) FROM trials WHERE state IN {_FINISHED_STATES}")
    return int(rows[0][0]) if rows else 0


def finished_workers(db: Path) -> set[str]:
    """The ``worker`` user attribute of every finished trial: which processes have finished one."""
    rows = _query(
        db,
        "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
        f"WHERE t.state IN {_FINISHED_STATES} AND a.key = 'worker'",
    )
    return {json.loads(value) for (value,) in rows}
