"""QuickBooks Online end to end: a signed notification through the receiver, a burst worker
reading the customers back from a faked QuickBooks API, golden records out (SQLite and
PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import responses
from sqlalchemy import select

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "quickbooks"
VERIFIER = "qbo-verifier-token-for-tests"
REALM = "9341455130166501"
API = f"https://quickbooks.api.intuit.com/v3/company/{REALM}"


def add_quickbooks(runtime) -> None:
    admin.add_connection(runtime.engine, name="books", connector="quickbooks",
                         secrets=[VERIFIER], actor="test",
                         settings={"realm_id": REALM, "default_region": "US",
                                   "client_id": "client-id", "client_secret": "client-secret",
                                   "refresh_token": "refresh-1"})


def delivery(name: str) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    body = json.dumps(fixture["body"]).encode()
    signature = base64.b64encode(hmac.new(VERIFIER.encode(), body, hashlib.sha256).digest())
    return body, {**fixture["headers"], "intuit-signature": signature.decode()}


def test_a_notification_becomes_golden_customers_read_back_from_quickbooks(
    client, runtime, admin_token
):
    add_quickbooks(runtime)
    body, headers = delivery("mixed_legacy")
    first = client.post("/webhooks/books", data=body, headers=headers)
    again = client.post("/webhooks/books", data=body, headers=headers)
    assert (first.status_code, first.json["status"]) == (200, "accepted")  # Intuit wants a 200
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    body, headers = delivery("invoice_created_cloudevents")
    ignored = client.post("/webhooks/books", data=body, headers=headers)
    assert (ignored.status_code, ignored.json["status"]) == (200, "ignored")
    forged = client.post("/webhooks/books", data=body.replace(b"130", b"131"), headers=headers)
    assert forged.status_code == 401
    with responses.RequestsMock() as rsps:
        for customer in ("58", "61"):
            rsps.add(responses.GET, f"{API}/customer/{customer}?minorversion=75",
                     json=json.loads((FIXTURES / "api" / f"customer_{customer}.json").read_text()),
                     match=[responses.matchers.header_matcher({"Accept": "application/json"})])
        run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 1, "ignored": 1}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    people = {c["email"]: c for c in response.json["items"]}
    assert sorted(people) == ["priya.raman@example.com", "tomas.ferreira@example.org"]
    priya = people["priya.raman@example.com"]
    assert priya["external_ids"] == [{"connection": "books", "external_id": "58"}]
    assert priya["finance"] == {"balance": 1250.5, "erp_customer_id": "58"}
    assert (priya["company"], priya["phone"]) == ("Raman Design Co", "+15105550142")
    assert priya["address"]["country"] == "US"
    assert people["tomas.ferreira@example.org"]["first_name"] == "Tomás"


def test_a_refresh_token_intuit_rotates_is_kept_for_the_next_call(client, runtime):
    """Intuit answers a refresh with a new refresh token and retires the old one: it is
    written to the connection at once, and its value appears in no audit line."""
    add_quickbooks(runtime)
    body, headers = delivery("mixed_legacy")
    assert client.post("/webhooks/books", data=body, headers=headers).status_code == 200
    token_url = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{API}/customer/58?minorversion=75", status=401,
                 json={"fault": {"error": [{"message": "AuthenticationFailed"}]}})
        rsps.add(responses.POST, token_url, json={
            "token_type": "bearer", "access_token": "access-2", "expires_in": 3600,
            "refresh_token": "refresh-2", "x_refresh_token_expires_in": 8726400},
            match=[responses.matchers.urlencoded_params_matcher(
                {"grant_type": "refresh_token", "refresh_token": "refresh-1"})])
        for customer in ("58", "61"):
            rsps.add(responses.GET, f"{API}/customer/{customer}?minorversion=75",
                     json=json.loads((FIXTURES / "api" / f"customer_{customer}.json").read_text()))
        run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 1}
    stored = admin.get_connection(runtime.engine, "books")
    assert stored.credentials["refresh_token"] == "refresh-2"
    with runtime.engine.connect() as conn:
        lines = conn.execute(select(admin.AUD.c.details).where(
            admin.AUD.c.action == "connection.token_rotated")).scalars().all()
    assert lines == [{"credential": "refresh_token"}]
