"""WooCommerce end to end: the creation ping gets exactly 200 and is not stored; a signed
customer.updated and order.created (WordPress bytes, escaped slashes) are stored once each, even
when WooCommerce resends with a new Delivery-ID, and a worker turns them into one contact.
Runs on SQLite and PostgreSQL through the `db_url` fixture."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker
from tests.support import load_fixture

SECRET = "wc webhook secret & more"


def add_shop(runtime) -> None:
    admin.add_connection(runtime.engine, name="woo", connector="woocommerce", secrets=[SECRET],
                         settings={"site_url": "https://shop.example.com/",
                                   "default_region": "US"}, actor="test")


def signed(name: str, **overrides: str) -> tuple[bytes, dict[str, str]]:
    fixture = load_fixture("woocommerce", name)
    body = json.dumps(fixture["body"], separators=(",", ":")).replace("/", "\\/").encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    return body, {**fixture["headers"], "X-WC-Webhook-Signature": signature.decode(),
                  **overrides}


def test_the_creation_ping_gets_exactly_200_and_nothing_is_stored(client, runtime):
    add_shop(runtime)
    response = client.post("/webhooks/woo", data=b"webhook_id=7", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"})
    assert response.status_code == 200
    assert inbox.counts_by_status(runtime.engine) == {}


def test_a_customer_and_its_order_become_one_contact_and_a_resend_is_a_duplicate(
    client, runtime, admin_token
):
    add_shop(runtime)
    body, headers = signed("customer_updated")
    assert b"https:\\/\\/shop.example.com" in body
    assert client.post("/webhooks/woo", data=body, headers=headers).status_code == 202
    resend = client.post("/webhooks/woo", data=body, headers={
        **headers, "X-WC-Webhook-Delivery-ID": "99999999999999999999999999999999"})
    assert (resend.status_code, resend.json["status"]) == (200, "duplicate")
    body, headers = signed("order_created")
    assert client.post("/webhooks/woo", data=body, headers=headers).status_code == 202
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    [contact] = response.json["items"]
    assert contact["email"] == "chloe.martin@example.net"
    assert contact["first_name"] == "Chloé"
    assert contact["phone"] == "+33612345678"
    assert contact["address"]["country"] == "FR"
    assert contact["commerce"]["first_order_at"] == "2026-11-22T09:15:42+00:00"
    assert contact["external_ids"] == [{"connection": "woo", "external_id": "25"}]
