"""The schedule rq's cron gets (one job per connection at its own time, the watchdog), and
the sync API: the run history for viewers, starting a run for admins."""

from __future__ import annotations

import pytest

from hub.adapters.db import admin
from hub.cron import register_jobs
from hub.domain.errors import ConfigurationError
from hub.sync_config import load_sync_settings
from tests.fakevendor.server import FakeVendorServer, seeded
from tests.integration.sync_helpers import connect, run_sync, sync_deps


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def registered(runtime, **settings) -> list[dict]:
    calls: list[dict] = []

    def register(func, queue_name, **options):
        calls.append({"func": f"{func.__module__}.{func.__name__}", "queue": queue_name,
                      **options})

    register_jobs(register, runtime, load_sync_settings(env={}, **settings))
    return calls


def test_each_connection_gets_its_own_cron_job_and_one_watchdog(runtime):
    admin.update_connection(runtime.engine, "pay", secrets=None,
                            settings={"sync_cron": "30 3 * * 1-5"}, actor="test")
    admin.update_connection(runtime.engine, "shop", secrets=None, settings={"sync_cron": "off"},
                            actor="test")
    calls = registered(runtime, watchdog_seconds=30, timezone="Europe/Paris")
    assert calls == [
        {"func": "hub.sync_jobs.start_sync", "queue": "sync", "cron": "30 3 * * 1-5",
         "kwargs": {"connection": "pay", "trigger": "cron"}, "name": "hub-sync:pay",
         "result_ttl": 0},
        {"func": "hub.sync_jobs.watch_syncs", "queue": "sync", "interval": 30,
         "name": "hub-sync-watchdog", "result_ttl": 0},
    ]


def test_the_default_schedule_is_nightly_and_a_bad_expression_is_refused(runtime):
    assert [c.get("cron") for c in registered(runtime)][:2] == ["0 2 * * *", "0 2 * * *"]
    admin.update_connection(runtime.engine, "pay", secrets=None,
                            settings={"sync_cron": "every night"}, actor="test")
    with pytest.raises(ConfigurationError, match="sync_cron"):
        registered(runtime)
    with pytest.raises(ConfigurationError, match="HUB_TIMEZONE"):
        load_sync_settings(env={"HUB_TIMEZONE": "Mars/Olympus"})


def test_the_api_lists_runs_and_shows_one_with_its_bookmarks(client, runtime, admin_token,
                                                              viewer_token):
    with FakeVendorServer(seeded(stripe=30)) as fake:
        connect(runtime, "stripe", "stripe", api_key=fake.state.keys["stripe"],
                api_base_url=fake.base("stripe"))
        deps, jobs = sync_deps(runtime)
        run_id = run_sync(deps, jobs, "stripe")["stripe"]
    listed = client.get("/api/v1/syncs?connection=stripe", headers=auth(viewer_token)).json
    assert [r["id"] for r in listed["items"]] == [run_id] and listed["next"] is None
    shown = client.get(f"/api/v1/syncs/{run_id}", headers=auth(viewer_token)).json
    assert shown["status"] == "succeeded" and shown["pull"]["healed"] == 30
    assert shown["summary"] == "healed 30 contacts that webhooks missed"
    assert shown["streams"][0]["records"] == 30 and shown["bookmarks"]["customers"]["value"]
    assert client.get("/api/v1/syncs/999", headers=auth(viewer_token)).status_code == 404
    assert client.get("/api/v1/syncs?status=lost", headers=auth(viewer_token)).status_code \
        == 400
    assert client.get("/api/v1/syncs").status_code == 401


def test_only_an_admin_starts_a_run_and_only_for_a_known_connection(client, runtime,
                                                                     admin_token, viewer_token):
    assert client.post("/api/v1/syncs", json={"connection": "pay"},
                       headers=auth(viewer_token)).status_code == 403
    assert client.post("/api/v1/syncs", json={"connection": "nope"},
                       headers=auth(admin_token)).status_code == 404
    answer = client.post("/api/v1/syncs", json={"connection": "pay", "full": True},
                         headers=auth(admin_token))
    assert answer.status_code == 202
    run_id = answer.json["started"]["pay"]
    run = client.get(f"/api/v1/syncs/{run_id}", headers=auth(admin_token)).json
    assert run["full"] is True and run["trigger"].startswith("api:token:")


def test_hub_sync_status_and_show_read_the_history(runtime, settings, monkeypatch):
    from click.testing import CliRunner

    from hub.cli import cli

    with FakeVendorServer(seeded(stripe=12)) as fake:
        connect(runtime, "stripe", "stripe", api_key=fake.state.keys["stripe"],
                api_base_url=fake.base("stripe"))
        deps, jobs = sync_deps(runtime)
        run_id = run_sync(deps, jobs, "stripe")["stripe"]
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("HUB_VAR_DIR", str(settings.var_dir))
    status = CliRunner().invoke(cli, ["sync", "status", "--no-watch"])
    assert status.exit_code == 0, status.output
    [line] = [row for row in status.output.splitlines() if " stripe " in row]
    assert line.split()[:3] == [str(run_id), "stripe", "succeeded"]
    shown = CliRunner().invoke(cli, ["sync", "show", str(run_id)])
    assert '"healed": 12' in shown.output
