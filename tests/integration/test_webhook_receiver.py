"""The webhook edge: what is accepted, what is refused, and that refusals store nothing."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from hub.adapters.db.models import InboxEvent
from tests.support import STRIPE_SECRET, shopify_delivery, stripe_delivery


def inbox_rows(runtime) -> list[InboxEvent]:
    with runtime.engine.connect() as conn:
        return conn.execute(select(InboxEvent.__table__).order_by(InboxEvent.id)).all()


def test_a_signed_shopify_delivery_is_persisted_raw_and_answered_202(client, runtime):
    body, headers = shopify_delivery("customers_create")
    response = client.post("/webhooks/shop", data=body, headers=headers)
    assert response.status_code == 202
    assert response.json == {"event_id": 1, "status": "accepted"}
    [row] = inbox_rows(runtime)
    assert bytes(row.body) == body
    assert row.status == "accepted"
    assert row.event_type == "customers/create"
    assert row.headers["X-Shopify-API-Version"] == "2024-10"
    assert "X-Shopify-Hmac-Sha256" not in row.headers


def test_the_same_delivery_twice_is_stored_once_and_answered_duplicate(client, runtime):
    body, headers = shopify_delivery("customers_create")
    first = client.post("/webhooks/shop", data=body, headers=headers)
    second = client.post("/webhooks/shop", data=body, headers=headers)
    assert second.status_code == 200
    assert second.json == {"event_id": first.json["event_id"], "status": "duplicate"}
    assert len(inbox_rows(runtime)) == 1


def test_a_stripe_event_signed_by_the_stripe_library_is_accepted(client, runtime):
    body, headers = stripe_delivery("customer_created")
    response = client.post("/webhooks/pay", data=body, headers=headers)
    assert response.status_code == 202
    assert inbox_rows(runtime)[0].delivery_key == json.loads(body)["id"]


def test_a_rotated_stripe_secret_still_verifies_during_the_overlap(client, runtime):
    from hub.adapters.db import admin

    admin.add_connection(runtime.engine, name="pay2", connector="stripe",
                         secrets=["whsec_new", STRIPE_SECRET], settings={}, actor="test")
    body, headers = stripe_delivery("customer_created", secret=STRIPE_SECRET)
    assert client.post("/webhooks/pay2", data=body, headers=headers).status_code == 202


def assert_refused(response, status: int, runtime, words: str) -> None:
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == status
    assert words in response.json["detail"]
    assert inbox_rows(runtime) == []


def test_a_tampered_body_is_refused_with_401_and_nothing_stored(client, runtime):
    body, headers = shopify_delivery("customers_create")
    tampered = body.replace(b"Nora", b"Eve")
    response = client.post("/webhooks/shop", data=tampered, headers=headers)
    assert_refused(response, 401, runtime, "does not match the body")


def test_a_missing_signature_header_is_refused(client, runtime):
    body, headers = shopify_delivery("customers_create")
    del headers["X-Shopify-Hmac-Sha256"]
    response = client.post("/webhooks/shop", data=body, headers=headers)
    assert_refused(response, 401, runtime, "header is missing")


def test_a_delivery_signed_with_another_secret_is_refused(client, runtime):
    body, headers = stripe_delivery("customer_created", secret="whsec_someone_else")
    response = client.post("/webhooks/pay", data=body, headers=headers)
    assert_refused(response, 401, runtime, "no v1 signature")


def test_an_old_stripe_timestamp_is_refused_as_a_replay(client, runtime):
    body, headers = stripe_delivery("customer_created", timestamp=int(time.time()) - 301)
    response = client.post("/webhooks/pay", data=body, headers=headers)
    assert_refused(response, 401, runtime, "more than 300 s old")


def test_an_oversized_body_is_refused_with_413(client, runtime):
    body, headers = shopify_delivery("customers_create")
    runtime_limit = runtime.settings.max_body_bytes
    big = body + b" " * runtime_limit
    response = client.post("/webhooks/shop", data=big, headers=headers)
    assert_refused(response, 413, runtime, "limit")


def test_malformed_json_is_refused_with_400_saying_where(client, runtime):
    from tests.support import shopify_signature

    body = b'{"id": 1, "email": }'
    _, headers = shopify_delivery("customers_create")
    headers["X-Shopify-Hmac-Sha256"] = shopify_signature(body)
    response = client.post("/webhooks/shop", data=body, headers=headers)
    assert_refused(response, 400, runtime, "not valid JSON")
    assert "line 1 column" in response.json["detail"]


def test_a_json_array_body_is_refused_with_400(client, runtime):
    from tests.support import shopify_signature

    body = b"[1, 2]"
    _, headers = shopify_delivery("customers_create")
    headers["X-Shopify-Hmac-Sha256"] = shopify_signature(body)
    assert_refused(client.post("/webhooks/shop", data=body, headers=headers), 400, runtime,
                   "JSON object")


def test_an_unknown_connection_is_404(client, runtime):
    body, headers = shopify_delivery("customers_create")
    response = client.post("/webhooks/nobody", data=body, headers=headers)
    assert_refused(response, 404, runtime, "no connection named")


def test_an_unknown_event_type_is_acknowledged_and_recorded_as_ignored(client, runtime):
    body, headers = shopify_delivery("unknown_topic")
    response = client.post("/webhooks/shop", data=body, headers=headers)
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    [row] = inbox_rows(runtime)
    assert row.status == "ignored"


def test_a_delivery_for_another_shop_is_refused_when_the_connection_names_its_shop(
    client, runtime
):
    from hub.adapters.db import admin
    from tests.support import SHOPIFY_SECRET

    admin.add_connection(runtime.engine, name="shop-eu", connector="shopify",
                         secrets=[SHOPIFY_SECRET],
                         settings={"shop_domain": "eu-shop.myshopify.com"}, actor="test")
    body, headers = shopify_delivery("customers_create")
    response = client.post("/webhooks/shop-eu", data=body, headers=headers)
    assert_refused(response, 401, runtime, "not this connection's shop")


def test_deliveries_are_accepted_while_redis_is_down(tmp_path, db_url):
    """Redis on a dead port: the inbox still takes the delivery and answers 202."""
    from hub import create_app
    from hub.adapters.db import admin, migrate
    from hub.config import load_settings
    from hub.runtime import Runtime
    from tests.support import SHOPIFY_SECRET

    settings = load_settings(env={}, var_dir=tmp_path / "var", database_url=db_url,
                             redis_url="redis://127.0.0.1:1/0")
    rt = Runtime.from_settings(settings)
    migrate.upgrade(rt.engine)
    admin.add_connection(rt.engine, name="shop", connector="shopify", secrets=[SHOPIFY_SECRET],
                         settings={}, actor="test")
    client = create_app(runtime=rt).test_client()
    started = time.monotonic()
    for name in ("customers_create", "customers_update"):
        body, headers = shopify_delivery(name)
        assert client.post("/webhooks/shop", data=body, headers=headers).status_code == 202
    assert time.monotonic() - started < 3.0
    with rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(InboxEvent)).scalar() == 2
    rt.close()
