"""From the inbox to golden records, with a real worker loop on real Redis and SQL."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from hub.adapters.db import inbox
from hub.adapters.db.models import Contact, InboxEvent
from hub.adapters.mapping_files import DEFAULT_DIR
from hub.runtime import Runtime
from hub.worker_process import run_worker
from tests.support import shopify_delivery, stripe_delivery


def post_all(client, deliveries) -> None:
    for connection, (body, headers) in deliveries:
        response = client.post(f"/webhooks/{connection}", data=body, headers=headers)
        assert response.status_code in (200, 202), response.json


def contacts(client, token, **params) -> list[dict]:
    response = client.get("/api/v1/contacts", query_string=params,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json["items"]


def statuses(runtime) -> dict[str, int]:
    return inbox.counts_by_status(runtime.engine)


def test_a_customer_its_order_and_its_update_become_one_golden_record(
    client, runtime, admin_token
):
    post_all(client, [("shop", shopify_delivery(n)) for n in
                      ("customers_create", "orders_create", "customers_update")])
    run_worker(runtime, burst=True)
    assert statuses(runtime) == {"processed": 3}
    [contact] = contacts(client, admin_token)
    assert contact["email"] == "nora.testwell@example.com"
    assert contact["last_name"] == "Brightwater"  # the update is newer than the create
    assert contact["phone"] == "+16465550190"
    assert "+17185550147" in contact["phones"]  # the old phone is kept as an identity
    assert contact["external_ids"] == [{"connection": "shop", "external_id": "7312459886721"}]
    assert contact["address"]["country"] == "US"
    assert contact["consent"]["email"]["status"] == "withdrawn"
    assert contact["commerce"]["first_order_at"] == "2026-11-10T00:42:17+00:00"


def test_an_older_event_processed_last_does_not_overwrite_newer_values(
    client, runtime, admin_token
):
    post_all(client, [("shop", shopify_delivery("customers_update"))])
    run_worker(runtime, burst=True)
    post_all(client, [("shop", shopify_delivery("customers_create"))])
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert contact["last_name"] == "Brightwater"
    assert contact["phone"] == "+16465550190"
    assert contact["consent"]["email"]["status"] == "withdrawn"


def test_provenance_names_the_connection_event_and_mapping_for_each_field(
    client, runtime, admin_token
):
    post_all(client, [("shop", shopify_delivery("customers_create")),
                      ("pay", stripe_delivery("customer_created"))])
    run_worker(runtime, burst=True)
    by_email = {c["email"]: c for c in contacts(client, admin_token)}
    contact_id = by_email["nora.testwell@example.com"]["id"]
    detail = client.get(f"/api/v1/contacts/{contact_id}",
                        headers={"Authorization": f"Bearer {admin_token}"}).json
    first_name = detail["provenance"]["first_name"]
    assert first_name["connection"] == "shop"
    assert first_name["event_id"] == "1"
    assert first_name["mapping_version"] == "file:shopify.customer.yaml"
    assert first_name["observed_at"].startswith("2026-")
    assert detail["sources"] == ["shop"]


def test_the_demo_story_merges_a_person_across_shop_and_payments(client, runtime, admin_token):
    from hub.demo.data import demo_deliveries
    from tests.support import SHOPIFY_SECRET, STRIPE_SECRET

    deliveries = demo_deliveries({"shop": "shop", "payments": "pay"},
                                 {"shopify": SHOPIFY_SECRET, "stripe": STRIPE_SECRET})
    post_all(client, deliveries)
    run_worker(runtime, burst=True)
    people = {c["email"]: c for c in contacts(client, admin_token)}
    assert sorted(people) == ["ana.lima@example.com", "ben.okafor@example.net",
                              "chloe.martin@example.org"]
    ana = people["ana.lima@example.com"]
    assert {x["connection"] for x in ana["external_ids"]} == {"shop"}
    assert ana["phones"] == ["+14155550134"]
    assert ana["consent"]["email"]["status"] == "granted"
    assert people["ben.okafor@example.net"]["phone"] == "+13125550199"


def test_deliveries_accepted_while_redis_was_down_are_processed_later(
    tmp_path, db_url, settings, client, runtime, admin_token
):
    from hub import create_app
    from hub.config import load_settings

    offline = Runtime.from_settings(load_settings(env={}, var_dir=tmp_path / "var2",
                                                  database_url=db_url,
                                                  redis_url="redis://127.0.0.1:1/0"))
    offline_client = create_app(runtime=offline).test_client()
    post_all(offline_client, [("shop", shopify_delivery("customers_create"))])
    offline.close()
    assert runtime.dispatcher.queue().count == 0  # nothing reached the queue
    run_worker(runtime, burst=True)  # the sweeper finds the event in the inbox
    assert statuses(runtime) == {"processed": 1}
    assert len(contacts(client, admin_token)) == 1


def test_an_event_whose_worker_died_is_claimed_again_after_its_lease(client, runtime):
    post_all(client, [("shop", shopify_delivery("customers_create"))])
    now = datetime.now(UTC)
    [claimed] = inbox.claim(runtime.engine, limit=10, now=now, lease_seconds=1)
    assert inbox.claim(runtime.engine, limit=10, now=now, lease_seconds=1) == []
    time.sleep(1.1)  # the claiming "worker" never finishes; its lease runs out
    run_worker(runtime, burst=True)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(InboxEvent.__table__)).one()
        assert conn.execute(select(func.count()).select_from(Contact)).scalar() == 1
    assert (row.status, row.attempts) == ("processed", 2)


def test_replaying_a_processed_event_changes_nothing(client, runtime, admin_token):
    post_all(client, [("shop", shopify_delivery("customers_create"))])
    run_worker(runtime, burst=True)
    before = contacts(client, admin_token)
    response = client.post("/api/v1/events/1/replay",
                           headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 202
    run_worker(runtime, burst=True)
    after = contacts(client, admin_token)
    assert [{k: v for k, v in c.items() if k != "updated_at"} for c in after] == \
        [{k: v for k, v in c.items() if k != "updated_at"} for c in before]


def test_a_failing_event_is_retried_then_dead_then_replayed_after_the_fix(
    tmp_path, settings, client, runtime, admin_token
):
    from dataclasses import replace

    mappings = tmp_path / "mappings"
    shutil.copytree(DEFAULT_DIR, mappings)
    broken = mappings / "shopify.customer.yaml"
    broken.write_text(broken.read_text().replace("transforms: [email]",
                                                 "transforms: [no_such_transform]"))
    failing = Runtime.from_settings(replace(settings, mappings_dir=str(mappings)))
    post_all(client, [("shop", shopify_delivery("customers_create"))])
    for _ in range(40):  # each burst retries what its backoff (a few ms here) allows
        run_worker(failing, burst=True)
        if statuses(failing) == {"dead": 1}:
            break
        time.sleep(0.05)
    event = client.get("/api/v1/events/1", headers={"Authorization": f"Bearer {admin_token}"}
                       ).json
    assert event["status"] == "dead"
    assert event["attempts"] == settings.max_attempts
    assert "unknown transform 'no_such_transform'" in event["last_error"]
    failing.close()

    shutil.copy(DEFAULT_DIR / "shopify.customer.yaml", broken)  # the admin fixes the mapping
    fixed = Runtime.from_settings(replace(settings, mappings_dir=str(mappings)))
    assert client.post("/api/v1/events/1/replay",
                       headers={"Authorization": f"Bearer {admin_token}"}).status_code == 202
    run_worker(fixed, burst=True)
    assert statuses(fixed) == {"processed": 1}
    fixed.close()


def test_a_delivery_the_connector_cannot_parse_is_dead_at_once_with_its_reason(
    client, runtime
):
    from tests.support import shopify_signature

    body = json.dumps({"email": "no-id@example.com"}).encode()  # a customer without an id
    _, headers = shopify_delivery("customers_create")
    headers["X-Shopify-Hmac-Sha256"] = shopify_signature(body)
    post_all(client, [("shop", (body, headers))])
    run_worker(runtime, burst=True)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(InboxEvent.__table__)).one()
    assert row.status == "dead"
    assert row.attempts == 1
    assert "the customer has no id" in row.last_error


def test_mapping_problems_are_recorded_on_the_event_without_failing_it(client, runtime):
    from tests.support import load_fixture, shopify_signature

    fixture = load_fixture("shopify", "customers_create")
    fixture["body"]["default_address"]["country_code"] = "Atlantis"
    fixture["body"]["default_address"]["country"] = "Atlantis"
    body = json.dumps(fixture["body"]).encode()
    headers = {**fixture["headers"], "X-Shopify-Hmac-Sha256": shopify_signature(body)}
    post_all(client, [("shop", (body, headers))])
    run_worker(runtime, burst=True)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(InboxEvent.__table__)).one()
    assert row.status == "processed"
    assert any("unknown country 'Atlantis'" in p for p in row.result["problems"])




def test_replaying_an_ignored_event_keeps_it_ignored(client, runtime, admin_token):
    body, headers = shopify_delivery("unknown_topic")
    post_all(client, [("shop", (body, headers))])
    assert client.post("/api/v1/events/1/replay",
                       headers={"Authorization": f"Bearer {admin_token}"}).status_code == 202
    run_worker(runtime, burst=True)
    assert statuses(runtime) == {"ignored": 1}
    assert contacts(client, admin_token) == []


def test_an_event_claimed_too_often_without_finishing_is_given_up(client, runtime):
    from dataclasses import replace

    from hub.services.process_inbox import process_events

    post_all(client, [("shop", shopify_delivery("customers_create"))])
    [event] = inbox.claim(runtime.engine, limit=1, now=datetime.now(UTC), lease_seconds=60)
    poisoned = replace(event, attempts=runtime.settings.max_attempts + 1)
    report = process_events(runtime.engine, [poisoned], runtime.mappings,
                            max_attempts=runtime.settings.max_attempts, retry_base=0.01)
    assert report.dead == 1
    with runtime.engine.connect() as conn:
        row = conn.execute(select(InboxEvent.__table__)).one()
    assert row.status == "dead"
    assert "without finishing" in row.last_error


def test_an_email_change_in_the_tool_follows_its_id_and_keeps_the_old_address(
    client, runtime, admin_token
):
    from tests.support import load_fixture, shopify_signature

    post_all(client, [("shop", shopify_delivery("customers_create"))])
    changed = load_fixture("shopify", "customers_update")
    changed["body"]["email"] = "nora.brightwater@example.com"
    body = json.dumps(changed["body"]).encode()
    headers = {**changed["headers"], "X-Shopify-Hmac-Sha256": shopify_signature(body)}
    post_all(client, [("shop", (body, headers))])
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert contact["email"] == "nora.brightwater@example.com"
    assert contact["emails"] == ["nora.brightwater@example.com", "nora.testwell@example.com"]
    found = contacts(client, admin_token, email="nora.testwell@example.com")
    assert [c["id"] for c in found] == [contact["id"]]
