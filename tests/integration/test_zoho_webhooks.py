"""Zoho Books end to end: workflow-rule webhooks (default payload and form) with the URL token
through the receiver and a burst worker, golden records out (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoho"
TOKEN = "zoho-url-token-for-tests"


def delivery(name: str) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    body = fixture["body"]
    return (body.encode() if isinstance(body, str) else json.dumps(body).encode(),
            fixture["headers"])


def test_zoho_webhooks_become_golden_contacts(client, runtime, admin_token):
    admin.add_connection(runtime.engine, name="zb", connector="zoho", secrets=[TOKEN],
                         actor="test", settings={"organization_id": "10234695",
                                                 "default_region": "US", "client_id": "c",
                                                 "client_secret": "s", "refresh_token": "r"})
    for name in ("contact_default_payload", "contact_form_entity_params"):
        body, headers = delivery(name)
        response = client.post(f"/webhooks/zb?token={TOKEN}", data=body, headers=headers)
        assert (response.status_code, response.json["status"]) == (202, "accepted")
    body, headers = delivery("contact_default_payload")
    assert client.post("/webhooks/zb?token=guessed", data=body, headers=headers).status_code == 401
    again = client.post(f"/webhooks/zb?token={TOKEN}", data=body, headers=headers)
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    people = {c["email"]: c for c in response.json["items"]}
    assert sorted(people) == ["lena.hollis@example.com", "marco.bellini@example.org"]
    lena = people["lena.hollis@example.com"]
    assert (lena["company"], lena["job_title"], lena["phone"]) == (
        "Harbor Lane Bakery", "Owner", "+15035550171")
    assert lena["finance"] == {"balance": 830.25, "erp_customer_id": "460000000026049"}
    assert lena["address"]["country"] == "US"
    assert people["marco.bellini@example.org"]["phone"] == "+393475550128"
