"""HubSpot: signature v3, batched thin events, contacts read back, search, batch upsert.

The golden files in tests/fixtures/hubspot/ are deliveries as HubSpot posts them; the contacts
the worker reads back are in tests/fixtures/hubspot/api/contact_<id>.json. Expected files were
written by hand from those two (see the fixtures README).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.base import ConnectionContext, Delivery, Headers, WebhookRequest
from connectors.hubspot import API, CONTACTS, HubSpot, candidate_uris, modified_since
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    RejectedRecordError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hubspot"
SECRET = "hubspot-client-secret-for-tests"
URL = "https://hub.example/webhooks/hubspot"
NOW = datetime(2026, 11, 20, 19, 32, 10, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CONTEXT = ConnectionContext("hs", {"default_region": "US", "portal_id": "62515"},
                            {"access_token": TOKEN})
HUBSPOT = HubSpot()


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def sign(body: bytes, timestamp: int, *, uri: str = URL, method: str = "POST",
         secret: str = SECRET) -> str:
    message = method.encode() + uri.encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed(body: bytes, *, timestamp: int = NOW_MS - 2_000, url: str = URL,
           signed_uri: str | None = None, secret: str = SECRET,
           extra: dict[str, str] | None = None) -> WebhookRequest:
    headers = {"Content-Type": "application/json",
               "X-HubSpot-Signature-v3": sign(body, timestamp, uri=signed_uri or url,
                                              secret=secret),
               "X-HubSpot-Request-Timestamp": str(timestamp), **(extra or {})}
    return WebhookRequest("POST", url, Headers(headers), body, NOW)


def body_of(name: str) -> bytes:
    return json.dumps(fixture(name)["body"]).encode()


# --- signature v3 ----------------------------------------------------------------------------


def test_signature_vector_computed_with_hubspots_own_library():
    """HubSpot's v1 example body, signed v3 by hubspot-api-client 12.0.0's
    Signature.get_signature(secret, body, "v3", http_uri=..., timestamp="1793900000000").
    The same library reproduces the v1 hash published in HubSpot's docs (232db26...)."""
    body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
            b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
            b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')
    headers = Headers({"X-HubSpot-Signature-v3": "Z903RuG8MayMDx19Pu06Y1TOoZldG459j8rfiI2AEiA=",
                       "X-HubSpot-Request-Timestamp": "1793900000000"})
    received = datetime.fromtimestamp(1793900060, tz=UTC)
    request = WebhookRequest("POST", "https://hub.example/webhooks/hubspot", headers, body,
                             received)
    HUBSPOT.verify(request, ["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"])
    with pytest.raises(SignatureError):
        HUBSPOT.verify(request, ["another-secret"])


def test_a_correctly_signed_delivery_is_accepted():
    HUBSPOT.verify(signed(body_of("contact_creation")), [SECRET])


def test_a_tampered_body_is_refused():
    request = signed(body_of("contact_creation"))
    forged = WebhookRequest("POST", URL, request.headers, request.body.replace(b"1001", b"1002"),
                            NOW)
    with pytest.raises(SignatureError, match="does not match"):
        HUBSPOT.verify(forged, [SECRET])


def test_the_method_and_url_are_signed_too():
    body = body_of("contact_creation")
    with pytest.raises(SignatureError):
        HUBSPOT.verify(signed(body, url=URL, signed_uri="https://evil.example/webhooks/hubspot"),
                       [SECRET])
    request = signed(body)
    as_put = WebhookRequest("PUT", URL, request.headers, body, NOW)
    with pytest.raises(SignatureError):
        HUBSPOT.verify(as_put, [SECRET])


def test_a_timestamp_older_than_five_minutes_is_refused_even_when_signed():
    body = body_of("contact_creation")
    HUBSPOT.verify(signed(body, timestamp=NOW_MS - 299_000), [SECRET])
    with pytest.raises(SignatureError, match="more than 5 minutes old"):
        HUBSPOT.verify(signed(body, timestamp=NOW_MS - 301_000), [SECRET])


