"""The nightly sync's settings: defaults with their units, then HUB_* environment variables.

Kept apart from hub/config.py so the sync can be tuned without touching the webhook path; the
same rules apply: every default here, a bad value fails at start naming the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.domain.errors import ConfigurationError

DEFAULT_CRON = "0 2 * * *"


@dataclass(frozen=True)
class SyncSettings:
    timezone: str = "UTC"  # HUB_TIMEZONE: the zone cron expressions are read in
    sync_cron: str = DEFAULT_CRON  # a connection's schedule unless its sync_cron setting says
    chunk_records: int = 1000  # records committed together (one job, one transaction)
    backlog_chunks: int = 4  # chunks waiting per stream before the reader processes its own
    lock_seconds: float = 60.0  # a dead holder's lock lapses after this long
    watchdog_seconds: int = 60  # how often `hub scheduler` looks for stalled runs
    job_seconds: float = 60.0  # a reading job hands over to a fresh job after this long
    push_slice: int = 1000  # contact ids one push job looks at (changed ones are sent)
    push_lag_seconds: float = 300.0  # re-read this much before the last push (slow commits)
    chunk_attempts: int = 3  # then a chunk's records are counted rejected and the run goes on
    dead_letter_limit: int = 1000  # refused records retried per run and connection

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_ENV = {"timezone": "HUB_TIMEZONE"}


def load_sync_settings(env: dict[str, str] | None = None, **overrides: Any) -> SyncSettings:
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    defaults = SyncSettings()
    for spec in fields(SyncSettings):
        name = _ENV.get(spec.name, f"HUB_SYNC_{spec.name.upper()}")
        raw = env.get(name)
        if raw is None:
            continue
        kind = type(getattr(defaults, spec.name))
        try:
            values[spec.name] = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    settings = replace(defaults, **values, **overrides)
    _validate(settings)
    return settings


def _validate(settings: SyncSettings) -> None:
    try:
        settings.zone  # noqa: B018 - resolving the zone is the check
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"HUB_TIMEZONE={settings.timezone!r} is not an IANA time zone "
                                 "(like Europe/Paris or UTC)") from None
    for name in ("chunk_records", "backlog_chunks", "watchdog_seconds", "push_slice",
                 "chunk_attempts", "dead_letter_limit"):
        if getattr(settings, name) <= 0:
            raise ConfigurationError(f"HUB_SYNC_{name.upper()} must be positive")
    if settings.lock_seconds < 2 or settings.job_seconds <= 0:
        raise ConfigurationError("HUB_SYNC_LOCK_SECONDS must be at least 2 and "
                                 "HUB_SYNC_JOB_SECONDS positive")
