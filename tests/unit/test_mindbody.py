"""Mindbody: X-Mindbody-Signature, the HEAD check, parsing and golden files, and the Public API
(the user token, the clients stream, the clients sink), faked in Mindbody's documented shapes.
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
from connectors.mindbody import Mindbody
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mindbody"
KEY = "/9osqfDc64iJ/2UXj+H1vREFCrrzCSOYGNt9A9bBAWg="  # messageSignatureKey-shaped
NOW = datetime(2026, 10, 28, 14, 3, 13, tzinfo=UTC)
API_KEY = "mindbody-api-key-for-tests"
PASSWORD = "staff-password-for-tests"
CONTEXT = ConnectionContext(
    "studio", {"site_id": "451712", "default_region": "US", "staff_username": "hub.sync"},
    {"api_key": API_KEY, "staff_password": PASSWORD})
API = "https://api.mindbodyonline.com/public/v6"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body_of(name: str) -> bytes:
    return json.dumps(fixture(name)["body"]).encode()


def sign(body: bytes, key: str = KEY) -> str:
    """As Mindbody documents it: the key's UTF-8 bytes, base64 of the digest, sha256= prefix."""
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def request(body: bytes | dict[str, Any], headers: dict[str, str] | None = None,
            method: str = "POST") -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(method, "https://hub.example/webhooks/studio", Headers(headers or {}),
                          raw, NOW)


def http_client():
    http = Mindbody().client(CONTEXT)
    http.sleep = lambda _seconds: None
    return http


# --- verify ----------------------------------------------------------------------------------


def test_a_delivery_signed_with_the_message_signature_key_is_accepted():
    body = body_of("client_created")
    Mindbody().verify(request(body, {"X-Mindbody-Signature": sign(body)}), [KEY])


def test_the_key_is_used_as_text_not_base64_decoded():
    body = body_of("client_created")
    decoded = hmac.new(base64.b64decode(KEY), body, hashlib.sha256).digest()
    header = "sha256=" + base64.b64encode(decoded).decode()
    with pytest.raises(SignatureError, match="does not match"):
        Mindbody().verify(request(body, {"X-Mindbody-Signature": header}), [KEY])


def test_a_tampered_body_is_refused():
    body = body_of("client_created")
    header = sign(body)
    with pytest.raises(SignatureError, match="does not match"):
        Mindbody().verify(request(body.replace(b"true", b"false"),
                                  {"X-Mindbody-Signature": header}), [KEY])


def test_either_subscriptions_key_verifies_while_both_are_configured():
    body = body_of("client_created")
    header = sign(body, key="the-new-subscriptions-key")
    Mindbody().verify(request(body, {"x-mindbody-signature": header}),
                      [KEY, "the-new-subscriptions-key"])
    with pytest.raises(SignatureError):
        Mindbody().verify(request(body, {"x-mindbody-signature": header}), [KEY])


def test_a_missing_header_is_refused():
    with pytest.raises(SignatureError, match="X-Mindbody-Signature header is missing"):
        Mindbody().verify(request(body_of("client_created")), [KEY])


def test_a_signature_without_the_sha256_prefix_is_refused():
    body = body_of("client_created")
    bare = sign(body).removeprefix("sha256=")
    with pytest.raises(SignatureError, match="does not start with sha256="):
        Mindbody().verify(request(body, {"X-Mindbody-Signature": bare}), [KEY])


def test_a_hex_signature_is_refused():
    body = body_of("client_created")
    hexed = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        Mindbody().verify(request(body, {"X-Mindbody-Signature": hexed}), [KEY])


# --- the HEAD check before a subscription is activated ----------------------------------------


def test_the_url_check_with_head_is_answered_200_without_a_signature():
    head = request(b"", method="HEAD")
    assert Mindbody().handshake(head) == (200, "")
    Mindbody().verify(head, [KEY])  # nothing to verify, nothing stored


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_other_requests_are_not_handshakes(method):
    assert Mindbody().handshake(request(b"", method=method)) is None


def test_an_unsigned_post_is_still_refused():
    with pytest.raises(SignatureError):
        Mindbody().verify(request(b"{}", method="POST"), [KEY])


# --- identify --------------------------------------------------------------------------------


def test_the_dedupe_key_is_the_message_id():
    delivery = Mindbody().identify(request(fixture("client_created")["body"]))
    assert (delivery.key, delivery.event_type) == ("85XCZmYkDo6g4U2Jb8PSsR", "client.created")


@pytest.mark.parametrize("missing", ["messageId", "eventId"])
def test_a_message_without_id_or_event_is_refused(missing):
    body = fixture("client_created")["body"]
    del body[missing]
    with pytest.raises(PayloadError, match=f"no valid '{missing}'"):
        Mindbody().identify(request(body))


def test_the_understood_events():
    mindbody = Mindbody()
    assert mindbody.understands("client.created")
    assert mindbody.understands("client.updated")
    assert mindbody.understands("appointmentBooking.created")
    assert not mindbody.understands("client.deactivated")
    assert not mindbody.understands(fixture("client_deactivated")["body"]["eventId"])


