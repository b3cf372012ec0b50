"""Sync runs, their streams and chunks, bookmarks and push state, in SQL.

Everything that says how far a sync got is written in the transaction that commits the records
it describes: a chunk is marked done, its counters added and (at the end of a stream) the
bookmark moved together with the contacts, so a kill at any instant leaves a consistent state.
Writes that must not race (a chunk done twice, a run finished twice) are conditional updates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select, text, update
from sqlalchemy.engine import Connection

from hub.adapters.db.dialect import one_of, upsert, upsert_many
from hub.adapters.db.models import (
    Contact,
    ContactIdentity,
    FieldProvenance,
    PushState,
    SyncBookmark,
    SyncChunk,
    SyncRun,
    SyncRunStream,
)
from hub.domain.sync import Boundary

R = cast(Table, SyncRun.__table__)
S = cast(Table, SyncRunStream.__table__)
K = cast(Table, SyncChunk.__table__)
B = cast(Table, SyncBookmark.__table__)
PS = cast(Table, PushState.__table__)
C = cast(Table, Contact.__table__)
I = cast(Table, ContactIdentity.__table__)  # noqa: E741
P = cast(Table, FieldProvenance.__table__)
RUNNING = "running"
FINAL = ("succeeded", "partial", "failed", "needs_attention", "cancelled")
PUSH_STREAM = "@push"  # the bookmark row holding a connection's push watermark


# --- runs ----------------------------------------------------------------------------------

def create_run(conn: Connection, connection: str, *, full: bool, trigger: str,
               now: datetime) -> int:
    return int(conn.execute(insert(R).values(
        connection=connection, status=RUNNING, phase="pull", full=full, trigger=trigger,
        epoch=1, started_at=now, errors=[]).returning(R.c.id)).scalar_one())


def get_run(conn: Connection, run_id: int) -> Any:
    return conn.execute(select(R).where(R.c.id == run_id)).first()


def running_run(conn: Connection, connection: str) -> Any:
    return conn.execute(select(R).where(R.c.connection == connection, R.c.status == RUNNING)
                        .order_by(R.c.id.desc()).limit(1)).first()


def running_runs(conn: Connection) -> list[Any]:
    return list(conn.execute(select(R).where(R.c.status == RUNNING).order_by(R.c.id)))


def bump_epoch(conn: Connection, run_id: int) -> int:
    conn.execute(update(R).where(R.c.id == run_id).values(epoch=R.c.epoch + 1))
    return int(conn.execute(select(R.c.epoch).where(R.c.id == run_id)).scalar_one())


def add_counts(conn: Connection, run_id: int, epoch: int | None = None, **deltas: int) -> bool:
    """Add to a running run's counters; False when the run is over (or fenced by `epoch`)."""
    values = {name: R.c[name] + delta for name, delta in deltas.items() if delta}
    if not values:
        values = {"epoch": R.c.epoch}
    where = [R.c.id == run_id, R.c.status == RUNNING]
    if epoch is not None:
        where.append(R.c.epoch == epoch)
    return bool(conn.execute(update(R).where(*where).values(**values)).rowcount)


def refresh_statistics(engine: Engine) -> None:
    """Have PostgreSQL measure the golden-record tables again. A first sync grows them from
    nothing to millions of rows in minutes; until they are analysed the planner takes them
    for tiny and scans them whole (autovacuum's analyze may be off, or come a minute late)."""
    if engine.dialect.name != "postgresql":
        return  # SQLite plans from its indexes without statistics
    with engine.begin() as conn:
        conn.execute(text("ANALYZE contacts, contact_identities, field_provenance, "
                          "sync_push_state"))


def set_phase(conn: Connection, run_id: int, phase: str) -> bool:
    return bool(conn.execute(update(R).where(R.c.id == run_id, R.c.status == RUNNING,
                                             R.c.phase != phase).values(phase=phase)).rowcount)


def add_error(conn: Connection, run_id: int, error: dict[str, Any]) -> None:
    query = select(R.c.errors).where(R.c.id == run_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    errors = list(conn.execute(query).scalar_one() or [])[-49:]
    conn.execute(update(R).where(R.c.id == run_id).values(errors=[*errors, error]))


def mark_push_complete(conn: Connection, run_id: int) -> None:
    conn.execute(update(R).where(R.c.id == run_id).values(push_complete=True))


def reset_push(conn: Connection, run_id: int) -> None:
    """A resumed push starts its slices again (what was sent is skipped by its hash)."""
    conn.execute(update(R).where(R.c.id == run_id).values(push_slices=1, push_slices_done=0,
                                                          push_complete=False))


def failed_streams(conn: Connection, run_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(S).where(
        S.c.run_id == run_id, S.c.status == "failed")).scalar_one())


