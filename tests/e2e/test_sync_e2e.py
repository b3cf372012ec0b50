"""The nightly sync end to end: `hub sync run`, `hub scheduler` and real worker processes
against the fake vendors on loopback, on SQLite and PostgreSQL. A run heals what webhooks
missed; a worker killed mid-sync is replaced and the run resumes without duplicates or gaps;
a 429 storm slows it without losing anything; refused credentials stop one connection only;
an unsubscribed contact is never pushed as subscribed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import create_engine, func, select

from hub.adapters.db import admin, sync_store
from hub.adapters.db.models import Contact, ContactIdentity, InboxEvent
from tests.fakevendor.server import FakeVendorServer, seeded
from tests.support import free_port, stop

pytestmark = pytest.mark.e2e
HUB = [sys.executable, "-m", "hub.cli"]
STRIPE_SECRET = "whsec_sync_e2e_secret"
LIST = "5e8a1c0b7d"


def vendors(**seed: float) -> Callable[[Any], Any]:
    """How the fake vendors are seeded for a test (see tests.fakevendor.server.seeded)."""

    def mark(test: Any) -> Any:
        test.vendors = seed
        return test

    return mark


@dataclass
class SyncHub:
    env: dict[str, str]
    db_url: str
    fake: FakeVendorServer
    base: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*HUB, *args], env=self.env, capture_output=True, text=True,
                              timeout=240, check=False)
        if ok:
            assert done.returncode == 0, done.stderr + done.stdout
        return done

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*HUB, *args], env=self.env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def connect(self, name: str, connector: str, *pairs: str, secret: str | None = None
                ) -> None:
        key = {"stripe": "api_key", "hubspot": "access_token", "mailchimp": "api_key",
               "activecampaign": "api_key"}[connector]
        vendor = "ac" if connector == "activecampaign" else connector
        args = ["connections", "add", name, "--connector", connector,
                "--setting", f"{key}={self.fake.state.keys[vendor]}",
                "--setting", f"api_base_url={self.fake.base(connector)}"]
        for pair in pairs:
            args += ["--setting", pair]
        args += ["--webhook-secret", secret or f"{name}-webhook-secret"]
        self.cli(*args)

    def serve(self) -> None:
        port = free_port()
        self.spawn("serve", "--port", str(port), "--workers", "1")
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        pytest.fail("the served hub never became ready")

    def runs(self) -> list[dict]:
        engine = create_engine(self.db_url)
        try:
            return sync_store.list_runs(engine, connection=None, status=None, before=None,
                                        limit=50)[0]
        finally:
            engine.dispose()

    def wait_for_runs(self, count: int, timeout: float = 240) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) >= count and all(r["status"] != "running" for r in runs):
                return runs
            time.sleep(0.3)
        raise AssertionError(f"runs still going after {timeout} s: {self.runs()}")

    def scalar(self, query) -> int:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(query).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
def sync_hub(tmp_path: Path, db_url: str, redis_url: str, request) -> Iterator[SyncHub]:
    state = seeded(**getattr(request.function, "vendors", {}))
    with FakeVendorServer(state) as fake:
        env = {**os.environ, "HUB_VAR_DIR": str(tmp_path / "var"), "HUB_DATABASE_URL": db_url,
               "HUB_REDIS_URL": redis_url, "HUB_LEASE_SECONDS": "5", "HUB_SWEEP_SECONDS": "0.5",
               "HUB_LOG_LEVEL": "WARNING", "HUB_SYNC_LOCK_SECONDS": "3",
               "HUB_SYNC_WATCHDOG_SECONDS": "1", "HUB_SYNC_CHUNK_RECORDS": "100",
               "HUB_SYNC_JOB_SECONDS": "3"}
        hub = SyncHub(env, db_url, fake)
        hub.cli("init")
        yield hub
        for process in hub.processes:
            stop(process)


def stripe_event(customer: dict, number: int) -> tuple[bytes, dict[str, str]]:
    import stripe

    event = {"id": f"evt_sync_{number}", "object": "event", "type": "customer.created",
             "created": customer["created"], "api_version": "2024-06-20", "livemode": False,
             "data": {"object": customer}}
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_SECRET)
    return payload.encode(), {"Content-Type": "application/json", "Stripe-Signature": signature}


@vendors(stripe=60)
def test_a_nightly_run_heals_the_deliveries_webhooks_missed(sync_hub):
    hub = sync_hub
    hub.connect("pay", "stripe", "default_region=US", secret=STRIPE_SECRET)
    hub.serve()
    hub.spawn("worker")
    hub.spawn("worker")
    customers = [hub.fake.state.stripe.get(f"cus_{i:08d}") for i in range(60)]
    delivered = [c for i, c in enumerate(customers) if i % 4]  # every fourth one is lost
    for number, customer in enumerate(delivered):
        body, headers = stripe_event(customer, number)
        assert requests.post(f"{hub.base}/webhooks/pay", data=body, headers=headers,
                             timeout=10).status_code == 202
    deadline = time.monotonic() + 60
    while hub.scalar(select(func.count()).select_from(InboxEvent).where(
            InboxEvent.status == "processed")) < len(delivered):
        assert time.monotonic() < deadline, "the webhooks were never processed"
        time.sleep(0.2)
    assert hub.scalar(select(func.count()).select_from(Contact)) == 45
    done = hub.cli("sync", "run", "--connection", "pay")
    assert "healed 15 contacts that webhooks missed" in done.stdout
    token = hub.cli("tokens", "create", "--role", "viewer").stdout.split()[-1]
    [run] = requests.get(f"{hub.base}/api/v1/syncs", timeout=10, headers={
        "Authorization": f"Bearer {token}"}).json()["items"]
    assert (run["status"], run["pull"]["created"], run["pull"]["unchanged"]) == \
        ("succeeded", 15, 45)
    assert hub.scalar(select(func.count()).select_from(Contact)) == 60


@vendors(stripe=2500, hubspot=2500, overlap=0.5)
def test_a_worker_killed_mid_sync_is_replaced_and_nothing_is_lost_or_doubled(sync_hub):
    hub = sync_hub
    hub.connect("pay", "stripe", "rate_limit=200/1")
    hub.connect("crm", "hubspot", "rate_limit=200/1")
    hub.spawn("scheduler")
    victim = hub.spawn("worker")
    hub.cli("sync", "run", "--no-wait")
    deadline = time.monotonic() + 120
    while sum(r["pull"]["records_done"] for r in hub.runs()) < 800:
        assert time.monotonic() < deadline, "the sync never got going"
        time.sleep(0.1)
    stop(victim, signal.SIGKILL)  # kill -9 in the middle of the sync
    hub.spawn("worker")
    hub.spawn("worker")
    runs = hub.wait_for_runs(2)
    assert sorted(r["status"] for r in runs) == ["succeeded", "succeeded"], runs
    assert any(r["resumes"] for r in runs)  # the scheduler's watchdog took over a dead run
    for run in runs:  # every record committed once: no page lost, none counted twice
        assert run["pull"]["records_read"] == run["pull"]["records_done"] == 2500, run
    people = 3750  # 2500 in Stripe, 2500 in HubSpot, 1250 of them in both
    assert hub.scalar(select(func.count()).select_from(Contact)) == people
    assert hub.scalar(select(func.count(func.distinct(Contact.email)))) == people
    assert hub.scalar(select(func.count()).select_from(ContactIdentity)) == people + 5000


@vendors(stripe=400)
def test_a_429_storm_slows_the_sync_but_loses_nothing(sync_hub):
    hub = sync_hub
    hub.connect("pay", "stripe")
    hub.fake.state.faults["stripe"].storm = 4  # four 429s in a row, each asking for 1 s
    hub.fake.state.faults["stripe"].retry_after = 1.0
    hub.fake.state.faults["stripe"].error_rate = 0.05  # and the odd 503
    hub.spawn("worker")
    started = time.monotonic()
    hub.cli("sync", "run", "--connection", "pay", "--no-wait")
    [run] = hub.wait_for_runs(1, timeout=90)
    elapsed = time.monotonic() - started
    assert run["status"] == "succeeded" and run["pull"]["created"] == 400
    assert hub.fake.state.counts["stripe:429"] == 4
    assert elapsed >= 4.0  # it waited as long as the vendor asked, every time
    assert hub.scalar(select(func.count()).select_from(Contact)) == 400


@vendors(stripe=50, hubspot=80, overlap=0.0)
def test_refused_credentials_stop_one_connection_and_the_others_complete(sync_hub):
    hub = sync_hub
    hub.connect("pay", "stripe")
    hub.connect("crm", "hubspot")
    hub.fake.state.keys["stripe"] = "rk_test_rotated_by_someone"  # the hub's key is now wrong
    hub.spawn("worker")
    done = hub.cli("sync", "run", ok=False)
    assert done.returncode == 1
    runs = {r["connection"]: r for r in hub.runs()}
    assert runs["pay"]["status"] == "needs_attention"
    assert runs["crm"]["status"] == "succeeded" and runs["crm"]["pull"]["created"] == 80
    engine = create_engine(hub.db_url)
    info = admin.get_connection(engine, "pay")
    engine.dispose()
    assert info.status == "needs_attention"
    assert "refused the credentials" in info.status_detail
    assert "rk_test_fakevendor" not in info.status_detail


def mailchimp_member(n: int, status: str, changed: str) -> dict:
    email = f"person{n}@example.com"
    import hashlib

    member = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()
    return {"id": member, "email_address": email, "status": status, "list_id": LIST,
            "merge_fields": {"FNAME": f"Person{n}", "LNAME": "Example"},
            "timestamp_opt": changed, "last_changed": changed}


@vendors(hubspot=10, overlap=0.0)
def test_an_unsubscribed_contact_is_never_pushed_as_subscribed(sync_hub):
    hub = sync_hub
    for n in range(10):
        member = mailchimp_member(n, "subscribed", "2026-10-01T10:00:00+00:00")
        hub.fake.state.mailchimp.put(member["id"], member)
    hub.connect("news", "mailchimp", f"list_id={LIST}", secret="news-token-1234")
    hub.connect("ac", "activecampaign", "api_url=https://example.api-us1.com", "list_id=3")
    hub.connect("crm", "hubspot", secret="crm-webhook-secret")
    hub.serve()
    hub.spawn("worker")
    hub.spawn("worker")
    hub.cli("sync", "run")  # everyone subscribed in Mailchimp, all of them HubSpot contacts
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    form = {"type": "unsubscribe", "fired_at": now, "data[action]": "unsub",
            "data[reason]": "manual", "data[list_id]": LIST, "data[id]": "8a25ff1d98",
            "data[email]": "person3@example.com", "data[merges][FNAME]": "Person3",
            "data[merges][LNAME]": "Example"}
    answer = requests.post(f"{hub.base}/webhooks/news?token=news-token-1234",
                           data=urlencode(form), timeout=10, headers={
                               "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 202
    deadline = time.monotonic() + 60
    while "person3@example.com" not in hub.fake.state.hubspot_unsubscribed:
        assert time.monotonic() < deadline, "the unsubscribe never reached HubSpot"
        time.sleep(0.2)
    ac = [c for c in hub.fake.state.ac.items.values() if c["email"] == "person3@example.com"]
    assert len(ac) == 1 and hub.fake.state.ac_lists[("3", ac[0]["id"])] == "2"
    # Mailchimp's API still serves its stale "subscribed" copy (never told otherwise): a full
    # re-read of every tool cannot resubscribe the contact anywhere
    hub.cli("sync", "run", "--full")
    to_mailchimp = [c for c in hub.fake.state.calls if c.vendor == "mailchimp" and
                    c.method == "PUT" and isinstance(c.body, dict)]
    subscribed = [c for c in to_mailchimp if c.body.get("email_address") == "person3@example.com"
                  and "subscribed" in (c.body.get("status"), c.body.get("status_if_new"))]
    assert subscribed == []  # the others are subscribed: pushing their names is fine
    assert all(c.body.get("email_address") for c in to_mailchimp)  # the filter can match
    assert [c.body for c in hub.fake.state.calls if c.path.endswith("/contactLists")] == [
        {"contactList": {"list": "3", "contact": ac[0]["id"], "status": 2}}]
    engine = create_engine(hub.db_url)
    with engine.connect() as conn:
        data = conn.execute(select(Contact.data).where(
            Contact.email == "person3@example.com")).scalar_one()
    engine.dispose()
    assert data["consent.email.status"] == "withdrawn"
