"""Committing what the readers read: one chunk at a time, through the webhook path, once.

A chunk is committed by `process_inbox._store`, the very function that stores webhook
deliveries, with the chunk's own bookkeeping added to that transaction: the chunk is done once,
the run's counters grow, and the last chunk of a stream read to its end moves the bookmark.
Then the run moves on to its push when nothing is left to read or commit.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from connectors.base import meta
from connectors.streams import Page, Stream
from hub.adapters.db import sync_store as store
from hub.adapters.db.inbox import ClaimedEvent
from hub.domain.contact import CanonicalRecord
from hub.domain.errors import AuthenticationError, HubError
from hub.domain.paths import parse_path, resolve
from hub.domain.sync import (
    Boundary,
    Change,
    already_read,
    change_of,
    observed_time,
    withheld_contacts,
)
from hub.services.process_inbox import Prepared, Stored, _store
from hub.services.sync_common import (
    SyncDeps,
    Target,
    base_params,
    describe,
    hold,
    needs_attention,
    now,
    record_error,
    stream_named,
    target,
    vendor_client,
)

log = logging.getLogger(__name__)


class _Finished(Exception):
    """The chunk was already committed, or its run is over: roll this transaction back."""


# --- committing ----------------------------------------------------------------------------

def process_chunk(deps: SyncDeps, run_id: int, chunk_id: int,
                  records: list[dict[str, Any]] | None = None) -> str:
    """Commit one chunk through the webhook path, once, whichever worker gets it."""
    with deps.engine.connect() as conn:
        chunk = store.get_chunk(conn, chunk_id)
        run = store.get_run(conn, run_id)
    if chunk is None or chunk.status != "pending" or run is None or \
            run.status != store.RUNNING:
        deps.stash.drop(chunk_id)
        return "nothing to do"
    target_ = target(deps.engine, run.connection)
    stream = stream_named(target_, chunk.stream)
    try:
        if records is None:
            records = deps.stash.take(chunk_id)
        if records is None:
            records = _read_again(deps, target_, stream, chunk)
        withheld = _commit_chunk(deps, run, target_, stream, chunk, records)
        _measure_tables_as_they_grow(deps, run_id, len(records))
    except _Finished:
        return "already done"
    except AuthenticationError as exc:
        needs_attention(deps, run_id, run.connection, exc)
        return "needs attention"
    except Exception as exc:  # noqa: BLE001 - retried, then the chunk's records are rejected
        attempts = store.chunk_attempt(deps.engine, chunk_id, describe(exc))
        if attempts < deps.settings.chunk_attempts:
            log.warning("sync chunk %s failed (attempt %d): %s", chunk_id, attempts,
                        type(exc).__name__)
            deps.jobs.chunk(run_id, chunk_id)
            return "retry"
        record_error(deps, run_id, f"chunk {chunk.stream}#{chunk.seq}", exc)
        withheld = _commit_one_by_one(deps, run, target_, stream, chunk, records)
    deps.stash.drop(chunk_id)
    hold(deps.lock_for(run.connection), run_id)
    if withheld:
        deps.jobs.withdrawals(withheld)
    advance(deps, run_id)
    return "committed"


STATISTICS_EVERY = 10_000  # committed records: then at 2x, 4x, 8x ... (autoanalyze's rhythm)


def _measure_tables_as_they_grow(deps: SyncDeps, run_id: int, committed: int) -> None:
    """The chunk that takes a run past 10 k, 20 k, 40 k, ... records refreshes the planner's
    statistics: a handful of ANALYZE in a run of millions, and no query planned for an empty
    table keeps scanning a full one (found by bench/sync.py: without it, the cost per record
    grew with the data)."""
    with deps.engine.connect() as conn:
        run = store.get_run(conn, run_id)
    if run is not None and crossed_doubling(run.records_done - committed, run.records_done,
                                            STATISTICS_EVERY):
        store.refresh_statistics(deps.engine)


def crossed_doubling(before: int, after: int, first: int) -> bool:
    """Whether going from `before` to `after` passes first, 2*first, 4*first, ..."""
    mark = first
    while mark <= after:
        if before < mark:
            return True
        mark *= 2
    return False


def _read_again(deps: SyncDeps, target_: Target, stream: Stream, chunk: Any
                ) -> list[dict[str, Any]]:
    """A chunk whose records were lost (Redis flushed, a reader killed before stashing):
    its pages are asked for again from the request saved with it."""
    http = vendor_client(deps, target_, chunk.run_id)
    base = base_params(stream, chunk.start_value)
    params: dict[str, Any] | None = dict(chunk.params)
    records: list[dict[str, Any]] = []
    for _ in range(chunk.pages):
        if params is None:
            break
        response = stream._get(http, params)
        page = Page(list(resolve(response.json(), parse_path(stream.records_path)) or []),
                    response)
        records.extend(page.records)
        following = stream.paginator.next(page)
        params = None if following is None else (
            following if "__url__" in following else {**base, **following})
    return records


def _prepare(target_: Target, stream: Stream, run: Any, chunk: Any,
             records: list[dict[str, Any]], deps: SyncDeps) -> tuple[list[Prepared], int, int]:
    """Map each record as the webhook path would; (items, already read, without an id).
    Records at exactly the start bookmark of the chunk's pass that an earlier run committed
    are skipped (the cursor is inclusive)."""
    start = Boundary(chunk.start_value, frozenset(str(i) for i in chunk.start_ids or []))
    fetched_at = chunk.fetched_at
    mapping = deps.mappings.get_for(target_.name, target_.connector.key, stream.object_type)
    items, skipped, missing = [], 0, 0
    for record in records:
        raw_id = record.get(stream.primary_key)
        if raw_id is None or raw_id == "":
            missing += 1
            continue
        record_id = str(raw_id)
        value = record.get(stream.replication_key) if stream.replication_key else None
        if already_read(start, value, record_id):
            skipped += 1
            continue
        payload = {**record, "_meta": meta(target_.context, event_type=f"sync:{stream.name}",
                                           sync_run=run.id)}
        fields, problems = mapping.apply(payload)
        canonical = CanonicalRecord(
            connection=target_.name, object_type=stream.object_type, external_id=record_id,
            observed_at=observed_time(record, stream.replication_key, fetched_at),
            event_id=f"sync:{run.id}", fields=fields, mapping_version=mapping.version,
            problems=problems)
        items.append(Prepared(_pulled(target_, stream, run.id, record_id, fetched_at),
                              [canonical]))
    return items, skipped, missing


def _pulled(target_: Target, stream: Stream, run_id: int, record_id: str,
            fetched_at: datetime) -> ClaimedEvent:
    """A pulled record in the shape `_store` knows (an inbox event's): `_store` only reads its
    id, connection, event type and headers. The id is negative, so it can never be taken for a
    stored delivery's, and stable for the record (flags about it are raised once)."""
    key = f"sync:{run_id}:{stream.name}:{record_id}"
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)
    return ClaimedEvent(id=-digest, connection=target_.name, connector=target_.connector.key,
                        settings={}, credentials={}, event_type=f"sync:{stream.name}",
                        delivery_key=key[:255], headers={}, body=b"", attempts=1,
                        received_at=fetched_at)


