"""Settings: defaults, then HUB_* environment variables, then explicit overrides (tests).

Every default lives here with its unit, and a bad value fails at start with a message that
names the variable, not later in the middle of a webhook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hub.domain.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    var_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file var/hub.db
    redis_url: str = ""  # empty: embedded redis-server, data in var/redis.db
    max_body_bytes: int = 1_048_576  # webhook bodies above this answer 413
    batch_size: int = 200  # inbox events one worker job processes together
    lease_seconds: int = 300  # a claimed event nobody finished is claimable again after this
    max_attempts: int = 8  # then the event is dead and waits for a replay
    retry_base_seconds: float = 10.0  # backoff: base * 2**(attempt-1), jittered, capped at 1 h
    sweep_seconds: float = 5.0  # how often a worker looks for events that missed the queue
    connection_cache_seconds: float = 5.0  # webhook receiver's cache of connection secrets
    job_timeout_seconds: int = 240
    sqlite_synchronous: str = "FULL"  # FULL: an accepted delivery survives a power cut
    mappings_dir: str = ""  # empty: the mappings/ folder shipped with the hub
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'hub.db').resolve()}"

    @property
    def embedded_redis_path(self) -> Path:
        return (self.var_dir / "redis.db").resolve()


_CONVERTERS = {int: int, float: float, str: str, Path: Path}


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (HUB_<FIELD>), then explicit overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = env.get(f"HUB_{spec.name.upper()}")
        if raw is None or spec.name == "extra":
            continue
        kind = next(k for k in _CONVERTERS if isinstance(getattr(Settings(), spec.name), k))
        try:
            values[spec.name] = _CONVERTERS[kind](raw)
        except ValueError:
            raise ConfigurationError(
                f"HUB_{spec.name.upper()}={raw!r} is not a valid {kind.__name__}"
            ) from None
    settings = replace(Settings(), **values, **overrides)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    positive = ("max_body_bytes", "batch_size", "lease_seconds", "max_attempts")
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigurationError(f"HUB_{name.upper()} must be positive")
    if settings.sqlite_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigurationError("HUB_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA")
    url = settings.database_url
    if url and not url.startswith(("sqlite", "postgresql", "postgres://")):
        raise ConfigurationError("HUB_DATABASE_URL must be a sqlite:// or postgresql:// URL")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigurationError("HUB_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    if settings.sweep_seconds <= 0 or settings.retry_base_seconds <= 0:
        raise ConfigurationError("HUB_SWEEP_SECONDS and HUB_RETRY_BASE_SECONDS must be positive")
    if settings.job_timeout_seconds < 10:
        raise ConfigurationError("HUB_JOB_TIMEOUT_SECONDS must be at least 10")