def test_every_secret_in_the_rotation_list_is_tried():
    body = body_of("contact_creation")
    HUBSPOT.verify(signed(body, secret="new-secret"), ["old-secret", "new-secret"])
    HUBSPOT.verify(signed(body, secret="old-secret"), ["old-secret", "new-secret"])
    with pytest.raises(SignatureError):
        HUBSPOT.verify(signed(body, secret="gone-secret"), ["old-secret", "new-secret"])


def test_missing_or_legacy_only_signature_headers_are_refused():
    body = body_of("contact_creation")
    request = signed(body)
    no_signature = Headers({k: v for k, v in request.headers.items()
                            if k != "x-hubspot-signature-v3"})
    legacy = Headers({**no_signature, "X-HubSpot-Signature": "abc",
                      "X-HubSpot-Signature-Version": "v1"})
    no_time = Headers({k: v for k, v in request.headers.items()
                       if k != "x-hubspot-request-timestamp"})
    with pytest.raises(SignatureError, match="v3 header is missing$"):
        HUBSPOT.verify(WebhookRequest("POST", URL, no_signature, body, NOW), [SECRET])
    with pytest.raises(SignatureError, match="only a v1 signature"):
        HUBSPOT.verify(WebhookRequest("POST", URL, legacy, body, NOW), [SECRET])
    with pytest.raises(SignatureError, match="Timestamp header is missing"):
        HUBSPOT.verify(WebhookRequest("POST", URL, no_time, body, NOW), [SECRET])


def test_listed_percent_escapes_in_the_url_are_decoded_before_hashing():
    body = body_of("contact_creation")
    request = signed(body, url=URL + "?source=hubspot%3Aprod%2Cmain",
                     signed_uri=URL + "?source=hubspot:prod,main")
    HUBSPOT.verify(request, [SECRET])


def test_behind_a_proxy_the_public_url_is_rebuilt_from_forwarded_headers():
    body = body_of("contact_creation")
    request = signed(body, url="http://10.0.0.7:8000/webhooks/hubspot", signed_uri=URL,
                     extra={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example"})
    HUBSPOT.verify(request, [SECRET])
    assert URL in candidate_uris(request)


def test_a_delivery_for_another_hubspot_account_is_refused():
    request = signed(body_of("contact_creation"))
    HUBSPOT.check_sender(request, {"portal_id": "62515"})
    HUBSPOT.check_sender(request, {})
    with pytest.raises(SignatureError, match="another HubSpot account"):
        HUBSPOT.check_sender(request, {"portal_id": "99999"})


# --- identify --------------------------------------------------------------------------------


def test_a_single_event_is_keyed_by_its_event_id():
    delivery = HUBSPOT.identify(signed(body_of("contact_creation")))
    assert delivery.key == "2739581045"
    assert delivery.event_type == "contact.creation"
    assert set(delivery.headers) == {"X-HubSpot-Request-Timestamp"}


def test_a_batch_is_keyed_by_all_its_events_whatever_their_order_or_attempt():
    events = fixture("contact_property_change_batch")["body"]
    key = HUBSPOT.identify(signed(json.dumps(events).encode())).key
    retried = [{**e, "attemptNumber": 3} for e in reversed(events)]
    assert HUBSPOT.identify(signed(json.dumps(retried).encode())).key == key
    assert key.startswith("batch:3:")
    fewer = HUBSPOT.identify(signed(json.dumps(events[:2]).encode())).key
    assert fewer != key


def test_a_mixed_batch_takes_the_type_the_hub_understands():
    events = fixture("contact_deletion")["body"] + fixture("contact_merge")["body"]
    delivery = HUBSPOT.identify(signed(json.dumps(events).encode()))
    assert delivery.event_type == "contact.merge"
    assert HUBSPOT.understands(delivery.event_type)
    only_deletion = HUBSPOT.identify(signed(body_of("contact_deletion")))
    assert not HUBSPOT.understands(only_deletion.event_type)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"eventId": 1}', "non-empty JSON array"),
    (b"[]", "non-empty JSON array"),
    (b"[1, 2]", "must be a JSON object"),
    (b'[{"subscriptionType": "contact.creation"}]', "no valid 'eventId'"),
    (b'[{"eventId": 5, "objectId": 1}]', "no subscriptionType"),
    (b"[{not json", "not valid JSON"),
    (b'["\x80"]', "not UTF-8"),
])
def test_a_malformed_body_is_a_payload_error(body: bytes, message: str):
    with pytest.raises(PayloadError, match=message):
        HUBSPOT.identify(signed(body))


