"""Mindbody end to end: the HEAD check, signed client and booking events through the receiver
and a burst worker, one golden contact out (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mindbody"
SIGNATURE_KEY = "/9osqfDc64iJ/2UXj+H1vREFCrrzCSOYGNt9A9bBAWg="


def delivery(name: str) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    body = json.dumps(fixture["body"]).encode()
    digest = hmac.new(SIGNATURE_KEY.encode(), body, hashlib.sha256).digest()
    return body, {**fixture["headers"],
                  "X-Mindbody-Signature": "sha256=" + base64.b64encode(digest).decode()}


def test_client_and_booking_events_become_one_golden_contact(client, runtime, admin_token):
    admin.add_connection(runtime.engine, name="studio", connector="mindbody",
                         secrets=[SIGNATURE_KEY], actor="test",
                         settings={"site_id": "451712", "default_region": "US"})
    assert client.head("/webhooks/studio").status_code == 200
    for name in ("client_updated", "client_created", "appointment_booking_created",
                 "client_deactivated"):
        body, headers = delivery(name)
        response = client.post("/webhooks/studio", data=body, headers=headers)
        assert response.status_code in (200, 202), response.json
    body, headers = delivery("client_created")
    assert client.post("/webhooks/studio", data=body, headers=headers).json["status"] == \
        "duplicate"
    assert client.post("/webhooks/studio", data=body.replace(b"true", b"false"),
                       headers=headers).status_code == 401
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 3, "ignored": 1}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    [contact] = response.json["items"]
    assert contact["external_ids"] == [{"connection": "studio", "external_id": "100001447"}]
    assert contact["email"] == "lucia.fernandez@example.com"
    assert contact["phone"] == "+13125550188"  # the update is newer than the create
    assert contact["consent"]["email"]["status"] == "denied"
    assert contact["address"]["city"] == "Chicago"
    assert contact["scheduling"]["last_booking_at"] == "2026-11-09T20:02:44+00:00"
