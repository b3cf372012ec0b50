"""WooCommerce: the signature over WordPress's exact bytes, the creation ping, a dedupe key that
survives WooCommerce's per-send Delivery-ID, and the REST API v3: pages by X-WP-TotalPages,
orders since a time, the batch endpoint's per-item errors, delete.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Delivery, Headers, WebhookRequest
from connectors.sinks import OutboundRecord, Outcome
from connectors.woocommerce import WooCommerce
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
SECRET = "wc webhook secret & more"  # WooCommerce secrets are free text
SITE = "https://shop.example.com"
CONTEXT = ConnectionContext("woo", {"site_url": "https://shop.example.com/",
                                    "default_region": "US"},
                            {"consumer_key": "ck_" + "a" * 40, "consumer_secret": "cs_" + "b" * 40})
RECEIVED = datetime(2026, 11, 21, 14, 40, 10, tzinfo=UTC)


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def wp_json(body: Any) -> bytes:
    """The bytes WordPress's wp_json_encode writes: compact, ASCII-only, slashes escaped."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(name: str, body: Any = None, **overrides: str) -> WebhookRequest:
    fixture = load(name)
    raw = wp_json(fixture["body"] if body is None else body)
    headers = {**fixture["headers"], "X-WC-Webhook-Signature": signature(raw), **overrides}
    return WebhookRequest("POST", "https://hub.example/webhooks/woo", Headers(headers), raw,
                          RECEIVED)


def ping(webhook_id: str = "7") -> WebhookRequest:
    headers = {"User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
               "Content-Type": "application/x-www-form-urlencoded"}
    return WebhookRequest("POST", "https://hub.example/webhooks/woo", Headers(headers),
                          f"webhook_id={webhook_id}".encode(), RECEIVED)


def parse(name: str, body: Any = None):
    fixture = load(name)
    connector = WooCommerce()
    kept = connector.keep_headers(Headers(fixture["headers"]))
    return connector.parse(Delivery("k", fixture["headers"]["X-WC-Webhook-Topic"], kept),
                           wp_json(fixture["body"] if body is None else body), CONTEXT)


def http():
    client = WooCommerce().client(CONTEXT)
    waits: list[float] = []
    client.sleep = waits.append
    return client, waits


# --- verify and handshake --------------------------------------------------------------------


def test_the_raw_body_keeps_wordpress_escapes():
    raw = delivery("customer_updated").body
    assert b'"https:\\/\\/shop.example.com\\/wp-json\\/wc\\/v3\\/customers\\/25"' in raw
    assert b'"Chlo\\u00e9"' in raw


def test_a_signed_delivery_is_accepted():
    WooCommerce().verify(delivery("customer_updated"), [SECRET])


def test_the_signature_is_over_the_exact_bytes_not_reserialized_json():
    request = delivery("customer_updated")
    reserialized = json.dumps(json.loads(request.body)).encode()  # same data, other bytes
    moved = WebhookRequest("POST", request.url, request.headers, reserialized, RECEIVED)
    with pytest.raises(SignatureError, match="does not match"):
        WooCommerce().verify(moved, [SECRET])


def test_a_tampered_body_is_refused():
    request = delivery("customer_updated")
    tampered = WebhookRequest("POST", request.url, request.headers,
                              request.body.replace(b"Paris", b"Lyon!"), RECEIVED)
    with pytest.raises(SignatureError):
        WooCommerce().verify(tampered, [SECRET])


def test_a_rotated_secret_list_accepts_the_new_secret():
    WooCommerce().verify(delivery("customer_updated"), ["the old secret", SECRET])


def test_a_delivery_without_a_signature_is_refused():
    request = delivery("customer_updated")
    headers = Headers({k: v for k, v in request.headers.items()
                       if k != "x-wc-webhook-signature"})
    with pytest.raises(SignatureError, match="X-WC-Webhook-Signature header is missing"):
        WooCommerce().verify(WebhookRequest("POST", request.url, headers, request.body,
                                            RECEIVED), [SECRET])


def test_a_hex_signature_is_not_accepted():
    request = delivery("customer_updated")
    hexed = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        WooCommerce().verify(delivery("customer_updated", **{"X-WC-Webhook-Signature": hexed}),
                             [SECRET])


def test_the_creation_ping_gets_exactly_200_and_needs_no_signature():
    assert WooCommerce().handshake(ping()) == (200, {"status": "ok"})
    WooCommerce().verify(ping(), [SECRET])  # WooCommerce does not sign its ping


@pytest.mark.parametrize("body", [b"webhook_id=7&x=1", b"webhook_id=", b"id=7"])
def test_only_the_exact_ping_body_is_a_ping(body):
    request = WebhookRequest("POST", "u", Headers({}), body, RECEIVED)
    assert WooCommerce().handshake(request) is None
    with pytest.raises(SignatureError):
        WooCommerce().verify(request, [SECRET])