def _commit_chunk(deps: SyncDeps, run: Any, target_: Target, stream: Stream, chunk: Any,
                  records: list[dict[str, Any]]) -> list[int]:
    items, skipped, missing = _prepare(target_, stream, run, chunk, records, deps)
    withheld: list[int] = []

    def finish(conn: Any, stored: Stored, when: datetime) -> None:
        if not store.complete_chunk(conn, chunk.id, run.id, chunk.stream):
            raise _Finished
        counts = tally(stored)
        counts["unchanged"] += skipped
        counts["rejected"] += missing
        if not store.add_counts(conn, run.id, records_done=len(records), **counts):
            raise _Finished
        bookmark_if_complete(conn, run, chunk.stream)
        withheld.extend(withheld_contacts(stored.contacts, stored.before, stored.ids))

    _store(deps.engine, items, now(), deps.mappings.field_specs(), finish=finish)
    return withheld


def _commit_one_by_one(deps: SyncDeps, run: Any, target_: Target, stream: Stream, chunk: Any,
                       records: list[dict[str, Any]] | None) -> list[int]:
    """The last attempt: each record alone, so one bad record cannot sink its neighbours.
    Records that could not even be read again are all counted as rejected."""
    totals = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "healed": 0}
    withheld: list[int] = []
    try:
        if records is None:
            raise HubError("the chunk's records could not be read again")
        items, skipped, missing = _prepare(target_, stream, run, chunk, records, deps)
    except Exception:  # noqa: BLE001 - the mapping itself fails: every record is rejected
        items, skipped, missing = [], 0, chunk.records
    totals["unchanged"], totals["rejected"] = skipped, missing
    for item in items:
        try:
            stored = _store(deps.engine, [item], now(), deps.mappings.field_specs())
        except Exception:  # noqa: BLE001 - counted, the others go on
            totals["rejected"] += 1
            continue
        for name, value in tally(stored).items():
            totals[name] += value
        withheld.extend(withheld_contacts(stored.contacts, stored.before, stored.ids))
    with deps.engine.begin() as conn:
        if store.complete_chunk(conn, chunk.id, run.id, chunk.stream, status="failed",
                                error="committed record by record after repeated failures"):
            store.add_counts(conn, run.id, records_done=chunk.records, **totals)
    return withheld


def tally(stored: Stored) -> dict[str, int]:
    """Records by what they did to their contact; heals are contacts created or changed."""
    by_id = {golden.id: golden for golden in stored.contacts}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "healed": 0,
              "rejected": sum(len(item.records) for item in stored.dropped)}
    counted: set[int] = set()
    for touched in stored.touched_by:
        for contact_id in touched:
            golden = by_id[contact_id]
            change = change_of(golden.is_new, stored.before.get(contact_id), golden.values,
                               len(golden.new_identities))
            if change is Change.UNCHANGED or contact_id in counted:
                counts["unchanged"] += 1
                continue
            counted.add(contact_id)
            counts[change.value] += 1
            counts["healed"] += 1
    return counts


def bookmark_if_complete(conn: Any, run: Any, stream_name: str) -> None:
    """A stream read to its end with every chunk committed moves its bookmark, in the
    transaction of the last of them: the next run starts where this one really got."""
    row = store.get_stream(conn, run.id, stream_name)
    if row.status != "read" or row.chunks_done < row.chunks or \
            store.failed_chunks(conn, run.id, stream_name):
        return
    boundary = Boundary(row.max_value, frozenset(str(i) for i in row.max_ids or []))
    store.set_bookmark(conn, run.connection, stream_name, boundary, run.id, now())


# --- moving on -----------------------------------------------------------------------------

def advance(deps: SyncDeps, run_id: int) -> None:
    """Every stream read and every chunk committed: the run goes on to push (once)."""
    with deps.engine.begin() as conn:
        run = store.get_run(conn, run_id)
        if run is None or run.status != store.RUNNING or run.phase != "pull":
            return
        rows = store.streams(conn, run_id)
        if any(r.status == "reading" or r.chunks_done < r.chunks for r in rows):
            return
        switched = store.set_phase(conn, run_id, "push")
    if switched:
        from hub.services.sync_push import start_push

        start_push(deps, run_id)
