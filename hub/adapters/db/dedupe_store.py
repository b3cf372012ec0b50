"""Storage for the duplicate scan: contacts streamed in pages, duplicate flags, the checkpoint.

Live contacts (not merged into another) are read by keyset pages (id > last id, ORDER BY id,
LIMIT n) with their identities in one more query per page, so neither backend holds a cursor
open across the whole scan and the scan never needs more than one page of full rows at a time.

The checkpoint is a small JSON file under the hub's var directory, not a table (decision 0016):
a scan is one command run on one machine, and a file needs no schema change.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select

from hub.adapters.db.dialect import one_of, upsert
from hub.adapters.db.models import Contact, ContactIdentity, Flag, utcnow
from hub.domain.flags import FlagKind, NewFlag

C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
F = cast(Table, Flag.__table__)

ContactRow = tuple[int, dict[str, Any], list[tuple[str, str, str]]]


class SqlDedupeStore:
    """The scan's view of the database (ports in hub.services.dedupe_scan)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _reader(self) -> Any:
        return self.engine.connect().execution_options(hub_readonly=True)

    def snapshot(self) -> tuple[int, int]:
        """(highest contact id, number of live contacts) now: the scan covers these."""
        with self._reader() as conn:
            row = conn.execute(select(func.max(C.c.id), func.count())
                               .where(C.c.merged_into.is_(None))).one()
        return int(row[0] or 0), int(row[1])

    def pages(self, upto: int, page_size: int) -> Iterator[list[ContactRow]]:
        after = 0
        while True:
            with self._reader() as conn:
                rows = conn.execute(
                    select(C.c.id, C.c.data)
                    .where(C.c.id > after, C.c.id <= upto, C.c.merged_into.is_(None))
                    .order_by(C.c.id).limit(page_size)
                ).all()
                if not rows:
                    return
                identities: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
                for r in conn.execute(
                    select(I.c.contact_id, I.c.kind, I.c.scope, I.c.value)
                    .where(I.c.contact_id > after, I.c.contact_id <= rows[-1].id)
                ):
                    identities[r.contact_id].append((r.kind, r.scope, r.value))
            yield [(r.id, r.data or {}, identities.get(r.id, [])) for r in rows]
            after = rows[-1].id

    def dismissed_pairs(self) -> set[tuple[int, int]]:
        """Pairs an admin marked "not a duplicate" (a dismissed duplicate flag, any topic)."""
        with self._reader() as conn:
            rows = conn.execute(
                select(F.c.contact_id, F.c.other_contact_id).where(
                    F.c.kind == FlagKind.DUPLICATE.value, F.c.status == "dismissed",
                    F.c.other_contact_id.is_not(None))
            ).all()
        return {(min(a, b), max(a, b)) for a, b in rows}

    def write_flags(self, flags: list[NewFlag]) -> int:
        """Insert the flags not raised before (by dedupe_key); return how many are new."""
        if not flags:
            return 0
        rows = {}
        for flag in flags:
            key = flag.dedupe_key(flag.contact_id, flag.other_contact_id)
            rows[key] = {"kind": flag.kind.value, "status": "open", "dedupe_key": key,
                         "contact_id": flag.contact_id,
                         "other_contact_id": flag.other_contact_id, "summary": flag.summary,
                         "details": flag.details, "created_at": utcnow()}
        with self.engine.begin() as conn:
            existing = set()
            keys = sorted(rows)
            for start in range(0, len(keys), 500):
                existing |= set(conn.execute(
                    select(F.c.dedupe_key).where(one_of(F.c.dedupe_key, keys[start:start + 500]))
                ).scalars())
            new = [rows[k] for k in keys if k not in existing]
            if new:
                conn.execute(upsert(conn, F).on_conflict_do_nothing(
                    index_elements=["dedupe_key"]), new)
        return len(new)

    def duplicate_flags(self) -> list[dict[str, Any]]:
        """Every duplicate flag the scan raised (topic-free pair key), for reports and tests."""
        with self._reader() as conn:
            rows = conn.execute(
                select(F.c.id, F.c.contact_id, F.c.other_contact_id, F.c.status, F.c.summary,
                       F.c.details)
                .where(F.c.kind == FlagKind.DUPLICATE.value, F.c.dedupe_key.like("%:"))
                .order_by(F.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


def insert_contacts(engine: Engine, contacts: list[dict[str, Any]],
                    identities: list[dict[str, Any]]) -> None:
    """Bulk-load contacts for benchmarks (rows as the contacts / contact_identities tables
    take them; ids given by the caller)."""
    now = utcnow()
    with engine.begin() as conn:
        for start in range(0, len(contacts), 5000):
            conn.execute(insert(C), [dict(c, created_at=now, updated_at=now)
                                     for c in contacts[start:start + 5000]])
        for start in range(0, len(identities), 5000):
            conn.execute(insert(I), [dict(i, created_at=now)
                                     for i in identities[start:start + 5000]])


class FileCheckpoint:
    """The scan's progress in one JSON file, replaced atomically after each committed chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