def finish_run(conn: Connection, run_id: int, status: str, now: datetime) -> bool:
    """End a running run once; False when another job already did."""
    done = conn.execute(update(R).where(R.c.id == run_id, R.c.status == RUNNING)
                        .values(status=status, phase="done", ended_at=now))
    return bool(done.rowcount)


def list_runs(engine: Engine, *, connection: str | None, status: str | None,
              before: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    query = select(R).order_by(R.c.id.desc()).limit(limit + 1)
    if connection:
        query = query.where(R.c.connection == connection)
    if status:
        query = query.where(R.c.status == status)
    if before:
        query = query.where(R.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        page = rows[:limit]
        streams = _streams_of(conn, [r.id for r in page])
    items = [run_dict(r, streams.get(r.id, [])) for r in page]
    return items, (page[-1].id if len(rows) > limit else None)


def run_detail(engine: Engine, run_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = get_run(conn, run_id)
        if row is None:
            return None
        streams = _streams_of(conn, [run_id]).get(run_id, [])
    return run_dict(row, streams)


def _streams_of(conn: Connection, run_ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    if run_ids:
        for row in conn.execute(select(S).where(one_of(S.c.run_id, run_ids)).order_by(S.c.stream)):
            found.setdefault(row.run_id, []).append(row)
    return found


def run_dict(row: Any, streams: list[Any]) -> dict[str, Any]:
    return {
        "id": row.id, "connection": row.connection, "status": row.status, "phase": row.phase,
        "full": bool(row.full), "trigger": row.trigger, "resumes": row.epoch - 1,
        "started_at": row.started_at.isoformat(),
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "pull": {"records_read": row.records_read, "records_done": row.records_done,
                 "created": row.created, "updated": row.updated, "unchanged": row.unchanged,
                 "rejected": row.rejected, "healed": row.healed},
        "push": {"pushed": row.pushed, "unchanged": row.push_unchanged,
                 "rejected": row.push_rejected, "blocked": row.push_blocked,
                 "withdrawals": row.withdrawals, "slices": row.push_slices,
                 "slices_done": row.push_slices_done},
        "streams": [{"stream": s.stream, "status": s.status, "pages": s.pages,
                     "records": s.records, "chunks": s.chunks, "chunks_done": s.chunks_done,
                     "passes": s.passes, "expected": s.expected, "error": s.error,
                     "bookmark_from": s.start_value} for s in streams],
        "errors": list(row.errors or []),
        "summary": f"healed {row.healed} contacts that webhooks missed",
    }


# --- streams and chunks ------------------------------------------------------------------

def create_stream(conn: Connection, run_id: int, stream: str, start: Boundary,
                  next_params: dict[str, Any] | None) -> None:
    conn.execute(insert(S).values(run_id=run_id, stream=stream, status="reading",
                                  next_params=next_params, start_value=start.value,
                                  start_ids=sorted(start.ids), max_value=start.value,
                                  max_ids=sorted(start.ids), passes=1, pages=0, records=0,
                                  chunks=0, chunks_done=0))


def get_stream(conn: Connection, run_id: int, stream: str) -> Any:
    return conn.execute(select(S).where(S.c.run_id == run_id, S.c.stream == stream)).first()


def streams(conn: Connection, run_id: int) -> list[Any]:
    return list(conn.execute(select(S).where(S.c.run_id == run_id).order_by(S.c.stream)))


class FencedOffError(Exception):
    """The run ended, or was resumed under a new epoch: this job's work is not wanted."""


def record_chunk(conn: Connection, *, run_id: int, epoch: int, stream: str,
                 params: dict[str, Any], pages: int, records: int, fetched_at: datetime,
                 next_params: dict[str, Any] | None, seen: Boundary,
                 expected: int | None) -> int:
    """A chunk read and waiting to be committed, and the stream's next request. Raises
    FencedOffError (roll back) when this reader's epoch is over.

    Rows are locked in the order every sync transaction uses (chunk, stream, run, bookmark),
    so a reader and the workers committing its chunks cannot deadlock."""
    conn.execute(update(S).where(S.c.run_id == run_id, S.c.stream == stream).values(
        next_params=next_params, pages=S.c.pages + pages, records=S.c.records + records,
        chunks=S.c.chunks + 1, max_value=seen.value, max_ids=sorted(seen.ids),
        expected=expected if expected is not None else S.c.expected))
    if not add_counts(conn, run_id, epoch, records_read=records):
        raise FencedOffError(f"run {run_id} epoch {epoch}")
    row = get_stream(conn, run_id, stream)
    seq, start_value, start_ids = row.chunks - 1, row.start_value, row.start_ids or []
    return int(conn.execute(insert(K).values(
        run_id=run_id, stream=stream, seq=seq, params=params, start_value=start_value,
        start_ids=start_ids, pages=pages, records=records, fetched_at=fetched_at,
        status="pending", attempts=0).returning(K.c.id)).scalar_one())


def end_stream(conn: Connection, run_id: int, stream: str, status: str,
               error: str | None = None) -> None:
    conn.execute(update(S).where(S.c.run_id == run_id, S.c.stream == stream)
                 .values(status=status, next_params=None, error=error))


def restart_stream(conn: Connection, run_id: int, stream: str, start: Boundary,
                   next_params: dict[str, Any]) -> None:
    """Another pass from where the last one ended (a vendor that caps one query's results)."""
    conn.execute(update(S).where(S.c.run_id == run_id, S.c.stream == stream).values(
        status="reading", next_params=next_params, start_value=start.value,
        start_ids=sorted(start.ids), passes=S.c.passes + 1))


def get_chunk(conn: Connection, chunk_id: int) -> Any:
    return conn.execute(select(K).where(K.c.id == chunk_id)).first()


def pending_chunks(conn: Connection, run_id: int) -> list[Any]:
    return list(conn.execute(select(K.c.id, K.c.stream, K.c.seq).where(
        K.c.run_id == run_id, K.c.status == "pending").order_by(K.c.id)))


def waiting_chunks(conn: Connection, run_id: int, stream: str) -> int:
    return int(conn.execute(select(func.count()).select_from(K).where(
        K.c.run_id == run_id, K.c.stream == stream, K.c.status == "pending")).scalar_one())


def complete_chunk(conn: Connection, chunk_id: int, run_id: int, stream: str,
                   status: str = "done", error: str | None = None) -> bool:
    """Mark a pending chunk finished, once: False if another job already did."""
    done = conn.execute(update(K).where(K.c.id == chunk_id, K.c.status == "pending")
                        .values(status=status, error=error))
    if not done.rowcount:
        return False
    conn.execute(update(S).where(S.c.run_id == run_id, S.c.stream == stream)
                 .values(chunks_done=S.c.chunks_done + 1))
    return True


def chunk_attempt(engine: Engine, chunk_id: int, error: str) -> int:
    with engine.begin() as conn:
        conn.execute(update(K).where(K.c.id == chunk_id, K.c.status == "pending")
                     .values(attempts=K.c.attempts + 1, error=error[:2000]))
        return int(conn.execute(select(K.c.attempts).where(K.c.id == chunk_id)).scalar_one())


def failed_chunks(conn: Connection, run_id: int, stream: str) -> int:
    return int(conn.execute(select(func.count()).select_from(K).where(
        K.c.run_id == run_id, K.c.stream == stream, K.c.status == "failed")).scalar_one())


# --- bookmarks -----------------------------------------------------------------------------

def get_bookmark(conn: Connection, connection: str, stream: str) -> Boundary:
    row = conn.execute(select(B.c.value, B.c.ids).where(B.c.connection == connection,
                                                        B.c.stream == stream)).first()
    if row is None:
        return Boundary()
    return Boundary(row.value, frozenset(str(i) for i in row.ids or []))


def set_bookmark(conn: Connection, connection: str, stream: str, boundary: Boundary,
                 run_id: int | None, now: datetime) -> None:
    values = {"value": boundary.value, "ids": sorted(boundary.ids), "run_id": run_id,
              "updated_at": now}
    stmt = upsert(conn, B).values(connection=connection, stream=stream, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["connection", "stream"],
                                            set_=values))


def bookmarks(engine: Engine, connection: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(B).where(B.c.connection == connection)).all()
    return {r.stream: {"value": r.value, "ids": len(r.ids or []), "run_id": r.run_id,
                       "updated_at": r.updated_at.isoformat()} for r in rows}


# --- push ----------------------------------------------------------------------------------

def last_contact_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(C.c.id))).scalar() or 0)