# --- parse and fetch -------------------------------------------------------------------------


def delivery(name: str) -> Delivery:
    return HUBSPOT.identify(signed(body_of(name)))


def test_parse_yields_one_thin_record_per_contact_with_the_newest_event():
    records = HUBSPOT.parse(delivery("contact_property_change_batch"),
                            body_of("contact_property_change_batch"), CONTEXT)
    assert [(r.external_id, r.fetch) for r in records] == [
        ("2001", f"{CONTACTS}/2001"), ("2002", f"{CONTACTS}/2002")]
    jonas = records[0]
    assert jonas.observed_at == datetime(2026, 11, 13, 9, 15, 42, 300000, tzinfo=UTC)
    assert jonas.payload["_meta"]["property_name"] == "lastname"
    assert jonas.payload["_meta"]["default_region"] == "US"
    assert TOKEN not in json.dumps(jonas.payload)


def test_a_merge_reads_back_the_surviving_contact():
    [record] = HUBSPOT.parse(delivery("contact_merge"), body_of("contact_merge"), CONTEXT)
    assert record.external_id == "3001"


def test_a_contact_deleted_later_in_the_same_batch_is_not_read_back():
    created = fixture("contact_creation")["body"][0]
    deleted = {**created, "eventId": 9, "subscriptionType": "contact.deletion",
               "occurredAt": created["occurredAt"] + 5_000, "changeFlag": "DELETED"}
    body = json.dumps([deleted, created]).encode()
    assert HUBSPOT.parse(Delivery("k", "contact.creation"), body, CONTEXT) == []
    restored = {**created, "eventId": 10, "subscriptionType": "contact.restore",
                "occurredAt": created["occurredAt"] + 9_000}
    body = json.dumps([deleted, created, restored]).encode()
    [record] = HUBSPOT.parse(Delivery("k", "contact.creation"), body, CONTEXT)
    assert record.payload["_meta"]["event_type"] == "contact.restore"


def test_an_event_without_a_time_is_a_payload_error():
    event = {**fixture("contact_creation")["body"][0], "occurredAt": None}
    with pytest.raises(PayloadError, match="occurredAt"):
        HUBSPOT.parse(Delivery("k", "contact.creation"), json.dumps([event]).encode(), CONTEXT)


def add_contact(rsps: responses.RequestsMock, contact_id: str) -> None:
    rsps.add(responses.GET, f"{API}{CONTACTS}/{contact_id}",
             json=json.loads((FIXTURES / "api" / f"contact_{contact_id}.json").read_text()),
             match=[responses.matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])


GOLDEN = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


def test_every_understood_fixture_has_an_expected_file():
    understood = sorted(p.stem for p in FIXTURES.glob("*.json")
                        if not p.name.endswith(".expected.json")
                        and HUBSPOT.understands(HUBSPOT.identify(signed(body_of(p.stem)
                                                                        )).event_type))
    assert understood == GOLDEN == ["contact_creation", "contact_merge",
                                    "contact_property_change_batch"]


@pytest.mark.parametrize("name", GOLDEN)
def test_fixture_maps_to_its_expected_canonical_fields(name: str):
    body = body_of(name)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    expected = expected if isinstance(expected, list) else [expected]
    http = HUBSPOT.client(CONTEXT)
    got = []
    with responses.RequestsMock() as rsps:
        for record in HUBSPOT.parse(delivery(name), body, CONTEXT):
            add_contact(rsps, str(record.external_id))
            full = HUBSPOT.fetch(http, record)
            fields, problems = FileMappingStore().get("hubspot", full.object_type).apply(
                full.payload)
            got.append({"object_type": full.object_type, "external_id": full.external_id,
                        "observed_at": full.observed_at.isoformat(), "fields": fields,
                        "problems": problems})
        assert "properties=email%2Cfirstname" in rsps.calls[0].request.url
    assert got == expected


