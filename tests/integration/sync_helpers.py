"""In-process drivers for the sync services: the real database, Redis, stash, locks and rate
limits, with the queue replaced by an in-memory one that a test drains (or holds back)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hub.adapters.db import admin
from hub.runtime import Runtime
from hub.services import sync_commit, sync_pull, sync_push, sync_run
from hub.services.sync_common import SyncDeps
from hub.sync_config import load_sync_settings
from hub.sync_jobs import deps_for


@dataclass
class InMemoryJobs:
    """The `Jobs` port as a FIFO list a test runs with `drain`."""

    queue: deque[tuple[Any, ...]] = field(default_factory=deque)
    done: list[tuple[str, Any]] = field(default_factory=list)

    def read(self, run_id: int, stream: str, epoch: int) -> None:
        self.queue.append(("read", run_id, stream, epoch))

    def chunk(self, run_id: int, chunk_id: int) -> None:
        self.queue.append(("chunk", run_id, chunk_id))

    def push(self, run_id: int, after: int, epoch: int) -> None:
        self.queue.append(("push", run_id, after, epoch))

    def withdrawals(self, contact_ids: list[int]) -> None:
        self.queue.append(("withdrawals", contact_ids))

    def drain(self, deps: SyncDeps, limit: int = 10_000) -> None:
        steps = 0
        while self.queue and steps < limit:
            self.step(deps)
            steps += 1

    def step(self, deps: SyncDeps) -> Any:
        kind, *args = self.queue.popleft()
        handler = {"read": sync_pull.read, "chunk": sync_commit.process_chunk,
                   "push": sync_push.push_slice, "withdrawals": sync_push.push_withdrawals}[kind]
        result = handler(deps, *args)
        self.done.append((kind, result))
        return result


def sync_deps(runtime: Runtime, **settings: Any) -> tuple[SyncDeps, InMemoryJobs]:
    deps = deps_for(runtime, load_sync_settings(env={}, **settings))
    jobs = InMemoryJobs()
    deps.jobs = jobs
    deps.sleep = lambda _seconds: None
    return deps, jobs


def run_sync(deps: SyncDeps, jobs: InMemoryJobs, connection: str | None = None,
             full: bool = False) -> dict[str, int | None]:
    started = sync_run.start(deps, connection, full=full, trigger="test")
    jobs.drain(deps)
    return started


def connect(runtime: Runtime, name: str, connector: str, **settings: Any) -> None:
    admin.add_connection(runtime.engine, name=name, connector=connector,
                         secrets=[f"{name}-webhook-secret"], settings=settings, actor="test")