def test_a_delivery_is_not_a_ping():
    assert WooCommerce().handshake(delivery("customer_updated")) is None


def test_a_delivery_from_another_site_is_refused():
    request = delivery("customer_updated")
    WooCommerce().check_sender(request, {"site_url": "https://SHOP.example.com"})
    with pytest.raises(SignatureError, match="not this connection's site"):
        WooCommerce().check_sender(request, {"site_url": "https://other.example.com/"})


# --- identify and parse ----------------------------------------------------------------------


def test_the_key_is_webhook_resource_and_modification_time_not_the_delivery_id():
    first = WooCommerce().identify(delivery("customer_updated"))
    resent = WooCommerce().identify(delivery(
        "customer_updated", **{"X-WC-Webhook-Delivery-ID": "0000ffff0000ffff0000ffff0000ffff"}))
    assert first.key == resent.key == "customer.updated:7:25:2026-11-21T14:40:09"
    assert first.event_type == "customer.updated"
    assert "X-WC-Webhook-Signature" not in first.headers
    assert first.headers["X-WC-Webhook-ID"] == "7"


def test_a_later_change_of_the_same_customer_is_a_new_delivery():
    body = load("customer_updated")["body"]
    body["date_modified_gmt"] = "2026-11-21T14:45:00"
    assert WooCommerce().identify(delivery("customer_updated", body)).key.endswith(
        ":25:2026-11-21T14:45:00")


def test_an_action_topic_is_keyed_by_its_delivery_id_and_not_understood():
    request = delivery("customer_updated", {"action": "woocommerce_new_customer", "arg": 25},
                       **{"X-WC-Webhook-Topic": "action.woocommerce_new_customer"})
    found = WooCommerce().identify(request)
    assert found.key == "action.woocommerce_new_customer:7:3f0c8e2b9d7a41c6e5b0a9f8d7c6b5a4"
    assert not WooCommerce().understands(found.event_type)


@pytest.mark.parametrize(("drop", "message"), [("X-WC-Webhook-Topic", "Topic header"),
                                               ("X-WC-Webhook-ID", "X-WC-Webhook-ID header")])
def test_a_delivery_without_its_headers_is_refused(drop, message):
    request = delivery("customer_updated")
    headers = Headers({k: v for k, v in request.headers.items() if k != drop.lower()})
    with pytest.raises(PayloadError, match=message):
        WooCommerce().identify(WebhookRequest("POST", "u", headers, request.body, RECEIVED))


def test_a_customer_body_without_its_modification_time_is_refused():
    body = load("customer_updated")["body"]
    del body["date_modified_gmt"], body["date_created_gmt"]
    with pytest.raises(PayloadError, match="no id or date_modified_gmt"):
        WooCommerce().identify(delivery("customer_updated", body))


def test_the_customer_is_observed_at_its_gmt_modification_time():
    [record] = parse("customer_updated")
    assert (record.object_type, record.external_id) == ("customer", "25")
    assert record.observed_at == datetime(2026, 11, 21, 14, 40, 9, tzinfo=UTC)
    assert record.payload["_meta"]["webhook_id"] == "7"


def test_a_guest_order_has_no_external_id():
    body = load("order_created")["body"]
    body["customer_id"] = 0
    [record] = parse("order_created", body)
    assert (record.object_type, record.external_id) == ("order", None)


@pytest.mark.parametrize("name", ["customer_updated", "order_created"])
def test_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(name)
    fields, problems = FileMappingStore().get("woocommerce", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


def test_an_unpaid_order_does_not_count_as_an_order():
    body = load("order_created")["body"]
    body["status"] = "pending"
    [record] = parse("order_created", body)
    fields, _ = FileMappingStore().get("woocommerce", "order").apply(record.payload)
    assert "commerce.first_order_at" not in fields and fields["email"]


# --- API -------------------------------------------------------------------------------------


def params(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def test_the_client_needs_an_https_site_and_both_keys():
    with pytest.raises(ConfigurationError, match="https://"):
        WooCommerce().client(ConnectionContext("woo", {"site_url": "http://shop.example.com"},
                                               CONTEXT.credentials))
    with pytest.raises(ConfigurationError, match="no 'consumer_secret'"):
        WooCommerce().client(ConnectionContext("woo", {"site_url": SITE},
                                               {"consumer_key": "ck_x"}))


def test_customers_are_read_until_the_total_pages_header_with_basic_auth(rsps):
    customers, _ = WooCommerce().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", json=[{"id": 1}, {"id": 2}],
             headers={"X-WP-Total": "3", "X-WP-TotalPages": "2"})
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", json=[{"id": 3}],
             headers={"X-WP-Total": "3", "X-WP-TotalPages": "2"})
    assert [r["id"] for p in customers.read(client) for r in p.records] == [1, 2, 3]
    assert [params(c)["page"] for c in rsps.calls] == ["1", "2"]
    assert params(rsps.calls[0])["per_page"] == "100"
    expected = base64.b64encode(("ck_" + "a" * 40 + ":cs_" + "b" * 40).encode()).decode()
    assert rsps.calls[0].request.headers["Authorization"] == f"Basic {expected}"


