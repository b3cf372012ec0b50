"""The webhook inbox: every accepted delivery, durable before the vendor hears 2xx.

Workers claim events in batches with a lease. A claim is one UPDATE ... RETURNING (with
FOR UPDATE SKIP LOCKED on PostgreSQL), so any number of workers share the inbox without two
taking the same event; an event whose worker died becomes claimable again when its lease ends.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hub.adapters.db.dialect import from_json_rows, json_rows, one_of, upsert, upsert_statement
from hub.adapters.db.models import Connection as ConnectionRow
from hub.adapters.db.models import InboxEvent

log = logging.getLogger(__name__)
T = cast(Table, InboxEvent.__table__)
ACCEPTED, PROCESSING, PROCESSED, IGNORED, DEAD = (
    "accepted",
    "processing",
    "processed",
    "ignored",
    "dead",
)
STATUSES = (ACCEPTED, PROCESSING, PROCESSED, IGNORED, DEAD)


@dataclass(frozen=True)
class Accepted:
    event_id: int
    duplicate: bool
    status: str


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    connection: str
    connector: str
    settings: dict[str, Any]
    credentials: dict[str, str]
    event_type: str
    delivery_key: str
    headers: dict[str, str]
    body: bytes
    attempts: int
    received_at: datetime


def accept(
    engine: Engine,
    *,
    connection_id: int,
    delivery_key: str,
    event_type: str,
    headers: dict[str, str],
    body: bytes,
    status: str,
    now: datetime,
) -> Accepted:
    """Insert the delivery once; a second copy of the same delivery finds the first."""
    values = dict(
        connection_id=connection_id,
        delivery_key=delivery_key,
        event_type=event_type,
        headers=headers,
        body=body,
        status=status,
        received_at=now,
        available_at=now,
        attempts=0,
    )
    with _writer(engine) as conn:
        stmt = (
            upsert(conn, T)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["connection_id", "delivery_key"])
            .returning(T.c.id)
        )
        new_id = conn.execute(stmt).scalar()
        if new_id is not None:
            return Accepted(new_id, duplicate=False, status=status)
        row = conn.execute(
            select(T.c.id, T.c.status).where(
                T.c.connection_id == connection_id, T.c.delivery_key == delivery_key
            )
        ).one()
        return Accepted(row.id, duplicate=True, status=row.status)


INSERTED_COLUMNS = ("connection_id", "delivery_key", "event_type", "headers", "body", "status",
                    "received_at", "available_at", "attempts")


class InboxWriter:
    """The receiver's writer: one connection held for good and one statement built once.
    A checkout with its liveness ping and a statement built anew cost more CPU per batch
    than the insert itself (py-spy on the receiver under load, bench/README.md). On
    PostgreSQL a batch travels as one JSON document. A failed write drops the connection;
    the next batch opens a new one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        insert = from_json_rows(postgresql.insert(T), T, list(INSERTED_COLUMNS)) \
            if self._postgres else upsert_statement(engine.dialect.name, T)
        self._stmt = (
            insert.on_conflict_do_nothing(index_elements=["connection_id", "delivery_key"])
            .returning(T.c.id, T.c.connection_id, T.c.delivery_key)
        )

    def accept_many(self, rows: list[dict[str, Any]]) -> list[Accepted]:
        """Insert many deliveries in one transaction (group commit); one Accepted per row, in
        order. A row whose (connection, delivery key) is already stored — or appears earlier
        in the same batch — is answered as a duplicate with the stored event's id."""
        try:
            return self._write(rows)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the held connection had died (a database restart): once more on a new one.
            # Safe to repeat: a row the first try did commit is found, not written twice.
            return self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> list[Accepted]:
        conn = self._connection()
        try:
            if self._postgres:  # autocommit: the one INSERT is the transaction
                return self._insert(conn, rows)
            with conn.begin():
                return self._insert(conn, rows)
        except BaseException:
            self.close()
            raise

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.engine.connect()
            if self._postgres:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        return self._conn

    def close(self, invalidate: bool = True) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if invalidate:
                    conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                log.warning("closing a broken inbox connection failed")

    def _insert(self, conn: Connection, rows: list[dict[str, Any]]) -> list[Accepted]:
        params: Any = [{**row, "available_at": row["received_at"], "attempts": 0}
                       for row in rows]
        if self._postgres:
            params = {"rows_json": json_rows([{c: p[c] for c in INSERTED_COLUMNS}
                                              for p in params])}
        elif len(params) == 1:
            params = params[0]
        inserted = {(r.connection_id, r.delivery_key): r.id
                    for r in conn.execute(self._stmt, params)}
        missing = {(row["connection_id"], row["delivery_key"]) for row in rows} - set(inserted)
        existing = {}
        if missing:
            found = conn.execute(select(T.c.id, T.c.status, T.c.connection_id, T.c.delivery_key)
                                 .where(one_of(T.c.delivery_key, sorted(k for _, k in missing))))
            existing = {(r.connection_id, r.delivery_key): (r.id, r.status) for r in found}
        return _answers(rows, inserted, existing)


