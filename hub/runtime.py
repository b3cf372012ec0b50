"""The composition root: settings in, wired adapters out. Web, worker and CLI all start here.

Nothing is created at import time; a Runtime opens its database engine at once and its Redis
connection on first use, so a command that needs only the database never starts a Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import redis
from sqlalchemy import Engine

from hub.adapters.db.engine import make_engine
from hub.adapters.db.mapping_store import DbMappingStore
from hub.adapters.mapping_files import FileMappingStore
from hub.adapters.queue import Dispatcher
from hub.adapters.redis_conn import open_redis
from hub.config import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    mappings: DbMappingStore  # per connection: the active stored version, else mappings/
    closers: list[Callable[[], None]] = field(default_factory=list)  # run by close(), first

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Runtime:
        settings = settings or load_settings()
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(
            settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        files = FileMappingStore(Path(settings.mappings_dir)) if settings.mappings_dir else \
            FileMappingStore()
        return cls(settings=settings, engine=engine, mappings=DbMappingStore(engine, files))

    @cached_property
    def redis(self) -> redis.Redis:
        return open_redis(self.settings.redis_url, self.settings.embedded_redis_path)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.redis, job_timeout=self.settings.job_timeout_seconds)

    def close(self) -> None:
        for closer in self.closers:
            closer()
        self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
