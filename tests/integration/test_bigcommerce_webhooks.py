"""BigCommerce end to end: a signed, thin store/customer/updated delivery is accepted, stored
once, read back from the (faked) Customers V3 API by a worker and becomes a canonical contact.
Runs on SQLite and PostgreSQL through the `db_url` fixture."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import responses

from hub.adapters.db import admin
from hub.worker_process import run_worker
from tests.support import load_fixture

SECRET = "bc_client_secret_for_tests_0123456789"
API = Path(__file__).resolve().parents[1] / "fixtures" / "bigcommerce" / "api"
CUSTOMERS = "https://api.bigcommerce.com/stores/a1b2c3d4e5/v3/customers"


def add_store(runtime) -> None:
    admin.add_connection(runtime.engine, name="bc", connector="bigcommerce", secrets=[SECRET],
                         settings={"store_hash": "a1b2c3d4e5", "default_region": "US",
                                   "access_token": "bc_token_for_tests_0123456789"},
                         actor="test")


def signed(name: str) -> tuple[bytes, dict[str, str]]:
    """The fixture signed now, the Standard Webhooks way, with the app's client secret."""
    fixture = load_fixture("bigcommerce", name)
    body = json.dumps(fixture["body"]).encode()
    stamp = str(int(time.time()))
    msg_id = fixture["headers"]["webhook-id"]
    digest = hmac.new(SECRET.encode(), f"{msg_id}.{stamp}.".encode() + body,
                      hashlib.sha256).digest()
    headers = {**fixture["headers"], "webhook-timestamp": stamp,
               "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    return body, headers


def test_a_thin_customer_webhook_becomes_the_customer_read_back_from_the_api(
    client, runtime, admin_token
):
    add_store(runtime)
    body, headers = signed("store_customer_updated")
    first = client.post("/webhooks/bc", data=body, headers=headers)
    again = client.post("/webhooks/bc", data=body, headers=headers)
    assert first.status_code == 202, first.json
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, CUSTOMERS, json=json.loads((API / "customers_32.json")
                                                           .read_text()))
        run_worker(runtime, burst=True)
        assert rsps.calls[0].request.headers["X-Auth-Token"] == "bc_token_for_tests_0123456789"
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    [contact] = response.json["items"]
    assert contact["email"] == "ben.okafor@example.org"
    assert contact["phone"] == "+13125550147"
    assert (contact["first_name"], contact["last_name"]) == ("Ben", "Okafor")
    assert contact["address"]["city"] == "Chicago"
    assert contact["address"]["country"] == "US"
    assert contact["external_ids"] == [{"connection": "bc", "external_id": "32"}]


def test_a_delivery_signed_with_another_secret_is_refused_and_not_stored(client, runtime):
    add_store(runtime)
    body, headers = signed("store_customer_updated")
    headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    response = client.post("/webhooks/bc", data=body, headers=headers)
    assert response.status_code == 401
    from hub.adapters.db import inbox

    assert inbox.counts_by_status(runtime.engine) == {}
