"""The one place that knows how INSERT ... ON CONFLICT is spelled on each backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def upsert(connection: Connection, table: Table) -> Any:
    """A dialect insert() that has on_conflict_do_nothing / on_conflict_do_update."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
