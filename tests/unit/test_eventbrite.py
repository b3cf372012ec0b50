"""Eventbrite: the URL token, thin deliveries read back through the API, the attendees stream.

Vendor HTTP is faked with `responses` in the shapes Eventbrite documents: objects at the
webhook's api_url, list pages with `pagination.continuation` and `has_more_items`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.base import ConnectionContext, Delivery, Headers, SourceRecord, WebhookRequest
from connectors.eventbrite import Eventbrite
from connectors.http import VendorRequestError
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eventbrite"
TOKEN = "a-long-unguessable-url-token"
PRIVATE_TOKEN = "EVENTBRITEPRIVATETOKEN123"
NOW = datetime(2026, 11, 3, 18, 22, 50, tzinfo=UTC)
CONTEXT = ConnectionContext("tickets", {"organization_id": "123456789012",
                                        "default_region": "US"},
                            {"private_token": PRIVATE_TOKEN})
ORDER_URL = "https://www.eventbriteapi.com/v3/orders/8123456789/"
ATTENDEE_URL = "https://www.eventbriteapi.com/v3/events/1012345678901/attendees/1598765432/"
ATTENDEES_URL = "https://www.eventbriteapi.com/v3/organizations/123456789012/attendees/"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def api_object(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "api" / f"{name}.json").read_text())
    return data


def request(body: dict[str, Any] | bytes, query: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, at: datetime = NOW) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest("POST", "https://hub.example/webhooks/tickets", Headers(headers or {}),
                          raw, at, query or {})


def http_client():
    http = Eventbrite().client(CONTEXT)
    http.sleep = lambda _seconds: None
    return http


def thin(name: str) -> SourceRecord:
    body = fixture(name)["body"]
    [record] = Eventbrite().parse(Delivery("k", body["config"]["action"], {}),
                                  json.dumps(body).encode(), CONTEXT)
    return record


# --- verify: Eventbrite signs nothing, so the URL carries a token -----------------------------


def test_the_url_token_of_the_connection_is_accepted():
    Eventbrite().verify(request(fixture("order_placed")["body"], {"token": TOKEN}), [TOKEN])


def test_a_rotated_token_list_accepts_the_old_and_the_new_token():
    for given in ("old-token-still-valid", TOKEN):
        Eventbrite().verify(request(b"{}", {"token": given}), ["old-token-still-valid", TOKEN])


def test_a_wrong_token_is_refused():
    with pytest.raises(SignatureError, match="not this connection's"):
        Eventbrite().verify(request(b"{}", {"token": "guess"}), [TOKEN])


def test_a_url_without_token_is_refused():
    with pytest.raises(SignatureError, match="no \\?token="):
        Eventbrite().verify(request(b"{}"), [TOKEN])


def test_a_signature_header_is_no_substitute_for_the_token():
    headers = {"X-Eventbrite-Signature": TOKEN, "Authorization": f"Bearer {TOKEN}"}
    with pytest.raises(SignatureError):
        Eventbrite().verify(request(b"{}", headers=headers), [TOKEN])


# --- identify --------------------------------------------------------------------------------


def test_the_key_is_the_action_the_api_url_and_the_time_it_arrived():
    delivery = Eventbrite().identify(request(fixture("order_placed")["body"],
                                             headers=fixture("order_placed")["headers"]))
    assert delivery.event_type == "order.placed"
    assert delivery.key == f"order.placed:{ORDER_URL}:{NOW.isoformat()}"
    assert delivery.headers == {"X-Eventbrite-Event": "order.placed",
                                "X-Eventbrite-Delivery": "9876543"}


def test_two_updates_of_one_object_are_two_deliveries_not_a_duplicate():
    body = fixture("attendee_updated")["body"]
    first = Eventbrite().identify(request(body))
    second = Eventbrite().identify(request(body, at=datetime(2026, 11, 5, 10, 41, 12,
                                                               tzinfo=UTC)))
    assert first.key != second.key


def test_the_test_delivery_is_identified_and_not_understood():
    delivery = Eventbrite().identify(request(fixture("test")["body"]))
    assert delivery.event_type == "test"
    assert not Eventbrite().understands(delivery.event_type)


def test_an_understood_action_must_point_at_eventbrites_api():
    body = fixture("order_placed")["body"]
    body["api_url"] = "https://attacker.example/v3/orders/1/"
    with pytest.raises(PayloadError, match="api_url must start with"):
        Eventbrite().identify(request(body))


@pytest.mark.parametrize("body", [{"api_url": ORDER_URL}, {"config": "order.placed"},
                                  {"config": {"user_id": "1"}}])
def test_a_body_without_config_action_is_refused(body):
    with pytest.raises(PayloadError):
        Eventbrite().identify(request(body))


def test_orders_and_attendee_updates_are_understood():
    eventbrite = Eventbrite()
    assert [a for a in ("order.placed", "order.updated", "attendee.updated", "event.updated",
                        "attendee.checked_in") if eventbrite.understands(a)] == [
        "order.placed", "order.updated", "attendee.updated"]


# --- parse and fetch -------------------------------------------------------------------------


def test_parse_only_points_at_the_object_to_read():
    record = thin("order_placed")
    assert (record.object_type, record.external_id, record.fetch) == ("order", None, ORDER_URL)
    assert record.payload == {"_meta": {"connection": "tickets", "organization_id": "123456789012",
                                        "default_region": "US", "action": "order.placed"}}


@responses.activate
def test_fetch_reads_the_order_with_its_attendees_and_event_using_the_private_token():
    responses.add(responses.GET, ORDER_URL, json=api_object("order_8123456789"))
    record = Eventbrite().fetch(http_client(), thin("order_placed"))
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {PRIVATE_TOKEN}"
    assert "expand=attendees%2Cevent" in sent.url
    assert record.observed_at == datetime(2026, 11, 3, 18, 22, 47, tzinfo=UTC)
    assert record.payload["email"] == "Tomas.Okafor@example.net"
    assert record.payload["_meta"]["action"] == "order.placed"


@responses.activate
def test_fetch_reads_an_attendee_with_its_event():
    responses.add(responses.GET, ATTENDEE_URL, json=api_object("attendee_1598765432"))
    record = Eventbrite().fetch(http_client(), thin("attendee_updated"))
    assert "expand=event" in responses.calls[0].request.url
    assert record.object_type == "attendee"
    assert record.observed_at == datetime(2026, 11, 5, 10, 41, 9, tzinfo=UTC)


def test_fetch_never_sends_the_token_outside_eventbrites_api():
    record = SourceRecord("order", None, NOW, {}, fetch="https://attacker.example/v3/orders/1/")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        with pytest.raises(PayloadError, match="not an Eventbrite API URL"):
            Eventbrite().fetch(http_client(), record)
        assert len(rsps.calls) == 0


@responses.activate
def test_an_object_that_is_gone_fails_the_event_with_the_vendors_answer():
    responses.add(responses.GET, ORDER_URL, status=404, json={"error": "NOT_FOUND"})
    with pytest.raises(VendorRequestError, match="404"):
        Eventbrite().fetch(http_client(), thin("order_placed"))


@responses.activate
def test_a_refused_token_is_an_authentication_error_without_the_token_in_it():
    responses.add(responses.GET, ORDER_URL, status=401,
                  json={"error": "INVALID_AUTH", "error_description": PRIVATE_TOKEN})
    with pytest.raises(AuthenticationError) as refused:
        Eventbrite().fetch(http_client(), thin("order_placed"))
    assert PRIVATE_TOKEN not in str(refused.value)


def test_a_connection_without_a_private_token_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="no 'private_token'"):
        Eventbrite().client(ConnectionContext("tickets", {}))


# --- golden files: the webhook, the object read back, the mapping ------------------------------

GOLDEN = {"order_placed": (ORDER_URL, "order_8123456789"),
          "attendee_updated": (ATTENDEE_URL, "attendee_1598765432")}


def test_every_understood_fixture_has_an_expected_file():
    expected = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob(
        "*.expected.json"))
    assert expected == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
@responses.activate
def test_fixture_maps_to_its_expected_canonical_fields(name):
    url, answer = GOLDEN[name]
    responses.add(responses.GET, url, json=api_object(answer))
    record = Eventbrite().fetch(http_client(), thin(name))
    fields, problems = FileMappingStore().get("eventbrite", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


def test_a_refunded_order_is_not_a_booking():
    order = {**api_object("order_8123456789"), "status": "refunded", "_meta": {}}
    fields, _ = FileMappingStore().get("eventbrite", "order").apply(order)
    assert "scheduling.next_booking_at" not in fields
    assert fields["email"] == "tomas.okafor@example.net"


def test_a_cancelled_ticket_is_not_a_booking():
    attendee = {**api_object("attendee_1598765432"), "status": "Not Attending",
                "cancelled": True, "_meta": {}}
    fields, _ = FileMappingStore().get("eventbrite", "attendee").apply(attendee)
    assert not any(name.startswith("scheduling.") for name in fields)


# --- the attendees stream --------------------------------------------------------------------


def attendees_page(ids: list[str], continuation: str | None) -> dict[str, Any]:
    return {"pagination": {"object_count": 3, "page_number": 1, "page_size": 50,
                           "page_count": 2, "continuation": continuation,
                           "has_more_items": continuation is not None},
            "attendees": [{**api_object("attendee_1598765432"), "id": i} for i in ids]}


def stream():
    [attendees] = Eventbrite().streams(CONTEXT)
    return attendees


def test_the_stream_pulls_the_organizations_attendees_by_change_time():
    attendees = stream()
    assert (attendees.path, attendees.records_path, attendees.primary_key,
            attendees.replication_key) == ("/v3/organizations/123456789012/attendees/",
                                           "attendees", "id", "changed")


def test_pulling_needs_the_organization_id():
    with pytest.raises(ConfigurationError, match="organization_id"):
        Eventbrite().streams(ConnectionContext("tickets", {}, {"private_token": "x"}))


@responses.activate
def test_the_stream_follows_continuation_to_the_end_from_the_bookmark():
    responses.add(responses.GET, ATTENDEES_URL, json=attendees_page(["1", "2"], "dGhlIG5leHQ"))
    responses.add(responses.GET, ATTENDEES_URL, json=attendees_page(["3"], None))
    ids = [r["id"] for page in stream().read(http_client(), "2026-11-01T00:00:00Z")
           for r in page.records]
    assert ids == ["1", "2", "3"]
    first, second = (call.request.url for call in responses.calls)
    assert "changed_since=2026-11-01T00%3A00%3A00Z" in first
    assert "expand=event" in first and "continuation" not in first
    assert "continuation=dGhlIG5leHQ" in second
    assert "changed_since=2026-11-01T00%3A00%3A00Z" in second


@responses.activate
def test_a_429_waits_as_asked_then_the_page_is_read():
    responses.add(responses.GET, ATTENDEES_URL, status=429, headers={"Retry-After": "30"},
                  json={"status_code": 429, "error": "HIT_RATE_LIMIT",
                        "error_description": "Hourly rate limit has been reached"})
    responses.add(responses.GET, ATTENDEES_URL, json=attendees_page(["1"], None))
    http = http_client()
    waits: list[float] = []
    http.sleep = waits.append
    assert [r["id"] for page in stream().read(http) for r in page.records] == ["1"]
    assert waits and waits[0] >= 30


@responses.activate
def test_a_server_error_is_retried():
    responses.add(responses.GET, ATTENDEES_URL, status=503)
    responses.add(responses.GET, ATTENDEES_URL, json=attendees_page(["1"], None))
    assert [r["id"] for page in stream().read(http_client()) for r in page.records] == ["1"]
    assert len(responses.calls) == 2


@responses.activate
def test_the_stream_with_a_refused_token_is_an_authentication_error():
    responses.add(responses.GET, re.compile(re.escape(ATTENDEES_URL) + ".*"), status=401,
                  json={"error": "INVALID_AUTH"})
    with pytest.raises(AuthenticationError):
        list(stream().read(http_client()))


def test_eventbrite_cannot_be_pushed_to():
    assert Eventbrite().sinks(CONTEXT) == {}
    assert Eventbrite.capabilities() == {"webhooks": True, "pull": True, "push": False,
                                         "delete": False}
