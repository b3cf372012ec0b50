"""QuickBooks Online: intuit-signature, both payload formats, thin records read back, the query
stream and the batch sink, against `responses` shaped like Intuit's documented API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.quickbooks import TOKEN_URL, QuickBooks, customer_query
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "quickbooks"
REALM = "9341455130166501"
API = f"https://quickbooks.api.intuit.com/v3/company/{REALM}"
SECRET = "qbo-verifier-token-for-tests"
CONTEXT = ConnectionContext("books", {"realm_id": REALM, "default_region": "US"},
                            {"client_id": "client-id", "client_secret": "client-secret",
                             "refresh_token": "refresh-1"})
QBO = QuickBooks()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body_of(name: str) -> bytes:
    return json.dumps(load(name)["body"]).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example/webhooks/books", Headers(headers or {}),
                          body, datetime(2026, 11, 20, 10, 15, 3, tzinfo=UTC))


def client():
    http = QBO.client(CONTEXT)
    http.sleep = lambda _seconds: None
    return http


# --- signature -------------------------------------------------------------------------------


def test_a_body_signed_with_the_verifier_token_is_accepted():
    body = body_of("customer_update_legacy")
    QBO.verify(request(body, {"intuit-signature": sign(body)}), [SECRET])


def test_a_tampered_body_is_refused():
    body = body_of("customer_update_legacy")
    tampered = body.replace(b'"58"', b'"59"')
    with pytest.raises(SignatureError, match="does not match"):
        QBO.verify(request(tampered, {"intuit-signature": sign(body)}), [SECRET])


def test_a_body_signed_with_the_previous_token_is_accepted_during_rotation():
    body = body_of("customer_created_cloudevents")
    QBO.verify(request(body, {"Intuit-Signature": sign(body, "old-token")}),
               ["new-token", "old-token"])
    with pytest.raises(SignatureError):
        QBO.verify(request(body, {"Intuit-Signature": sign(body, "old-token")}), ["new-token"])


def test_a_missing_signature_header_is_refused():
    with pytest.raises(SignatureError, match="intuit-signature header is missing"):
        QBO.verify(request(body_of("customer_update_legacy")), [SECRET])


def test_a_hex_signature_is_not_intuits_scheme():
    body = body_of("customer_update_legacy")
    hex_digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        QBO.verify(request(body, {"intuit-signature": hex_digest}), [SECRET])


# --- identify --------------------------------------------------------------------------------


def test_a_legacy_delivery_is_keyed_on_its_entity_changes():
    first = QBO.identify(request(body_of("customer_update_legacy")))
    assert first.event_type == "Customer.Update"
    assert first.key.startswith("legacy:")
    assert QBO.identify(request(body_of("customer_update_legacy"))).key == first.key
    later = load("customer_update_legacy")["body"]
    later["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["lastUpdated"] = \
        "2026-11-18T22:09:00.000Z"
    assert QBO.identify(request(json.dumps(later).encode())).key != first.key


def test_the_legacy_key_does_not_depend_on_the_order_of_entities():
    body = load("mixed_legacy")["body"]
    entities = body["eventNotifications"][0]["dataChangeEvent"]["entities"]
    reordered = json.loads(json.dumps(body))
    reordered["eventNotifications"][0]["dataChangeEvent"]["entities"] = entities[::-1]
    assert QBO.identify(request(json.dumps(body).encode())).key == \
        QBO.identify(request(json.dumps(reordered).encode())).key


def test_a_cloud_event_is_keyed_on_its_id():
    delivery = QBO.identify(request(body_of("customer_created_cloudevents")))
    assert delivery.key == "ce:4d2b7c1e-8a3f-4e5b-9c0d-1f2e3a4b5c6d-Customer-61"
    assert delivery.event_type == "qbo.customer.created.v1"


def test_several_cloud_events_are_keyed_on_all_their_ids_and_typed_by_the_customer_one():
    events = load("invoice_created_cloudevents")["body"] + \
        load("customer_created_cloudevents")["body"]
    delivery = QBO.identify(request(json.dumps(events).encode()))
    ids = "\n".join(sorted(e["id"] for e in events))
    assert delivery.key == "ce:" + hashlib.sha256(ids.encode()).hexdigest()
    assert delivery.event_type == "qbo.customer.created.v1"


def test_a_delivery_about_invoices_only_is_not_understood():
    delivery = QBO.identify(request(body_of("invoice_created_cloudevents")))
    assert delivery.event_type == "qbo.invoice.created.v1"
    assert not QBO.understands(delivery.event_type)
    assert not QBO.understands("Customer.Delete")


def test_the_cloudevents_content_type_is_kept_for_the_worker():
    delivery = QBO.identify(request(body_of("customer_created_cloudevents"),
                                    {"Content-Type": "application/cloudevents+json"}))
    assert delivery.headers == {"Content-Type": "application/cloudevents+json"}


@pytest.mark.parametrize(("body", "message"), [
    (b'{"eventNotifications": [', "not valid JSON"),
    (b'{"hello": "world"}', "neither an eventNotifications object nor a CloudEvents array"),
    (b"[]", "names no entity change"),
    (b'{"eventNotifications": [{"realmId": "1"}]}', "realmId and dataChangeEvent.entities"),
    (b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [{"name": '
     b'"Customer", "id": "1"}]}}]}', "name, id, operation and lastUpdated"),
    (b'[{"specversion": "1.0", "type": "qbo.customer.created.v1"}]', "no valid 'id'"),
    (b'{"eventNotifications": ["Customer"]}', "realmId and dataChangeEvent.entities"),
    (b'{"eventNotifications": [{"realmId": "1", "dataChangeEvent": "x"}]}', "realmId and"),
    (b'["qbo.customer.created.v1"]', "must be an object"),
])
def test_a_malformed_notification_is_refused_with_a_reason(body, message):
    with pytest.raises(PayloadError, match=message):
        QBO.identify(request(body))


# --- parse and fetch -------------------------------------------------------------------------


def test_a_notification_becomes_a_thin_record_to_read_back():
    delivery = QBO.identify(request(body_of("customer_update_legacy")))
    [record] = QBO.parse(delivery, body_of("customer_update_legacy"), CONTEXT)
    assert (record.object_type, record.external_id) == ("customer", "58")
    assert record.fetch == f"{API}/customer/58"
    assert record.observed_at == datetime(2026, 11, 18, 22, 5, 31, tzinfo=UTC)
    assert record.payload["_meta"]["event_type"] == "Customer.Update"


def test_other_entities_and_other_companies_are_skipped_and_a_merge_names_the_merged_away():
    body = body_of("mixed_legacy")
    records = QBO.parse(QBO.identify(request(body)), body, CONTEXT)
    assert [r.external_id for r in records] == ["58", "61"]
    assert records[1].payload["_meta"]["merged_from"] == "27"


def test_the_sandbox_environment_reads_from_the_sandbox_host():
    sandbox = ConnectionContext("b", {"realm_id": REALM, "environment": "sandbox"},
                                CONTEXT.credentials)
    body = body_of("customer_update_legacy")
    [record] = QBO.parse(QBO.identify(request(body)), body, sandbox)
    assert record.fetch.startswith("https://sandbox-quickbooks.api.intuit.com/v3/company/")
    with pytest.raises(ConfigurationError, match="production or sandbox"):
        QBO.client(ConnectionContext("b", {"environment": "staging"}, CONTEXT.credentials))


def test_fetch_refreshes_the_token_once_then_reads_json_at_the_pinned_minor_version():
    body = body_of("customer_update_legacy")
    [thin] = QBO.parse(QBO.identify(request(body)), body, CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/customer/58", status=401,
                 json={"fault": {"error": [{"message": "AuthenticationFailed"}]}})
        rsps.add(responses.POST, TOKEN_URL, json={
            "access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 3600})
        rsps.add(responses.GET, f"{API}/customer/58", json=load("api/customer_58"))
        record = QBO.fetch(client(), thin)
        token_call, read = rsps.calls[1], rsps.calls[2]
    basic = base64.b64encode(b"client-id:client-secret").decode()
    assert token_call.request.headers["Authorization"] == f"Basic {basic}"
    assert parse_qs(token_call.request.body) == {"grant_type": ["refresh_token"],
                                                 "refresh_token": ["refresh-1"]}
    assert read.request.headers["Authorization"] == "Bearer access-2"
    assert read.request.headers["Accept"] == "application/json"
    assert parse_qs(urlsplit(read.request.url).query) == {"minorversion": ["75"]}
    assert record.payload["DisplayName"] == "Raman Design Co"
    assert record.payload["_meta"]["event_type"] == "Customer.Update"


def test_a_refused_refresh_token_needs_the_admins_attention():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/customer/58", status=401, body="{}")
        rsps.add(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
        with pytest.raises(AuthenticationError):
            client().request("GET", f"{API}/customer/58")


UNDERSTOOD = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_golden_file(name):
    body = body_of(name)
    delivery = QBO.identify(request(body))
    assert QBO.understands(delivery.event_type)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for customer in ("58", "61"):
            rsps.add(responses.GET, f"{API}/customer/{customer}",
                     json=load(f"api/customer_{customer}"))
        records = [QBO.fetch(client(), r) for r in QBO.parse(delivery, body, CONTEXT)]
    got = []
    for record in records:
        fields, problems = FileMappingStore().get("quickbooks", "customer").apply(record.payload)
        got.append({"object_type": record.object_type, "external_id": record.external_id,
                    "observed_at": record.observed_at.isoformat(), "fields": fields,
                    "problems": problems})
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert got == (expected if isinstance(expected, list) else [expected])


def test_every_fixture_is_either_understood_with_an_expected_file_or_ignored():
    names = sorted(p.stem for p in FIXTURES.glob("*.json") if ".expected" not in p.name)
    understood = [n for n in names if QBO.understands(QBO.identify(request(body_of(n))).event_type)]
    assert understood == UNDERSTOOD
    assert "invoice_created_cloudevents" in names


# --- stream ----------------------------------------------------------------------------------


def customers(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"Id": str(start + n), "MetaData": {"LastUpdatedTime": "2026-11-01T00:00:00-07:00"}}
            for n in range(count)]


def query_of(call: Any) -> str:
    return parse_qs(urlsplit(call.request.url).query)["query"][0]


def test_the_stream_reads_every_page_to_the_end():
    [stream] = QBO.streams(CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/query", json={"QueryResponse": {
            "Customer": customers(1000), "startPosition": 1, "maxResults": 1000}})
        rsps.add(responses.GET, f"{API}/query", json={"QueryResponse": {
            "Customer": customers(3, 1000), "startPosition": 1001, "maxResults": 3}})
        records = [r for page in stream.read(client()) for r in page.records]
        queries = [query_of(c) for c in rsps.calls]
    assert len(records) == 1003
    assert queries[0].endswith("STARTPOSITION 1 MAXRESULTS 1000")
    assert queries[1].endswith("STARTPOSITION 1001 MAXRESULTS 1000")
    assert "Active IN (true, false)" in queries[0]


def test_an_incremental_read_asks_for_customers_changed_since_the_bookmark():
    [stream] = QBO.streams(CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/query", json={"QueryResponse": {}})
        assert [p.records for p in stream.read(client(), "2026-11-01T00:00:00-07:00")] == [[]]
        query = query_of(rsps.calls[0])
    assert "Metadata.LastUpdatedTime >= '2026-11-01T00:00:00-07:00'" in query
    assert "ORDERBY Metadata.LastUpdatedTime" in query


def test_a_bookmark_that_is_not_a_time_is_refused_before_it_reaches_the_query():
    with pytest.raises(ConfigurationError, match="not a QuickBooks timestamp"):
        customer_query("2026-11-01' OR Id > '0")


def test_a_throttled_read_waits_the_60_seconds_intuit_asks_for_then_goes_on():
    [stream] = QBO.streams(CONTEXT)
    http = QBO.client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/query", status=429,
                 json={"Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "003001"}],
                                 "type": "SERVICE"}})
        rsps.add(responses.GET, f"{API}/query", status=503, body="unavailable")
        rsps.add(responses.GET, f"{API}/query", json={"QueryResponse": {"Customer": customers(2)}})
        pages = list(stream.read(http))
    assert len(pages[0].records) == 2
    assert waits[0] >= 60
    assert len(waits) == 2


# --- sink ------------------------------------------------------------------------------------

BATCH = re.compile(re.escape(f"{API}/batch") + r"\?.*")


def sent(call: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(call.request.body)
    return data


def test_a_batch_creates_and_updates_with_one_result_per_record():
    sink = QBO.sinks(CONTEXT)["customer"]
    records = [OutboundRecord(1, None, {"DisplayName": "Ana Lima"}),
               OutboundRecord(2, "58", {"PrimaryEmailAddr": {"Address": "priya@example.com"}}),
               OutboundRecord(3, "61", {"DisplayName": "Raman Design Co"})]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [{"bId": "tokens",
                 "QueryResponse": {"Customer": [{"Id": "58", "SyncToken": "3"},
                                                {"Id": "61", "SyncToken": "0"}]}}]})
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [
            {"bId": "0", "Customer": {"Id": "70", "SyncToken": "0"}},
            {"bId": "1", "Customer": {"Id": "58", "SyncToken": "4"}},
            {"bId": "2", "Fault": {"type": "ValidationFault", "Error": [{
                "Message": "Duplicate Name Exists Error", "code": "6240",
                "Detail": "The name supplied already exists. : Id=58"}]}}]})
        results = sink.push(client(), records)
        lookup, batch = sent(rsps.calls[0]), sent(rsps.calls[1])
        request_ids = [parse_qs(urlsplit(c.request.url).query)["requestid"] for c in rsps.calls]
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.CREATED, "70"), (Outcome.UPDATED, "58"), (Outcome.REJECTED, "61")]
    assert "Duplicate Name Exists Error (6240)" in results[2].reason
    assert "Id IN ('58', '61')" in lookup["BatchItemRequest"][0]["Query"]
    update = batch["BatchItemRequest"][1]
    assert update["operation"] == "update"
    assert update["Customer"] == {"PrimaryEmailAddr": {"Address": "priya@example.com"},
                                  "Id": "58", "SyncToken": "3", "sparse": True}
    assert request_ids[0] != request_ids[1]


def test_a_customer_quickbooks_no_longer_has_is_rejected_without_writing():
    sink = QBO.sinks(CONTEXT)["customer"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [
            {"bId": "tokens", "QueryResponse": {}}]})
        [result] = sink.push(client(), [OutboundRecord(4, "27", {"DisplayName": "Gone"})])
    assert result.outcome is Outcome.REJECTED
    assert "not in QuickBooks" in result.reason


def test_a_refused_batch_is_retried_record_by_record():
    sink = QBO.sinks(CONTEXT)["customer"]
    records = [OutboundRecord(1, None, {"DisplayName": "Ana Lima"}),
               OutboundRecord(2, None, {"DisplayName": ""})]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BATCH, status=400, json={"Fault": {"Error": [
            {"Message": "Request has invalid or unsupported property", "code": "2010"}]}})
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [
            {"bId": "0", "Customer": {"Id": "71"}}]})
        rsps.add(responses.POST, BATCH, status=400, json={"Fault": {"Error": [
            {"Message": "Required param missing", "code": "2020"}]}})
        results = sink.push(client(), records)
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REJECTED]
    assert "Required param missing" in results[1].reason


def test_delete_makes_the_customer_inactive_and_a_missing_one_counts_as_gone():
    sink = QBO.sinks(CONTEXT)["customer"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [{"bId": "tokens",
                 "QueryResponse": {"Customer": [{"Id": "58", "SyncToken": "4"}]}}]})
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [
            {"bId": "0", "Customer": {"Id": "58", "Active": False}}]})
        result = sink.remove(client(), 9, "58")
        deactivate = sent(rsps.calls[1])["BatchItemRequest"][0]["Customer"]
    assert result.outcome is Outcome.DELETED
    assert deactivate == {"Id": "58", "SyncToken": "4", "sparse": True, "Active": False}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, BATCH, json={"BatchItemResponse": [
            {"bId": "tokens", "QueryResponse": {}}]})
        gone = sink.remove(client(), 9, "58")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")
