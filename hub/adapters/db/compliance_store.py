"""Erasure, tombstones, consent history and exports, in SQL.

Tombstones are HMAC-SHA256 of an identifier under a salt the hub generates once and keeps in
the database (hub_state), so every process computes the same hash and nobody can test an email
against the tombstones without the database itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from hub.adapters.db.dialect import one_of, upsert
from hub.adapters.db.models import (
    AuditEntry,
    ConsentEvent,
    Contact,
    ContactIdentity,
    ContactMerge,
    Erasure,
    FieldProvenance,
    Flag,
    HubState,
    InboxEvent,
    Tombstone,
)
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey

C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
P = cast(Table, FieldProvenance.__table__)
H = cast(Table, ConsentEvent.__table__)
F = cast(Table, Flag.__table__)
M = cast(Table, ContactMerge.__table__)
E = cast(Table, InboxEvent.__table__)
X = cast(Table, Erasure.__table__)
T = cast(Table, Tombstone.__table__)
S = cast(Table, HubState.__table__)
A = cast(Table, AuditEntry.__table__)
SALT_KEY = "tombstone_salt"
_salt_cache: dict[str, bytes] = {}


def salt(engine: Engine) -> bytes:
    """The hub's tombstone salt, created on first use (one value for every process)."""
    url = str(engine.url)
    if url in _salt_cache:
        return _salt_cache[url]
    with engine.begin() as conn:
        row = conn.execute(select(S.c.value).where(S.c.key == SALT_KEY)).first()
        if row is None:  # two processes may race here; the first value wins for both
            conn.execute(upsert(conn, S).values(key=SALT_KEY, value=secrets.token_hex(32))
                         .on_conflict_do_nothing(index_elements=["key"]))
            row = conn.execute(select(S.c.value).where(S.c.key == SALT_KEY)).one()
    _salt_cache[url] = bytes.fromhex(row.value)
    return _salt_cache[url]


def tombstone_hash(key: IdentityKey, salt_bytes: bytes) -> str:
    message = f"{key.kind.value}|{key.scope}|{key.value}".encode()
    return hmac.new(salt_bytes, message, hashlib.sha256).hexdigest()


def any_tombstone(conn: Connection) -> bool:
    return conn.execute(select(T.c.hash).limit(1)).first() is not None


def tombstoned(conn: Connection, hashes: set[str]) -> set[str]:
    if not hashes:
        return set()
    return set(conn.execute(select(T.c.hash).where(one_of(T.c.hash, sorted(hashes)))).scalars())


def record_consent_history(conn: Connection, records: list[GoldenRecord], ids: dict[int, int],
                           now: datetime) -> None:
    """One row per channel whose consent a batch changed (the proof trail)."""
    rows = []
    for record in records:
        channels = {str(f).split(".")[1] for f in record.changed_fields
                    if str(f).startswith("consent.")}
        for channel in sorted(channels):
            prefix = f"consent.{channel}"
            origin = record.provenance.get(f"{prefix}.status")
            rows.append({
                "contact_id": ids.get(record.id, record.id), "channel": channel,
                "status": record.values.get(f"{prefix}.status"),
                "lawful_basis": record.values.get(f"{prefix}.lawful_basis"),
                "double_opt_in": record.values.get(f"{prefix}.double_opt_in"),
                "consent_at": record.values.get(f"{prefix}.at"),
                "connection": origin.connection if origin else "unknown",
                "event_id": origin.event_id if origin else None, "recorded_at": now,
            })
    if rows:
        conn.execute(insert(H), rows)


def events_of(conn: Connection, contact_id: int) -> list[Any]:
    """Inbox events whose processing touched this contact."""
    rows = conn.execute(select(E.c.id, E.c.result).where(E.c.result.is_not(None)))
    return [r.id for r in rows if contact_id in (r.result or {}).get("contacts", [])]


