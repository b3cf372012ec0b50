"""Pulling: read each stream page by page; its chunks are committed by sync_commit.

A reader job walks a stream from the run's saved position and cuts it into chunks of a few
pages. Each chunk is written down (its first request, so it can be read again) together with
the stream's next request, then handed to any worker; when too many chunks wait, the reader
commits its own (backpressure: memory and Redis stay flat however big the stream is). A chunk
is committed by `process_inbox._store`, the very function that stores webhook deliveries, with
the chunk's own bookkeeping (done once, counters, and at the stream's end its bookmark) added
to that transaction. A reader hands over to a fresh job after a while, so a long stream never
hits a job timeout and other connections get their turn.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import uuid4

import requests

from connectors.streams import CursorPaginator, Page, PaginationLoopError, Stream
from hub.adapters.db import sync_store as store
from hub.domain.errors import AuthenticationError, HubError
from hub.domain.paths import parse_path, resolve
from hub.domain.sync import Boundary
from hub.services.sync_commit import advance, bookmark_if_complete, process_chunk
from hub.services.sync_common import (
    SyncDeps,
    Target,
    base_params,
    describe,
    end_run,
    first_params,
    hold,
    holder_of,
    needs_attention,
    now,
    record_error,
    stream_named,
    target,
    vendor_client,
)

log = logging.getLogger(__name__)


# --- starting ------------------------------------------------------------------------------

def begin(deps: SyncDeps, connection: str, *, full: bool, trigger: str) -> int | None:
    """Start a run of one connection; None when one is already running (or its unfinished
    run was picked up again, see `sync_run.resume`)."""
    target_ = target(deps.engine, connection)
    lock = deps.lock_for(connection)
    token = f"starting:{uuid4().hex}"
    if not lock.acquire(token):
        return None
    try:
        with deps.engine.begin() as conn:
            if store.running_run(conn, connection) is not None:
                lock.release(token)
                return None  # its lock lapsed: the watchdog resumes it
            run_id = store.create_run(conn, connection, full=full, trigger=trigger, now=now())
        lock.handover(token, holder_of(run_id))
    except BaseException:
        lock.release(token)
        raise
    try:
        streams = target_.connector.streams(target_.context)
        with deps.engine.begin() as conn:
            for stream in streams:
                start = Boundary() if full else store.get_bookmark(conn, connection,
                                                                    stream.name)
                store.create_stream(conn, run_id, stream.name, start, first_params(stream,
                                                                                 start))
    except HubError as exc:
        record_error(deps, run_id, "start", exc)
        end_run(deps, run_id, connection, "failed")
        return run_id
    for stream in streams:
        deps.jobs.read(run_id, stream.name, 1)
    if not streams:
        advance(deps, run_id)
    log.info("sync run %s of %s started (%s, %d streams)", run_id, connection,
             "full" if full else "incremental", len(streams))
    return run_id


# --- reading -------------------------------------------------------------------------------

def read(deps: SyncDeps, run_id: int, stream_name: str, epoch: int) -> str:
    """Read a stream from its saved position: until its end, or until it is time to hand over
    to a fresh job. Returns what happened (for logs and tests)."""
    with deps.engine.connect() as conn:
        run = store.get_run(conn, run_id)
        row = store.get_stream(conn, run_id, stream_name)
    if run is None or run.status != store.RUNNING or run.epoch != epoch or row is None or \
            row.status != "reading":
        return "nothing to do"
    try:
        target_ = target(deps.engine, run.connection)
        stream = stream_named(target_, stream_name)
        return _Reader(deps, run, row, target_, stream, epoch).walk()
    except AuthenticationError as exc:
        needs_attention(deps, run_id, run.connection, exc)
        return "needs attention"
    except Exception as exc:  # noqa: BLE001 - a stream that cannot be read ends; others go on
        record_error(deps, run_id, f"read {stream_name}", exc)
        with deps.engine.begin() as conn:
            store.end_stream(conn, run_id, stream_name, "failed", describe(exc))
        advance(deps, run_id)
        return "failed"


class _Reader:
    def __init__(self, deps: SyncDeps, run: Any, row: Any, target_: Target, stream: Stream,
                 epoch: int) -> None:
        self.deps, self.sync, self.row, self.target, self.stream = deps, run, row, target_, stream
        self.epoch = epoch
        self.http = vendor_client(deps, target_, run.id)
        self.lock = deps.lock_for(run.connection)
        self.start = Boundary(row.start_value, frozenset(str(i) for i in row.start_ids or []))
        self.seen = Boundary(row.max_value, frozenset(str(i) for i in row.max_ids or []))
        self.base = base_params(stream, row.start_value)

    def walk(self) -> str:
        started = time.monotonic()
        params: dict[str, Any] | None = self.row.next_params
        chunk_params, buffer, pages, tokens = params, [], 0, set()
        capped, expected = False, None
        while params is not None:
            token = self.stream.paginator.token(params)
            if token in tokens:
                raise PaginationLoopError(f"{self.stream.name}: the vendor sent the same page "
                                          f"again ({token[:80]})")
            tokens.add(token)
            if not hold(self.lock, self.sync.id):
                return "lost the lock"
            page, following = self._page(params)
            expected = _expected(self.stream, page.response) or expected
            buffer.extend(page.records)
            pages += 1
            capped = following is None and _capped(self.stream, page)
            if buffer and (len(buffer) >= self.deps.settings.chunk_records or following is None):
                if not self._commit(chunk_params or {}, buffer, pages, following, expected):
                    return "fenced off"
                chunk_params, buffer, pages = following, [], 0
                if following is not None and \
                        time.monotonic() - started > self.deps.settings.job_seconds:
                    self.deps.jobs.read(self.sync.id, self.stream.name, self.epoch)
                    return "handed over"
            params = following
        return self._end_of_pass(capped)

    def _page(self, params: dict[str, Any]) -> tuple[Page, dict[str, Any] | None]:
        response: requests.Response = self.stream._get(self.http, params)  # the stream's own
        records = resolve(response.json(), parse_path(self.stream.records_path)) or []
        page = Page(list(records), response)
        following = self.stream.paginator.next(page)
        if following is not None and "__url__" not in following:
            following = {**self.base, **following}
        key, pk = self.stream.replication_key, self.stream.primary_key
        if key:
            self.seen = self.seen.advance((r.get(key), str(r.get(pk))) for r in page.records)
        return page, following

    def _commit(self, params: dict[str, Any], records: list[dict[str, Any]], pages: int,
                following: dict[str, Any] | None, expected: int | None) -> bool:
        try:
            with self.deps.engine.begin() as conn:
                chunk_id = store.record_chunk(
                    conn, run_id=self.sync.id, epoch=self.epoch, stream=self.stream.name,
                    params=params, pages=pages, records=len(records), fetched_at=now(),
                    next_params=following, seen=self.seen, expected=expected)
        except store.FencedOffError:
            return False
        with self.deps.engine.connect() as conn:
            waiting = store.waiting_chunks(conn, self.sync.id, self.stream.name)
        if waiting > self.deps.settings.backlog_chunks:
            process_chunk(self.deps, self.sync.id, chunk_id, records=list(records))
        else:
            self.deps.stash.put(chunk_id, records)
            self.deps.jobs.chunk(self.sync.id, chunk_id)
        return True

    def _end_of_pass(self, capped: bool) -> str:
        if capped and self.seen.value is not None and self.seen != self.start:
            with self.deps.engine.begin() as conn:  # the vendor caps one query: go on from here
                store.restart_stream(conn, self.sync.id, self.stream.name, self.seen,
                                     first_params(self.stream, self.seen))
            self.deps.jobs.read(self.sync.id, self.stream.name, self.epoch)
            return "next pass"
        with self.deps.engine.begin() as conn:
            store.end_stream(conn, self.sync.id, self.stream.name, "read")
            bookmark_if_complete(conn, self.sync, self.stream.name)
        advance(self.deps, self.sync.id)
        return "read"


def _capped(stream: Stream, page: Page) -> bool:
    """The vendor offered a next page the stream's paginator refused (HubSpot's search stops
    at 10,000 results): the stream is sorted by its cursor, so a new pass continues."""
    paginator = stream.paginator
    if isinstance(paginator, CursorPaginator) and type(paginator).next is not \
            CursorPaginator.next:
        return CursorPaginator.next(paginator, page) is not None
    return False


def _expected(stream: Stream, response: requests.Response) -> int | None:
    path = getattr(stream.paginator, "total_path", None) or "total"
    try:
        value = resolve(response.json(), parse_path(path))
    except ValueError:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