# --- parse -----------------------------------------------------------------------------------


def parse(name: str, body: dict[str, Any] | None = None, context: ConnectionContext = CONTEXT):
    data = fixture(name)["body"] if body is None else body
    return Mindbody().parse(Delivery("k", data["eventId"], {}), json.dumps(data).encode(),
                            context)


def test_a_client_event_is_about_the_client_id():
    [record] = parse("client_created")
    assert (record.object_type, record.external_id) == ("client", "100001447")
    assert record.observed_at == datetime(2026, 10, 28, 14, 3, 12, tzinfo=UTC)


def test_a_booking_is_about_the_booked_client():
    [record] = parse("appointment_booking_created")
    assert (record.object_type, record.external_id) == ("appointment", "100001447")


def test_meta_carries_the_event_and_its_time():
    [record] = parse("client_updated")
    assert record.payload["_meta"] == {
        "connection": "studio", "site_id": "451712", "default_region": "US",
        "staff_username": "hub.sync", "event_type": "client.updated",
        "event_time": "2026-11-09T19:45:30Z", "schema_version": 1}


def test_another_sites_event_on_the_shared_subscription_yields_nothing():
    body = fixture("client_created")["body"]
    body["eventData"]["siteId"] = 999999
    assert parse("client_created", body) == []


def test_without_a_site_setting_every_site_is_accepted():
    [record] = parse("client_created", context=ConnectionContext("studio", {}))
    assert record.external_id == "100001447"


def test_a_message_without_event_data_is_refused():
    body = fixture("client_created")["body"]
    body["eventData"] = None
    with pytest.raises(PayloadError, match="no eventData"):
        parse("client_created", body)


@pytest.mark.parametrize(("value", "message"), [(None, "no eventInstanceOriginationDateTime"),
                                                ("someday", "bad timestamp")])
def test_a_message_without_a_usable_time_is_refused(value, message):
    body = fixture("client_created")["body"]
    body["eventInstanceOriginationDateTime"] = value
    with pytest.raises(PayloadError, match=message):
        parse("client_created", body)


def test_an_appointment_start_with_an_offset_becomes_the_next_booking():
    body = fixture("appointment_booking_created")["body"]
    body["eventData"]["startDateTime"] = "2026-11-16T09:00:00-06:00"
    [record] = parse("appointment_booking_created", body)
    fields, _ = FileMappingStore().get("mindbody", "appointment").apply(record.payload)
    assert fields["scheduling.next_booking_at"] == "2026-11-16T15:00:00+00:00"


# --- golden files ----------------------------------------------------------------------------

GOLDEN = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


def test_every_understood_fixture_has_an_expected_file():
    understood = sorted(p.stem for p in FIXTURES.glob("*.json")
                        if not p.name.endswith(".expected.json")
                        and Mindbody().understands(fixture(p.stem)["body"]["eventId"]))
    assert GOLDEN == understood == ["appointment_booking_created", "client_created",
                                    "client_updated"]


