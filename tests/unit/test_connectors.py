"""The connector framework and the Shopify and Stripe connectors, down to canonical fields.

Golden files: every fixture in tests/fixtures/<tool>/ whose event the connector understands is
parsed and mapped with the shipped mappings, and compared with <name>.expected.json beside it.
The expected files were written by hand from the payloads, not dumped from the code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectionContext, Delivery, Headers, WebhookRequest
from connectors.registry import get_connector
from connectors.shopify import Shopify
from connectors.stripe import Stripe
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONTEXT = ConnectionContext("conn", {})
RECEIVED = datetime(2026, 11, 20, 19, 32, 10, tzinfo=UTC)


def load(tool: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / tool / f"{name}.json").read_text())
    return data


def request(headers: dict[str, str], body: bytes | dict[str, Any] | list[Any]) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest("POST", "https://hub.example/webhooks/x", Headers(headers), raw, RECEIVED)


def event_type(tool: str, fixture: dict[str, Any]) -> str:
    return fixture["headers"]["X-Shopify-Topic"] if tool == "shopify" else fixture["body"]["type"]


def delivery_for(tool: str, fixture: dict[str, Any]) -> Delivery:
    connector = get_connector(tool)
    kept = connector.keep_headers(Headers(fixture["headers"]))
    return Delivery("key", event_type(tool, fixture), kept)


def parse(tool: str, fixture: dict[str, Any], context: ConnectionContext = CONTEXT):
    body = json.dumps(fixture["body"]).encode()
    return get_connector(tool).parse(delivery_for(tool, fixture), body, context)


# --- framework -------------------------------------------------------------------------------


def test_headers_are_looked_up_without_regard_to_case():
    headers = Headers({"X-Shopify-Topic": "orders/create"})
    assert headers.get("x-shopify-topic") == headers["X-SHOPIFY-TOPIC"] == "orders/create"
    assert "x-Shopify-topic" in headers
    assert headers.get("missing", "d") == "d"


def test_registry_knows_shopify_and_stripe():
    assert isinstance(get_connector("shopify"), Shopify)
    assert isinstance(get_connector("stripe"), Stripe)


def test_unknown_connector_is_a_configuration_error_listing_the_known_ones():
    with pytest.raises(
        ConfigurationError, match=r"unknown connector 'fax-machine' \(known: .*shopify.*\)"
    ):
        get_connector("fax-machine")


# --- Shopify: identify -----------------------------------------------------------------------

SHOPIFY_HEADERS = load("shopify", "customers_create")["headers"]


def test_shopify_delivery_key_is_topic_and_event_id():
    delivery = Shopify().identify(request(SHOPIFY_HEADERS, {"id": 1}))
    assert delivery.key == "customers/create:d015b0dc-2c63-488f-a8f0-04817e6ddce7"
    assert delivery.event_type == "customers/create"


def test_shopify_delivery_key_falls_back_to_the_webhook_id():
    headers = {k: v for k, v in SHOPIFY_HEADERS.items() if k != "X-Shopify-Event-Id"}
    delivery = Shopify().identify(request(headers, {"id": 1}))
    assert delivery.key == "customers/create:f6fadfa7-e5c1-4b62-9362-da5cc13da58a"


def test_shopify_headers_are_read_in_any_case():
    lower = {k.lower(): v for k, v in SHOPIFY_HEADERS.items()}
    assert Shopify().identify(request(lower, {"id": 1})).event_type == "customers/create"


def test_shopify_keeps_the_useful_headers_but_not_the_signature():
    headers = {**SHOPIFY_HEADERS, "X-Shopify-Hmac-Sha256": "sig"}
    kept = Shopify().identify(request(headers, {"id": 1})).headers
    assert kept == {k: v for k, v in SHOPIFY_HEADERS.items() if k != "Content-Type"}


def test_shopify_delivery_without_topic_is_refused():
    headers = {k: v for k, v in SHOPIFY_HEADERS.items() if k != "X-Shopify-Topic"}
    with pytest.raises(PayloadError, match="X-Shopify-Topic header is missing"):
        Shopify().identify(request(headers, {"id": 1}))


def test_shopify_delivery_without_any_id_is_refused():
    headers = {
        k: v
        for k, v in SHOPIFY_HEADERS.items()
        if k not in ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id")
    }
    with pytest.raises(PayloadError, match="neither X-Shopify-Event-Id nor X-Shopify-Webhook-Id"):
        Shopify().identify(request(headers, {"id": 1}))


def test_shopify_malformed_json_is_refused_with_line_and_column():
    with pytest.raises(PayloadError, match="not valid JSON: .* at line 2 column 10") as caught:
        Shopify().identify(request(SHOPIFY_HEADERS, b'{"id": 1,\n "email" "x"}'))
    assert caught.value.status == 400
    assert caught.value.pointer == "char 19"


@pytest.mark.parametrize("body", [[{"id": 1}], "text", 42, None])
def test_shopify_json_that_is_not_an_object_is_refused(body):
    with pytest.raises(PayloadError, match="the body must be a JSON object"):
        Shopify().identify(request(SHOPIFY_HEADERS, json.dumps(body).encode()))


def test_shopify_body_that_is_not_utf8_is_refused():
    with pytest.raises(PayloadError, match="not UTF-8"):
        Shopify().identify(request(SHOPIFY_HEADERS, b'{"name": "\xff"}'))


def test_shopify_understands_customer_and_order_topics_only():
    shopify = Shopify()
    assert shopify.understands("customers/update")
    assert shopify.understands("orders/paid")
    assert not shopify.understands("products/create")


# --- Shopify: verify and sender --------------------------------------------------------------


def test_shopify_verify_reads_the_hmac_header():
    import base64
    import hashlib
    import hmac

    body = b'{"id": 1}'
    sig = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    Shopify().verify(request({"x-shopify-hmac-sha256": sig}, body), ["s3cret"])
    with pytest.raises(SignatureError):
        Shopify().verify(request({"x-shopify-hmac-sha256": sig}, b'{"id": 2}'), ["s3cret"])


def test_shopify_refuses_a_delivery_from_another_shop():
    with pytest.raises(SignatureError, match="not this connection's shop"):
        Shopify().check_sender(request(SHOPIFY_HEADERS, {}), {"shop_domain": "other.myshopify.com"})


def test_shopify_accepts_its_own_shop_or_any_shop_when_none_is_set():
    Shopify().check_sender(
        request(SHOPIFY_HEADERS, {}), {"shop_domain": "crm-hub-fixtures.myshopify.com"}
    )
    Shopify().check_sender(request(SHOPIFY_HEADERS, {}), {})


# --- Shopify: parse --------------------------------------------------------------------------


def test_shopify_customer_record():
    [record] = parse("shopify", load("shopify", "customers_create"))
    assert (record.object_type, record.external_id) == ("customer", "7312459886721")


def test_shopify_customer_observed_at_is_its_updated_at_in_utc():
    [record] = parse("shopify", load("shopify", "customers_update"))
    assert record.observed_at == datetime(2026, 11, 20, 19, 32, 8, tzinfo=UTC)
    assert record.observed_at.tzinfo is UTC


def test_shopify_meta_carries_connection_settings_topic_and_api_version():
    context = ConnectionContext("shop", {"default_region": "US"})
    [record] = parse("shopify", load("shopify", "customers_create_2025_01"), context)
    assert record.payload["_meta"] == {
        "connection": "shop",
        "default_region": "US",
        "topic": "customers/create",
        "api_version": "2025-01",
    }


def test_shopify_customer_without_updated_at_falls_back_to_the_trigger_time():
    fixture = load("shopify", "customers_create")
    del fixture["body"]["updated_at"]
    [record] = parse("shopify", fixture)
    assert record.observed_at == datetime(2026, 11, 2, 15, 15, 1, 703281, tzinfo=UTC)


def test_shopify_customer_without_id_is_refused():
    fixture = load("shopify", "customers_create")
    del fixture["body"]["id"]
    with pytest.raises(PayloadError, match="the customer has no id"):
        parse("shopify", fixture)


def test_shopify_record_without_any_time_is_refused():
    fixture = load("shopify", "customers_create")
    del fixture["body"]["updated_at"]
    del fixture["headers"]["X-Shopify-Triggered-At"]
    with pytest.raises(PayloadError, match="no updated_at or created_at"):
        parse("shopify", fixture)


def test_shopify_record_with_a_bad_time_is_refused():
    fixture = load("shopify", "customers_create")
    fixture["body"]["updated_at"] = "last Tuesday"
    with pytest.raises(PayloadError, match="bad timestamp"):
        parse("shopify", fixture)


def test_shopify_order_is_about_its_customer():
    [record] = parse("shopify", load("shopify", "orders_create"))
    assert (record.object_type, record.external_id) == ("order", "7312459886721")
    assert record.observed_at == datetime(2026, 11, 10, 0, 42, 19, tzinfo=UTC)


def test_shopify_guest_order_has_no_external_id():
    fixture = load("shopify", "orders_create")
    fixture["body"]["customer"] = None
    [record] = parse("shopify", fixture)
    assert record.external_id is None


def test_shopify_order_without_updated_at_is_observed_at_creation():
    fixture = load("shopify", "orders_create")
    del fixture["body"]["updated_at"]
    [record] = parse("shopify", fixture)
    assert record.observed_at == datetime(2026, 11, 10, 0, 42, 17, tzinfo=UTC)


# --- Stripe: identify and parse --------------------------------------------------------------


def test_stripe_delivery_key_is_the_event_id():
    body = load("stripe", "customer_created")["body"]
    delivery = Stripe().identify(request({}, body))
    assert (delivery.key, delivery.event_type) == (
        "evt_1TjXRSHb7xQ2LmZp4ASfzgUO",
        "customer.created",
    )


@pytest.mark.parametrize("missing", ["id", "type"])
def test_stripe_event_without_id_or_type_is_refused(missing):
    body = load("stripe", "customer_created")["body"]
    del body[missing]
    with pytest.raises(PayloadError, match=f"the body has no valid '{missing}'") as caught:
        Stripe().identify(request({}, body))
    assert caught.value.pointer == f"/{missing}"


def test_stripe_event_with_a_non_text_id_is_refused():
    with pytest.raises(PayloadError, match="no valid 'id'"):
        Stripe().identify(request({}, {"id": 123, "type": "customer.created"}))


def test_stripe_malformed_json_is_refused_with_line_and_column():
    with pytest.raises(PayloadError, match="at line 1 column 8"):
        Stripe().identify(request({}, b'{"id": }'))


def test_stripe_json_that_is_not_an_object_is_refused():
    with pytest.raises(PayloadError, match="must be a JSON object"):
        Stripe().identify(request({}, [1, 2]))


def test_stripe_customer_record():
    [record] = parse("stripe", load("stripe", "customer_created"))
    assert (record.object_type, record.external_id) == ("customer", "cus_3QCI33jOqw5LoV")


def test_stripe_observed_at_is_the_event_time_in_utc():
    [record] = parse("stripe", load("stripe", "customer_updated"))
    assert record.observed_at == datetime(2026, 11, 18, 21, 3, 44, tzinfo=UTC)
    assert record.observed_at.tzinfo is UTC


def test_stripe_meta_carries_event_type_api_version_and_livemode():
    context = ConnectionContext("pay", {"default_region": "US"})
    [record] = parse("stripe", load("stripe", "checkout_session_completed"), context)
    assert record.payload["_meta"] == {
        "connection": "pay",
        "default_region": "US",
        "event_type": "checkout.session.completed",
        "api_version": "2024-06-20",
        "livemode": False,
    }


def test_stripe_guest_checkout_has_no_external_id():
    [record] = parse("stripe", load("stripe", "checkout_session_completed"))
    assert (record.object_type, record.external_id) == ("checkout_session", None)


def test_stripe_checkout_of_a_customer_is_about_that_customer():
    fixture = load("stripe", "checkout_session_completed")
    fixture["body"]["data"]["object"]["customer"] = "cus_3QCI33jOqw5LoV"
    [record] = parse("stripe", fixture)
    assert record.external_id == "cus_3QCI33jOqw5LoV"


def test_stripe_event_without_data_object_is_refused():
    fixture = load("stripe", "customer_created")
    fixture["body"]["data"] = {}
    with pytest.raises(PayloadError, match="no data.object"):
        parse("stripe", fixture)


@pytest.mark.parametrize("created", [None, "1793812806", 1793812806.5])
def test_stripe_event_without_an_integer_created_time_is_refused(created):
    fixture = load("stripe", "customer_created")
    fixture["body"]["created"] = created
    with pytest.raises(PayloadError, match="no created time"):
        parse("stripe", fixture)


def test_stripe_understands_customer_and_checkout_events_only():
    stripe_connector = Stripe()
    assert stripe_connector.understands("customer.updated")
    assert stripe_connector.understands("checkout.session.completed")
    assert not stripe_connector.understands("invoice.finalized")


# --- golden files ----------------------------------------------------------------------------

GOLDEN_TOOLS = ("shopify", "stripe")  # other tools keep their golden tests in test_<tool>.py
ALL_FIXTURES = sorted(
    (path.parent.name, path.stem)
    for tool in GOLDEN_TOOLS
    for path in (FIXTURES / tool).glob("*.json")
    if not path.name.endswith(".expected.json")
)
UNDERSTOOD = [
    (tool, name)
    for tool, name in ALL_FIXTURES
    if get_connector(tool).understands(event_type(tool, load(tool, name)))
]
EXPECTED = sorted(
    (path.parent.name, path.name.removesuffix(".expected.json"))
    for tool in GOLDEN_TOOLS
    for path in (FIXTURES / tool).glob("*.expected.json")
)


def test_every_understood_fixture_has_an_expected_file_and_no_other_does():
    assert EXPECTED == UNDERSTOOD
    assert ("shopify", "unknown_topic") not in UNDERSTOOD
    assert ("stripe", "unknown_event") not in UNDERSTOOD


@pytest.mark.parametrize(("tool", "name"), UNDERSTOOD, ids=[f"{t}/{n}" for t, n in UNDERSTOOD])
def test_fixture_maps_to_its_expected_canonical_fields(tool, name):
    connector = get_connector(tool)
    fixture = load(tool, name)
    [record] = connector.parse(
        delivery_for(tool, fixture), json.dumps(fixture["body"]).encode(), CONTEXT
    )
    fields, problems = (
        FileMappingStore().get(connector.key, record.object_type).apply(record.payload)
    )
    expected = json.loads((FIXTURES / tool / f"{name}.expected.json").read_text())
    assert {
        "object_type": record.object_type,
        "external_id": record.external_id,
        "observed_at": record.observed_at.isoformat(),
        "fields": fields,
        "problems": problems,
    } == expected
