"""The schedule, on RQ's own cron scheduler (rq.cron): no scheduling loop of the hub's own.

At start the scheduler registers one job per connection that can be pulled or pushed, at the
connection's `sync_cron` setting (default HUB_SYNC_SYNC_CRON, "0 2 * * *"), read in
HUB_TIMEZONE (default UTC), plus the watchdog that resumes runs whose workers died. Run exactly
one scheduler (rq.cron has no leader election); restart it after adding a connection or
changing a schedule. `hub scheduler` runs it; `rq cron hub.cron_config` (with the same HUB_*
variables) registers the same jobs through rq's own command.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from croniter import croniter

from hub.adapters.db import admin
from hub.domain.errors import ConfigurationError
from hub.runtime import Runtime
from hub.services.sync_run import syncable
from hub.sync_config import SyncSettings, load_sync_settings

log = logging.getLogger(__name__)
OFF = ("off", "none", "never", "")


def use_timezone(settings: SyncSettings) -> None:
    """rq.cron reads cron fields in the process's local time: make that HUB_TIMEZONE."""
    os.environ["TZ"] = settings.timezone
    time.tzset()


def schedules(rt: Runtime, settings: SyncSettings) -> dict[str, str]:
    """Connection name -> cron expression, for every connection with a schedule."""
    plan = {}
    connections = admin.list_connections(rt.engine)
    by_name = {c.name: c for c in connections}
    for name in syncable(connections):
        expression = str(by_name[name].settings.get("sync_cron") or settings.sync_cron).strip()
        if expression.lower() in OFF:
            continue
        if not croniter.is_valid(expression):
            raise ConfigurationError(f"connection {name!r}: sync_cron {expression!r} is not a "
                                     "cron expression (like 0 2 * * *)")
        plan[name] = expression
    return plan


def register_jobs(register: Callable[..., Any], rt: Runtime,
                  settings: SyncSettings | None = None) -> dict[str, str]:
    """Register the sync jobs with `register` (rq.cron.register or a CronScheduler's)."""
    from hub import sync_jobs

    settings = settings or load_sync_settings()
    plan = schedules(rt, settings)
    for name, expression in plan.items():
        register(sync_jobs.start_sync, "sync", kwargs={"connection": name, "trigger": "cron"},
                 cron=expression, name=f"hub-sync:{name}", result_ttl=0)
        log.info("sync of %s scheduled at %r (%s)", name, expression, settings.timezone)
    register(sync_jobs.watch_syncs, "sync", interval=settings.watchdog_seconds,
             name="hub-sync-watchdog", result_ttl=0)
    return plan


def run_scheduler(rt: Runtime, settings: SyncSettings | None = None) -> None:
    """`hub scheduler`: rq's CronScheduler with the hub's jobs, until SIGTERM or Ctrl-C."""
    from rq.cron import CronScheduler

    settings = settings or load_sync_settings()
    use_timezone(settings)
    scheduler = CronScheduler(connection=rt.redis, logging_level=rt.settings.log_level)
    register_jobs(scheduler.register, rt, settings)
    scheduler.start()