def test_a_contact_gone_before_it_is_read_back_rejects_the_delivery():
    [record] = HUBSPOT.parse(delivery("contact_creation"), body_of("contact_creation"), CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}{CONTACTS}/1001", status=404,
                 json={"status": "error", "message": "resource not found",
                       "category": "OBJECT_NOT_FOUND"})
        with pytest.raises(RejectedRecordError, match="1001 no longer exists"):
            HUBSPOT.fetch(HUBSPOT.client(CONTEXT), record)


def test_the_client_needs_the_private_app_token():
    with pytest.raises(ConfigurationError, match="access_token"):
        HUBSPOT.client(ConnectionContext("hs", {}))


# --- search stream ---------------------------------------------------------------------------

SEARCH = f"{API}{CONTACTS}/search"


def page(ids: list[str], after: str | None) -> dict[str, Any]:
    results = [{"id": i, "properties": {"email": f"p{i}@example.com"}, "archived": False,
                "createdAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-02T00:00:00Z"}
               for i in ids]
    body: dict[str, Any] = {"total": 250, "results": results}
    if after:
        body["paging"] = {"next": {"after": after, "link": f"{SEARCH}?after={after}"}}
    return body


def quiet_client() -> Any:
    http = HUBSPOT.client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    return http, waits


def test_search_reads_every_page_with_the_bookmark_filter_and_cursor():
    [stream] = HUBSPOT.streams(CONTEXT)
    http, _ = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEARCH, json=page(["1", "2"], "2"))
        rsps.add(responses.POST, SEARCH, json=page(["3"], None))
        pages = list(stream.read(http, bookmark="2026-11-01T12:00:00.000Z"))
        first, second = (json.loads(c.request.body) for c in rsps.calls)
    assert [r["id"] for p in pages for r in p.records] == ["1", "2", "3"]
    expected_filter = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                     "value": "1793534400000"}]}]
    assert first["filterGroups"] == second["filterGroups"] == expected_filter
    assert first["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert "after" not in first and second["after"] == "2"
    assert "hs_email_optout" in first["properties"] and first["limit"] == 100


def test_search_stops_at_the_10000_result_cap_and_leaves_the_rest_to_the_bookmark():
    [stream] = HUBSPOT.streams(CONTEXT)
    http, _ = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEARCH, json=page(["9999"], "10000"))
        pages = list(stream.read(http, bookmark="1793534400000"))
    assert len(pages) == 1
    assert modified_since("1793534400000") == modified_since("2026-11-01T12:00:00Z")
    with pytest.raises(ConfigurationError, match="not a time"):
        modified_since("last tuesday")


def test_a_429_waits_for_hubspots_rolling_window_then_succeeds():
    [stream] = HUBSPOT.streams(CONTEXT)
    http, waits = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEARCH, status=429, json={
            "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": "c0ffee00-0000-4000-8000-000000000001",
            "policyName": "TEN_SECONDLY_ROLLING"},
            headers={"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
                     "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
        rsps.add(responses.POST, SEARCH, json=page(["1"], None))
        records = [r for p in stream.read(http) for r in p.records]
    assert len(records) == 1
    assert waits and waits[0] >= 10


def test_a_server_error_is_retried():
    [stream] = HUBSPOT.streams(CONTEXT)
    http, waits = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEARCH, status=502, body="Bad Gateway")
        rsps.add(responses.POST, SEARCH, json=page(["1"], None))
        assert len(list(stream.read(http))) == 1
    assert len(waits) == 1


def test_a_refused_token_is_an_authentication_error_without_the_token():
    [stream] = HUBSPOT.streams(CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEARCH, status=401, json={
            "status": "error", "message": f"Authentication credentials not found. {TOKEN}",
            "category": "INVALID_AUTHENTICATION"})
        with pytest.raises(AuthenticationError) as refused:
            list(stream.read(HUBSPOT.client(CONTEXT)))
    assert TOKEN not in str(refused.value)


# --- sink ------------------------------------------------------------------------------------

UPSERT = f"{API}{CONTACTS}/batch/upsert"


def outbound(hub_id: int, email: str | None, **properties: str) -> OutboundRecord:
    props = {**({"email": email} if email else {}), **properties}
    return OutboundRecord(hub_id, None, {"properties": props})


