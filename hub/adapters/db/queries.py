"""Read models for the admin API and CLI: lists with keyset pagination, one contact whole.

Keyset pagination (id > last seen) stays fast at any depth and never skips or repeats a row
while new contacts arrive, which offset pagination cannot promise.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Engine, Table, desc, select

from hub.adapters.db.dialect import one_of
from hub.adapters.db.models import (
    Connection,
    Contact,
    ContactIdentity,
    ContactMerge,
    FieldProvenance,
    Flag,
    InboxEvent,
)
from hub.domain.contact import Provenance
from hub.domain.errors import NotFoundError
from hub.domain.identity import IdentityKey, IdentityKind
from hub.services.contact_view import contact_view

C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
P = cast(Table, FieldProvenance.__table__)
F = cast(Table, Flag.__table__)
E = cast(Table, InboxEvent.__table__)
CONN = cast(Table, Connection.__table__)
M = cast(Table, ContactMerge.__table__)


def _reader(engine: Engine) -> Any:
    return engine.connect().execution_options(hub_readonly=True)


def list_contacts(engine: Engine, *, email: str | None, q: str | None, after: int | None,
                  limit: int) -> tuple[list[dict[str, Any]], int | None]:
    stmt = select(C).where(C.c.merged_into.is_(None)).order_by(C.c.id).limit(limit + 1)
    if email:
        owner = select(I.c.contact_id).where(I.c.kind == "email", I.c.value == email.lower())
        stmt = stmt.where(C.c.id.in_(owner))
    if q:
        stmt = stmt.where(C.c.search_text.contains(q.lower(), autoescape=True))
    if after:
        stmt = stmt.where(C.c.id > after)
    with _reader(engine) as conn:
        rows = conn.execute(stmt).all()
        page, more = rows[:limit], len(rows) > limit
        identities = _identities(conn, [r.id for r in page])
    items = [contact_view(r.id, r.data or {}, identities.get(r.id, []), r.created_at,
                          r.updated_at) for r in page]
    return items, (page[-1].id if more else None)


def get_contact(engine: Engine, contact_id: int) -> dict[str, Any]:
    with _reader(engine) as conn:
        row = conn.execute(select(C).where(C.c.id == contact_id)).first()
        if row is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        if row.merged_into is not None:
            raise MergedAwayError(f"contact {contact_id} was merged into {row.merged_into}",
                                  merged_into=row.merged_into)
        identities = _identities(conn, [contact_id]).get(contact_id, [])
        provenance = {
            r.field: Provenance(r.connection, r.event_id, r.observed_at, r.mapping_version)
            for r in conn.execute(select(P).where(P.c.contact_id == contact_id))
        }
        flags = conn.execute(select(F.c.id, F.c.kind, F.c.status, F.c.summary).where(
            (F.c.contact_id == contact_id) | (F.c.other_contact_id == contact_id))).all()
    view = contact_view(row.id, row.data or {}, identities, row.created_at, row.updated_at,
                        provenance)
    view["flags"] = [dict(f._mapping) for f in flags]
    return view


class MergedAwayError(NotFoundError):
    title = "Gone"

    def __init__(self, detail: str, *, merged_into: int) -> None:
        super().__init__(detail)
        self.merged_into = merged_into


def list_merges(engine: Engine, *, contact_id: int | None, after: int | None, limit: int
                ) -> tuple[list[dict[str, Any]], int | None]:
    stmt = select(M.c.id, M.c.winner_id, M.c.loser_id, M.c.actor, M.c.reason, M.c.created_at,
                  M.c.undone_at).order_by(M.c.id).limit(limit + 1)
    if contact_id:
        stmt = stmt.where((M.c.winner_id == contact_id) | (M.c.loser_id == contact_id))
    if after:
        stmt = stmt.where(M.c.id > after)
    with _reader(engine) as conn:
        rows = conn.execute(stmt).all()
    page, more = rows[:limit], len(rows) > limit
    items = [{"id": r.id, "winner_id": r.winner_id, "loser_id": r.loser_id, "actor": r.actor,
              "reason": r.reason, "created_at": r.created_at.isoformat(),
              "undone_at": r.undone_at.isoformat() if r.undone_at else None} for r in page]
    return items, (page[-1].id if more else None)


def _identities(conn: Any, ids: list[int]) -> dict[int, list[IdentityKey]]:
    found: dict[int, list[IdentityKey]] = {}
    if not ids:
        return found
    for r in conn.execute(select(I.c.contact_id, I.c.kind, I.c.scope, I.c.value).where(
            one_of(I.c.contact_id, ids))):
        found.setdefault(r.contact_id, []).append(
            IdentityKey(IdentityKind(r.kind), r.scope, r.value))
    return found


def event_view(row: Any, *, with_body: bool = False) -> dict[str, Any]:
    view = {
        "id": row.id,
        "connection": row.connection,
        "event_type": row.event_type,
        "delivery_key": row.delivery_key,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "result": row.result,
    }
    if with_body:
        view["headers"] = row.headers
        view["body"] = bytes(row.body).decode("utf-8", errors="replace")
    return view


def _events_select() -> Any:
    return select(E, CONN.c.name.label("connection")).join(CONN, CONN.c.id == E.c.connection_id)


def list_events(engine: Engine, *, status: str | None, connection: str | None,
                before: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first: an admin looks for what just happened."""
    stmt = _events_select().order_by(desc(E.c.id)).limit(limit + 1)
    if status:
        stmt = stmt.where(E.c.status == status)
    if connection:
        stmt = stmt.where(CONN.c.name == connection)
    if before:
        stmt = stmt.where(E.c.id < before)
    with _reader(engine) as conn:
        rows = conn.execute(stmt).all()
    page, more = rows[:limit], len(rows) > limit
    return [event_view(r) for r in page], (page[-1].id if more else None)


def get_event(engine: Engine, event_id: int, *, with_body: bool) -> dict[str, Any]:
    with _reader(engine) as conn:
        row = conn.execute(_events_select().where(E.c.id == event_id)).first()
    if row is None:
        raise NotFoundError(f"no event with id {event_id}")
    return event_view(row, with_body=with_body)


def list_flags(engine: Engine, *, kind: str | None, status: str | None, after: int | None,
               limit: int) -> tuple[list[dict[str, Any]], int | None]:
    stmt = select(F).order_by(F.c.id).limit(limit + 1)
    if kind:
        stmt = stmt.where(F.c.kind == kind)
    if status:
        stmt = stmt.where(F.c.status == status)
    if after:
        stmt = stmt.where(F.c.id > after)
    with _reader(engine) as conn:
        rows = conn.execute(stmt).all()
    page, more = rows[:limit], len(rows) > limit
    items = [{
        "id": r.id, "kind": r.kind, "status": r.status, "contact_id": r.contact_id,
        "other_contact_id": r.other_contact_id, "summary": r.summary, "details": r.details,
        "created_at": r.created_at.isoformat(),
    } for r in page]
    return items, (page[-1].id if more else None)
