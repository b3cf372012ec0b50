"""A config file for rq's own command, `rq cron hub.cron_config --url $HUB_REDIS_URL`.

rq loads it as a module and reads what it registers: registering is this module's purpose, so
unlike every other module it acts on import. `hub scheduler` does the same without it.
"""

from rq import cron

from hub.cron import register_jobs, use_timezone
from hub.runtime import Runtime
from hub.sync_config import load_sync_settings

_settings = load_sync_settings()
use_timezone(_settings)
register_jobs(cron.register, Runtime.from_settings(), _settings)