def result(contact_id: str, email: str, new: bool) -> dict[str, Any]:
    return {"id": contact_id, "new": new, "archived": False,
            "createdAt": "2026-11-20T19:00:00Z", "updatedAt": "2026-11-20T19:32:11Z",
            "properties": {"email": email, "hs_object_id": contact_id}}


def test_batch_upsert_by_email_reports_created_and_updated_per_record():
    sink = HUBSPOT.sinks(CONTEXT)["contact"]
    records = [outbound(1, "Ana@Example.com", firstname="Ana"), outbound(2, "ben@example.net")]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, UPSERT, json={
            "status": "COMPLETE", "startedAt": "2026-11-20T19:32:11Z",
            "completedAt": "2026-11-20T19:32:11Z",
            "results": [result("501", "ben@example.net", False),
                        result("502", "ana@example.com", True)]})
        results = sink.push(HUBSPOT.client(CONTEXT), records)
        sent = json.loads(rsps.calls[0].request.body)
    assert sent["inputs"][0] == {"id": "ana@example.com", "idProperty": "email",
                                 "properties": {"email": "ana@example.com", "firstname": "Ana"}}
    assert [(r.hub_id, r.outcome, r.external_id) for r in results] == [
        (1, Outcome.CREATED, "502"), (2, Outcome.UPDATED, "501")]


def test_a_refused_record_in_a_multi_status_batch_is_rejected_alone():
    sink = HUBSPOT.sinks(CONTEXT)["contact"]
    records = [outbound(1, "ana@example.com"), outbound(2, "bad@example.com", phone="x"),
               outbound(3, None, firstname="No Email")]
    error = {"status": "error", "category": "VALIDATION_ERROR",
             "message": "Property values were not valid: phone x for bad@example.com",
             "context": {"ids": ["bad@example.com"]}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, UPSERT, status=207, json={
            "status": "COMPLETE", "results": [result("502", "ana@example.com", False)],
            "numErrors": 1, "errors": [error]})
        rsps.add(responses.POST, UPSERT, status=400, json=error)
        results = sink.push(HUBSPOT.client(CONTEXT), records)
        assert len(json.loads(rsps.calls[0].request.body)["inputs"]) == 2
        assert len(json.loads(rsps.calls[1].request.body)["inputs"]) == 1
    assert [r.outcome for r in results] == [Outcome.UPDATED, Outcome.REJECTED, Outcome.REJECTED]
    assert "VALIDATION_ERROR" in (results[1].reason or "")
    assert "bad@example.com" not in (results[1].reason or "")  # redacted
    assert "no email" in (results[2].reason or "")


def test_delete_archives_and_treats_already_gone_as_done():
    sink = HUBSPOT.sinks(CONTEXT)["contact"]
    http = HUBSPOT.client(CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{API}{CONTACTS}/501", status=204)
        rsps.add(responses.DELETE, f"{API}{CONTACTS}/999", status=404,
                 json={"status": "error", "category": "OBJECT_NOT_FOUND"})
        assert sink.remove(http, 7, "501").outcome is Outcome.DELETED
        gone = sink.remove(http, 8, "999")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")


def test_gdpr_delete_when_the_connection_asks_for_it():
    context = ConnectionContext("hs", {"gdpr_delete": "yes"}, {"access_token": TOKEN})
    sink = HUBSPOT.sinks(context)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}{CONTACTS}/gdpr-delete", status=204)
        assert sink.delete(HUBSPOT.client(context), "501").outcome is Outcome.DELETED
        assert json.loads(rsps.calls[0].request.body) == {"objectId": "501"}


def test_outbound_mapping_writes_contact_properties():
    payload, problems = FileMappingStore().get_outbound("hubspot", "contact").apply({
        "email": "ana@example.com", "first_name": "Ana", "last_name": "Lima",
        "phone": "+14155550134", "address": {"line1": "1 Example St", "line2": "Apt 2",
                                             "country": "US"}})
    assert problems == []
    assert payload == {"properties": {
        "email": "ana@example.com", "firstname": "Ana", "lastname": "Lima",
        "phone": "+14155550134", "address": "1 Example St, Apt 2", "country": "US"}}

