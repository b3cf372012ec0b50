"""The queue: RQ for the jobs, plus the cheap wake-up signal the webhook receiver sends.

One RQ job per delivery costs ~0.75 ms to enqueue and ~5 ms to run (see
shared/research/perf-limits.md), which would cap the hub far below its targets. So the
receiver only persists the delivery and sets a Redis flag; the first delivery after a quiet
moment enqueues one `drain_inbox` job, which claims events from the inbox in batches until it
is empty. Redis is never the only copy of anything: if it is down, the inbox still has the
event and a worker's sweeper enqueues it later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import redis
from rq import Queue

QUEUES = ("webhooks", "sync", "outbound")
KICK_KEY = "hub:inbox:kick"
KICK_TTL_SECONDS = 60
DELIVERIES_KEY = "hub:metrics:deliveries"
LATENCY_KEY = "hub:metrics:latency"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DRAIN_JOB = "hub.jobs.drain_inbox"
BACKOFF_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass
class Dispatcher:
    redis: redis.Redis
    job_timeout: int = 240
    _down_until: float = field(default=0.0, repr=False)

    def queue(self, name: str = "webhooks") -> Queue:
        return Queue(name, connection=self.redis)

    def delivery_received(self, connection: str, outcome: str, wake: bool = True) -> None:
        """Count the delivery and wake a worker: one round trip; never raises."""
        if time.monotonic() < self._down_until:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(DELIVERIES_KEY, f"{connection}|{outcome}", 1)
            if wake:
                pipe.set(KICK_KEY, "1", nx=True, ex=KICK_TTL_SECONDS)
            replies = pipe.execute()
            if wake and replies[-1]:
                self.enqueue_drain()
        except redis.RedisError as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("redis unavailable, delivery stays in the inbox for the sweeper: %s",
                        type(exc).__name__)

    def deliveries_received(self, outcomes: list[tuple[str, str]]) -> None:
        """Count a batch of deliveries and wake a worker if any was accepted: one round trip
        for the whole batch; never raises (the inbox holds them whatever Redis does)."""
        if not outcomes or time.monotonic() < self._down_until:
            return
        counts: dict[str, int] = {}
        for connection, outcome in outcomes:
            counts[f"{connection}|{outcome}"] = counts.get(f"{connection}|{outcome}", 0) + 1
        wake = any(outcome == "accepted" for _, outcome in outcomes)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for field_name, count in counts.items():
                pipe.hincrby(DELIVERIES_KEY, field_name, count)
            if wake:
                pipe.set(KICK_KEY, "1", nx=True, ex=KICK_TTL_SECONDS)
            replies = pipe.execute()
            if wake and replies[-1]:
                self.enqueue_drain()
        except redis.RedisError as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            log.warning("redis unavailable, deliveries stay in the inbox for the sweeper: %s",
                        type(exc).__name__)

    def enqueue_drain(self) -> None:
        self.queue().enqueue(
            DRAIN_JOB, job_timeout=self.job_timeout, result_ttl=0, failure_ttl=7 * 86400
        )

    def enqueue_erasure(self, erasure_id: int) -> None:
        self.queue("outbound").enqueue(
            "hub.jobs.erase_in_tools", erasure_id, job_timeout=self.job_timeout, result_ttl=0,
            failure_ttl=30 * 86400, job_id=f"erasure-{erasure_id}-{time.time_ns()}")

    def release_kick(self) -> None:
        self.redis.delete(KICK_KEY)

    def wake(self) -> bool:
        """Set the flag and enqueue a drain unless one is already on its way."""
        if self.redis.set(KICK_KEY, "1", nx=True, ex=KICK_TTL_SECONDS):
            self.enqueue_drain()
            return True
        return False

    def drain_waiting(self) -> bool:
        return self.queue().count > 0

    def record_latencies(self, seconds: list[float]) -> None:
        if not seconds:
            return
        pipe = self.redis.pipeline(transaction=False)
        for bound in LATENCY_BUCKETS:
            within = sum(1 for value in seconds if value <= bound)
            if within:
                pipe.hincrby(LATENCY_KEY, f"le:{bound}", within)
        pipe.hincrbyfloat(LATENCY_KEY, "sum", sum(seconds))
        pipe.hincrby(LATENCY_KEY, "count", len(seconds))
        pipe.execute()