def erase_in_hub(conn: Connection, golden: GoldenRecord, erasure_id: int, salt_bytes: bytes,
                 now: datetime) -> dict[str, int]:
    """Remove the person from every table; keep a tombstone per identifier. Returns counts."""
    contact_id = golden.id
    hashes = sorted({tombstone_hash(k, salt_bytes) for k in golden.identities})
    existing = tombstoned(conn, set(hashes))
    fresh = [{"hash": h, "erasure_id": erasure_id, "created_at": now}
             for h in hashes if h not in existing]
    if fresh:
        conn.execute(insert(T), fresh)
    events = events_of(conn, contact_id)
    if events:
        conn.execute(update(E).where(one_of(E.c.id, events)).values(
            body=b"", headers={}, result={"erased": True, "erasure_id": erasure_id}))
    counts = {
        "identities": conn.execute(delete(I).where(I.c.contact_id == contact_id)).rowcount,
        "field_values": conn.execute(delete(P).where(P.c.contact_id == contact_id)).rowcount,
        "consent_history": conn.execute(delete(H).where(H.c.contact_id == contact_id)).rowcount,
        "inbox_payloads": len(events),
        "tombstones": len(hashes),
    }
    counts["flags"] = conn.execute(update(F).where(
        or_(F.c.contact_id == contact_id, F.c.other_contact_id == contact_id)).values(
        summary="(erased)", details={}, status="resolved", resolved_at=now)).rowcount
    counts["merge_snapshots"] = conn.execute(update(M).where(
        or_(M.c.winner_id == contact_id, M.c.loser_id == contact_id)).values(
        snapshot={}, undone_at=now)).rowcount
    conn.execute(update(C).where(C.c.id == contact_id).values(
        data={}, email=None, search_text="", erased_at=now, updated_at=now))
    return counts


def inactive_since(conn: Connection, cutoff: datetime) -> list[int]:
    return list(conn.execute(select(C.c.id).where(
        C.c.updated_at < cutoff, C.c.erased_at.is_(None), C.c.merged_into.is_(None))
        .order_by(C.c.id)).scalars())


def new_erasure(conn: Connection, contact_id: int, actor: str, reason: str, now: datetime
                ) -> int:
    erasure_id: int = conn.execute(insert(X).values(
        contact_id=contact_id, requested_by=actor, reason=reason, status="pending",
        receipt={}, pending=[], attempts=0, requested_at=now).returning(X.c.id)).scalar_one()
    return erasure_id


def update_erasure(conn: Connection, erasure_id: int, **values: Any) -> None:
    conn.execute(update(X).where(X.c.id == erasure_id).values(**values))


def erasure(conn: Connection, erasure_id: int) -> Any:
    return conn.execute(select(X).where(X.c.id == erasure_id)).first()


def due_erasures(conn: Connection, now: datetime) -> list[int]:
    return list(conn.execute(select(X.c.id).where(
        X.c.status == "pending", or_(X.c.next_attempt_at.is_(None),
                                     X.c.next_attempt_at <= now))).scalars())


def export_rows(conn: Connection, contact_id: int) -> dict[str, Any]:
    history = [
        {"channel": r.channel, "status": r.status, "lawful_basis": r.lawful_basis,
         "double_opt_in": r.double_opt_in, "consent_at": r.consent_at,
         "connection": r.connection, "event_id": r.event_id,
         "recorded_at": r.recorded_at.isoformat()}
        for r in conn.execute(select(H).where(H.c.contact_id == contact_id).order_by(H.c.id))]
    audit = [
        {"at": r.at.isoformat(), "actor": r.actor, "action": r.action, "details": r.details}
        for r in conn.execute(select(A).where(A.c.entity_type == "contact",
                                              A.c.entity_id == str(contact_id))
                              .order_by(A.c.id))]
    merges = [
        {"id": r.id, "winner_id": r.winner_id, "loser_id": r.loser_id, "actor": r.actor,
         "created_at": r.created_at.isoformat(),
         "undone_at": r.undone_at.isoformat() if r.undone_at else None}
        for r in conn.execute(select(M).where(or_(M.c.winner_id == contact_id,
                                                  M.c.loser_id == contact_id)))]
    event_ids = events_of(conn, contact_id)
    events = [
        {"id": r.id, "event_type": r.event_type, "received_at": r.received_at.isoformat(),
         "body": bytes(r.body).decode("utf-8", errors="replace")}
        for r in conn.execute(select(E).where(one_of(E.c.id, event_ids)).order_by(E.c.id))
    ] if event_ids else []
    return {"consent_history": history, "audit": audit, "merges": merges,
            "source_deliveries": events}
