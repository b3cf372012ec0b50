"""ERPNext end to end: a signed Contact webhook and an unsigned Customer webhook (URL token)
through the receiver and a burst worker, golden records out (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "erpnext"
SECRET = "frappe-webhook-secret-for-tests"


def body_of(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())["body"]).encode()


def test_erpnext_documents_become_golden_contacts(client, runtime, admin_token):
    admin.add_connection(runtime.engine, name="erp", connector="erpnext", secrets=[SECRET],
                         actor="test", settings={"url": "https://erp.example.com",
                                                 "time_zone": "Europe/Stockholm",
                                                 "default_region": "SE", "api_key": "k",
                                                 "api_secret": "s"})
    contact = body_of("contact_on_update")
    signature = base64.b64encode(hmac.new(SECRET.encode(), contact, hashlib.sha256).digest())
    signed = client.post("/webhooks/erp", data=contact,
                         headers={"X-Frappe-Webhook-Signature": signature.decode()})
    assert (signed.status_code, signed.json["status"]) == (202, "accepted")
    forged = client.post("/webhooks/erp", data=contact.replace(b"Sofia", b"Sonja"),
                         headers={"X-Frappe-Webhook-Signature": signature.decode()})
    assert forged.status_code == 401
    unsigned = client.post(f"/webhooks/erp?token={SECRET}", data=body_of("customer_after_insert"))
    assert (unsigned.status_code, unsigned.json["status"]) == (202, "accepted")
    invoice = client.post(f"/webhooks/erp?token={SECRET}", data=body_of("sales_invoice_on_submit"))
    assert (invoice.status_code, invoice.json["status"]) == (200, "ignored")
    run_worker(runtime, burst=True)
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2, "ignored": 1}
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"})
    people = {c["email"]: c for c in response.json["items"]}
    assert sorted(people) == ["jonas.weber@example.org", "sofia.lindqvist@example.com"]
    sofia = people["sofia.lindqvist@example.com"]
    assert sofia["consent"]["email"]["status"] == "withdrawn"
    assert sofia["finance"] == {"erp_customer_id": "Northwind Traders"}
    assert (sofia["job_title"], sofia["phone"]) == ("Purchasing Manager", "+46705550123")
    jonas = people["jonas.weber@example.org"]
    assert jonas["finance"] == {"credit_status": "normal", "erp_customer_id": "Jonas Weber"}
    assert jonas["external_ids"] == [{"connection": "erp", "external_id": "Jonas Weber"}]
