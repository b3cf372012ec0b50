"""RQ job functions: thin, argument-free or id-only, each calling one service.

A job never relies on a request or a web process: it builds (once per worker process) its own
Runtime from the environment, the same way the worker and the CLI do.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from hub.adapters.db import inbox
from hub.runtime import Runtime
from hub.services.process_inbox import process_events

log = logging.getLogger(__name__)
DRAIN_BUDGET_SECONDS = 60.0  # then yield the worker to other queued jobs and re-enqueue

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's Runtime; the worker entry installs its own before work starts."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_settings()
    return _runtime


def install_runtime(rt: Runtime) -> None:
    global _runtime
    _runtime = rt


def drain_inbox() -> dict[str, int]:
    """Claim and process inbox events in batches until the inbox is empty (or time is up)."""
    rt = runtime()
    settings = rt.settings
    started = time.monotonic()
    totals = {"processed": 0, "failed": 0, "dead": 0, "batches": 0}
    fanned_out = False
    while True:
        now = datetime.now(UTC)
        events = inbox.claim(
            rt.engine, limit=settings.batch_size, now=now, lease_seconds=settings.lease_seconds
        )
        if not events:
            _finish(rt)
            return totals
        full = len(events) == settings.batch_size
        if full and not fanned_out and not rt.dispatcher.drain_waiting():
            rt.dispatcher.enqueue_drain()  # more waiting: let another worker share the load
            fanned_out = True
        report = process_events(
            rt.engine, events, rt.mappings,
            max_attempts=settings.max_attempts, retry_base=settings.retry_base_seconds,
        )
        rt.dispatcher.record_latencies(report.latencies)
        if report.withheld:  # an unsubscribe reaches every email tool now, not at night
            from hub.sync_jobs import enqueue_withdrawals

            enqueue_withdrawals(rt, report.withheld)
        totals["processed"] += report.processed
        totals["failed"] += report.failed
        totals["dead"] += report.dead
        totals["batches"] += 1
        budget = min(DRAIN_BUDGET_SECONDS, settings.job_timeout_seconds / 2)
        if time.monotonic() - started > budget:
            rt.dispatcher.enqueue_drain()
            return totals


def erase_in_tools(erasure_id: int) -> dict[str, Any]:
    """Delete an erased person in every tool that can; what fails is retried by the sweeper."""
    from hub.services.erasure import delete_in_tools

    return delete_in_tools(runtime().engine, erasure_id)


def _finish(rt: Runtime) -> None:
    """Clear the wake-up flag, then look once more: a delivery committed just before the flag
    was cleared would otherwise wait for the sweeper."""
    rt.dispatcher.release_kick()
    if inbox.has_claimable(rt.engine, datetime.now(UTC)):
        rt.dispatcher.wake()