@pytest.mark.parametrize("name", GOLDEN)
def test_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(name)
    fields, problems = FileMappingStore().get("mindbody", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


# --- the Public API: user token, clients stream --------------------------------------------------


def clients_page(ids: list[str], offset: int, total: int) -> dict[str, Any]:
    return {"PaginationResponse": {"RequestedLimit": 200, "RequestedOffset": offset,
                                   "PageSize": len(ids), "TotalResults": total},
            "Clients": [{"Id": i, "UniqueId": int(i), "FirstName": "Ana", "LastName": "Lima",
                         "Email": f"c{i}@example.com", "SendPromotionalEmails": True,
                         "LastModifiedDateTime": "2026-11-01T10:00:00Z"} for i in ids]}


def stream():
    [clients] = Mindbody().streams(CONTEXT)
    return clients


def test_the_stream_reads_clients_by_last_modified_date():
    clients = stream()
    assert (clients.path, clients.records_path, clients.primary_key,
            clients.replication_key) == ("/public/v6/client/clients", "Clients", "Id",
                                         "LastModifiedDateTime")


@responses.activate
def test_the_token_is_issued_on_the_first_401_and_then_every_page_is_read():
    url = f"{API}/client/clients"
    responses.add(responses.GET, url, status=401,
                  json={"Error": {"Message": "Authentication failed", "Code": "DeniedAccess"}})
    responses.add(responses.POST, f"{API}/usertoken/issue",
                  json={"TokenType": "Bearer", "AccessToken": "issued-token",
                        "User": {"Id": 100000001, "FirstName": "Hub", "LastName": "Sync"}})
    full = [str(100000 + i) for i in range(200)]
    responses.add(responses.GET, url, json=clients_page(full, 0, 201))
    responses.add(responses.GET, url, json=clients_page(["100999"], 200, 201))
    records = [r for page in stream().read(http_client(), "2026-11-01T00:00:00")
               for r in page.records]
    assert len(records) == 201
    issue = responses.calls[1].request
    assert json.loads(issue.body) == {"Username": "hub.sync", "Password": PASSWORD}
    assert issue.headers["Api-Key"] == API_KEY and issue.headers["SiteId"] == "451712"
    first, second = responses.calls[2].request, responses.calls[3].request
    assert first.headers["Authorization"] == "Bearer issued-token"
    assert first.headers["SiteId"] == "451712"
    assert "request.lastModifiedDate=2026-11-01T00%3A00%3A00" in first.url
    assert "request.offset=0" in first.url and "request.limit=200" in first.url
    assert "request.offset=200" in second.url
    assert "request.lastModifiedDate=2026-11-01T00%3A00%3A00" in second.url


@responses.activate
def test_credentials_the_api_refuses_are_an_authentication_error_without_secrets():
    responses.add(responses.GET, f"{API}/client/clients", status=401,
                  json={"Error": {"Message": f"Invalid API key {API_KEY}"}})
    responses.add(responses.POST, f"{API}/usertoken/issue", status=400,
                  json={"Error": {"Message": "Invalid credentials", "Code": "InvalidLogin"}})
    with pytest.raises(AuthenticationError) as refused:
        list(stream().read(http_client()))
    assert API_KEY not in str(refused.value) and PASSWORD not in str(refused.value)


@responses.activate
def test_a_429_waits_as_asked_and_a_5xx_is_retried():
    url = f"{API}/client/clients"
    responses.add(responses.GET, url, status=429, headers={"Retry-After": "20"},
                  json={"Error": {"Message": "Too many requests"}})
    responses.add(responses.GET, url, status=500, json={"Error": {"Message": "Oops"}})
    responses.add(responses.GET, url, json=clients_page(["100001447"], 0, 1))
    http = http_client()
    waits: list[float] = []
    http.sleep = waits.append
    assert [r["Id"] for page in stream().read(http) for r in page.records] == ["100001447"]
    assert waits[0] >= 20 and len(waits) == 2


def test_an_api_client_round_trips_through_the_inbound_mapping():
    client = clients_page(["100001447"], 0, 1)["Clients"][0]
    fields, problems = FileMappingStore().get("mindbody", "client").apply(
        {**client, "_meta": {}})
    assert problems == []
    assert fields["consent.email.status"] == "granted"
    assert fields["consent.email.lawful_basis"] == "consent"
    assert fields["consent.email.at"] == "2026-11-01T10:00:00+00:00"


# --- the clients sink ------------------------------------------------------------------------


@responses.activate
def test_a_known_client_is_updated_by_id_without_touching_other_sites():
    responses.add(responses.POST, f"{API}/client/updateclient",
                  json={"Client": {"Id": "100001447", "FirstName": "Lucía"}})
    sink = Mindbody().sinks(CONTEXT)["client"]
    [result] = sink.push(http_client(), [OutboundRecord(7, "100001447",
                                                        {"FirstName": "Lucía"})])
    assert (result.outcome, result.external_id) == (Outcome.UPDATED, "100001447")
    assert json.loads(responses.calls[0].request.body) == {
        "Client": {"FirstName": "Lucía", "Id": "100001447"}, "CrossRegionalUpdate": False}


@responses.activate
def test_a_new_client_is_added_and_its_id_returned():
    responses.add(responses.POST, f"{API}/client/addclient",
                  json={"Client": {"Id": "100001500", "UniqueId": 100001500}})
    payload = {"FirstName": "Ana", "LastName": "Lima", "Email": "ana.lima@example.com"}
    [result] = Mindbody().sinks(CONTEXT)["client"].push(http_client(),
                                                        [OutboundRecord(8, None, payload)])
    assert (result.outcome, result.external_id) == (Outcome.CREATED, "100001500")
    assert json.loads(responses.calls[0].request.body) == payload


@responses.activate
def test_a_refused_client_is_rejected_alone_with_mindbodys_reason():
    responses.add(responses.POST, f"{API}/client/addclient", status=400,
                  json={"Error": {"Message": "LastName is required.",
                                  "Code": "MissingRequiredFields"}})
    responses.add(responses.POST, f"{API}/client/updateclient",
                  json={"Client": {"Id": "100001447"}})
    records = [OutboundRecord(1, None, {"FirstName": "NoLastName"}),
               OutboundRecord(2, "100001447", {"FirstName": "Lucía"})]
    results = Mindbody().sinks(CONTEXT)["client"].push(http_client(), records)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.UPDATED]
    assert "LastName is required" in (results[0].reason or "")


def test_mindbody_clients_cannot_be_deleted():
    sink = Mindbody().sinks(CONTEXT)["client"]
    assert sink.can_delete is False
    assert Mindbody.capabilities()["delete"] is False


def test_the_outbound_mapping_writes_consent_only_when_it_is_known():
    outbound = FileMappingStore().get_outbound("mindbody", "client")
    contact = {"first_name": "Ana", "last_name": "Lima", "email": "ana@example.com",
               "consent": {"email": {"status": "withdrawn"}, "sms": {"status": "unknown"}}}
    payload, problems = outbound.apply(contact)
    assert problems == []
    assert payload == {"FirstName": "Ana", "LastName": "Lima", "Email": "ana@example.com",
                       "SendPromotionalEmails": False}
