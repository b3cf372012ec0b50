"""What differs between the backends, in one place: upserts, bulk writes and IN lists."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


def upsert(connection: Connection, table: Table) -> Any:
    """A dialect insert() that has on_conflict_do_nothing / on_conflict_do_update."""
    return upsert_statement(connection.dialect.name, table)


def upsert_statement(dialect_name: str, table: Table) -> Any:
    """The same, for a statement built once, before any connection exists."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_many(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in one statement: see `upsert_many`."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    connection.execute(_from_json(postgresql.insert(table), table, rows))


def upsert_many(connection: Connection, table: Table, rows: list[dict[str, Any]], *,
                key: list[str], update: list[str] | None = None) -> None:
    """Insert rows, updating `update` (or skipping the row when None) where `key` exists.

    On PostgreSQL the rows travel as one JSON document, unpacked by the server into the
    table's own row type (json_populate_recordset): one statement and one round trip for any
    number of rows, where executemany sends a statement per row and array parameters cost
    more to build in Python than the rows themselves (measured in bench/sync.py). SQLite, in
    process, takes executemany. A key repeated in `rows` keeps its last row, as executemany
    would."""
    if not rows:
        return
    rows = list({tuple(r[k] for k in key): r for r in rows}.values())
    if connection.dialect.name != "postgresql":
        connection.execute(_on_conflict(sqlite.insert(table), key, update), rows)
        return
    connection.execute(_on_conflict(_from_json(postgresql.insert(table), table, rows), key,
                                    update))


def _from_json(stmt: Any, table: Table, rows: list[dict[str, Any]]) -> Any:
    return from_json_rows(stmt, table, list(rows[0]), json_rows(rows))


def from_json_rows(stmt: Any, table: Table, names: list[str], document: str | None = None
                   ) -> Any:
    """`stmt` (a PostgreSQL insert into `table`) fed from a JSON document of rows (see
    `json_rows`): the given one, or, built once without it, the parameter `rows_json`."""
    value = bindparam("rows_json", type_=Text) if document is None else \
        bindparam("rows_json", document, type_=Text)
    source = func.json_populate_recordset(
        literal_column(f"NULL::{table.name}"), cast(value, JSON),
    ).table_valued(*names)
    return stmt.from_select(names, select(*[source.c[n] for n in names]))


def json_rows(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    """What json cannot write itself: times, which must be aware (as UTCDateTime demands),
    and bytes, in the hex form PostgreSQL reads into bytea."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} cannot be written as a JSON row")


def _on_conflict(stmt: Any, key: list[str], update: list[str] | None) -> Any:
    if update is None:
        return stmt.on_conflict_do_nothing(index_elements=key)
    return stmt.on_conflict_do_update(
        index_elements=key, set_={c: getattr(stmt.excluded, c) for c in update})


class OneOf(ColumnElement[bool]):
    """`column IN (values)` that PostgreSQL receives as `column = ANY(:array)`.

    An IN list is a different statement for every length (SQLAlchemy renders one placeholder
    per value), so neither SQLAlchemy's nor psycopg's statement caches hold and each batch
    pays to build and parse a new one; one array parameter is one cached statement. Other
    backends get the plain IN list."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison already: no `= 1` in WHERE
    _traverse_internals = [("as_array", InternalTraversal.dp_clauseelement),
                           ("as_list", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any, values: Iterable[Any]) -> None:
        values = list(values)
        self.as_array = column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
        self.as_list = column.in_(values)


def one_of(column: Any, values: Iterable[Any]) -> OneOf:
    return OneOf(column, values)


@compiles(OneOf)
def _one_of_as_list(element: OneOf, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.as_list, **kw))


@compiles(OneOf, "postgresql")
def _one_of_as_array(element: OneOf, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.as_array, **kw))
