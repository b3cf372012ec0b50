"""Calendly end to end: signed invitee deliveries through the receiver and a burst worker
become one golden contact with its booking times (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calendly"
SIGNING_KEY = "calendly-signing-key-for-tests"


def delivery(name: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    body = json.dumps(fixture["body"]).encode()
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(SIGNING_KEY.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {**fixture["headers"], "Calendly-Webhook-Signature": f"t={t},v1={digest}"}


def test_a_booking_and_its_cancellation_become_one_golden_contact(client, runtime, admin_token):
    admin.add_connection(runtime.engine, name="meetings", connector="calendly",
                         secrets=[SIGNING_KEY], settings={"default_region": "US"}, actor="test")
    body, headers = delivery("invitee_created")
    first = client.post("/webhooks/meetings", data=body, headers=headers)
    again = client.post("/webhooks/meetings", data=body, headers=headers)
    assert (first.status_code, first.json["status"]) == (202, "accepted")
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    stale_body, stale_headers = delivery("invitee_canceled", int(time.time()) - 600)
    assert client.post("/webhooks/meetings", data=stale_body,
                       headers=stale_headers).status_code == 401
    body, headers = delivery("invitee_canceled")
    assert client.post("/webhooks/meetings", data=body, headers=headers).status_code == 202
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    [contact] = response.json["items"]
    assert contact["email"] == "priya.raman@example.com"
    assert (contact["first_name"], contact["last_name"]) == ("Priya", "Raman")
    assert contact["phone"] == "+15035550182"
    assert contact["external_ids"] == []  # an invitee URI names a booking, not the person
    assert contact["scheduling"]["next_booking_at"] == "2026-11-19T17:30:00+00:00"
    assert contact["scheduling"]["last_booking_at"] == "2026-11-12T16:04:27.612331+00:00"