def candidate_ids(conn: Connection, connection: str, *, since: datetime | None,
                  after: int, upto: int, linked_only: bool) -> list[int]:
    """Contacts with after < id <= upto changed since `since` (all when None). A bounded id
    range keeps every slice's query an index range scan, however many contacts there are.
    Which of them the tool holds is a second lookup by contact id: as one query (EXISTS),
    PostgreSQL hashed every identity of the connection for each slice."""
    query = select(C.c.id).where(C.c.id > after, C.c.id <= upto, C.c.merged_into.is_(None))
    if "erased_at" in C.c:
        query = query.where(C.c.erased_at.is_(None))
    if since is not None:
        query = query.where(C.c.updated_at >= since)
    ids = [int(i) for i in conn.execute(query.order_by(C.c.id)).scalars().all()]
    if not linked_only or not ids:
        return ids
    linked = set(conn.execute(select(I.c.contact_id).where(
        one_of(I.c.contact_id, ids), I.c.kind == "external", I.c.scope == connection))
        .scalars().all())
    return [i for i in ids if i in linked]


def dead_letters(conn: Connection, connection: str, limit: int) -> list[int]:
    return [int(i) for i in conn.execute(select(PS.c.contact_id).where(
        PS.c.connection == connection, PS.c.status == "rejected")
        .order_by(PS.c.contact_id).limit(limit)).scalars()]


