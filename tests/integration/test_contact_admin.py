"""Admin actions end to end: merge with preview, undo, not-a-duplicate, conflicts, rules."""

from __future__ import annotations

import json

from hub.worker_process import run_worker
from tests.support import load_fixture, shopify_signature


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stripe_customer(event_id: str, created: int, **changes: object) -> tuple[bytes, dict]:
    import stripe

    from tests.support import STRIPE_SECRET

    fixture = load_fixture("stripe", "customer_created")
    body = dict(fixture["body"], id=event_id, created=created)
    body["data"] = {"object": {**fixture["body"]["data"]["object"], **changes}}
    if event_id.startswith("evt_upd"):
        body["type"] = "customer.updated"
    payload = json.dumps(body)
    signature = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_SECRET)
    return payload.encode(), {**fixture["headers"], "Stripe-Signature": signature}


def shopify_customer(**changes: object) -> tuple[bytes, dict]:
    fixture = load_fixture("shopify", "customers_create")
    body = json.dumps({**fixture["body"], **changes}).encode()
    return body, {**fixture["headers"], "X-Shopify-Hmac-Sha256": shopify_signature(body),
                  "X-Shopify-Event-Id": f"evt-{hash(body)}"}


def deliver(client, runtime, *items) -> None:
    for connection, (body, headers) in items:
        response = client.post(f"/webhooks/{connection}", data=body, headers=headers)
        assert response.status_code == 202, response.json
    run_worker(runtime, burst=True)


def people(client, token) -> dict[str, dict]:
    items = client.get("/api/v1/contacts", headers=auth(token)).json["items"]
    return {c["email"]: c for c in items}


def test_merge_preview_merge_and_undo_restore_both_people_exactly(client, runtime, admin_token):
    deliver(client, runtime, ("shop", shopify_customer()),
            ("pay", stripe_customer("evt_1", 1_790_000_000, email="nora@work.example",
                                    name="Nora Testwell")))
    before = people(client, admin_token)
    nora, work = before["nora.testwell@example.com"], before["nora@work.example"]
    pair = {"winner_id": nora["id"], "loser_id": work["id"], "reason": "same person"}

    preview = client.post("/api/v1/contacts/merge/preview", json=pair, headers=auth(admin_token))
    assert preview.status_code == 200
    assert "pay id cus_3QCI33jOqw5LoV" in preview.json["identities"]
    assert people(client, admin_token) == before  # a preview writes nothing

    merged = client.post("/api/v1/contacts/merge", json=pair, headers=auth(admin_token))
    assert merged.status_code == 201
    gone = client.get(f"/api/v1/contacts/{work['id']}", headers=auth(admin_token))
    assert gone.status_code == 410 and gone.json["merged_into"] == nora["id"]
    [one] = people(client, admin_token).values()
    assert set(one["emails"]) == {"nora.testwell@example.com", "nora@work.example"}
    assert {x["connection"] for x in one["external_ids"]} == {"shop", "pay"}

    # a later delivery for the merged-away Stripe customer lands on the winner
    deliver(client, runtime, ("pay", stripe_customer("evt_upd_2", 1_790_000_500,
                                                     email="nora@work.example",
                                                     name="Nora Testwell", phone=None)))
    assert len(people(client, admin_token)) == 1

    undo = client.post(f"/api/v1/merges/{merged.json['merge_id']}/undo",
                       headers=auth(admin_token))
    assert undo.status_code == 200 and undo.json["replayed_events"] >= 1
    run_worker(runtime, burst=True)
    after = people(client, admin_token)
    assert set(after) == set(before)
    for email in before:
        for key in ("id", "emails", "phones", "external_ids", "first_name", "last_name"):
            assert after[email][key] == before[email][key], (email, key)
    assert client.post(f"/api/v1/merges/{merged.json['merge_id']}/undo",
                       headers=auth(admin_token)).status_code == 409


def test_not_a_duplicate_is_remembered(client, runtime, admin_token):
    deliver(client, runtime, ("shop", shopify_customer()),
            ("shop", shopify_customer(id=999, first_name="Other")))
    flags = client.get("/api/v1/flags?kind=duplicate", headers=auth(admin_token)).json["items"]
    [flag] = flags
    assert "another contact already has" in flag["summary"]
    assert flag["details"]["reasons"] == ["same email", "same phone"]
    dismissed = client.post(f"/api/v1/flags/{flag['id']}/dismiss",
                            json={"reason": "a couple sharing an address"},
                            headers=auth(admin_token))
    assert dismissed.status_code == 200
    deliver(client, runtime, ("shop", shopify_customer(id=999, first_name="Other",
                                                       note="again")))
    again = client.get("/api/v1/flags?kind=duplicate", headers=auth(admin_token)).json["items"]
    assert [(f["id"], f["status"]) for f in again] == [(flag["id"], "dismissed")]


