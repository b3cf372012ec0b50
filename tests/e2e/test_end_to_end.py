"""End to end: a served hub (gunicorn) and real worker processes, driven over HTTP with
deliveries signed the vendors' way, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from hub.adapters.db.models import Contact, ContactIdentity, InboxEvent
from tests.support import (
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    free_port,
    load_fixture,
    shopify_delivery,
    shopify_signature,
    stop,
    stripe_delivery,
)

pytestmark = pytest.mark.e2e
HUB = [sys.executable, "-m", "hub.cli"]


@dataclass
class Hub:
    base: str
    env: dict[str, str]
    token: str
    db_url: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run([*HUB, *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start_worker(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*HUB, "worker"], env=self.env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(process)
        return process

    def api(self, path: str) -> dict:
        response = requests.get(f"{self.base}{path}", timeout=10,
                                headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        return response.json()

    def post(self, connection: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.base}/webhooks/{connection}", data=body, headers=headers,
                             timeout=10)

    def wait_until_processed(self, expected: int, timeout: float = 90) -> None:
        engine = create_engine(self.db_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    done = conn.execute(select(func.count()).select_from(InboxEvent).where(
                        InboxEvent.status.in_(("processed", "dead", "ignored")))).scalar()
                if done >= expected:
                    return
                time.sleep(0.2)
        finally:
            engine.dispose()
        raise AssertionError(f"only {done} of {expected} events finished in {timeout} s")


@pytest.fixture
def hub(tmp_path: Path, db_url: str, redis_url: str) -> Iterator[Hub]:
    env = {**os.environ, "HUB_VAR_DIR": str(tmp_path / "var"), "HUB_DATABASE_URL": db_url,
           "HUB_REDIS_URL": redis_url, "HUB_LEASE_SECONDS": "3", "HUB_SWEEP_SECONDS": "0.5",
           "HUB_BATCH_SIZE": "25", "HUB_LOG_LEVEL": "WARNING"}
    probe = Hub("", env, "", db_url)
    probe.cli("init")
    probe.cli("connections", "add", "shop", "--connector", "shopify",
              "--webhook-secret", SHOPIFY_SECRET)
    probe.cli("connections", "add", "pay", "--connector", "stripe",
              "--webhook-secret", STRIPE_SECRET, "--setting", "default_region=US")
    token = probe.cli("tokens", "create", "--role", "admin").strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen([*HUB, "serve", "--port", str(port), "--workers", "2"], env=env,
                              start_new_session=True)
    running = Hub(f"http://127.0.0.1:{port}", env, token, db_url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{running.base}/readyz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        stop(server)
        pytest.fail("the served hub never became ready")
    yield running
    for worker in running.workers:
        stop(worker)
    stop(server)


def test_signed_shopify_and_stripe_deliveries_become_contacts_read_through_the_api(hub):
    hub.start_worker()
    sent = [("shop", shopify_delivery("customers_create")),
            ("shop", shopify_delivery("orders_create")),
            ("pay", stripe_delivery("customer_created")),
            ("pay", stripe_delivery("customer_updated")),
            ("pay", stripe_delivery("checkout_session_completed"))]
    for connection, (body, headers) in sent:
        assert hub.post(connection, body, headers).status_code == 202
    duplicate = hub.post("shop", *shopify_delivery("customers_create"))
    assert duplicate.json()["status"] == "duplicate"
    hub.wait_until_processed(len(sent))
    people = {c["email"]: c for c in hub.api("/api/v1/contacts")["items"]}
    assert sorted(people) == ["maya.exemplar@example.org", "nora.testwell@example.com",
                              "theo.placeholder@example.net"]
    maya = hub.api(f"/api/v1/contacts/{people['maya.exemplar@example.org']['id']}")
    assert maya["address"]["city"] == "Beaverton"  # customer.updated is the newer event
    assert maya["external_ids"] == [{"connection": "pay", "external_id": "cus_3QCI33jOqw5LoV"}]
    assert maya["provenance"]["address.city"]["connection"] == "pay"
    nora = people["nora.testwell@example.com"]
    assert nora["commerce"]["first_order_at"] == "2026-11-10T00:42:17+00:00"
    theo = people["theo.placeholder@example.net"]
    assert theo["consent"]["email"]["status"] == "granted"


def _many_people(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """`count` Shopify customers, each created and then updated: 2 deliveries a person."""
    template = load_fixture("shopify", "customers_create")
    deliveries = []
    for n in range(count):
        for step, topic in enumerate(("customers/create", "customers/update")):
            address = dict(template["body"]["default_address"], phone=f"+1212555{n:04d}")
            body = dict(template["body"], id=9_000_000 + n, email=f"person{n}@example.com",
                        phone=None, last_name=f"Number{n}-{step}", default_address=address,
                        addresses=[address], updated_at=f"2026-11-0{1 + step}T10:00:00-05:00")
            raw = json.dumps(body).encode()
            headers = {**template["headers"], "X-Shopify-Topic": topic,
                       "X-Shopify-Event-Id": f"evt-{n}-{step}",
                       "X-Shopify-Hmac-Sha256": shopify_signature(raw)}
            deliveries.append((raw, headers))
    return deliveries


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(hub):
    people = 300
    deliveries = _many_people(people)
    for body, headers in deliveries:
        assert hub.post("shop", body, headers).status_code == 202
    engine = create_engine(hub.db_url)
    victim = hub.start_worker()
    deadline = time.monotonic() + 30
    in_flight = 0
    while time.monotonic() < deadline and not in_flight:
        with engine.connect() as conn:
            in_flight = conn.execute(select(func.count()).select_from(InboxEvent).where(
                InboxEvent.status == "processing")).scalar()
    assert in_flight, "the worker never claimed a batch"
    stop(victim, signal.SIGKILL)  # kill -9 in the middle of a batch
    with engine.connect() as conn:
        stranded = conn.execute(select(func.count()).select_from(InboxEvent).where(
            InboxEvent.status == "processing")).scalar()
    hub.start_worker()
    hub.start_worker()
    hub.wait_until_processed(len(deliveries))
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(InboxEvent.status, func.count()).group_by(
            InboxEvent.status)).all())
        contacts = conn.execute(select(func.count()).select_from(Contact)).scalar()
        identities = conn.execute(select(func.count()).select_from(ContactIdentity)).scalar()
        last_names = {row[0].get("last_name") for row in conn.execute(select(Contact.data))}
    engine.dispose()
    assert statuses == {"processed": len(deliveries)}
    assert contacts == people
    assert identities == 3 * people  # an external id, an email, a phone each; never twice
    assert last_names == {f"Number{n}-1" for n in range(people)}  # the update always wins
    print(f"kill -9 left {stranded} events mid-batch; all reprocessed after their lease")
