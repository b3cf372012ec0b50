"""The sync's shared primitives on a real Redis and database: the token bucket every worker
shares, the per-connection lock that lapses when its holder dies, bookmarks in SQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import redis as redis_lib

from connectors.base import RateLimit
from hub.adapters.db import sync_store
from hub.adapters.rate_limit import TokenBucket
from hub.adapters.sync_lock import SyncLock
from hub.domain.sync import Boundary


def test_the_bucket_lets_a_small_burst_through_then_spaces_requests_at_the_rate(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    bucket = TokenBucket(client, "shop", RateLimit(requests=50, seconds=100.0))
    assert (bucket.capacity, bucket.refill) == (5, 0.45)
    waits = [bucket.reserve() for _ in range(8)]
    assert waits[:5] == [0.0] * 5  # a burst of a tenth of the limit
    assert [round(w * 0.45, 1) for w in waits[5:]] == [1.0, 2.0, 3.0]  # then one per 1/0.45 s


def test_workers_sharing_a_bucket_never_exceed_the_vendors_rate_together(redis_url):
    limit = RateLimit(requests=20, seconds=1.0)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        bucket = TokenBucket(redis_lib.Redis.from_url(redis_url), "crm", limit)
        for _ in range(12):
            bucket.throttle()
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(sent)
    assert len(times) == 36
    for first, twenty_first in zip(times, times[20:], strict=False):
        assert twenty_first - first >= 0.95  # never 21 requests within a second


def test_a_429_pauses_every_worker_for_as_long_as_the_vendor_asked(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    one = TokenBucket(client, "ac", RateLimit(requests=5, seconds=1.0))
    other = TokenBucket(redis_lib.Redis.from_url(redis_url), "ac", RateLimit(5, 1.0))
    assert one.pause(2.0) == 2.0
    assert 2.1 <= other.reserve() <= 2.4  # the other worker waits too, then one more token


def test_one_lock_per_connection_that_lapses_when_its_holder_stops_refreshing(redis_url):
    client = redis_lib.Redis.from_url(redis_url)
    lock = SyncLock(client, "shop", ttl=0.3)
    assert lock.acquire("run:1")
    assert not lock.acquire("run:2")  # one sync per connection
    assert not lock.refresh("run:2") and not lock.release("run:2")  # not theirs to touch
    time.sleep(0.2)
    assert lock.refresh("run:1")  # alive: extended
    time.sleep(0.2)
    assert lock.holder() == "run:1"
    time.sleep(0.35)  # the holder died: no refresh
    assert lock.holder() is None
    assert lock.acquire("run:2")
    assert lock.handover("run:2", "run:3") and lock.holder() == "run:3"
    assert lock.release("run:3") and lock.holder() is None
    assert SyncLock(client, "crm").acquire("run:9")  # other connections are independent


def test_a_bookmark_round_trips_with_the_ids_at_its_value(runtime):
    with runtime.engine.begin() as conn:
        assert sync_store.get_bookmark(conn, "pay", "customers") == Boundary()
        sync_store.set_bookmark(conn, "pay", "customers", Boundary("1700", frozenset({"a"})),
                                1, datetime.now(UTC))
        sync_store.set_bookmark(conn, "pay", "customers",
                                Boundary("1800", frozenset({"b", "c"})), 2, datetime.now(UTC))
    with runtime.engine.connect() as conn:
        assert sync_store.get_bookmark(conn, "pay", "customers") == \
            Boundary("1800", frozenset({"b", "c"}))
        assert sync_store.get_bookmark(conn, "shop", "customers") == Boundary()