def test_a_conflict_is_flagged_and_resolved_by_a_manual_value(client, runtime, admin_token):
    from datetime import datetime, timedelta

    fixture = load_fixture("shopify", "customers_create")["body"]
    t0 = datetime.fromisoformat(fixture["updated_at"])
    deliver(client, runtime, ("shop", shopify_customer()),
            ("pay", stripe_customer("evt_a", int(t0.timestamp()) + 60,
                                    email=fixture["email"], phone=fixture["phone"])),
            ("shop", shopify_customer(email="nora.b@testwell.example",
                                      updated_at=(t0 + timedelta(minutes=5)).isoformat())))
    conflicts = client.get("/api/v1/flags?kind=conflict",
                           headers=auth(admin_token)).json["items"]
    [flag] = [f for f in conflicts if f["details"]["field"] == "email"]
    assert {v["connection"] for v in flag["details"]["values"]} == {"shop", "pay"}
    assert "pay says 'nora.testwell@example.com'" in flag["summary"]
    assert "shop says 'nora.b@testwell.example'" in flag["summary"]
    unknown = client.post(f"/api/v1/flags/{flag['id']}/resolve",
                          json={"value": "studio@testwell.example"}, headers=auth(admin_token))
    assert unknown.status_code == 422  # a new address arrives through a tool, not by hand
    assert "choose one of this contact's own emails" in unknown.json["detail"]
    chosen = client.post(f"/api/v1/flags/{flag['id']}/resolve",
                         json={"value": "nora.testwell@example.com"}, headers=auth(admin_token))
    assert chosen.status_code == 200
    deliver(client, runtime, ("shop", shopify_customer(
        email="nora.c@testwell.example", updated_at=(t0 + timedelta(days=2)).isoformat())))
    [contact] = people(client, admin_token).values()
    assert contact["email"] == "nora.testwell@example.com"  # the admin's choice holds
    assert "nora.c@testwell.example" in contact["emails"]


def test_manual_values_and_source_priority_rules(client, runtime, admin_token, viewer_token):
    deliver(client, runtime, ("shop", shopify_customer()))
    [contact] = people(client, admin_token).values()
    denied = client.patch(f"/api/v1/contacts/{contact['id']}", json={"fields": {}},
                          headers=auth(viewer_token))
    assert denied.status_code == 403
    edited = client.patch(f"/api/v1/contacts/{contact['id']}",
                          json={"fields": {"job_title": "Founder"}}, headers=auth(admin_token))
    assert edited.status_code == 200
    assert edited.json["provenance"]["job_title"]["connection"] == "admin"
    bad = client.patch(f"/api/v1/contacts/{contact['id']}",
                       json={"fields": {"address.country": "France"}},
                       headers=auth(admin_token))
    assert bad.status_code == 422 and "alpha-2" in bad.json["detail"]

    rule = client.put("/api/v1/survivorship/last_name",
                      json={"strategy": "source_priority", "sources": ["pay", "shop"]},
                      headers=auth(admin_token))
    assert rule.status_code == 200
    deliver(client, runtime, ("pay", stripe_customer("evt_p", 1_700_000_000,
                                                     email="nora.testwell@example.com",
                                                     name="Nora Priority")))
    deliver(client, runtime, ("shop", shopify_customer(last_name="Later",
                                                       updated_at="2027-01-01T00:00:00Z")))
    [after] = people(client, admin_token).values()
    assert after["last_name"] == "Priority"  # pay outranks shop, however new shop's value is
    assert after["job_title"] == "Founder"


def test_a_merge_is_refused_for_the_same_or_an_unknown_contact(client, admin_token):
    same = client.post("/api/v1/contacts/merge", json={"winner_id": 1, "loser_id": 1},
                       headers=auth(admin_token))
    assert same.status_code == 409
    unknown = client.post("/api/v1/contacts/merge", json={"winner_id": 1, "loser_id": 2},
                          headers=auth(admin_token))
    assert unknown.status_code == 404


def test_a_custom_field_can_be_set_by_hand_and_is_type_checked(client, runtime, admin_token):
    created = client.post("/api/v1/custom-fields", headers=auth(admin_token),
                          json={"name": "custom.loyalty_tier", "type": "enum",
                                "values": ["gold", "silver"]})
    assert created.status_code in (200, 201), created.json
    deliver(client, runtime, ("shop", shopify_customer()))
    [contact] = people(client, admin_token).values()
    ok = client.patch(f"/api/v1/contacts/{contact['id']}",
                      json={"fields": {"custom.loyalty_tier": "gold"}}, headers=auth(admin_token))
    assert ok.status_code == 200
    assert ok.json["custom"]["loyalty_tier"] == "gold"
    bad = client.patch(f"/api/v1/contacts/{contact['id']}",
                       json={"fields": {"custom.loyalty_tier": "platinum"}},
                       headers=auth(admin_token))
    assert bad.status_code == 422
