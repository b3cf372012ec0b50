"""Odoo end to end: automation-rule webhooks with the URL token through the receiver and a burst
worker, golden records out (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo"
TOKEN = "odoo-url-token-for-tests"


def body_of(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())["body"]).encode()


def test_odoo_partner_webhooks_become_golden_contacts(client, runtime, admin_token):
    admin.add_connection(runtime.engine, name="odoo", connector="odoo", secrets=[TOKEN],
                         actor="test", settings={"url": "https://mycompany.odoo.com",
                                                 "database": "mycompany",
                                                 "username": "api@mycompany.example",
                                                 "api_key": "k", "default_region": "US"})
    headers = {"Content-Type": "application/json"}
    for name in ("partner_person", "partner_company"):
        response = client.post(f"/webhooks/odoo?token={TOKEN}", data=body_of(name),
                               headers=headers)
        assert (response.status_code, response.json["status"]) == (202, "accepted")
    lead = client.post(f"/webhooks/odoo?token={TOKEN}", data=body_of("crm_lead"), headers=headers)
    assert (lead.status_code, lead.json["status"]) == (200, "ignored")
    no_date = json.loads(body_of("partner_person"))
    del no_date["write_date"]
    refused = client.post(f"/webhooks/odoo?token={TOKEN}", data=json.dumps(no_date),
                          headers=headers)
    assert refused.status_code == 400
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2, "ignored": 1}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    people = {c["email"]: c for c in response.json["items"]}
    assert sorted(people) == ["chloe.martin@example.net", "contact@atelier-lumiere.example"]
    chloe = people["chloe.martin@example.net"]
    assert (chloe["first_name"], chloe["company"]) == ("Chloé", "Atelier Lumière SARL")
    assert chloe["consent"]["email"]["status"] == "withdrawn"
    assert chloe["finance"] == {"balance": 412.8, "credit_status": "normal",
                                "erp_customer_id": "87"}
    company = people["contact@atelier-lumiere.example"]
    assert (company["company"], company["first_name"]) == ("Atelier Lumière SARL", None)
