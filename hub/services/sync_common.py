"""What every step of a sync needs: its ports, the connection, a throttled vendor client, and
the few transitions of a run (fail it, finish it) that any job may have to make.

A sync is a run row plus jobs that each take plain ids (run, stream, chunk) and open their own
context. Ports keep Redis and RQ out of the services: `Jobs` enqueues, `Stash` holds a read
chunk until a worker commits it, locks and buckets come from factories.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from connectors.base import ConnectionContext, Connector, RateLimit
from connectors.http import VendorHttp
from connectors.registry import get_connector
from connectors.streams import Stream
from hub.adapters.db import admin
from hub.adapters.db import sync_store as store
from hub.domain.contact import FieldSpec
from hub.domain.errors import ConfigurationError, HubError, NotFoundError
from hub.domain.mapping import Mapping, OutboundMapping
from hub.domain.sync import Boundary
from hub.redaction import redact
from hub.services.token_rotation import keep_rotated_tokens
from hub.sync_config import SyncSettings

log = logging.getLogger(__name__)
ACTOR = "sync"
NEEDS_ATTENTION = "needs_attention"


class Jobs(Protocol):
    """Hands work to any worker (RQ's `sync` queue in production)."""

    def read(self, run_id: int, stream: str, epoch: int) -> None: ...

    def chunk(self, run_id: int, chunk_id: int) -> None: ...

    def push(self, run_id: int, after: int, epoch: int) -> None: ...

    def withdrawals(self, contact_ids: list[int]) -> None: ...


class Stash(Protocol):
    """Read records waiting for a worker (Redis); lost entries are read again from the API."""

    def put(self, chunk_id: int, records: list[dict[str, Any]]) -> None: ...

    def take(self, chunk_id: int) -> list[dict[str, Any]] | None: ...

    def drop(self, chunk_id: int) -> None: ...


class Lock(Protocol):
    def acquire(self, holder: str) -> bool: ...

    def holder(self) -> str | None: ...

    def refresh(self, holder: str) -> bool: ...

    def release(self, holder: str) -> bool: ...

    def handover(self, old: str, new: str) -> bool: ...


class Bucket(Protocol):
    on_wait: Callable[[float], None] | None
    step: float

    def throttle(self) -> None: ...

    def pause(self, seconds: float | None) -> float | None: ...


class Mappings(Protocol):
    def get_for(self, connection: str, connector: str, object_type: str) -> Mapping: ...

    def get_outbound_for(self, connection: str, connector: str, object_type: str
                         ) -> OutboundMapping: ...

    def field_specs(self) -> dict[str, FieldSpec]: ...


@dataclass
class SyncDeps:
    engine: Engine
    mappings: Mappings
    settings: SyncSettings
    jobs: Jobs
    stash: Stash
    lock_for: Callable[[str], Lock]
    bucket_for: Callable[[str, RateLimit], Bucket]
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Target:
    """A connection as the sync sees it."""

    context: ConnectionContext
    connector: Connector
    status: str

    @property
    def name(self) -> str:
        return self.context.name

    @property
    def push_mode(self) -> str:
        mode = str(self.context.settings.get("push") or "linked").strip().lower()
        if mode not in ("linked", "all", "off"):
            raise ConfigurationError(f"connection {self.name!r}: push must be linked, all or "
                                     f"off, not {mode!r}")
        return mode


def holder_of(run_id: int) -> str:
    return f"run:{run_id}"


def hold(lock: Lock, run_id: int) -> bool:
    """Keep the run's lock: extend it, or take it back if it lapsed and nobody took it (a
    stall longer than its expiry); False when another holder has it."""
    holder = holder_of(run_id)
    return lock.refresh(holder) or lock.acquire(holder)


def target(engine: Engine, name: str) -> Target:
    info = admin.get_connection(engine, name)
    if info is None:
        raise NotFoundError(f"no connection named {name!r}")
    context = ConnectionContext(info.name, info.settings, info.credentials)
    return Target(context, get_connector(info.connector), info.status)


def rate_of(target_: Target) -> RateLimit | None:
    from hub.adapters.rate_limit import parse_rate

    override = str(target_.context.settings.get("rate_limit") or "").strip()
    return parse_rate(override) if override else target_.connector.rate_limit


def vendor_client(deps: SyncDeps, target_: Target, run_id: int | None) -> VendorHttp:
    """The connection's API client behind the shared token bucket; waits (the bucket's and a
    429's Retry-After) keep the run's lock alive, and a 429 holds every worker back."""
    http = keep_rotated_tokens(target_.connector.api_client(target_.context), deps.engine,
                               target_.name)
    lock = deps.lock_for(target_.name)
    beat = max(0.5, deps.settings.lock_seconds / 3)  # refresh well before the lock lapses

    def keep_alive(_seconds: float = 0.0) -> None:
        if run_id is not None:
            lock.refresh(holder_of(run_id))

    limit = rate_of(target_)
    if limit is not None:
        bucket = deps.bucket_for(target_.name, limit)
        bucket.on_wait = keep_alive
        bucket.step = beat
        http.throttle = bucket.throttle
        asked = http.retry_after
        http.retry_after = lambda response: bucket.pause(asked(response))

    def sleep(seconds: float) -> None:
        while seconds > 0:
            step = min(seconds, beat)
            keep_alive()
            deps.sleep(step)
            seconds -= step

    http.sleep = sleep
    return http


def now() -> datetime:
    return datetime.now(UTC)


def describe(exc: BaseException) -> str:
    detail = exc.detail if isinstance(exc, HubError) else str(exc)
    return redact(f"{type(exc).__name__}: {detail}", 400)


def record_error(deps: SyncDeps, run_id: int, where: str, exc: BaseException) -> None:
    log.warning("sync run %s: %s failed: %s", run_id, where, type(exc).__name__)
    with deps.engine.begin() as conn:
        store.add_error(conn, run_id, {"at": now().isoformat(), "where": where,
                                       "error": describe(exc)})


def needs_attention(deps: SyncDeps, run_id: int, connection: str, exc: HubError) -> None:
    """The vendor refused the credentials: this connection waits for an admin, others go on."""
    message = redact(exc.detail, 400)
    admin.set_connection_status(deps.engine, connection, NEEDS_ATTENTION, message, ACTOR)
    record_error(deps, run_id, "authentication", exc)
    end_run(deps, run_id, connection, NEEDS_ATTENTION)


def end_run(deps: SyncDeps, run_id: int, connection: str, status: str) -> bool:
    with deps.engine.begin() as conn:
        ended = store.finish_run(conn, run_id, status, now())
    if ended:
        deps.lock_for(connection).release(holder_of(run_id))
        log.info("sync run %s of %s ended: %s", run_id, connection, status)
    return ended


# --- streams ---------------------------------------------------------------------------

def base_params(stream: Stream, start_value: str | None) -> dict[str, Any]:
    base = dict(stream.params)
    if start_value and stream.since:
        base.update(stream.since(start_value))
    return base


def first_params(stream: Stream, start: Boundary) -> dict[str, Any]:
    return {**base_params(stream, start.value), **stream.paginator.first()}


def stream_named(target_: Target, name: str) -> Stream:
    for stream in target_.connector.streams(target_.context):
        if stream.name == name:
            return stream
    raise HubError(f"{target_.connector.title} has no stream {name!r} any more")