def test_orders_are_read_since_the_bookmark_in_gmt(rsps):
    _, orders = WooCommerce().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/orders", json=[{"id": 1042}],
             headers={"X-WP-TotalPages": "1"})
    list(orders.read(client, bookmark="2026-11-22T09:00:00"))
    sent = params(rsps.calls[0])
    assert sent["modified_after"] == "2026-11-22T09:00:00"
    assert sent["dates_are_gmt"] == "true"


def test_a_429_with_retry_after_then_success(rsps):
    customers, _ = WooCommerce().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", status=429,
             headers={"Retry-After": "12"})
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", json=[{"id": 1}],
             headers={"X-WP-TotalPages": "1"})
    assert len(list(customers.read(client))) == 1
    assert waits[0] >= 12


def test_a_server_error_is_retried(rsps):
    customers, _ = WooCommerce().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", status=503)
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", json=[], headers={
        "X-WP-TotalPages": "0"})
    assert len(list(customers.read(client))) == 1 and len(waits) == 1


def test_refused_keys_are_an_authentication_error_that_does_not_echo_them(rsps):
    customers, _ = WooCommerce().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.GET, f"{SITE}/wp-json/wc/v3/customers", status=401,
             json={"code": "woocommerce_rest_authentication_error",
                   "message": f"Invalid signature for cs_{'b' * 40}", "data": {"status": 401}})
    with pytest.raises(AuthenticationError) as refused:
        list(customers.read(client))
    assert "b" * 40 not in str(refused.value) and "b" * 40 not in refused.value.detail


def test_a_batch_creates_and_updates_with_per_item_errors(rsps):
    sink = WooCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(1, None, {"email": "taken@example.net"}),
               OutboundRecord(2, "25", {"first_name": "Chloé"}),
               OutboundRecord(3, None, {"email": "new@example.net"})]
    answer = {"create": [{"id": 0, "error": {"code": "registration-error-email-exists",
                                             "message": "An account is already registered "
                                                        "with your email address.",
                                             "data": {"status": 400}}},
                         {"id": 31, "email": "new@example.net"}],
              "update": [{"id": 25, "first_name": "Chloé"}]}
    rsps.add(responses.POST, f"{SITE}/wp-json/wc/v3/customers/batch", json=answer)
    results = sink.push(client, records)
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.REJECTED, None), (Outcome.UPDATED, "25"), (Outcome.CREATED, "31")]
    assert results[0].reason == ("registration-error-email-exists: An account is already "
                                 "registered with your email address.")
    assert json.loads(rsps.calls[0].request.body) == {
        "create": [{"email": "taken@example.net"}, {"email": "new@example.net"}],
        "update": [{"first_name": "Chloé", "id": 25}]}


def test_a_refused_batch_request_falls_back_to_one_by_one(rsps):
    sink = WooCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(1, None, {"email": "a@example.net"}),
               OutboundRecord(2, None, {"email": "b@example.net"})]
    url = f"{SITE}/wp-json/wc/v3/customers/batch"
    rsps.add(responses.POST, url, status=413, json={"code": "rest_request_entity_too_large"})
    rsps.add(responses.POST, url, json={"create": [{"id": 40}]})
    rsps.add(responses.POST, url, json={"create": [{"id": 41}]})
    assert [r.external_id for r in sink.push(client, records)] == ["40", "41"]


def test_a_customer_id_that_is_not_woocommerce_is_rejected_without_a_call(rsps):
    sink = WooCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    [result] = sink.push(client, [OutboundRecord(1, "cus_123", {"email": "a@example.net"})])
    assert result.outcome is Outcome.REJECTED and "not a WooCommerce customer id" in (
        result.reason or "")
    assert len(rsps.calls) == 0


def test_a_delete_forces_and_a_customer_already_gone_counts_as_deleted(rsps):
    sink = WooCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    rsps.add(responses.DELETE, f"{SITE}/wp-json/wc/v3/customers/25", json={"id": 25})
    rsps.add(responses.DELETE, f"{SITE}/wp-json/wc/v3/customers/26", status=404,
             json={"code": "woocommerce_rest_invalid_id", "message": "Invalid resource ID."})
    assert sink.remove(client, 1, "25").outcome is Outcome.DELETED
    gone = sink.remove(client, 2, "26")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")
    assert params(rsps.calls[0]) == {"force": "true"}
