"""Eventbrite end to end: a thin order.placed delivery with the URL token through the receiver,
a burst worker reading the order back from a faked Eventbrite API, a golden contact out
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import responses

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eventbrite"
URL_TOKEN = "a-long-unguessable-url-token"
PRIVATE_TOKEN = "EVENTBRITEPRIVATETOKEN123"


def delivery(name: str) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    return json.dumps(fixture["body"]).encode(), fixture["headers"]


def test_an_order_webhook_becomes_the_buyer_read_back_from_eventbrite(client, runtime,
                                                                     admin_token):
    admin.add_connection(runtime.engine, name="tickets", connector="eventbrite",
                         secrets=[URL_TOKEN], actor="test",
                         settings={"organization_id": "123456789012", "default_region": "US",
                                   "private_token": PRIVATE_TOKEN})
    body, headers = delivery("order_placed")
    refused = client.post("/webhooks/tickets?token=wrong", data=body, headers=headers)
    assert refused.status_code == 401
    accepted = client.post(f"/webhooks/tickets?token={URL_TOKEN}", data=body, headers=headers)
    assert (accepted.status_code, accepted.json["status"]) == (202, "accepted")
    body, headers = delivery("test")
    ignored = client.post(f"/webhooks/tickets?token={URL_TOKEN}", data=body, headers=headers)
    assert (ignored.status_code, ignored.json["status"]) == (200, "ignored")
    order = json.loads((FIXTURES / "api" / "order_8123456789.json").read_text())
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "https://www.eventbriteapi.com/v3/orders/8123456789/", json=order,
                 match=[responses.matchers.query_param_matcher({"expand": "attendees,event"}),
                        responses.matchers.header_matcher(
                            {"Authorization": f"Bearer {PRIVATE_TOKEN}"})])
        run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 1, "ignored": 1}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    [contact] = response.json["items"]
    assert contact["email"] == "tomas.okafor@example.net"
    assert (contact["first_name"], contact["last_name"]) == ("Tomás", "Okafor")
    assert contact["external_ids"] == []
    assert contact["commerce"]["first_order_at"] == "2026-11-03T18:22:41+00:00"
    assert contact["scheduling"]["next_booking_at"] == "2026-11-21T15:00:00+00:00"