def load_contacts(conn: Connection, ids: list[int]) -> list[Any]:
    columns = [C.c.id, C.c.data, C.c.created_at, C.c.updated_at, C.c.merged_into]
    if "erased_at" in C.c:
        columns.append(C.c.erased_at)
    return conn.execute(select(*columns).where(one_of(C.c.id, ids)).order_by(C.c.id)).all()


def identities_of(conn: Connection, ids: list[int]) -> dict[int, list[tuple[str, str, str]]]:
    found: dict[int, list[tuple[str, str, str]]] = {}
    for row in conn.execute(select(I.c.contact_id, I.c.kind, I.c.scope, I.c.value)
                            .where(one_of(I.c.contact_id, ids))).all():
        found.setdefault(row.contact_id, []).append((row.kind, row.scope, row.value))
    return found


def sources_of(conn: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    """Per contact, which connection each field's current value came from."""
    found: dict[int, dict[str, str]] = {}
    for row in conn.execute(select(P.c.contact_id, P.c.field, P.c.connection)
                            .where(one_of(P.c.contact_id, ids))).all():
        found.setdefault(row.contact_id, {})[row.field] = row.connection
    return found


def push_states(conn: Connection, connection: str, ids: list[int]) -> dict[int, Any]:
    rows = conn.execute(select(PS).where(PS.c.connection == connection,
                                         one_of(PS.c.contact_id, ids))).all()
    return {r.contact_id: r for r in rows}


def save_push_states(conn: Connection, connection: str, rows: list[dict[str, Any]]) -> None:
    """Upsert per contact: status, payload hash, consent sent, reason, attempts."""
    upsert_many(conn, PS, [{"connection": connection, **row} for row in rows],
                key=["connection", "contact_id"],
                update=["status", "payload_hash", "consent", "reason", "attempts", "pushed_at",
                        "updated_at"])


def link_external(conn: Connection, connection: str, links: dict[int, str],
                  now: datetime) -> None:
    """The ids a tool gave contacts it created: the next pull finds them by these."""
    rows = [{"contact_id": cid, "kind": "external", "scope": connection, "value": value,
             "created_at": now} for cid, value in links.items() if value]
    upsert_many(conn, I, rows, key=["kind", "scope", "value"])


def push_summary(engine: Engine, connection: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(PS.c.status, func.count()).where(
            PS.c.connection == connection).group_by(PS.c.status)).all()
    return {status: count for status, count in rows}


def dead_letter_list(engine: Engine, connection: str, limit: int = 50) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(PS).where(PS.c.connection == connection,
                                             PS.c.status.in_(("rejected", "blocked")))
                            .order_by(PS.c.updated_at.desc()).limit(limit)).all()
    return [{"contact_id": r.contact_id, "status": r.status, "reason": r.reason,
             "attempts": r.attempts, "updated_at": r.updated_at.isoformat()} for r in rows]
