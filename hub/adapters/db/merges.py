"""Merges and their undo, manual edits, flag decisions and survivorship rules, in SQL.

A merge stores both golden records exactly as they were (values, provenance, identities), so
an undo can put every external-id link back where it was; identities move between contacts by
UPDATE, never by delete and insert, so the unique constraint guards them throughout.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from hub.adapters.db.contacts import load_many, lock_identities
from hub.adapters.db.dialect import one_of
from hub.adapters.db.models import (
    Contact,
    ContactIdentity,
    ContactMerge,
    FieldProvenance,
    Flag,
    InboxEvent,
    SurvivorshipRule,
)
from hub.domain.contact import Provenance
from hub.domain.errors import ConflictError, NotFoundError
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind
from hub.domain.merge import FieldPolicy, Policy, Strategy

C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
M = cast(Table, ContactMerge.__table__)
P = cast(Table, FieldProvenance.__table__)
F = cast(Table, Flag.__table__)
E = cast(Table, InboxEvent.__table__)
R = cast(Table, SurvivorshipRule.__table__)


def live_contacts(conn: Connection, ids: list[int]) -> dict[int, GoldenRecord]:
    """The golden records, locked for this transaction; merged-away ids are refused."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(C.c.id).where(one_of(C.c.id, ids)).with_for_update()).all()
    rows = {r.id: r.merged_into for r in conn.execute(select(C.c.id, C.c.merged_into)
                                                      .where(one_of(C.c.id, ids)))}
    for contact_id in ids:
        if contact_id not in rows:
            raise NotFoundError(f"no contact with id {contact_id}")
        if rows[contact_id] is not None:
            raise ConflictError(f"contact {contact_id} was merged into {rows[contact_id]}")
    records = load_many(conn, set(ids))
    lock_identities(conn, {k for r in records.values() for k in r.identities})
    return records


def snapshot(record: GoldenRecord) -> dict[str, Any]:
    return {
        "values": record.values,
        "provenance": {f: [p.connection, p.event_id, p.observed_at.isoformat(),
                           p.mapping_version] for f, p in record.provenance.items()},
        "identities": [[k.kind.value, k.scope, k.value] for k in sorted(record.identities)],
    }


def restore(conn: Connection, contact_id: int, state: dict[str, Any], now: datetime) -> None:
    """Put values and provenance back exactly as in `state`."""
    values = state["values"]
    conn.execute(update(C).where(C.c.id == contact_id).values(
        data=values, email=values.get("email"), merged_into=None, updated_at=now))
    conn.execute(delete(P).where(P.c.contact_id == contact_id))
    rows = [{"contact_id": contact_id, "field": f, "connection": c, "event_id": e,
             "observed_at": datetime.fromisoformat(at), "mapping_version": v}
            for f, (c, e, at, v) in state["provenance"].items()]
    if rows:
        conn.execute(insert(P), rows)


def move_identities(conn: Connection, source: int, target: int,
                    only: list[IdentityKey] | None = None) -> None:
    stmt = update(I).where(I.c.contact_id == source)
    if only is not None:
        if not only:
            return
        stmt = stmt.where(or_(*[(I.c.kind == k.kind.value) & (I.c.scope == k.scope) &
                                (I.c.value == k.value) for k in only]))
    conn.execute(stmt.values(contact_id=target))


def identities_of(state: dict[str, Any]) -> list[IdentityKey]:
    return [IdentityKey(IdentityKind(k), s, v) for k, s, v in state["identities"]]


def record_merge(conn: Connection, winner: int, loser: int, state: dict[str, Any],
                 actor: str, reason: str, now: datetime) -> int:
    conn.execute(update(C).where(C.c.id == loser).values(merged_into=winner, updated_at=now))
    conn.execute(update(F).where(
        F.c.kind == "duplicate", F.c.status == "open",
        or_((F.c.contact_id == winner) & (F.c.other_contact_id == loser),
            (F.c.contact_id == loser) & (F.c.other_contact_id == winner)),
    ).values(status="resolved", resolved_at=now))
    merge_id: int = conn.execute(insert(M).values(
        winner_id=winner, loser_id=loser, snapshot=state, actor=actor, reason=reason,
        created_at=now).returning(M.c.id)).scalar_one()
    return merge_id


def merge_row(conn: Connection, merge_id: int) -> Any:
    row = conn.execute(select(M).where(M.c.id == merge_id)).first()
    if row is None:
        raise NotFoundError(f"no merge with id {merge_id}")
    if row.undone_at is not None:
        raise ConflictError(f"merge {merge_id} was already undone")
    return row


def events_since(conn: Connection, contact_ids: set[int], since: datetime) -> list[int]:
    """Processed events that touched these contacts after `since` (to replay after an undo)."""
    rows = conn.execute(select(E.c.id, E.c.result).where(
        E.c.status == "processed", E.c.processed_at >= since - timedelta(seconds=1)))
    return [r.id for r in rows if set((r.result or {}).get("contacts", [])) & contact_ids]


def set_flag_status(conn: Connection, flag_id: int, status: str, now: datetime,
                    note: str | None = None) -> Any:
    row = conn.execute(select(F).where(F.c.id == flag_id)).first()
    if row is None:
        raise NotFoundError(f"no flag with id {flag_id}")
    details = dict(row.details or {})
    if note:
        details["decision"] = note
    conn.execute(update(F).where(F.c.id == flag_id).values(
        status=status, resolved_at=now, details=details))
    return row


def load_policy(conn: Connection) -> Policy:
    rules = {}
    for r in conn.execute(select(R)):
        window = timedelta(seconds=r.conflict_window_seconds) \
            if r.conflict_window_seconds is not None else None
        rules[r.field] = FieldPolicy(Strategy(r.strategy), tuple(r.sources or ()), window)
    return Policy(rules)


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    return [{"field": r.field, "strategy": r.strategy, "sources": r.sources,
             "conflict_window_seconds": r.conflict_window_seconds,
             "updated_by": r.updated_by, "updated_at": r.updated_at.isoformat()}
            for r in conn.execute(select(R).order_by(R.c.field))]


def put_rule(conn: Connection, field: str, rule: FieldPolicy, actor: str, now: datetime
             ) -> None:
    conn.execute(delete(R).where(R.c.field == field))
    window = int(rule.conflict_window.total_seconds()) if rule.conflict_window else None
    conn.execute(insert(R).values(field=field, strategy=rule.strategy.value,
                                  sources=list(rule.sources), conflict_window_seconds=window,
                                  updated_by=actor, updated_at=now))


def provenance_of(state: dict[str, Any]) -> dict[str, Provenance]:
    return {f: Provenance(c, e, datetime.fromisoformat(at), v)
            for f, (c, e, at, v) in state["provenance"].items()}


