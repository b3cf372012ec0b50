"""Several workers meeting the same new people at the same moment never make two contacts.

Hundreds of deliveries, four per person from two tools (a Shopify customer and its order, a
Stripe customer and a guest checkout), shuffled and shared by four worker processes with
small batches so that deliveries for one person land in different workers' batches at once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select

from hub.adapters.db import admin, inbox, migrate
from hub.adapters.db.models import Contact, ContactIdentity, InboxEvent
from hub.config import load_settings
from hub.runtime import Runtime
from tests.support import load_fixture

pytestmark = pytest.mark.e2e
PEOPLE = 120
WORKERS = 4


def _deliveries() -> list[tuple[str, str, dict]]:
    """(connection, event type, body) for every person, shuffled."""
    shop = load_fixture("shopify", "customers_create")["body"]
    order = load_fixture("shopify", "orders_create")["body"]
    customer = load_fixture("stripe", "customer_created")["body"]
    checkout = load_fixture("stripe", "checkout_session_completed")["body"]
    items = []
    for n in range(PEOPLE):
        email = f"Racer.{n}@Example.com"
        address = dict(shop["default_address"], phone=None)
        items.append(("shop", "customers/create", dict(
            shop, id=5_000_000 + n, email=email, phone=None, default_address=address,
            addresses=[address])))
        items.append(("shop", "orders/create", dict(
            order, id=6_000_000 + n, email=email.lower(), phone=None,
            customer=dict(order["customer"], id=5_000_000 + n, email=email, phone=None),
            billing_address=dict(order["billing_address"], phone=None))))
        obj = dict(customer["data"]["object"], id=f"cus_race{n}", email=email.upper(),
                   phone=None)
        items.append(("pay", "customer.created", dict(customer, id=f"evt_c{n}",
                                                      data={"object": obj})))
        session = dict(checkout["data"]["object"], customer=None, customer_details=dict(
            checkout["data"]["object"]["customer_details"], email=f" racer.{n}@example.com ",
            phone=None))
        items.append(("pay", "checkout.session.completed", dict(
            checkout, id=f"evt_s{n}", data={"object": session})))
    random.Random(7).shuffle(items)
    return items


def test_four_workers_never_create_two_contacts_for_one_person(tmp_path, db_url, redis_url):
    env = {**os.environ, "HUB_VAR_DIR": str(tmp_path / "var"), "HUB_DATABASE_URL": db_url,
           "HUB_REDIS_URL": redis_url, "HUB_BATCH_SIZE": "8", "HUB_LOG_LEVEL": "WARNING"}
    rt = Runtime.from_settings(load_settings(env=env))
    migrate.upgrade(rt.engine)
    ids = {}
    for name, connector in (("shop", "shopify"), ("pay", "stripe")):
        ids[name] = admin.add_connection(rt.engine, name=name, connector=connector,
                                         secrets=["s"], settings={"default_region": "US"},
                                         actor="test").id
    for n, (connection, event_type, body) in enumerate(_deliveries()):
        headers = {"X-Shopify-API-Version": "2024-10"} if connection == "shop" else {}
        inbox.accept(rt.engine, connection_id=ids[connection], delivery_key=f"d{n}",
                     event_type=event_type, headers=headers, body=json.dumps(body).encode(),
                     status=inbox.ACCEPTED, now=datetime.now(UTC))
    for _ in range(WORKERS):
        rt.dispatcher.enqueue_drain()  # one drain per worker: all four start at once
    workers = [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--burst"],
                                env=env) for _ in range(WORKERS)]
    deadline = time.monotonic() + 180
    for worker in workers:
        worker.wait(timeout=max(1, deadline - time.monotonic()))
    engine = create_engine(db_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(InboxEvent.status, func.count())
                                     .group_by(InboxEvent.status)).all())
        contacts = conn.execute(select(func.count()).select_from(Contact)).scalar()
        per_email = conn.execute(
            select(ContactIdentity.value, func.count(func.distinct(ContactIdentity.contact_id)))
            .where(ContactIdentity.kind == "email").group_by(ContactIdentity.value)).all()
        externals = conn.execute(select(func.count()).select_from(ContactIdentity).where(
            ContactIdentity.kind == "external")).scalar()
    engine.dispose()
    rt.close()
    assert statuses == {"processed": 4 * PEOPLE}
    assert contacts == PEOPLE
    assert len(per_email) == PEOPLE and all(count == 1 for _, count in per_email)
    assert externals == 2 * PEOPLE  # a Shopify id and a Stripe id on each person
