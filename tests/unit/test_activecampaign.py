"""ActiveCampaign: URL token, dedupe key, list-status consent, parse, golden files, and API v3.

ActiveCampaign posts forms, so fixtures keep the form's fields and tests encode them the way a
client does. Outbound calls are faked with `responses` in the shapes of the v3 reference
(contacts list with `meta.total` as text, contact/sync, contactLists, delete).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses

from connectors.activecampaign import ActiveCampaign, list_status
from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "activecampaign"
SECRET = "ac-url-token-7d21c4"
API_KEY = "f" * 72
API = "https://ejemplo.api-us1.com/api/3"
CONTEXT = ConnectionContext("ac", {"api_url": "https://ejemplo.api-us1.com", "list_id": "3",
                                   "default_region": "US"}, {"api_key": API_KEY})
RECEIVED = datetime(2026, 11, 20, 19, 32, 10, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def form(name: str, **changes: str | None) -> bytes:
    body = {**fixture(name)["body"], **changes}
    return urlencode({k: v for k, v in body.items() if v is not None}).encode()


def request(body: bytes, token: str | None = SECRET) -> WebhookRequest:
    query = {} if token is None else {"token": token}
    return WebhookRequest("POST", f"https://hub.example/webhooks/ac?{urlencode(query)}",
                          Headers(fixture("subscribe")["headers"]), body, RECEIVED, query)


def parse(name: str, context: ConnectionContext = CONTEXT, **changes: str | None):
    body = form(name, **changes)
    delivery = ActiveCampaign().identify(request(body))
    return ActiveCampaign().parse(delivery, body, context)


def client():
    http = ActiveCampaign().client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    return http, waits


# --- URL token --------------------------------------------------------------------------------


def test_the_secret_token_in_the_url_is_accepted():
    ActiveCampaign().verify(request(form("subscribe")), [SECRET])


@pytest.mark.parametrize("token", [None, "", "wrong", SECRET + " ", SECRET.upper()])
def test_a_missing_or_wrong_token_is_refused(token):
    with pytest.raises(SignatureError):
        ActiveCampaign().verify(request(form("subscribe"), token=token), [SECRET])


def test_a_rotated_secret_overlaps_the_new_one():
    for token in ("old-1", "new-2"):
        ActiveCampaign().verify(request(form("subscribe"), token=token), ["new-2", "old-1"])
    with pytest.raises(SignatureError):
        ActiveCampaign().verify(request(form("subscribe"), token="older-0"), ["new-2", "old-1"])


def test_activecampaign_sends_no_set_up_request():
    assert ActiveCampaign().handshake(request(form("subscribe"))) is None


# --- identify: the dedupe key -----------------------------------------------------------------


def test_the_key_is_type_contact_time_and_the_list():
    delivery = ActiveCampaign().identify(request(form("subscribe")))
    assert (delivery.key, delivery.event_type) == (
        "subscribe:4182:2026-11-03T09:12:44-06:00:3", "subscribe")


def test_an_update_outside_any_list_is_keyed_without_one():
    delivery = ActiveCampaign().identify(request(form("update")))
    assert delivery.key == "update:4182:2026-11-06T15:20:05-06:00"


def test_two_tags_added_in_the_same_second_are_two_deliveries():
    first = ActiveCampaign().identify(request(form("contact_tag_added"))).key
    second = ActiveCampaign().identify(request(form("contact_tag_added", tag="newsletter"))).key
    assert first == "contact_tag_added:4182:2026-11-06T15:21:40-06:00:vip"
    assert second != first


def test_a_redelivery_has_the_same_key():
    assert ActiveCampaign().identify(request(form("unsubscribe"))).key == \
        ActiveCampaign().identify(request(form("unsubscribe"))).key


def test_a_contact_event_without_a_contact_id_is_refused():
    with pytest.raises(PayloadError, match=r"no contact\[id\]"):
        ActiveCampaign().identify(request(form("update", **{"contact[id]": None})))


def test_an_event_the_hub_ignores_needs_no_contact():
    body = urlencode({"type": "deal_add", "date_time": "2026-11-06T15:20:05-06:00",
                      "initiated_from": "admin", "deal[id]": "88"}).encode()
    delivery = ActiveCampaign().identify(request(body))
    assert delivery.event_type == "deal_add" and delivery.key.startswith("deal_add:body-")
    assert not ActiveCampaign().understands("deal_add")


@pytest.mark.parametrize(("missing", "message"), [("type", "no 'type'"),
                                                  ("date_time", "no 'date_time'")])
def test_a_form_without_type_or_date_time_is_refused(missing, message):
    with pytest.raises(PayloadError, match=message):
        ActiveCampaign().identify(request(form("subscribe", **{missing: None})))


# --- consent from list status -----------------------------------------------------------------


@pytest.mark.parametrize(("event", "event_list", "consent_list", "status"), [
    ("subscribe", "3", "3", "active"),
    ("subscribe", "5", "", "active"),
    ("subscribe", "5", "3", None),       # another list says nothing about the consent list
    ("subscribe", "0", "", None),        # added to no list: no subscription
    ("unsubscribe", "3", "3", "unsubscribed"),
    ("unsubscribe", "5", "", "unsubscribed"),
    ("unsubscribe", "5", "3", None),
    ("unsubscribe", "0", "3", "unsubscribed"),  # unsubscribed from everything
    ("update", "3", "3", None),
])
def test_which_events_speak_for_the_consent_list(event, event_list, consent_list, status):
    assert list_status(event, event_list, consent_list) == status


def test_a_subscribe_to_another_list_leaves_consent_alone():
    [record] = parse("subscribe", list="5")
    fields, _ = FileMappingStore().get("activecampaign", "contact").apply(record.payload)
    assert not any(name.startswith("consent.") for name in fields)


# --- parse ------------------------------------------------------------------------------------


def test_the_record_is_the_contact_observed_at_the_event_time_in_utc():
    [record] = parse("unsubscribe")
    assert (record.object_type, record.external_id) == ("contact", "4182")
    assert record.observed_at == datetime(2026, 11, 10, 17, 2, 17, tzinfo=UTC)


def test_the_payload_is_the_nested_form_with_meta():
    [record] = parse("update")
    assert record.payload["contact"]["fields"] == {"12": "Chicago"}
    assert record.payload["_meta"] == {
        "connection": "ac", "api_url": "https://ejemplo.api-us1.com", "list_id": "3",
        "default_region": "US", "event_type": "update", "initiated_from": "admin",
        "initiated_by": "admin", "list": "0", "list_status": None,
    }


def test_a_date_time_that_is_not_a_time_is_refused():
    with pytest.raises(PayloadError, match="'date_time' is not a date"):
        parse("subscribe", date_time="soon")


# --- golden files -----------------------------------------------------------------------------

UNDERSTOOD = sorted(p.stem for p in FIXTURES.glob("*.json")
                    if not p.name.endswith(".expected.json")
                    and ActiveCampaign().understands(fixture(p.stem)["body"]["type"]))


def test_every_understood_fixture_has_an_expected_file():
    expected = sorted(p.name.removesuffix(".expected.json")
                      for p in FIXTURES.glob("*.expected.json"))
    assert expected == UNDERSTOOD and len(UNDERSTOOD) == 4


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(name)
    fields, problems = FileMappingStore().get("activecampaign", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


# --- API client -------------------------------------------------------------------------------


def test_the_base_url_is_the_accounts_api_url_and_the_key_goes_in_api_token():
    http = ActiveCampaign().client(CONTEXT)
    assert http.base_url == API
    headers: dict[str, str] = {}
    http.authenticator.apply(headers, {})
    assert headers == {"Api-Token": API_KEY}
    with_path = ConnectionContext("ac", {"api_url": API + "/"}, {"api_key": API_KEY})
    assert ActiveCampaign().client(with_path).base_url == API


@pytest.mark.parametrize("settings", [{}, {"api_url": "http://ejemplo.api-us1.com"}])
def test_a_connection_without_an_https_api_url_cannot_reach_the_api(settings):
    with pytest.raises(ConfigurationError, match="api_url"):
        ActiveCampaign().client(ConnectionContext("ac", settings, {"api_key": API_KEY}))


def test_a_connection_without_an_api_key_cannot_reach_the_api():
    with pytest.raises(ConfigurationError, match="no 'api_key'"):
        ActiveCampaign().client(ConnectionContext("ac", {"api_url": "https://x.api-us1.com"}))


def contacts(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": str(i), "email": f"p{i}@example.com", "firstName": "P", "lastName": str(i),
             "udate": "2026-11-01T10:00:00-05:00"} for i in range(start, start + count)]


@responses.activate
def test_contacts_are_read_page_by_page_until_meta_total():
    total = 205
    for start in (0, 100, 200):
        responses.get(f"{API}/contacts", json={"contacts": contacts(start, min(100, total - start)),
                                               "meta": {"total": str(total)}})
    [stream] = ActiveCampaign().streams(CONTEXT)
    records = [r for page in stream.read(client()[0]) for r in page.records]
    assert [r["id"] for r in records] == [str(i) for i in range(total)]
    pages = [parse_qs(urlsplit(c.request.url).query) for c in responses.calls]
    assert [(q["offset"][0], q["limit"][0]) for q in pages] == [("0", "100"), ("100", "100"),
                                                               ("200", "100")]


@responses.activate
def test_an_incremental_read_filters_on_updated_after():
    responses.get(f"{API}/contacts", json={"contacts": contacts(0, 1), "meta": {"total": "1"}})
    [stream] = ActiveCampaign().streams(CONTEXT)
    assert stream.replication_key == "udate"
    list(stream.read(client()[0], bookmark="2026-11-01T10:00:00-05:00"))
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["filters[updated_after]"] == ["2026-11-01T10:00:00-05:00"]


@responses.activate
def test_the_rate_limit_429_is_waited_out_then_read():
    responses.get(f"{API}/contacts", status=429, json={"message": "Too Many Requests"},
                  headers={"Retry-After": "2"})
    responses.get(f"{API}/contacts", json={"contacts": contacts(0, 1), "meta": {"total": "1"}})
    [stream] = ActiveCampaign().streams(CONTEXT)
    http, waits = client()
    assert [len(p.records) for p in stream.read(http)] == [1]
    assert waits[0] >= 2


@responses.activate
def test_a_server_error_is_retried():
    responses.get(f"{API}/contacts", status=502, body="Bad Gateway")
    responses.get(f"{API}/contacts", json={"contacts": contacts(0, 1), "meta": {"total": "1"}})
    [stream] = ActiveCampaign().streams(CONTEXT)
    http, waits = client()
    assert [len(p.records) for p in stream.read(http)] == [1] and len(waits) == 1


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_a_refused_key_is_an_authentication_error(status):
    responses.get(f"{API}/contacts", status=status,
                  json={"message": "You are not authorized to access this resource"})
    [stream] = ActiveCampaign().streams(CONTEXT)
    with pytest.raises(AuthenticationError, match="refused the credentials"):
        list(stream.read(client()[0]))


@responses.activate
def test_an_echoed_api_key_never_reaches_the_error_message():
    responses.get(f"{API}/contacts", status=403,
                  json={"message": f"You are not authorized to access this resource ({API_KEY})"})
    [stream] = ActiveCampaign().streams(CONTEXT)
    with pytest.raises(AuthenticationError) as refused:
        list(stream.read(client()[0]))
    assert API_KEY not in str(refused.value)


# --- sink -------------------------------------------------------------------------------------


def outbound(**contact: Any) -> dict[str, Any]:
    view = {"email": "rosa.ejemplo@example.com", "first_name": "Rosa", "last_name": "Ejemplo",
            "phone": "+13125550148", "consent": {"email": {"status": "granted"}}, **contact}
    payload, problems = FileMappingStore().get_outbound("activecampaign", "contact").apply(view)
    assert problems == []
    return payload


def test_outbound_is_the_sync_body_plus_the_list_status():
    assert outbound() == {"contact": {"email": "rosa.ejemplo@example.com", "firstName": "Rosa",
                                      "lastName": "Ejemplo", "phone": "+13125550148"},
                          "contactList": {"status": 1}}
    assert outbound(consent={"email": {"status": "withdrawn"}})["contactList"] == {"status": 2}
    assert "contactList" not in outbound(consent={"email": {"status": "unknown"}})


@responses.activate
def test_a_contact_is_synced_then_its_consent_list_status_written():
    responses.post(f"{API}/contact/sync", status=201,
                   json={"fieldValues": [], "contact": {"email": "rosa.ejemplo@example.com",
                                                        "id": "4182"}})
    responses.post(f"{API}/contactLists", json={"contactList": {"list": "3", "contact": "4182",
                                                                "status": 2}})
    sink = ActiveCampaign().sinks(CONTEXT)["contact"]
    payload = outbound(consent={"email": {"status": "withdrawn"}})
    [result] = sink.push(client()[0], [OutboundRecord(9, None, payload)])
    assert (result.outcome, result.external_id) == (Outcome.CREATED, "4182")
    assert json.loads(responses.calls[0].request.body) == {"contact": payload["contact"]}
    assert json.loads(responses.calls[1].request.body) == {
        "contactList": {"list": "3", "contact": "4182", "status": 2}}


@responses.activate
def test_without_a_consent_list_only_the_contact_is_synced():
    responses.post(f"{API}/contact/sync", json={"contact": {"id": "4182"}})
    no_list = ConnectionContext("ac", {"api_url": "https://ejemplo.api-us1.com"},
                                {"api_key": API_KEY})
    [result] = ActiveCampaign().sinks(no_list)["contact"].push(
        client()[0], [OutboundRecord(9, "4182", outbound())])
    assert result.outcome is Outcome.UPDATED and len(responses.calls) == 1


@responses.activate
def test_a_refused_contact_is_rejected_alone_with_the_reason():
    responses.post(f"{API}/contact/sync", status=422, json={"errors": [
        {"title": "Email address is not valid.", "code": "email_invalid"}]})
    responses.post(f"{API}/contact/sync", json={"contact": {"id": "4182"}})
    responses.post(f"{API}/contactLists", json={"contactList": {}})
    sink = ActiveCampaign().sinks(CONTEXT)["contact"]
    results = sink.push(client()[0], [OutboundRecord(1, None, outbound(email="x@bad")),
                                      OutboundRecord(2, "4182", outbound())])
    assert [(r.hub_id, r.outcome) for r in results] == [(1, Outcome.REJECTED),
                                                        (2, Outcome.UPDATED)]
    assert "Email address is not valid" in (results[0].reason or "")


def test_a_record_without_an_email_is_rejected_without_a_request():
    sink = ActiveCampaign().sinks(CONTEXT)["contact"]
    with responses.RequestsMock():
        [result] = sink.push(client()[0], [OutboundRecord(3, None, {"contact": {}})])
    assert result.outcome is Outcome.REJECTED


@responses.activate
def test_a_contact_is_deleted_and_a_gone_contact_is_done():
    responses.delete(f"{API}/contacts/4182", json={})
    responses.delete(f"{API}/contacts/4182", status=404,
                     json={"message": "No Result found for Subscriber with id 4182"})
    sink = ActiveCampaign().sinks(CONTEXT)["contact"]
    http, _ = client()
    assert sink.remove(http, 9, "4182").outcome is Outcome.DELETED
    assert sink.remove(http, 9, "4182").reason == "already gone"