def _answers(rows: list[dict[str, Any]], inserted: dict[tuple[int, str], int],
             existing: dict[tuple[int, str], tuple[int, str]]) -> list[Accepted]:
    results, seen = [], set()
    for row in rows:
        key = (row["connection_id"], row["delivery_key"])
        if key in inserted and key not in seen:
            results.append(Accepted(inserted[key], duplicate=False, status=row["status"]))
        elif key in inserted:
            results.append(Accepted(inserted[key], duplicate=True, status=row["status"]))
        else:
            event_id, status = existing[key]
            results.append(Accepted(event_id, duplicate=True, status=status))
        seen.add(key)
    return results


def _writer(engine: Engine) -> Any:
    """One-statement writes: autocommit on PostgreSQL (one round trip), BEGIN IMMEDIATE on
    SQLite (the write lock is taken up front, so a busy database waits instead of failing)."""
    if engine.dialect.name == "postgresql":
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return engine.begin()


def claimable(now: datetime) -> Any:
    return or_(
        and_(T.c.status == ACCEPTED, T.c.available_at <= now),
        and_(T.c.status == PROCESSING, T.c.lease_until < now),
    )


def claim(engine: Engine, *, limit: int, now: datetime, lease_seconds: int) -> list[ClaimedEvent]:
    """Take up to `limit` events for processing, oldest first, in one statement."""
    candidates = select(T.c.id).where(claimable(now)).order_by(T.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    stmt = (
        update(T)
        .where(T.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=PROCESSING,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=T.c.attempts + 1,
        )
        .returning(T.c.id)
    )
    with engine.begin() as conn:
        ids = sorted(conn.execute(stmt).scalars())
        if not ids:
            return []
        C = cast(Table, ConnectionRow.__table__)
        rows = conn.execute(
            select(
                T.c.id, C.c.name, C.c.connector, C.c.settings, C.c.credentials, T.c.event_type,
                T.c.delivery_key, T.c.headers, T.c.body, T.c.attempts, T.c.received_at,
            )
            .join(C, C.c.id == T.c.connection_id)
            .where(one_of(T.c.id, ids))
            .order_by(T.c.id)
        ).all()
    return [
        ClaimedEvent(r.id, r.name, r.connector, r.settings or {}, r.credentials or {},
                     r.event_type, r.delivery_key,
                     r.headers or {}, bytes(r.body), r.attempts, r.received_at)
        for r in rows
    ]


def has_claimable(engine: Engine, now: datetime) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(T.c.id).where(claimable(now)).limit(1)).first() is not None


def mark_done(conn: Any, results: list[tuple[int, str, dict[str, Any]]], now: datetime) -> None:
    """Finish events inside the caller's transaction: (id, processed|ignored, result)."""
    if not results:
        return
    conn.execute(
        update(T)
        .where(T.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            result=bindparam("b_result"),
            processed_at=now,
            lease_until=None,
            last_error=None,
        ),
        [{"b_id": i, "b_status": s, "b_result": r} for i, s, r in results],
    )


def blank_bodies(conn: Any, event_ids: list[int]) -> None:
    """Forget what a delivery said (it was about an erased person)."""
    if event_ids:
        conn.execute(update(T).where(one_of(T.c.id, event_ids)).values(body=b"", headers={}))


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential with full jitter, capped at an hour: spreads retries of a failing vendor."""
    ceiling = min(3600.0, base * 2 ** max(0, attempt - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not crypto


def mark_failed(
    engine: Engine,
    event: ClaimedEvent,
    error: str,
    *,
    now: datetime,
    max_attempts: int,
    retry_base: float,
    permanent: bool = False,
) -> str:
    """Record a failure: retry later with backoff, or dead after the last attempt."""
    dead = permanent or event.attempts >= max_attempts
    status = DEAD if dead else ACCEPTED
    delay = 0.0 if dead else backoff_seconds(event.attempts, retry_base)
    with engine.begin() as conn:
        conn.execute(
            update(T)
            .where(T.c.id == event.id, T.c.status == PROCESSING)
            .values(
                status=status,
                last_error=error[:2000],
                lease_until=None,
                available_at=now + timedelta(seconds=delay),
            )
        )
    return status


def replay(engine: Engine, event_ids: list[int], now: datetime) -> int:
    """Put events back in the queue (dead ones after a fix, or processed ones to re-run)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(T)
            .where(one_of(T.c.id, event_ids), T.c.status != PROCESSING)
            .values(status=ACCEPTED, attempts=0, available_at=now, last_error=None)
        )
        return int(result.rowcount or 0)


def counts_by_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(T.c.status, func.count()).group_by(T.c.status)).all()
    return {status: count for status, count in rows}
