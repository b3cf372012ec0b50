"""Compliance end to end: card numbers never stored, the data audit, withdrawal wins."""

from __future__ import annotations

import json

from sqlalchemy import select

from hub.adapters.db.models import Contact, InboxEvent
from hub.worker_process import run_worker
from tests.support import load_fixture, shopify_signature


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shopify(topic: str = "customers/update", event: str = "e1", **changes: object
            ) -> tuple[bytes, dict]:
    fixture = load_fixture("shopify", "customers_create")
    body = json.dumps({**fixture["body"], **changes}).encode()
    return body, {**fixture["headers"], "X-Shopify-Topic": topic, "X-Shopify-Event-Id": event,
                  "X-Shopify-Hmac-Sha256": shopify_signature(body)}


def deliver(client, runtime, *deliveries) -> None:
    for body, headers in deliveries:
        assert client.post("/webhooks/shop", data=body, headers=headers).status_code == 202
    run_worker(runtime, burst=True)


def test_a_card_number_in_a_note_is_never_stored(client, runtime, admin_token):
    card = "4111 1111 1111 1111"
    deliver(client, runtime, shopify(note=f"Please charge my card {card} for the next order"))
    with runtime.engine.connect() as conn:
        stored = conn.execute(select(InboxEvent.body)).scalar_one()
        data = conn.execute(select(Contact.data)).scalar_one()
    assert card not in bytes(stored).decode() and "4111111111111111" not in bytes(stored).decode()
    assert "[redacted card number]" in bytes(stored).decode()
    assert card not in json.dumps(data)
    flags = client.get("/api/v1/flags?kind=compliance", headers=auth(admin_token)).json["items"]
    assert any("card_number found in a free-text field" in f["summary"] for f in flags)


def test_an_id_that_passes_a_luhn_check_is_left_alone(client, runtime, admin_token):
    deliver(client, runtime, shopify(id=4111111111111111, note="no card here"))
    contact = client.get("/api/v1/contacts", headers=auth(admin_token)).json["items"][0]
    assert contact["external_ids"] == [{"connection": "shop", "external_id": "4111111111111111"}]


def test_the_data_audit_flags_role_and_disposable_addresses(client, runtime, admin_token):
    deliver(client, runtime, shopify(event="a", id=1, email="info@lima-studio.example"),
            shopify(event="b", id=2, email="someone@mailinator.com"))
    summaries = [f["summary"] for f in client.get("/api/v1/flags?kind=data_quality",
                                                  headers=auth(admin_token)).json["items"]]
    assert any(s.startswith("a role address") for s in summaries)
    assert any(s == "a disposable email domain: mailinator.com" for s in summaries)


def test_an_eea_contact_without_a_lawful_basis_is_flagged(client, runtime, admin_token):
    fixture = load_fixture("shopify", "customers_create")["body"]
    address = dict(fixture["default_address"], country_code="FR", country="France",
                   phone="+33612345678")
    deliver(client, runtime, shopify(default_address=address, email_marketing_consent={
        "state": "not_subscribed", "opt_in_level": "single_opt_in", "consent_updated_at": None}))
    flags = client.get("/api/v1/flags?kind=compliance", headers=auth(admin_token)).json["items"]
    assert [f["summary"] for f in flags] == ["EU/EEA contact without a recorded lawful basis"]


def test_an_old_subscribed_replayed_after_an_unsubscribe_stays_unsubscribed(
    client, runtime, admin_token
):
    subscribed = {"state": "subscribed", "opt_in_level": "confirmed_opt_in",
                  "consent_updated_at": "2026-10-01T10:00:00-05:00"}
    unsubscribed = {"state": "unsubscribed", "opt_in_level": "confirmed_opt_in",
                    "consent_updated_at": "2026-11-20T10:00:00-05:00"}
    deliver(client, runtime,
            shopify(event="old", email_marketing_consent=subscribed,
                    updated_at="2026-10-01T10:00:00-05:00"),
            shopify(event="unsub", email_marketing_consent=unsubscribed,
                    updated_at="2026-11-20T10:00:00-05:00"))
    # the old "subscribed" comes again (a replay), and a later profile edit that still
    # carries the old consent date (a backfill from a stale copy)
    replay = client.post("/api/v1/events/1/replay", headers=auth(admin_token))
    assert replay.status_code == 202
    deliver(client, runtime, shopify(event="stale", email_marketing_consent=subscribed,
                                     updated_at="2026-11-22T10:00:00-05:00", note="moved"))
    [contact] = client.get("/api/v1/contacts", headers=auth(admin_token)).json["items"]
    assert contact["consent"]["email"]["status"] == "withdrawn"
    assert contact["notes"] == "moved"  # the rest of the stale delivery still applied
