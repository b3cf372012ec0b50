"""Stored deliveries read back: samples to check and preview mappings, and the ones to reapply.

The inbox keeps every delivery exactly as received, which is what makes a mapping change
testable against real history and reappliable afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, desc, func, select, update

from hub.adapters.db import inbox
from hub.adapters.db.models import Connection, InboxEvent

E = cast(Table, InboxEvent.__table__)
CONN = cast(Table, Connection.__table__)


def _event(row: Any) -> inbox.ClaimedEvent:
    return inbox.ClaimedEvent(row.id, row.name, row.connector, row.settings or {},
                              row.credentials or {}, row.event_type, row.delivery_key,
                              row.headers or {}, bytes(row.body), 1, row.received_at)


def _select() -> Any:
    return select(E.c.id, CONN.c.name, CONN.c.connector, CONN.c.settings, CONN.c.credentials,
                  E.c.event_type, E.c.delivery_key, E.c.headers, E.c.body,
                  E.c.received_at).join(CONN, CONN.c.id == E.c.connection_id)


def recent_deliveries(engine: Engine, connection: str, limit: int,
                      statuses: tuple[str, ...] = (inbox.PROCESSED, inbox.DEAD, inbox.ACCEPTED,
                                                   inbox.PROCESSING)) -> list[inbox.ClaimedEvent]:
    """The newest `limit` deliveries of a connection, returned oldest first. Ignored events
    (types the connector does not handle) are left out: they carry no records."""
    stmt = _select().where(CONN.c.name == connection, E.c.status.in_(statuses)) \
        .order_by(desc(E.c.id)).limit(limit)
    with engine.connect().execution_options(hub_readonly=True) as conn:
        rows = conn.execute(stmt).all()
    return [_event(r) for r in reversed(rows)]


def processed_since(engine: Engine, connection: str, since: datetime, *, after_id: int = 0,
                    limit: int) -> list[inbox.ClaimedEvent]:
    """Processed deliveries received since a time, by id, one page after `after_id`."""
    stmt = _select().where(CONN.c.name == connection, E.c.status == inbox.PROCESSED,
                           E.c.received_at >= since, E.c.id > after_id) \
        .order_by(E.c.id).limit(limit)
    with engine.connect().execution_options(hub_readonly=True) as conn:
        return [_event(r) for r in conn.execute(stmt).all()]


def count_since(engine: Engine, connection: str, since: datetime) -> dict[str, int]:
    """How many deliveries of the connection arrived since a time, by status."""
    stmt = select(E.c.status, func.count()).join(CONN, CONN.c.id == E.c.connection_id).where(
        CONN.c.name == connection, E.c.received_at >= since).group_by(E.c.status)
    with engine.connect().execution_options(hub_readonly=True) as conn:
        return {status: int(count) for status, count in conn.execute(stmt).all()}


def requeue_processed_since(engine: Engine, connection: str, since: datetime, now: datetime,
                            delay_seconds: float) -> int:
    """Put a connection's processed deliveries since a time back in the queue, claimable after
    `delay_seconds` (long enough for every worker to have seen a just-activated mapping)."""
    ids = select(E.c.id).join(CONN, CONN.c.id == E.c.connection_id).where(
        CONN.c.name == connection, E.c.status == inbox.PROCESSED, E.c.received_at >= since)
    with engine.begin() as conn:
        result = conn.execute(
            update(E).where(E.c.id.in_(ids.scalar_subquery()))
            .values(status=inbox.ACCEPTED, attempts=0, last_error=None,
                    available_at=now + timedelta(seconds=delay_seconds)))
        return int(result.rowcount or 0)
