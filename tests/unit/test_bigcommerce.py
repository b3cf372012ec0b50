"""BigCommerce: Standard Webhooks signatures (or the custom header secret), dedupe on the hash,
thin payloads read back from Customers V3, and the API: pages to the end, the incremental
filter, rate-limit headers, batches of 10 with per-record results, delete.
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
from connectors.bigcommerce import BigCommerce
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    RejectedRecordError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bigcommerce"
SECRET = "bc_client_secret_for_tests_0123456789"
STORE = "https://api.bigcommerce.com/stores/a1b2c3d4e5"
CONTEXT = ConnectionContext("bc", {"store_hash": "a1b2c3d4e5", "default_region": "US"},
                            {"access_token": "bc_token_for_tests_0123456789"})
SIGNED_AT = datetime(2026, 11, 19, 16, 20, 33, tzinfo=UTC)


@pytest.fixture
def rsps():
    with responses.RequestsMock() as mock:
        yield mock


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def sign(msg_id: str, timestamp: str, body: bytes, secret: str = SECRET) -> str:
    """As the Standard Webhooks reference libraries sign: v1,base64(HMAC(key, id.ts.body)),
    with BigCommerce's key being the client secret's bytes."""
    digest = hmac.new(secret.encode(), f"{msg_id}.{timestamp}.".encode() + body,
                      hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery(name: str, received: datetime = SIGNED_AT, **overrides: str) -> WebhookRequest:
    fixture = load(name)
    body = json.dumps(fixture["body"]).encode()
    headers = dict(fixture["headers"])
    headers["webhook-signature"] = sign(headers["webhook-id"], headers["webhook-timestamp"], body)
    headers.update(overrides)
    return WebhookRequest("POST", "https://hub.example/webhooks/bc", Headers(headers), body,
                          received)


def parse(name: str):
    fixture = load(name)
    connector = BigCommerce()
    return connector.parse(Delivery("k", fixture["body"]["scope"], {}),
                           json.dumps(fixture["body"]).encode(), CONTEXT)


def http():
    client = BigCommerce().client(CONTEXT)
    waits: list[float] = []
    client.sleep = waits.append
    return client, waits


# --- verify ----------------------------------------------------------------------------------


def test_a_signed_delivery_is_accepted():
    BigCommerce().verify(delivery("store_customer_updated"), [SECRET])


def test_a_tampered_body_is_refused():
    request = delivery("store_customer_updated")
    tampered = WebhookRequest(request.method, request.url, request.headers,
                              request.body.replace(b'"id": 32', b'"id": 33'), SIGNED_AT)
    with pytest.raises(SignatureError, match="no v1 signature"):
        BigCommerce().verify(tampered, [SECRET])


def test_a_signature_with_another_secret_is_refused():
    with pytest.raises(SignatureError):
        BigCommerce().verify(delivery("store_customer_updated"), ["another_secret_entirely"])


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_timestamp_more_than_five_minutes_away_is_refused(minutes):
    received = SIGNED_AT.replace(minute=SIGNED_AT.minute + minutes)
    with pytest.raises(SignatureError, match="more than 300 s away"):
        BigCommerce().verify(delivery("store_customer_updated", received), [SECRET])


def test_a_rotated_secret_list_accepts_either_key():
    BigCommerce().verify(delivery("store_customer_updated"), ["old_secret_value", SECRET])


def test_one_matching_entry_among_several_signatures_is_enough():
    request = delivery("store_customer_updated")
    both = "v1,bm90IHRoZSByaWdodCBvbmU= " + request.headers["webhook-signature"]
    BigCommerce().verify(delivery("store_customer_updated", **{"webhook-signature": both}),
                         [SECRET])


@pytest.mark.parametrize("signature", ["v1a,c2lnbmF0dXJl", "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9"])
def test_a_signature_of_another_scheme_is_refused(signature):
    with pytest.raises(SignatureError, match="no v1 signature"):
        BigCommerce().verify(delivery("store_customer_updated",
                                      **{"webhook-signature": signature}), [SECRET])


def test_a_signature_without_its_timestamp_header_is_refused():
    request = delivery("store_customer_updated")
    headers = Headers({k: v for k, v in request.headers.items() if k != "webhook-timestamp"})
    unsigned = WebhookRequest("POST", request.url, headers, request.body, SIGNED_AT)
    with pytest.raises(SignatureError, match="webhook-timestamp header is missing"):
        BigCommerce().verify(unsigned, [SECRET])


def custom_header_request(value: str | None) -> WebhookRequest:
    fixture = load("store_customer_updated")
    headers = {"Content-Type": "application/json"}
    if value is not None:
        headers["X-Hub-Webhook-Token"] = value
    return WebhookRequest("POST", "https://hub.example/webhooks/bc", Headers(headers),
                          json.dumps(fixture["body"]).encode(), SIGNED_AT)


def test_an_unsigned_hook_is_accepted_with_the_secret_in_its_custom_header():
    BigCommerce().verify(custom_header_request(SECRET), ["old", SECRET])


@pytest.mark.parametrize(("value", "message"), [(None, "neither a webhook-signature"),
                                                 ("guess", "not this connection's secret")])
def test_an_unsigned_hook_without_the_right_custom_header_is_refused(value, message):
    with pytest.raises(SignatureError, match=message):
        BigCommerce().verify(custom_header_request(value), [SECRET])


def test_a_delivery_from_another_store_is_refused():
    request = delivery("store_customer_updated")
    BigCommerce().check_sender(request, {"store_hash": "a1b2c3d4e5"})
    with pytest.raises(SignatureError, match="not this connection's store"):
        BigCommerce().check_sender(request, {"store_hash": "zz9"})


# --- identify and parse ----------------------------------------------------------------------


def test_the_delivery_key_is_the_scope_and_bigcommerce_hash():
    found = BigCommerce().identify(delivery("store_customer_updated"))
    assert found.key == "store/customer/updated:9f1c2e7a4b8d03e6c5a1f7b2d9e4c8a0b3f6d1e2"
    assert found.event_type == "store/customer/updated"
    assert found.headers == {"webhook-id": "msg_2pJ8vQz6R1kXa9cT4mWbE7yHnL0",
                             "webhook-timestamp": "1795105233"}


def test_without_a_hash_the_key_is_the_id_and_creation_time():
    fixture = load("store_customer_updated")
    del fixture["body"]["hash"]
    request = WebhookRequest("POST", "u", Headers({}), json.dumps(fixture["body"]).encode(),
                             SIGNED_AT)
    assert BigCommerce().identify(request).key == "store/customer/updated:32:1795105232"


@pytest.mark.parametrize(("body", "message"), [
    (b'{"data": {"id": 1}}', "no valid 'scope'"),
    (b'{"scope": "store/customer/updated", "data": {}}', "no data.id"),
    (b'[1]', "must be a JSON object"),
])
def test_a_malformed_delivery_is_refused(body, message):
    request = WebhookRequest("POST", "u", Headers({}), body, SIGNED_AT)
    with pytest.raises(PayloadError, match=message):
        BigCommerce().identify(request)


def test_a_thin_customer_event_is_fetched_back_by_id():
    [record] = parse("store_customer_updated")
    assert (record.object_type, record.external_id) == ("customer", "32")
    assert record.fetch == "/v3/customers?id:in=32&include=addresses"
    assert record.observed_at == datetime(2026, 11, 19, 16, 20, 32, tzinfo=UTC)
    assert record.payload["_meta"]["connection"] == "bc"


def test_an_address_event_is_about_the_customer_it_belongs_to():
    [record] = parse("store_customer_address_created")
    assert record.external_id == "32"
    assert record.fetch == "/v3/customers?id:in=32&include=addresses"


def test_an_event_without_created_at_is_refused():
    fixture = load("store_customer_updated")
    del fixture["body"]["created_at"]
    with pytest.raises(PayloadError, match="no created_at"):
        BigCommerce().parse(Delivery("k", "store/customer/updated", {}),
                            json.dumps(fixture["body"]).encode(), CONTEXT)


def test_only_customer_scopes_are_understood():
    assert BigCommerce().understands("store/customer/address/updated")
    assert not BigCommerce().understands("store/customer/deleted")  # erasure is elsewhere
    assert not BigCommerce().understands("store/order/created")


@pytest.mark.parametrize("name", ["store_customer_updated", "store_customer_address_created"])
def test_fixture_fetched_and_mapped_gives_its_expected_canonical_fields(name, rsps):
    api = json.loads((FIXTURES / "api" / "customers_32.json").read_text())
    rsps.add(responses.GET, f"{STORE}/v3/customers", json=api)
    [thin] = parse(name)
    client, _ = http()
    record = BigCommerce().fetch(client, thin)
    fields, problems = FileMappingStore().get("bigcommerce", "customer").apply(record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected
    assert rsps.calls[0].request.headers["X-Auth-Token"] == "bc_token_for_tests_0123456789"
    assert "id%3Ain=32" in rsps.calls[0].request.url or "id:in=32" in rsps.calls[0].request.url


def test_a_customer_gone_before_the_fetch_is_rejected(rsps):
    rsps.add(responses.GET, f"{STORE}/v3/customers", json={"data": [], "meta": {}})
    [thin] = parse("store_customer_updated")
    client, _ = http()
    with pytest.raises(RejectedRecordError, match="no longer exists"):
        BigCommerce().fetch(client, thin)


# --- API -------------------------------------------------------------------------------------


def page(ids: list[int], current: int, total: int) -> dict[str, Any]:
    return {"data": [{"id": i, "date_modified": "2026-11-20T10:00:00Z"} for i in ids],
            "meta": {"pagination": {"total": 3, "count": len(ids), "per_page": 2,
                                    "current_page": current, "total_pages": total}}}


def test_the_client_needs_a_store_hash_and_a_token():
    with pytest.raises(ConfigurationError, match="store_hash"):
        BigCommerce().client(ConnectionContext("bc", {"store_hash": "../x"}, {"access_token": "t"}))
    with pytest.raises(ConfigurationError, match="no 'access_token'"):
        BigCommerce().client(ConnectionContext("bc", {"store_hash": "abc"}, {}))


def test_customers_are_read_page_by_page_until_total_pages(rsps):
    [stream] = BigCommerce().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.GET, f"{STORE}/v3/customers", json=page([1, 2], 1, 2))
    rsps.add(responses.GET, f"{STORE}/v3/customers", json=page([3], 2, 2))
    ids = [r["id"] for p in stream.read(client, bookmark="2026-11-01T00:00:00Z")
           for r in p.records]
    assert ids == [1, 2, 3]
    params = [dict(parse_qsl(urlsplit(c.request.url).query)) for c in rsps.calls]
    assert params[0]["page"] == "1" and params[1]["page"] == "2"
    for p in params:
        assert p["date_modified:min"] == "2026-11-01T00:00:00Z"
        assert p["sort"] == "date_modified:asc" and p["include"] == "addresses"
        assert p["limit"] == "100"


def test_a_429_waits_until_the_quota_resets_then_succeeds(rsps):
    [stream] = BigCommerce().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.GET, f"{STORE}/v3/customers", status=429,
             headers={"X-Rate-Limit-Time-Reset-Ms": "7500", "X-Rate-Limit-Requests-Left": "0",
                      "X-Rate-Limit-Time-Window-Ms": "30000",
                      "X-Rate-Limit-Requests-Quota": "150"})
    rsps.add(responses.GET, f"{STORE}/v3/customers", json=page([1], 1, 1))
    assert [r["id"] for p in stream.read(client) for r in p.records] == [1]
    assert waits[0] >= 7.5


def test_a_server_error_is_retried(rsps):
    [stream] = BigCommerce().streams(CONTEXT)
    client, waits = http()
    rsps.add(responses.GET, f"{STORE}/v3/customers", status=500, json={"title": "oops"})
    rsps.add(responses.GET, f"{STORE}/v3/customers", json=page([1], 1, 1))
    assert len(list(stream.read(client))) == 1 and len(waits) == 1


def test_a_refused_token_is_an_authentication_error(rsps):
    [stream] = BigCommerce().streams(CONTEXT)
    client, _ = http()
    rsps.add(responses.GET, f"{STORE}/v3/customers", status=401,
             json={"status": 401, "title": "Unauthorized"})
    with pytest.raises(AuthenticationError):
        list(stream.read(client))


def test_a_batch_puts_known_customers_and_posts_new_ones(rsps):
    sink = BigCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [
        OutboundRecord(1, "32", {"email": "ben@example.org", "first_name": "Ben",
                                 "address": {"address1": "1 A St", "city": "X",
                                             "country_code": "US"}}),
        OutboundRecord(2, None, {"email": "New@Example.org", "first_name": "Nia",
                                 "last_name": "New", "address": {"address1": "2 B St",
                                                                 "city": "Y",
                                                                 "country_code": "US"}}),
    ]
    rsps.add(responses.PUT, f"{STORE}/v3/customers", json={"data": [{"id": 32}], "meta": {}})
    rsps.add(responses.POST, f"{STORE}/v3/customers",
             json={"data": [{"id": 77, "email": "new@example.org"}], "meta": {}})
    results = sink.push(client, records)
    assert [(r.outcome, r.external_id) for r in results] == [(Outcome.UPDATED, "32"),
                                                             (Outcome.CREATED, "77")]
    put, post = (json.loads(c.request.body) for c in rsps.calls)
    assert put == [{"email": "ben@example.org", "first_name": "Ben", "id": 32}]
    assert post == [{"email": "New@Example.org", "first_name": "Nia", "last_name": "New",
                     "addresses": [{"first_name": "Nia", "last_name": "New", "address1": "2 B St",
                                    "city": "Y", "country_code": "US"}]}]


def test_a_refused_batch_is_retried_record_by_record_with_each_reason(rsps):
    sink = BigCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(1, None, {"email": "taken@example.org", "first_name": "A",
                                        "last_name": "B"}),
               OutboundRecord(2, None, {"email": "ok@example.org", "first_name": "C",
                                        "last_name": "D"})]
    refused = {"status": 422, "title": "Create customers failed.",
               "type": "/api-docs/getting-started/api-status-codes",
               "errors": {".customer_create": "Error creating customers"}}
    rsps.add(responses.POST, f"{STORE}/v3/customers", status=422, json=refused)  # batch
    rsps.add(responses.POST, f"{STORE}/v3/customers", status=422, json=refused)  # record 1
    rsps.add(responses.POST, f"{STORE}/v3/customers",
             json={"data": [{"id": 78, "email": "ok@example.org"}]})  # record 2
    results = sink.push(client, records)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.CREATED]
    assert "422" in (results[0].reason or "") and results[1].external_id == "78"


def test_a_batch_holds_at_most_ten_customers(rsps):
    sink = BigCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    records = [OutboundRecord(i, str(i), {"first_name": "X"}) for i in range(1, 13)]
    rsps.add(responses.PUT, f"{STORE}/v3/customers", json={"data": []})
    rsps.add(responses.PUT, f"{STORE}/v3/customers", json={"data": []})
    sink.push(client, records)
    assert [len(json.loads(c.request.body)) for c in rsps.calls] == [10, 2]


def test_a_delete_names_the_customer_in_id_in(rsps):
    sink = BigCommerce().sinks(CONTEXT)["customer"]
    client, _ = http()
    rsps.add(responses.DELETE, f"{STORE}/v3/customers", status=204)
    result = sink.remove(client, 9, "32")
    assert result.outcome is Outcome.DELETED
    assert "id%3Ain=32" in rsps.calls[0].request.url
