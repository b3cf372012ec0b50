"""A token bucket per connection in Redis, shared by every worker on every machine.

Each call takes a token, or reserves the next one and says how long to wait for it, in one
Lua script (atomic, one round trip, Redis's own clock): N workers together never send a vendor
more than its documented rate, and they are served in arrival order instead of all retrying at
once. A vendor's "N requests per W seconds" becomes a bucket of N/10 tokens (at least one)
refilled at (N - N/10)/W per second, so no window of W seconds ever holds more than N requests
(a full bucket plus what refills in W), at most 10% below the documented throughput. A 429
pauses the whole bucket for as long as the vendor asked (Retry-After), so the other workers
hold back too instead of each finding out for itself. RQ's own `RateLimit` limits how many jobs
run at once, not requests per second, so it does not fit here
(docs/decisions/0020-sync-workers-locks-rate-limits-push.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from connectors.base import RateLimit
from hub.domain.errors import ConfigurationError

KEY = "hub:rate:{}"
MAX_WAIT_SECONDS = 300.0  # never sleep longer in one go: the lock must be refreshed

# KEYS[1] bucket hash; ARGV: capacity, refill per second, cost, pause seconds (0: take).
# Returns the wait in microseconds (0: go now) as a string (Lua numbers are doubles).
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local pause = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'until')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
local blocked = tonumber(state[3]) or 0
if pause > 0 then
  blocked = math.max(blocked, now + pause)
  redis.call('HSET', KEYS[1], 'until', tostring(blocked), 'tokens', '0', 'ts', tostring(blocked))
  redis.call('EXPIRE', KEYS[1], math.ceil(pause + capacity / rate) + 60)
  return tostring(math.floor(pause * 1000000))
end
local start = math.max(now, blocked)
tokens = math.min(capacity, tokens + math.max(0, start - ts) * rate)
tokens = tokens - tonumber(ARGV[3])
local wait = start - now
if tokens < 0 then wait = wait + (-tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(start))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(math.floor(wait * 1000000))
"""


def parse_rate(text: str) -> RateLimit:
    """`100/10` -> 100 requests per 10 seconds (the `rate_limit` connection setting)."""
    requests_part, _, seconds_part = text.strip().partition("/")
    try:
        limit = RateLimit(int(requests_part), float(seconds_part or "1"))
    except ValueError:
        raise ConfigurationError(f"rate_limit {text!r} must read requests/seconds, like 100/10"
                                 ) from None
    if limit.requests <= 0 or limit.seconds <= 0:
        raise ConfigurationError(f"rate_limit {text!r} must be positive")
    return limit


@dataclass
class TokenBucket:
    """`throttle()` before each request; `pause(seconds)` when the vendor said 429."""

    client: redis.Redis
    name: str
    limit: RateLimit
    sleep: Callable[[float], None] = time.sleep
    on_wait: Callable[[float], None] | None = None  # e.g. refresh a lock during long waits
    step: float = 10.0  # the longest sleep between two on_wait calls
    waited: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._script = self.client.register_script(_SCRIPT)

    @property
    def key(self) -> str:
        return KEY.format(self.name)

    @property
    def capacity(self) -> int:
        return max(1, self.limit.requests // 10)

    @property
    def refill(self) -> float:
        """Tokens per second: a full bucket plus one window's refill is the vendor's limit."""
        return max(self.limit.requests - self.capacity, 1) / self.limit.seconds

    def reserve(self, cost: int = 1) -> float:
        """Take `cost` tokens; the seconds to wait before using them (0.0: now)."""
        micros = self._script(keys=[self.key], args=[self.capacity, self.refill, cost, 0])
        return int(micros) / 1_000_000

    def throttle(self) -> None:
        wait = self.reserve()
        while wait > 0:
            step = min(wait, MAX_WAIT_SECONDS, self.step)
            if self.on_wait:
                self.on_wait(step)
            self.sleep(step)
            self.waited += step
            wait -= step

    def pause(self, seconds: float | None) -> float | None:
        """Hold every worker back for `seconds` (a vendor's Retry-After); returns it."""
        if seconds and seconds > 0:
            self._script(keys=[self.key], args=[self.capacity, self.refill, 0,
                                                min(seconds, MAX_WAIT_SECONDS)])
        return seconds
