"""A worker process: an RQ SimpleWorker on the hub's queues, plus the inbox sweeper.

SimpleWorker runs jobs in the worker process itself: the forking worker re-imports and
reconnects for every job (6 vs 71 jobs/s measured here), and our jobs are long batches anyway.
The sweeper is what makes "never lose an accepted delivery" hold when Redis was down at accept
time, a worker died mid-batch (its lease expires) or a retry's backoff has passed: every few
seconds it wakes a drain if the inbox has claimable events and no drain is queued.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import redis
from rq import SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from hub import jobs
from hub.adapters.db import compliance_store, inbox
from hub.adapters.queue import QUEUES
from hub.runtime import Runtime

log = logging.getLogger(__name__)


class Sweeper(threading.Thread):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="hub-sweeper", daemon=True)
        self.rt = rt
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.rt.settings.sweep_seconds):
            self.sweep_once()

    def sweep_once(self) -> bool:
        woke = False
        try:
            now = datetime.now(UTC)
            if inbox.has_claimable(self.rt.engine, now) and \
                    not self.rt.dispatcher.drain_waiting():
                self.rt.dispatcher.enqueue_drain()
                woke = True
            woke |= self._erasures_due(now)
        except (redis.RedisError, SQLAlchemyError) as exc:
            log.warning("sweeper could not check the inbox: %s", type(exc).__name__)
        return woke

    def _erasures_due(self, now: datetime) -> bool:
        """Tool deletes still owed by an erasure whose backoff has passed."""
        with self.rt.engine.connect() as conn:
            due = compliance_store.due_erasures(conn, now)
        for erasure_id in due:
            with self.rt.engine.begin() as conn:  # claim the round so one worker runs it
                compliance_store.update_erasure(
                    conn, erasure_id, next_attempt_at=now + timedelta(minutes=10))
            self.rt.dispatcher.enqueue_erasure(erasure_id)
        return bool(due)


def run_worker(rt: Runtime, *, burst: bool = False, queues: tuple[str, ...] = QUEUES) -> None:
    jobs.install_runtime(rt)
    sweeper = Sweeper(rt)
    if burst:
        sweeper.sweep_once()  # a burst worker still picks up what the queue never saw
    else:
        sweeper.start()
    worker = SimpleWorker(list(queues), connection=rt.redis)
    try:
        worker.work(burst=burst, logging_level=rt.settings.log_level, with_scheduler=False)
    finally:
        sweeper.stopped.set()
