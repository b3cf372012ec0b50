"""RQ jobs of the nightly sync: thin, ids only, each calling one sync service.

They live beside hub/jobs.py (the webhook drain) and share its per-process Runtime. The
adapters wiring the services' ports to Redis are here too: the `sync` queue, the stash of read
chunks, one lock and one token bucket per connection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

from connectors.base import RateLimit
from hub.adapters.rate_limit import TokenBucket
from hub.adapters.sync_lock import SyncLock
from hub.runtime import Runtime
from hub.services import sync_commit, sync_pull, sync_push, sync_run
from hub.services.sync_common import SyncDeps
from hub.sync_config import SyncSettings, load_sync_settings

log = logging.getLogger(__name__)
QUEUE = "sync"
STASH_KEY = "hub:sync:chunk:{}"
STASH_TTL_SECONDS = 7 * 86400
FAILURE_TTL = 7 * 86400


@dataclass
class RqJobs:
    """The services' `Jobs` port on RQ's `sync` queue."""

    redis: redis.Redis
    job_timeout: int

    def _enqueue(self, func: str, *args: Any, timeout: int | None = None) -> None:
        Queue(QUEUE, connection=self.redis).enqueue(
            func, *args, job_timeout=timeout or self.job_timeout, result_ttl=0,
            failure_ttl=FAILURE_TTL)

    def read(self, run_id: int, stream: str, epoch: int) -> None:
        self._enqueue("hub.sync_jobs.read_stream", run_id, stream, epoch)

    def chunk(self, run_id: int, chunk_id: int) -> None:
        self._enqueue("hub.sync_jobs.commit_chunk", run_id, chunk_id)

    def push(self, run_id: int, after: int, epoch: int) -> None:
        self._enqueue("hub.sync_jobs.push_slice", run_id, after, epoch)

    def withdrawals(self, contact_ids: list[int]) -> None:
        self._enqueue("hub.sync_jobs.push_withdrawals", sorted(set(contact_ids)))


@dataclass
class RedisStash:
    """Read chunks waiting for a worker; a lost one is read again from the vendor."""

    redis: redis.Redis

    def put(self, chunk_id: int, records: list[dict[str, Any]]) -> None:
        self.redis.set(STASH_KEY.format(chunk_id), json.dumps(records, default=str),
                       ex=STASH_TTL_SECONDS)

    def take(self, chunk_id: int) -> list[dict[str, Any]] | None:
        raw = self.redis.get(STASH_KEY.format(chunk_id))
        return None if raw is None else list(json.loads(raw))

    def drop(self, chunk_id: int) -> None:
        self.redis.delete(STASH_KEY.format(chunk_id))


def deps_for(rt: Runtime, settings: SyncSettings | None = None) -> SyncDeps:
    """The sync services wired to this process's database, mappings and Redis."""
    settings = settings or load_sync_settings()
    client = rt.redis

    def lock_for(connection: str) -> SyncLock:
        return SyncLock(client, connection, ttl=settings.lock_seconds)

    def bucket_for(connection: str, limit: RateLimit) -> TokenBucket:
        return TokenBucket(client, connection, limit)

    timeout = max(rt.settings.job_timeout_seconds, int(settings.job_seconds * 3) + 60)
    return SyncDeps(engine=rt.engine, mappings=rt.mappings, settings=settings,
                    jobs=RqJobs(client, timeout), stash=RedisStash(client), lock_for=lock_for,
                    bucket_for=bucket_for)


def _deps() -> SyncDeps:
    from hub.jobs import runtime

    return deps_for(runtime())


def start_sync(connection: str | None = None, full: bool = False,
               trigger: str = "cron") -> dict[str, int | None]:
    """Begin a run per connection (all when none is named); the cron job's entry point."""
    return sync_run.start(_deps(), connection, full=full, trigger=trigger)


def read_stream(run_id: int, stream: str, epoch: int) -> str:
    return sync_pull.read(_deps(), run_id, stream, epoch)


def commit_chunk(run_id: int, chunk_id: int) -> str:
    return sync_commit.process_chunk(_deps(), run_id, chunk_id)


def push_slice(run_id: int, after: int, epoch: int) -> str:
    return sync_push.push_slice(_deps(), run_id, after, epoch)


def push_withdrawals(contact_ids: list[int]) -> dict[str, dict[str, int]]:
    return sync_push.push_withdrawals(_deps(), contact_ids)


def watch_syncs() -> list[int]:
    """Resume runs whose workers died (every minute under `hub scheduler`)."""
    return sync_run.watch(_deps())


def enqueue_withdrawals(rt: Runtime, contact_ids: list[int]) -> None:
    """Called after a webhook batch withdrew consent: never raises. If Redis is down now, the
    next run's push still carries the withdrawal (the contact changed since the last push)."""
    if not contact_ids:
        return
    try:
        deps_for(rt).jobs.withdrawals(contact_ids)
    except redis.RedisError as exc:
        log.warning("could not enqueue the withdrawal push: %s", type(exc).__name__)
