"""The admin API: who may do what, what lists look like, and the health endpoints."""

from __future__ import annotations

from hub.worker_process import run_worker
from tests.support import shopify_delivery, stripe_delivery


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(client, runtime) -> None:
    for connection, (body, headers) in [
        ("shop", shopify_delivery("customers_create")),
        ("shop", shopify_delivery("customers_create_2025_01")),
        ("pay", stripe_delivery("customer_created")),
        ("pay", stripe_delivery("checkout_session_completed")),
    ]:
        assert client.post(f"/webhooks/{connection}", data=body, headers=headers).status_code \
            == 202
    run_worker(runtime, burst=True)


def test_the_api_refuses_requests_without_a_valid_token(client):
    missing = client.get("/api/v1/contacts")
    assert missing.status_code == 401
    assert missing.content_type == "application/problem+json"
    assert "Bearer" in missing.json["detail"]
    wrong = client.get("/api/v1/contacts", headers=auth("hub_not_a_real_token"))
    assert wrong.status_code == 401


def test_a_revoked_token_no_longer_works(client, runtime, viewer_token):
    from hub.adapters.db import admin

    assert client.get("/api/v1/contacts", headers=auth(viewer_token)).status_code == 200
    [token] = [t for t in admin.list_tokens(runtime.engine) if t["role"] == "viewer"]
    admin.revoke_token(runtime.engine, token["id"], "test")
    assert client.get("/api/v1/contacts", headers=auth(viewer_token)).status_code == 401


def test_a_viewer_can_read_but_not_write(client, viewer_token):
    assert client.get("/api/v1/connections", headers=auth(viewer_token)).status_code == 200
    response = client.post("/api/v1/connections", headers=auth(viewer_token),
                           json={"name": "x", "connector": "stripe", "webhook_secrets": ["s"]})
    assert response.status_code == 403
    assert "admin token" in response.json["detail"]
    assert client.post("/api/v1/events/1/replay", headers=auth(viewer_token)).status_code == 403


def test_a_viewer_cannot_see_raw_payloads(client, runtime, viewer_token, admin_token):
    seed(client, runtime)
    assert client.get("/api/v1/events/1?include=body",
                      headers=auth(viewer_token)).status_code == 403
    event = client.get("/api/v1/events/1?include=body", headers=auth(admin_token)).json
    assert "nora.testwell@example.com" in event["body"]


def test_connections_are_listed_without_their_secrets(client, admin_token):
    response = client.get("/api/v1/connections", headers=auth(admin_token))
    body = response.get_data(as_text=True)
    assert "shpss_test_secret" not in body and "whsec_test" not in body
    shop = next(c for c in response.json["items"] if c["name"] == "shop")
    assert shop["secrets_configured"] == 1
    assert shop["webhook_path"] == "/webhooks/shop"


def test_an_admin_adds_a_connection_and_bad_input_is_explained_per_field(client, admin_token):
    created = client.post("/api/v1/connections", headers=auth(admin_token),
                          json={"name": "stripe-eu", "connector": "stripe",
                                "webhook_secrets": ["whsec_abc"]})
    assert created.status_code == 201
    assert "whsec_abc" not in created.get_data(as_text=True)
    again = client.post("/api/v1/connections", headers=auth(admin_token),
                        json={"name": "stripe-eu", "connector": "stripe",
                              "webhook_secrets": ["whsec_abc"]})
    assert again.status_code == 409
    bad = client.post("/api/v1/connections", headers=auth(admin_token),
                      json={"name": "Bad Name!", "connector": "fax", "webhook_secrets": [""]})
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"name", "connector", "webhook_secrets"}
    no_secret = client.post("/api/v1/connections", headers=auth(admin_token),
                            json={"name": "stripe-x", "connector": "stripe"})
    assert no_secret.status_code == 422  # Stripe sends webhooks: it needs its signing secret
    assert "webhook secret" in no_secret.json["detail"]


def test_contacts_filter_by_email_and_text_and_page_through(client, runtime, admin_token):
    seed(client, runtime)
    everyone = client.get("/api/v1/contacts", headers=auth(admin_token)).json
    assert len(everyone["items"]) == 4 and everyone["next"] is None
    by_email = client.get("/api/v1/contacts?email=Maya.Exemplar@example.org",
                          headers=auth(admin_token)).json["items"]
    assert [c["last_name"] for c in by_email] == ["Exemplar"]
    by_text = client.get("/api/v1/contacts?q=sampleton", headers=auth(admin_token)).json
    assert [c["first_name"] for c in by_text["items"]] == ["Kenji"]
    first = client.get("/api/v1/contacts?limit=3", headers=auth(admin_token)).json
    assert len(first["items"]) == 3 and first["next"]
    rest = client.get(f"/api/v1/contacts?limit=3&page={first['next']}",
                      headers=auth(admin_token)).json
    assert len(rest["items"]) == 1 and rest["next"] is None
    seen = {c["id"] for c in first["items"] + rest["items"]}
    assert len(seen) == 4


