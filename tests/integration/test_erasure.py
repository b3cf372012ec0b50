"""Erasure, export and the audit log end to end (tool deletes faked with `responses`)."""

from __future__ import annotations

import json

import responses
from sqlalchemy import func, select

from hub.adapters.db import admin
from hub.adapters.db.models import ContactIdentity, InboxEvent
from hub.services.erasure import delete_in_tools
from hub.worker_process import run_worker
from tests.support import shopify_delivery, stripe_delivery

CUSTOMER = "https://api.stripe.com/v1/customers/cus_3QCI33jOqw5LoV"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(client, runtime) -> int:
    admin.update_connection(runtime.engine, "pay", secrets=None,
                            settings={"api_key": "rk_test_eraser"}, actor="test")
    for connection, (body, headers) in (("pay", stripe_delivery("customer_created")),
                                        ("shop", shopify_delivery("customers_create"))):
        assert client.post(f"/webhooks/{connection}", data=body, headers=headers
                           ).status_code == 202
    run_worker(runtime, burst=True)
    contacts = client.get("/api/v1/contacts?email=maya.exemplar@example.org",
                          headers={"Authorization": "Bearer " + _token(runtime)}).json
    return int(contacts["items"][0]["id"])


def _token(runtime) -> str:
    return admin.create_token(runtime.engine, name="seed", role="viewer", actor="test")


def test_export_holds_the_record_its_provenance_consent_history_and_sources(
    client, runtime, admin_token
):
    body, headers = shopify_delivery("customers_create")
    client.post("/webhooks/shop", data=body, headers=headers)
    run_worker(runtime, burst=True)
    [contact] = client.get("/api/v1/contacts", headers=auth(admin_token)).json["items"]
    response = client.get(f"/api/v1/contacts/{contact['id']}/export", headers=auth(admin_token))
    assert response.status_code == 200
    exported = response.json
    assert exported["contact"]["provenance"]["email"]["connection"] == "shop"
    assert [h["status"] for h in exported["consent_history"] if h["channel"] == "email"] == \
        ["granted"]
    assert exported["source_deliveries"][0]["event_type"] == "customers/create"
    assert any(a["action"] == "contact.created" for a in exported["audit"])


def test_a_viewer_can_neither_erase_nor_export(client, runtime, viewer_token):
    assert client.post("/api/v1/contacts/1/erase", headers=auth(viewer_token)).status_code == 403
    assert client.get("/api/v1/contacts/1/export", headers=auth(viewer_token)).status_code == 403
    assert client.get("/api/v1/audit", headers=auth(viewer_token)).status_code == 403


@responses.activate
def test_an_erasure_reaches_every_tool_and_a_later_delivery_is_dropped(
    client, runtime, admin_token
):
    contact_id = seed(client, runtime)
    response = client.post(f"/api/v1/contacts/{contact_id}/erase",
                           json={"reason": "ticket 4711"}, headers=auth(admin_token))
    assert response.status_code == 202
    erasure_id = response.json["erasure_id"]
    assert response.json["receipt"]["tools"] == {"pay": {"status": "pending"}}

    # gone from the hub at once
    assert client.get("/api/v1/contacts?email=maya.exemplar@example.org",
                      headers=auth(admin_token)).json["items"] == []
    with runtime.engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(ContactIdentity).where(
            ContactIdentity.contact_id == contact_id)).scalar()
        bodies = [bytes(b) for b in conn.execute(select(InboxEvent.body)).scalars()]
    assert left == 0
    assert not any(b"maya" in b.lower() for b in bodies)

    # the tool delete fails once, then succeeds on the next round
    responses.add(responses.DELETE, CUSTOMER, status=503)
    responses.add(responses.DELETE, CUSTOMER, status=503)
    responses.add(responses.DELETE, CUSTOMER, status=503)
    responses.add(responses.DELETE, CUSTOMER, status=503)
    responses.add(responses.DELETE, CUSTOMER, status=503)
    first = _without_waiting(runtime, erasure_id)
    assert first["status"] == "pending"
    assert first["receipt"]["tools"]["pay"]["status"] == "failed"
    responses.add(responses.DELETE, CUSTOMER, json={"id": "cus_3QCI33jOqw5LoV",
                                                   "object": "customer", "deleted": True})
    second = _without_waiting(runtime, erasure_id)
    assert second["status"] == "completed"
    assert second["receipt"]["tools"]["pay"]["status"] == "deleted"
    receipt = client.get(f"/api/v1/erasures/{erasure_id}", headers=auth(admin_token)).json
    assert receipt["receipt"]["hub"]["removed"]["identities"] >= 2
    assert receipt["status"] == "completed"

    # the same person arrives again from Stripe: dropped, flagged, not stored
    body, headers = stripe_delivery("customer_updated")
    assert client.post("/webhooks/pay", data=body, headers=headers).status_code == 202
    run_worker(runtime, burst=True)
    assert client.get("/api/v1/contacts?email=maya.exemplar@example.org",
                      headers=auth(admin_token)).json["items"] == []
    flags = client.get("/api/v1/flags?kind=compliance", headers=auth(admin_token)).json["items"]
    assert any("for an erased person was dropped" in f["summary"] for f in flags)
    with runtime.engine.connect() as conn:
        last = conn.execute(select(InboxEvent.body, InboxEvent.result)
                            .order_by(InboxEvent.id.desc())).first()
    assert bytes(last.body) == b"" and last.result["dropped"]

    audit = client.get(f"/api/v1/audit?entity_type=contact&entity_id={contact_id}",
                       headers=auth(admin_token)).json["items"]
    assert audit[0]["action"] == "contact.erased"
    assert audit[0]["details"]["reason"] == "ticket 4711"
    assert "maya" not in json.dumps(audit).lower()


def _without_waiting(runtime, erasure_id: int) -> dict:
    from unittest import mock

    with mock.patch("time.sleep"):
        return delete_in_tools(runtime.engine, erasure_id)


def test_a_tool_without_a_delete_is_named_in_the_receipt(client, runtime, admin_token):
    body, headers = shopify_delivery("customers_create")
    client.post("/webhooks/shop", data=body, headers=headers)
    run_worker(runtime, burst=True)
    [contact] = client.get("/api/v1/contacts", headers=auth(admin_token)).json["items"]
    erased = client.post(f"/api/v1/contacts/{contact['id']}/erase", headers=auth(admin_token))
    result = delete_in_tools(runtime.engine, erased.json["erasure_id"])
    assert result["status"] == "completed"
    assert result["receipt"]["tools"]["shop"]["status"] == "not_supported"
    assert "delete the record there by hand" in result["receipt"]["tools"]["shop"]["detail"]
