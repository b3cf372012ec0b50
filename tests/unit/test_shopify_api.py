"""Shopify beyond the customer webhooks: consent topics, and the GraphQL Admin API (customers
pulled page by page, pushed in batches of mutations, throttling, refusals).

Responses are shaped like Shopify's documented GraphQL answers: `data.customers.nodes` with
`pageInfo {hasNextPage endCursor}`, `extensions.cost.throttleStatus`, per-mutation userErrors.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.base import ConnectionContext, Delivery, Headers
from connectors.shopify import Shopify, throttle_wait
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError, PayloadError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
URL = "https://crm-hub-fixtures.myshopify.com/admin/api/2026-01/graphql.json"
CONTEXT = ConnectionContext("shop", {"shop_domain": "crm-hub-fixtures.myshopify.com",
                                     "default_region": "US"},
                            {"access_token": "shpat_test_token_0123456789"})
CONSENT_FIXTURES = ("customers_email_marketing_consent_update",
                    "customers_marketing_consent_update")


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def parse(fixture: dict[str, Any]):
    shopify = Shopify()
    headers = shopify.keep_headers(Headers(fixture["headers"]))
    delivery = Delivery("key", fixture["headers"]["X-Shopify-Topic"], headers)
    return shopify.parse(delivery, json.dumps(fixture["body"]).encode(), CONTEXT)


def http():
    client = Shopify().client(CONTEXT)
    waits: list[float] = []
    client.sleep = waits.append
    return client, waits


def sent(call: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def page(nodes: list[dict[str, Any]], cursor: str | None, more: bool) -> dict[str, Any]:
    return {"data": {"customers": {"nodes": nodes,
                                   "pageInfo": {"hasNextPage": more, "endCursor": cursor}}},
            "extensions": {"cost": {"requestedQueryCost": 502, "actualQueryCost": 12,
                                    "throttleStatus": {"maximumAvailable": 2000.0,
                                                       "currentlyAvailable": 1988.0,
                                                       "restoreRate": 100.0}}}}


THROTTLED = {"errors": [{"message": "Throttled",
                         "extensions": {"code": "THROTTLED",
                                        "documentation": "https://shopify.dev/api/usage/limits"}}],
             "extensions": {"cost": {"requestedQueryCost": 502, "actualQueryCost": None,
                                     "throttleStatus": {"maximumAvailable": 2000.0,
                                                        "currentlyAvailable": 102.0,
                                                        "restoreRate": 100.0}}}}


# --- consent topics --------------------------------------------------------------------------


def test_consent_topics_are_understood_under_the_names_shopify_sends():
    shopify = Shopify()
    assert shopify.events["customers_email_marketing_consent/update"] == "email_consent"
    assert shopify.events["customers_marketing_consent/update"] == "sms_consent"
    assert not shopify.understands("customers/delete")  # erasure is handled elsewhere


@pytest.mark.parametrize("name", CONSENT_FIXTURES)
def test_consent_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(load(name))
    fields, problems = FileMappingStore().get("shopify", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


def test_a_consent_update_without_a_time_is_observed_when_shopify_triggered_it():
    fixture = load("customers_email_marketing_consent_update")
    fixture["body"]["email_marketing_consent"]["consent_updated_at"] = None
    [record] = parse(fixture)
    assert record.observed_at == datetime(2026, 11, 16, 13, 12, 3, 118402, tzinfo=UTC)


@pytest.mark.parametrize(("name", "key"), [(CONSENT_FIXTURES[0], "customer_id"),
                                           (CONSENT_FIXTURES[1], "id")])
def test_a_consent_update_without_its_customer_is_refused(name, key):
    fixture = load(name)
    del fixture["body"][key]
    with pytest.raises(PayloadError, match=f"no {key}"):
        parse(fixture)


def test_a_consent_update_without_its_consent_object_is_refused():
    fixture = load("customers_marketing_consent_update")
    fixture["body"]["sms_marketing_consent"] = None
    with pytest.raises(PayloadError, match="no sms_marketing_consent object"):
        parse(fixture)


def test_an_unsubscribe_from_email_maps_to_withdrawn_without_a_lawful_basis():
    fixture = load("customers_email_marketing_consent_update")
    fixture["body"]["email_marketing_consent"]["state"] = "unsubscribed"
    [record] = parse(fixture)
    fields, _ = FileMappingStore().get("shopify", "email_consent").apply(record.payload)
    assert fields["consent.email.status"] == "withdrawn"
    assert "consent.email.lawful_basis" not in fields


# --- client ----------------------------------------------------------------------------------


def test_the_client_calls_the_shop_with_its_access_token(rsps):
    client, _ = http()
    rsps.add(responses.POST, URL, json=page([], None, False))
    client.request("POST", "/admin/api/2026-01/graphql.json", json={"query": "{ shop }"})
    assert rsps.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_test_token_0123456789"


@pytest.mark.parametrize("domain", [None, "", "evil.example.com", "shop.myshopify.com/x"])
def test_the_client_needs_a_myshopify_domain(domain):
    context = ConnectionContext("shop", {"shop_domain": domain}, {"access_token": "t"})
    with pytest.raises(ConfigurationError, match="needs shop_domain"):
        Shopify().client(context)


def test_the_client_needs_an_access_token():
    context = ConnectionContext("shop", {"shop_domain": "a.myshopify.com"}, {})
    with pytest.raises(ConfigurationError, match="no 'access_token'"):
        Shopify().client(context)


def test_an_api_version_that_is_not_a_date_is_refused():
    context = ConnectionContext("shop", {"shop_domain": "a.myshopify.com",
                                         "api_version": "latest"}, {"access_token": "t"})
    with pytest.raises(ConfigurationError, match="not YYYY-MM"):
        Shopify().streams(context)


# --- stream ----------------------------------------------------------------------------------


def test_customers_are_read_page_by_page_to_the_end_with_the_cursor(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.POST, URL, json=page([{"id": "1"}, {"id": "2"}], "c1", True))
    rsps.add(responses.POST, URL, json=page([{"id": "3"}], "c2", False))
    ids = [r["id"] for p in stream.read(client) for r in p.records]
    assert ids == ["1", "2", "3"]
    first, second = sent(rsps.calls[0]), sent(rsps.calls[1])
    assert first["variables"] == {"first": 100}
    assert second["variables"] == {"first": 100, "after": "c1"}
    assert "customers(first: $first, after: $after, query: $query" in first["query"]
    assert "id: legacyResourceId" in first["query"]


def test_an_incremental_read_asks_for_customers_updated_since_the_bookmark(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.POST, URL, json=page([{"id": "1"}], "c1", True))
    rsps.add(responses.POST, URL, json=page([], None, False))
    list(stream.read(client, bookmark="2026-11-20T00:00:00Z"))
    for call in rsps.calls:
        assert sent(call)["variables"]["query"] == "updated_at:>='2026-11-20T00:00:00Z'"


def test_a_pulled_customer_maps_like_a_webhook_customer():
    node = {"id": "7312460011841", "first_name": "Kenji", "last_name": "Sampleton",
            "updated_at": "2026-11-16T13:05:44Z", "tags": ["vip", " wholesale"],
            "orders_count": "3", "amount_spent": {"amount": "120.5", "currency_code": "CAD"},
            "email_marketing_consent": {"email": "Kenji.Sampleton@example.net",
                                        "state": "SUBSCRIBED", "opt_in_level": "SINGLE_OPT_IN",
                                        "consent_updated_at": "2026-11-16T13:12:02Z"},
            "sms_marketing_consent": {"phone": "+14165550182", "state": "NOT_SUBSCRIBED"},
            "default_address": {"country_code": "CA", "province_code": "ON", "city": "Toronto"}}
    fields, problems = FileMappingStore().get("shopify", "customer").apply(
        {**node, "_meta": {"default_region": "US"}})
    assert problems == []
    assert fields["email"] == "kenji.sampleton@example.net"
    assert fields["phone"] == "+14165550182"
    assert fields["tags"] == ["vip", "wholesale"]
    assert (fields["commerce.order_count"], fields["commerce.total_spent"]) == (3, 120.5)
    assert fields["commerce.currency"] == "CAD"
    assert fields["consent.email.status"] == "granted"
    assert fields["consent.email.lawful_basis"] == "consent"
    assert fields["consent.email.double_opt_in"] is False
    assert fields["consent.sms.status"] == "denied"


def test_a_throttled_query_waits_as_long_as_the_cost_data_says_then_succeeds(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.POST, URL, json=THROTTLED)  # GraphQL throttles with 200
    rsps.add(responses.POST, URL, json=page([{"id": "1"}], None, False))
    records = [r for p in stream.read(client) for r in p.records]
    assert records == [{"id": "1"}]
    assert waits[0] >= (502 - 102) / 100.0


def test_throttle_wait_is_never_below_a_second_and_none_without_cost_data():
    assert throttle_wait({"extensions": {"cost": {"requestedQueryCost": 10, "throttleStatus": {
        "currentlyAvailable": 900, "restoreRate": 100}}}}) == 1.0
    assert throttle_wait({"errors": []}) is None
    assert throttle_wait([]) is None


def test_a_429_with_retry_after_waits_then_succeeds(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.POST, URL, status=429, headers={"Retry-After": "2.0"})
    rsps.add(responses.POST, URL, json=page([{"id": "1"}], None, False))
    list(stream.read(client))
    assert waits[0] >= 2.0


def test_a_server_error_is_retried(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.POST, URL, status=502, body="Bad Gateway")
    rsps.add(responses.POST, URL, json=page([{"id": "1"}], None, False))
    records = [r for p in stream.read(client) for r in p.records]
    assert records == [{"id": "1"}] and len(waits) == 1


def test_a_refused_token_is_an_authentication_error(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.POST, URL, status=401,
             json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(AuthenticationError):
        list(stream.read(client))


def test_a_missing_scope_is_an_authentication_error(rsps):
    [stream] = Shopify().streams(CONTEXT)
    client, _ = http()
    denied = {"errors": [{"message": "Access denied for customers field.",
                          "extensions": {"code": "ACCESS_DENIED"}}]}
    rsps.add(responses.POST, URL, json=denied)
    with pytest.raises(AuthenticationError, match="scopes"):
        list(stream.read(client))


# --- sink ------------------------------------------------------------------------------------


def result(customer_id: str | None, errors: list[dict[str, Any]] | None = None):
    return {"customer": {"id": customer_id} if customer_id else None, "userErrors": errors or []}


def test_a_batch_updates_known_customers_and_creates_new_ones_in_one_document(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [
        OutboundRecord(1, "7312459886721", {"email": "nora@example.com", "firstName": "Nora",
                                            "address": {"city": "Brooklyn"}}),
        OutboundRecord(2, None, {"email": "new@example.com", "lastName": "New",
                                 "address": {"address1": "1 Main St", "countryCode": "US"}}),
    ]
    answer = {"data": {"c0": result("7312459886721"), "c1": result("8000000000001")}}
    rsps.add(responses.POST, URL, json=answer)
    results = sink.push(client, records)
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.UPDATED, "7312459886721"), (Outcome.CREATED, "8000000000001")]
    body = sent(rsps.calls[0])
    assert "c0: customerUpdate(input: $c0)" in body["query"]
    assert "c1: customerCreate(input: $c1)" in body["query"]
    assert body["variables"]["c0"] == {"email": "nora@example.com", "firstName": "Nora",
                                       "id": "gid://shopify/Customer/7312459886721"}
    assert body["variables"]["c1"]["addresses"] == [{"address1": "1 Main St",
                                                     "countryCode": "US"}]


def test_a_record_shopify_refuses_in_a_batch_is_rejected_alone_with_its_reason(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(1, None, {"email": "taken@example.com"}),
               OutboundRecord(2, None, {"email": "fresh@example.com"})]
    answer = {"data": {"c0": result(None, [{"field": ["email"],
                                            "message": "Email has already been taken"}]),
                       "c1": result("8000000000002")}}
    rsps.add(responses.POST, URL, json=answer)
    results = sink.push(client, records)
    assert results[0].outcome is Outcome.REJECTED
    assert results[0].reason == "email: Email has already been taken"
    assert (results[1].outcome, results[1].external_id) == (Outcome.CREATED, "8000000000002")


def test_a_refused_document_is_retried_record_by_record(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(1, "1", {"phone": "not a phone"}),
               OutboundRecord(2, "2", {"firstName": "Ok"})]
    invalid = {"errors": [{"message": "Variable $c0 of type CustomerInput! was provided "
                                      "invalid value for phone",
                           "extensions": {"code": "INVALID_VARIABLE"}}]}
    rsps.add(responses.POST, URL, json=invalid)  # the whole batch
    rsps.add(responses.POST, URL, json=invalid)  # record 1 alone
    rsps.add(responses.POST, URL, json={"data": {"c0": result("2")}})  # record 2 alone
    results = sink.push(client, records)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.UPDATED]
    assert "invalid value for phone" in (results[0].reason or "")
    assert len(rsps.calls) == 3


def test_email_consent_of_an_existing_customer_goes_through_its_own_mutation(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    consent = {"marketingState": "UNSUBSCRIBED", "consentUpdatedAt": "2026-11-20T10:00:00Z"}
    record = OutboundRecord(1, "7312459886721", {"email": "nora@example.com",
                                                 "emailMarketingConsent": consent})
    answer = {"data": {"c0": result("7312459886721"), "e0": result("7312459886721")}}
    rsps.add(responses.POST, URL, json=answer)
    [pushed] = sink.push(client, [record])
    body = sent(rsps.calls[0])
    assert "e0: customerEmailMarketingConsentUpdate(input: $e0)" in body["query"]
    assert "$e0: CustomerEmailMarketingConsentUpdateInput!" in body["query"]
    assert body["variables"]["e0"] == {"customerId": "gid://shopify/Customer/7312459886721",
                                       "emailMarketingConsent": consent}
    assert "emailMarketingConsent" not in body["variables"]["c0"]
    assert pushed.outcome is Outcome.UPDATED


def test_a_refused_unsubscribe_rejects_the_record_so_it_is_not_lost(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    record = OutboundRecord(1, "5", {"emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}})
    answer = {"data": {"c0": result("5"),
                       "e0": result(None, [{"field": ["input"], "message": "no email"}])}}
    rsps.add(responses.POST, URL, json=answer)
    [pushed] = sink.push(client, [record])
    assert pushed.outcome is Outcome.REJECTED
    assert pushed.reason == "customer saved, email consent refused: input: no email"


def test_a_new_customer_carries_its_consent_in_the_create_input(rsps):
    sink = Shopify().sinks(CONTEXT)["customer"]
    client, _ = http()
    record = OutboundRecord(1, None, {"email": "a@example.com",
                                      "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}})
    rsps.add(responses.POST, URL, json={"data": {"c0": result("9")}})
    sink.push(client, [record])
    body = sent(rsps.calls[0])
    assert "customerEmailMarketingConsentUpdate" not in body["query"]
    assert body["variables"]["c0"]["emailMarketingConsent"] == {"marketingState": "SUBSCRIBED"}


def test_the_outbound_mapping_pushes_only_consent_states_shopify_accepts():
    outbound = FileMappingStore().get_outbound("shopify", "customer")
    contact = {"email": "a@example.com", "consent": {"email": {"status": "denied",
                                                               "at": "2026-11-01T00:00:00Z"}}}
    payload, problems = outbound.apply(contact)
    assert problems == [] and "emailMarketingConsent" not in payload
    contact["consent"]["email"] = {"status": "withdrawn", "at": "2026-11-01T00:00:00Z"}
    payload, _ = outbound.apply(contact)
    assert payload["emailMarketingConsent"] == {"marketingState": "UNSUBSCRIBED",
                                                "consentUpdatedAt": "2026-11-01T00:00:00Z"}


def test_shopify_has_no_delete_sink():
    assert Shopify.capabilities() == {"webhooks": True, "pull": True, "push": True,
                                      "delete": False}
