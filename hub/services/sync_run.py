"""Starting syncs, and picking up runs whose workers died.

`start` begins a run per connection (the cron job and `hub sync run` call it). `watch` runs
every minute under `hub scheduler`: a running run whose lock has lapsed lost every worker that
was on it, so it is resumed with a new epoch (jobs of the old one are then ignored): readers
continue from the request saved with their last chunk, chunks still waiting are committed, an
interrupted push starts its slices again (what already went out is skipped by its hash).
"""

from __future__ import annotations

import logging

from connectors.registry import get_connector
from hub.adapters.db import admin
from hub.adapters.db import sync_store as store
from hub.domain.errors import HubError
from hub.services.sync_commit import advance
from hub.services.sync_common import SyncDeps, describe, end_run, holder_of, record_error
from hub.services.sync_pull import begin

log = logging.getLogger(__name__)
MAX_RESUMES = 20  # then the run is failed: something kills it every time


def syncable(connections: list[admin.ConnectionInfo]) -> list[str]:
    """Connections whose tool can be pulled or pushed."""
    names = []
    for info in connections:
        caps = type(get_connector(info.connector)).capabilities()
        if caps["pull"] or caps["push"]:
            names.append(info.name)
    return names


def start(deps: SyncDeps, connection: str | None = None, *, full: bool = False,
          trigger: str = "cli") -> dict[str, int | None]:
    """Begin a run for one connection or all of them: name -> run id (None: already running,
    or it could not start; see the run's errors)."""
    names = [connection] if connection else syncable(admin.list_connections(deps.engine))
    started: dict[str, int | None] = {}
    for name in names:
        try:
            with deps.engine.connect() as conn:
                existing = store.running_run(conn, name)
            if existing is not None and deps.lock_for(name).holder() is None and \
                    resume(deps, existing.id):
                started[name] = existing.id
                continue
            started[name] = begin(deps, name, full=full, trigger=trigger)
        except HubError as exc:
            log.warning("sync of %s could not start: %s", name, describe(exc))
            if connection:
                raise
            started[name] = None
    return started


def resume(deps: SyncDeps, run_id: int) -> bool:
    """Take over a run nobody holds any more and hand its remaining work out again."""
    with deps.engine.connect() as conn:
        run = store.get_run(conn, run_id)
    if run is None or run.status != store.RUNNING:
        return False
    if not deps.lock_for(run.connection).acquire(holder_of(run_id)):
        return False
    if run.epoch >= MAX_RESUMES:
        record_error(deps, run_id, "resume", HubError(f"given up after {run.epoch} resumes"))
        end_run(deps, run_id, run.connection, "failed")
        return True
    with deps.engine.begin() as conn:
        epoch = store.bump_epoch(conn, run_id)
        if run.phase == "push":
            store.reset_push(conn, run_id)
        reading = [s.stream for s in store.streams(conn, run_id) if s.status == "reading"]
        waiting = store.pending_chunks(conn, run_id)
    log.info("resuming sync run %s of %s (epoch %d, phase %s)", run_id, run.connection, epoch,
             run.phase)
    if run.phase == "push":
        deps.jobs.push(run_id, 0, epoch)
        return True
    for stream in reading:
        deps.jobs.read(run_id, stream, epoch)
    for chunk in waiting:
        deps.jobs.chunk(run_id, chunk.id)
    advance(deps, run_id)
    return True


def watch(deps: SyncDeps) -> list[int]:
    """Resume every running run whose lock lapsed (its workers died)."""
    resumed = []
    with deps.engine.connect() as conn:
        runs = store.running_runs(conn)
    for run in runs:
        if deps.lock_for(run.connection).holder() is None and resume(deps, run.id):
            resumed.append(run.id)
    return resumed
