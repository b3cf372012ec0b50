"""One sync per connection at a time: a Redis lock that expires unless its holder is alive.

The lock's value names the run holding it. Every job working on that run refreshes the expiry
(compare-and-expire in Lua, so nobody extends a lock that is no longer theirs); a worker that
dies stops refreshing and the lock lapses after `ttl` seconds, after which the watchdog resumes
the run. Releasing is compare-and-delete for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

KEY = "hub:sync:lock:{}"
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_HANDOVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass
class SyncLock:
    client: redis.Redis
    connection: str
    ttl: float = 60.0

    @property
    def key(self) -> str:
        return KEY.format(self.connection)

    def acquire(self, holder: str) -> bool:
        return bool(self.client.set(self.key, holder, nx=True, px=int(self.ttl * 1000)))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def refresh(self, holder: str) -> bool:
        """Extend the lock if `holder` still has it; False means it was lost."""
        done = self.client.eval(_REFRESH, 1, self.key, holder, int(self.ttl * 1000))
        return bool(done)

    def handover(self, old: str, new: str) -> bool:
        """Pass a held lock to a new holder (a run once its id is known)."""
        return bool(self.client.eval(_HANDOVER, 1, self.key, old, new, int(self.ttl * 1000)))

    def release(self, holder: str) -> bool:
        return bool(self.client.eval(_RELEASE, 1, self.key, holder))