def test_a_contact_has_every_documented_field(client, runtime, admin_token):
    seed(client, runtime)
    [contact] = client.get("/api/v1/contacts?email=maya.exemplar@example.org",
                           headers=auth(admin_token)).json["items"]
    detail = client.get(f"/api/v1/contacts/{contact['id']}", headers=auth(admin_token)).json
    for key in ("id", "email", "emails", "phones", "first_name", "last_name", "company",
                "address", "external_ids", "consent", "provenance"):
        assert key in detail
    assert detail["external_ids"][0]["connection"] == "pay"
    assert detail["provenance"]["email"]["connection"] == "pay"


def test_bad_query_parameters_are_explained(client, admin_token):
    response = client.get("/api/v1/contacts?limit=abc", headers=auth(admin_token))
    assert response.status_code == 400
    assert response.json["pointer"] == "query/limit"
    response = client.get("/api/v1/events?status=lost", headers=auth(admin_token))
    assert response.status_code == 400
    assert "accepted" in response.json["detail"]
    assert client.get("/api/v1/contacts/999999", headers=auth(admin_token)).status_code == 404


def test_events_and_flags_can_be_filtered(client, runtime, admin_token):
    seed(client, runtime)
    processed = client.get("/api/v1/events?status=processed", headers=auth(admin_token)).json
    assert len(processed["items"]) == 4
    assert all(e["status"] == "processed" for e in processed["items"])
    by_connection = client.get("/api/v1/events?connection=pay", headers=auth(admin_token)).json
    assert {e["connection"] for e in by_connection["items"]} == {"pay"}
    flags = client.get("/api/v1/flags?kind=duplicate&status=open", headers=auth(admin_token))
    assert flags.status_code == 200 and flags.json["items"] == []


def test_health_readiness_and_metrics(client, runtime):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "redis": "ok"}
    body, headers = shopify_delivery("customers_create")
    client.post("/webhooks/shop", data=body, headers=headers)
    client.post("/webhooks/shop", data=body, headers=headers)
    run_worker(runtime, burst=True)
    import time

    deadline = time.monotonic() + 5  # deliveries are counted by a thread beside the writer
    while True:
        metrics = client.get("/metrics").get_data(as_text=True)
        if 'outcome="duplicate"} 1.0' in metrics or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert 'hub_webhook_deliveries_total{connection="shop",outcome="accepted"} 1.0' in metrics
    assert 'hub_webhook_deliveries_total{connection="shop",outcome="duplicate"} 1.0' in metrics
    assert "hub_processing_latency_seconds_count 1.0" in metrics
    assert 'hub_inbox_events{status="processed"} 1.0' in metrics


def test_readiness_fails_with_503_when_redis_is_unreachable(tmp_path, db_url):
    from hub import create_app
    from hub.adapters.db import migrate
    from hub.config import load_settings
    from hub.runtime import Runtime

    rt = Runtime.from_settings(load_settings(env={}, var_dir=tmp_path / "v", database_url=db_url,
                                             redis_url="redis://127.0.0.1:1/0"))
    migrate.upgrade(rt.engine)
    response = create_app(runtime=rt).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"] != "ok"
    rt.close()


def test_an_admin_rotates_a_connections_secret_and_both_verify(client, admin_token):
    from tests.support import STRIPE_SECRET, stripe_delivery

    response = client.patch("/api/v1/connections/pay", headers=auth(admin_token),
                            json={"webhook_secrets": ["whsec_brand_new", STRIPE_SECRET]})
    assert response.status_code == 200 and response.json["secrets_configured"] == 2
    for secret in ("whsec_brand_new", STRIPE_SECRET):
        body, headers = stripe_delivery("customer_created", secret=secret)
        assert client.post("/webhooks/pay", data=body, headers=headers).status_code in (200, 202)


def test_unknown_or_reserved_connection_settings_are_refused(client, admin_token):
    typo = client.post("/api/v1/connections", headers=auth(admin_token),
                       json={"name": "shop2", "connector": "shopify", "webhook_secrets": ["s"],
                             "settings": {"shop_domian": "x.myshopify.com"}})
    assert typo.status_code == 422
    assert "unknown setting 'shop_domian'" in typo.json["detail"]
    reserved = client.post("/api/v1/connections", headers=auth(admin_token),
                           json={"name": "admin", "connector": "shopify",
                                 "webhook_secrets": ["s"]})
    assert reserved.status_code == 422
    assert "reserved" in reserved.json["detail"]
