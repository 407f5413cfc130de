"""The machine's PostgreSQL server for the scale-out tests; they skip where it is not reachable."""

from __future__ import annotations

import psycopg  # noqa: F401 - the driver is in the test extra: missing, it must fail, not skip
import pytest
import sqlalchemy as sa

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    try:
        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return None
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}: {str(exc)[:80]})"


PG_SKIP = _postgres_reachable()
needs_pg = pytest.mark.skipif(PG_SKIP is not None, reason=PG_SKIP or "")
