"""Golden records in SQL: read the contacts a batch touches, write back only what changed.

All of it runs inside the caller's transaction. On PostgreSQL the batch first takes an
advisory lock on every identity it will look up, in one sorted statement, so two workers that
see the same new person serialise on it instead of both creating a contact (sorted order means
they cannot deadlock). SQLite needs nothing more: its writers are serialised by BEGIN IMMEDIATE.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.engine import Connection

from hub.adapters.db.dialect import insert_many, one_of, upsert, upsert_many
from hub.adapters.db.models import Contact, ContactIdentity, FieldProvenance, Flag
from hub.domain.contact import Provenance
from hub.domain.flags import NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind

C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
P = cast(Table, FieldProvenance.__table__)
F = cast(Table, Flag.__table__)


def _lock_id(key: IdentityKey) -> int:
    digest = hashlib.blake2b(f"{key.kind.value}|{key.scope}|{key.value}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def lock_identities(conn: Connection, keys: set[IdentityKey]) -> None:
    if conn.dialect.name != "postgresql" or not keys:
        return
    ids = sorted({_lock_id(k) for k in keys})
    conn.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k ORDER BY k"),
        {"ids": ids},
    ).all()


def find_owners(conn: Connection, keys: set[IdentityKey]) -> dict[IdentityKey, int]:
    if not keys:
        return {}
    rows = conn.execute(
        select(I.c.kind, I.c.scope, I.c.value, I.c.contact_id).where(
            one_of(I.c.value, sorted({k.value for k in keys}))
        )
    ).all()
    found = {IdentityKey(IdentityKind(r.kind), r.scope, r.value): r.contact_id for r in rows}
    return {k: v for k, v in found.items() if k in keys}


def load_many(conn: Connection, contact_ids: set[int]) -> dict[int, GoldenRecord]:
    """The golden records with these ids, in three queries whatever their number."""
    if not contact_ids:
        return {}
    ids = sorted(contact_ids)
    records = {
        r.id: GoldenRecord(id=r.id, values=dict(r.data or {}))
        for r in conn.execute(select(C.c.id, C.c.data).where(one_of(C.c.id, ids))).all()
    }
    for r in conn.execute(select(P).where(one_of(P.c.contact_id, ids))).all():
        records[r.contact_id].provenance[r.field] = Provenance(
            r.connection, r.event_id, r.observed_at, r.mapping_version
        )
    for r in conn.execute(select(I.c.contact_id, I.c.kind, I.c.scope, I.c.value).where(
            one_of(I.c.contact_id, ids))).all():
        records[r.contact_id].identities.add(IdentityKey(IdentityKind(r.kind), r.scope, r.value))
    return records


def save(conn: Connection, records: list[GoldenRecord], flags: list[NewFlag], now: datetime
         ) -> dict[int, int]:
    """Write the dirty records; return batch-local ids -> stored ids."""
    ids = _insert_new(conn, [r for r in records if r.is_new], now)
    changed = [r for r in records if r.is_dirty]
    _update_contacts(conn, [r for r in changed if not r.is_new], now)
    _insert_identities(conn, changed, ids, now)
    _upsert_provenance(conn, changed, ids)
    _insert_flags(conn, flags, ids, now)
    return ids


def _contact_row(record: GoldenRecord) -> dict[str, Any]:
    return {
        "email": record.values.get("email"),
        "data": record.values,
        "search_text": record.search_text(),
    }


def _insert_new(conn: Connection, records: list[GoldenRecord], now: datetime) -> dict[int, int]:
    """One statement for the batch: SQLAlchemy's insertmanyvalues with
    sort_by_parameter_order pairs each RETURNING id with its row on every dialect."""
    if not records:
        return {}
    rows = [{**_contact_row(r), "created_at": now, "updated_at": now} for r in records]
    stored = conn.execute(insert(C).returning(C.c.id, sort_by_parameter_order=True), rows)
    return {record.id: new_id for record, new_id in zip(records, stored.scalars(), strict=True)}


def _update_contacts(conn: Connection, records: list[GoldenRecord], now: datetime) -> None:
    if not records:
        return
    conn.execute(
        update(C).where(C.c.id == bindparam("b_id")).values(
            email=bindparam("b_email"), data=bindparam("b_data"),
            search_text=bindparam("b_search"), updated_at=now,
        ),
        [{"b_id": r.id, "b_email": r.values.get("email"), "b_data": r.values,
          "b_search": r.search_text()} for r in records],
    )


def _insert_identities(conn: Connection, records: list[GoldenRecord], ids: dict[int, int],
                       now: datetime) -> None:
    rows = [
        {"contact_id": ids.get(r.id, r.id), "kind": k.kind.value, "scope": k.scope,
         "value": k.value, "created_at": now}
        for r in records for k in r.new_identities
    ]
    insert_many(conn, I, rows)


def _upsert_provenance(conn: Connection, records: list[GoldenRecord], ids: dict[int, int]) -> None:
    rows = []
    for record in records:
        contact_id = ids.get(record.id, record.id)
        for name in sorted(record.changed_fields):
            p = record.provenance[name]
            rows.append({"contact_id": contact_id, "field": name, "connection": p.connection,
                         "event_id": p.event_id, "observed_at": p.observed_at,
                         "mapping_version": p.mapping_version})
    upsert_many(conn, P, rows, key=["contact_id", "field"],
                update=["connection", "event_id", "observed_at", "mapping_version"])


def insert_flags(conn: Connection, flags: list[NewFlag], ids: dict[int, int], now: datetime
                 ) -> None:
    _insert_flags(conn, flags, ids, now)


def _insert_flags(conn: Connection, flags: list[NewFlag], ids: dict[int, int], now: datetime
                  ) -> None:
    rows = []
    for flag in flags:
        contact_id = ids.get(flag.contact_id, flag.contact_id) if flag.contact_id else None
        other = ids.get(flag.other_contact_id, flag.other_contact_id) if flag.other_contact_id \
            else None
        rows.append({"kind": flag.kind.value, "status": "open", "contact_id": contact_id,
                     "other_contact_id": other, "summary": flag.summary,
                     "details": flag.details, "created_at": now,
                     "dedupe_key": flag.dedupe_key(contact_id, other)})
    if rows:
        conn.execute(upsert(conn, F).on_conflict_do_nothing(index_elements=["dedupe_key"]), rows)
