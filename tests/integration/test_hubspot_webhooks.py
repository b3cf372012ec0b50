"""HubSpot end to end: a signed batch through the receiver, a burst worker reading the contacts
back from a faked HubSpot API, golden records out (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import responses

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot"
SECRET = "hubspot-client-secret-for-tests"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CONTACTS = "https://api.hubapi.com/crm/v3/objects/contacts"


def add_hubspot(runtime) -> None:
    admin.add_connection(runtime.engine, name="hs", connector="hubspot", secrets=[SECRET],
                         settings={"access_token": TOKEN, "default_region": "US",
                                   "portal_id": "62515"}, actor="test")


def hubspot_delivery(name: str, url: str = "http://localhost/webhooks/hs"
                     ) -> tuple[bytes, dict[str, str]]:
    """The fixture as HubSpot posts it, signed v3 for the URL the test client serves."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    body = json.dumps(fixture["body"]).encode()
    stamp = str(int(time.time() * 1000))
    message = b"POST" + url.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    return body, {**fixture["headers"], "X-HubSpot-Signature-v3": signature.decode(),
                  "X-HubSpot-Request-Timestamp": stamp}


def contacts(client, token) -> dict[str, dict]:
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return {c["email"]: c for c in response.json["items"]}


def test_a_batched_property_change_becomes_two_golden_contacts(client, runtime, admin_token):
    add_hubspot(runtime)
    body, headers = hubspot_delivery("contact_property_change_batch")
    first = client.post("/webhooks/hs", data=body, headers=headers)
    again = client.post("/webhooks/hs", data=body, headers=headers)
    assert (first.status_code, first.json["status"]) == (202, "accepted")
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    with responses.RequestsMock() as rsps:
        for contact_id in ("2001", "2002"):
            rsps.add(responses.GET, f"{CONTACTS}/{contact_id}", json=json.loads(
                (FIXTURES / "api" / f"contact_{contact_id}.json").read_text()),
                match=[responses.matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])
        run_worker(runtime, burst=True)
        assert len(rsps.calls) == 2  # one read per contact, not per event
    assert inbox.counts_by_status(runtime.engine) == {"processed": 1}
    people = contacts(client, admin_token)
    assert sorted(people) == ["jonas.weber@example.org", "priya.raman@example.net"]
    jonas, priya = people["jonas.weber@example.org"], people["priya.raman@example.net"]
    assert (jonas["first_name"], jonas["last_name"]) == ("Jonas", "Weber-Lang")
    assert jonas["phone"] == "+4930901820"
    assert jonas["external_ids"] == [{"connection": "hs", "external_id": "2001"}]
    assert priya["consent"]["email"]["status"] == "withdrawn"
    assert priya["phone"] == "+13125550177"


def test_a_forged_or_foreign_delivery_is_refused_and_a_deletion_is_ignored(client, runtime):
    add_hubspot(runtime)
    body, headers = hubspot_delivery("contact_creation")
    forged = client.post("/webhooks/hs", data=body.replace(b"1001", b"1002"), headers=headers)
    assert forged.status_code == 401
    body, headers = hubspot_delivery("contact_creation", url="https://elsewhere.example/x")
    assert client.post("/webhooks/hs", data=body, headers=headers).status_code == 401
    body, headers = hubspot_delivery("contact_deletion")
    ignored = client.post("/webhooks/hs", data=body, headers=headers)
    assert (ignored.status_code, ignored.json["status"]) == (200, "ignored")
    assert inbox.counts_by_status(runtime.engine) == {"ignored": 1}
