"""Mailchimp: URL token, GET validation, dedupe key, parse, golden files, and the Marketing API.

Mailchimp posts forms, so fixtures keep the form's fields and tests encode them the way a
client does (`urlencode`, brackets percent-encoded). Outbound calls are faked with `responses`
in the shapes of Mailchimp's API reference (members list with `total_items`, member PUT,
delete-permanent).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.mailchimp import Mailchimp, data_center, subscriber_hash
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mailchimp"
SECRET = "mc-url-token-0b6f1e"
LIST = "5e8a1c0b7d"
API_KEY = "0123456789abcdef0123456789abcdef-us21"
API = "https://us21.api.mailchimp.com/3.0"
MEMBERS = f"{API}/lists/{LIST}/members"
CONTEXT = ConnectionContext("mc", {"list_id": LIST, "default_region": "US"},
                            {"api_key": API_KEY})
RECEIVED = datetime(2026, 11, 20, 19, 32, 10, tzinfo=UTC)
LENA_OLD = "e00364e5eee500ded960d1044690b288"  # md5("lena.fixture@example.com")
LENA_NEW = "285f9705e4c97f906f21775deb0d39bb"  # md5("lena.okoro@example.net")
TOMAS = "867c6cb239d598ce37ecc863fcd22b07"  # md5("tomas.bounce@example.org")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def form(name: str, **changes: str | None) -> bytes:
    body = {**fixture(name)["body"], **changes}
    return urlencode({k: v for k, v in body.items() if v is not None}).encode()


def request(body: bytes = b"", method: str = "POST", token: str | None = SECRET,
            headers: dict[str, str] | None = None) -> WebhookRequest:
    query = {} if token is None else {"token": token}
    return WebhookRequest(method, f"https://hub.example/webhooks/mc?{urlencode(query)}",
                          Headers(headers or fixture("subscribe")["headers"]), body, RECEIVED,
                          query)


def parse(name: str, **changes: str | None):
    body = form(name, **changes)
    delivery = Mailchimp().identify(request(body))
    return Mailchimp().parse(delivery, body, CONTEXT)


def client():
    http = Mailchimp().client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    return http, waits


# --- URL token and set-up request -------------------------------------------------------------


def test_the_secret_token_in_the_url_is_accepted():
    Mailchimp().verify(request(form("subscribe")), [SECRET])


@pytest.mark.parametrize("token", [None, "", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper()])
def test_a_missing_or_wrong_token_is_refused(token):
    with pytest.raises(SignatureError):
        Mailchimp().verify(request(form("subscribe"), token=token), [SECRET])


def test_both_secrets_work_while_a_rotated_secret_overlaps_the_new_one():
    for token in ("old-token-1", "new-token-2"):
        Mailchimp().verify(request(form("subscribe"), token=token),
                           ["new-token-2", "old-token-1"])
    with pytest.raises(SignatureError, match="not this connection's"):
        Mailchimp().verify(request(form("subscribe"), token="older-token-0"),
                           ["new-token-2", "old-token-1"])


def test_a_signature_header_is_no_substitute_for_the_token():
    """Mailchimp signs nothing: a header that claims a signature proves nothing."""
    forged = request(form("subscribe"), token=None,
                     headers={"X-Mailchimp-Signature": "sha256=abc"})
    with pytest.raises(SignatureError, match=r"no \?token="):
        Mailchimp().verify(forged, [SECRET])


def test_the_get_validation_request_is_answered_200_and_posts_are_deliveries():
    assert Mailchimp().handshake(request(method="GET")) == (200, "ok")
    assert Mailchimp().handshake(request(form("subscribe"))) is None


def test_a_delivery_for_another_audience_is_refused():
    body = form("subscribe", **{"data[list_id]": "0000000000"})
    with pytest.raises(SignatureError, match="not this connection's audience"):
        Mailchimp().check_sender(request(body), {"list_id": LIST})


def test_a_delivery_for_the_connections_audience_is_accepted():
    Mailchimp().check_sender(request(form("subscribe")), {"list_id": LIST})
    Mailchimp().check_sender(request(form("subscribe", **{"data[list_id]": "other"})), {})


# --- identify: the dedupe key -----------------------------------------------------------------


def test_the_key_is_type_fired_at_and_the_member_id():
    delivery = Mailchimp().identify(request(form("subscribe")))
    assert (delivery.key, delivery.event_type) == (
        "subscribe:2026-11-02 14:05:09:3f9c2b71d0", "subscribe")


def test_an_email_change_is_keyed_by_the_new_id():
    delivery = Mailchimp().identify(request(form("upemail")))
    assert delivery.key == "upemail:2026-11-08 17:42:31:7b1e0d94a2"


def test_a_cleaned_address_has_no_id_and_is_keyed_by_its_subscriber_hash():
    delivery = Mailchimp().identify(request(form("cleaned")))
    assert delivery.key == f"cleaned:2026-11-14 22:01:00:{TOMAS}"


def test_a_retry_has_the_same_key_and_a_later_event_another():
    first = Mailchimp().identify(request(form("profile"))).key
    assert Mailchimp().identify(request(form("profile"))).key == first
    assert Mailchimp().identify(request(form("profile", fired_at="2026-11-05 08:30:01"))).key \
        != first


def test_a_campaign_event_is_identified_but_not_understood():
    delivery = Mailchimp().identify(request(form("campaign")))
    assert delivery.key == "campaign:2026-11-14 21:30:00:c4a7e19b30"
    assert not Mailchimp().understands(delivery.event_type)
    assert all(Mailchimp().understands(t)
               for t in ("subscribe", "unsubscribe", "profile", "upemail", "cleaned"))


def test_a_key_never_outgrows_the_inbox_column():
    long_address = "a" * 240 + "@example.com"
    body = form("cleaned", **{"data[email]": long_address, "fired_at": "x" * 250})
    assert len(Mailchimp().identify(request(body)).key) <= 255


@pytest.mark.parametrize(("missing", "message"), [("type", "no 'type'"),
                                                  ("fired_at", "no 'fired_at'")])
def test_a_form_without_type_or_fired_at_is_refused(missing, message):
    with pytest.raises(PayloadError, match=message) as refused:
        Mailchimp().identify(request(form("subscribe", **{missing: None})))
    assert refused.value.status == 400


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(PayloadError, match="not UTF-8"):
        Mailchimp().identify(request(b"type=subscribe&fired_at=\xff"))


def test_an_event_type_longer_than_any_real_one_is_refused():
    with pytest.raises(PayloadError, match="longer than any event type"):
        Mailchimp().identify(request(form("subscribe", type="x" * 65)))


# --- parse ------------------------------------------------------------------------------------


def test_the_member_id_is_mailchimps_subscriber_hash_of_the_address():
    [record] = parse("subscribe")
    assert (record.object_type, record.external_id) == ("member", LENA_OLD)
    assert subscriber_hash("  Lena.Fixture@EXAMPLE.com ") == LENA_OLD


def test_observed_at_is_fired_at_read_as_utc():
    [record] = parse("unsubscribe")
    assert record.observed_at == datetime(2026, 11, 12, 9, 15, 2, tzinfo=UTC)


def test_the_payload_is_the_nested_form_with_meta():
    [record] = parse("unsubscribe")
    assert record.payload["data"]["merges"]["LNAME"] == "Okoro"
    assert record.payload["_meta"] == {
        "connection": "mc", "list_id": LIST, "default_region": "US",
        "event_type": "unsubscribe", "fired_at": "2026-11-12 09:15:02",
        "reason": "manual", "action": "unsub",
    }


def test_an_email_change_renames_the_member_and_names_its_previous_id():
    [record] = parse("upemail")
    assert record.external_id == LENA_NEW
    assert record.previous_external_id == LENA_OLD
    assert record.payload["data"]["new_email"] == "lena.okoro@example.net"
    assert record.payload["_meta"]["previous_id"] == LENA_OLD
    assert record.payload["_meta"]["new_member_id"] == LENA_NEW
    assert record.payload["_meta"]["old_email"] == "lena.fixture@example.com"


@pytest.mark.parametrize(("name", "field"), [("subscribe", "data[email]"),
                                              ("upemail", "data[old_email]"),
                                              ("upemail", "data[new_email]")])
def test_a_member_event_without_its_address_is_refused(name, field):
    with pytest.raises(PayloadError, match=re.escape(f"no {field}")):
        parse(name, **{field: None})


def test_a_fired_at_that_is_not_a_time_is_refused():
    with pytest.raises(PayloadError, match="'fired_at' is not a date"):
        parse("subscribe", fired_at="yesterday")


def test_an_unsubscribe_that_deletes_the_member_still_withdraws_consent():
    [record] = parse("unsubscribe", **{"data[action]": "delete"})
    fields, _ = FileMappingStore().get("mailchimp", "member").apply(record.payload)
    assert fields["consent.email.status"] == "withdrawn"
    assert record.payload["_meta"]["action"] == "delete"


# --- golden files -----------------------------------------------------------------------------

UNDERSTOOD = sorted(p.stem for p in FIXTURES.glob("*.json")
                    if not p.name.endswith(".expected.json")
                    and Mailchimp().understands(fixture(p.stem)["body"]["type"]))


def test_every_understood_fixture_has_an_expected_file_and_no_other_does():
    expected = sorted(p.name.removesuffix(".expected.json")
                      for p in FIXTURES.glob("*.expected.json"))
    assert expected == UNDERSTOOD
    assert "campaign" not in UNDERSTOOD and len(UNDERSTOOD) == 6


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(name)
    fields, problems = FileMappingStore().get("mailchimp", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


# --- API client -------------------------------------------------------------------------------


def test_the_base_url_comes_from_the_keys_data_center_and_auth_is_basic():
    http = Mailchimp().client(CONTEXT)
    assert http.base_url == API
    headers: dict[str, str] = {}
    http.authenticator.apply(headers, {})
    user, _, key = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode() \
        .partition(":")
    assert user and key == API_KEY


@pytest.mark.parametrize("key", ["0123456789abcdef", "abc-", "abc-US21", "abc-us"])
def test_a_key_without_a_data_center_is_a_configuration_error(key):
    with pytest.raises(ConfigurationError, match="data center"):
        data_center(key)


def test_a_connection_without_an_api_key_cannot_reach_the_api():
    with pytest.raises(ConfigurationError, match="no 'api_key'"):
        Mailchimp().client(ConnectionContext("mc", {"list_id": LIST}))


def test_a_connection_without_an_audience_has_no_streams_or_sinks():
    bare = ConnectionContext("mc", {}, {"api_key": API_KEY})
    with pytest.raises(ConfigurationError, match="no list_id"):
        Mailchimp().streams(bare)
    with pytest.raises(ConfigurationError, match="no list_id"):
        Mailchimp().sinks(bare)


def members(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"{i:032x}", "email_address": f"p{i}@example.com", "status": "subscribed",
             "last_changed": "2026-11-01T00:00:00+00:00"} for i in range(start, start + count)]


def offsets(calls: Any) -> list[tuple[str, str]]:
    found = []
    for call in calls:
        query = parse_qs(urlsplit(call.request.url).query)
        found.append((query["offset"][0], query["count"][0]))
    return found


@responses.activate
def test_members_are_read_page_by_page_until_total_items():
    total = 2003
    for start in (0, 1000, 2000):
        responses.get(MEMBERS, json={"members": members(start, min(1000, total - start)),
                                     "list_id": LIST, "total_items": total})
    [stream] = Mailchimp().streams(CONTEXT)
    http, _ = client()
    records = [r for page in stream.read(http) for r in page.records]
    assert len(records) == total and len({r["id"] for r in records}) == total
    assert offsets(responses.calls) == [("0", "1000"), ("1000", "1000"), ("2000", "1000")]


@responses.activate
def test_a_full_last_page_costs_no_extra_request():
    responses.get(MEMBERS, json={"members": members(0, 1000), "total_items": 1000})
    [stream] = Mailchimp().streams(CONTEXT)
    pages = list(stream.read(client()[0]))
    assert len(pages) == 1 and len(responses.calls) == 1


@responses.activate
def test_an_incremental_read_asks_for_members_changed_since_the_bookmark():
    responses.get(MEMBERS, json={"members": members(0, 2), "total_items": 2})
    [stream] = Mailchimp().streams(CONTEXT)
    assert stream.replication_key == "last_changed"
    list(stream.read(client()[0], bookmark="2026-11-01T00:00:00+00:00"))
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["since_last_changed"] == ["2026-11-01T00:00:00+00:00"]


@responses.activate
def test_too_many_connections_429_is_waited_out_then_read():
    responses.get(MEMBERS, status=429, json={"title": "Too Many Requests", "status": 429})
    responses.get(MEMBERS, json={"members": members(0, 1), "total_items": 1})
    [stream] = Mailchimp().streams(CONTEXT)
    http, waits = client()
    assert [len(p.records) for p in stream.read(http)] == [1]
    assert len(waits) == 1  # Mailchimp sends no Retry-After: the client backs off and retries


@responses.activate
def test_a_server_error_is_retried():
    responses.get(MEMBERS, status=503, body="Service Unavailable")
    responses.get(MEMBERS, json={"members": members(0, 1), "total_items": 1})
    [stream] = Mailchimp().streams(CONTEXT)
    http, waits = client()
    assert [len(p.records) for p in stream.read(http)] == [1]
    assert len(waits) == 1


@responses.activate
def test_a_refused_api_key_is_an_authentication_error():
    responses.get(MEMBERS, status=401, json={"title": "API Key Invalid", "status": 401,
                                             "detail": "Your API key may be invalid."})
    [stream] = Mailchimp().streams(CONTEXT)
    with pytest.raises(AuthenticationError, match="refused the credentials"):
        list(stream.read(client()[0]))


@responses.activate
def test_an_echoed_api_key_never_reaches_the_error_message():
    key = "3f9c2b71d0a84e6c9b5f1e2d7a6c4b8e-us21"
    responses.get(MEMBERS, status=401, json={"title": "API Key Invalid", "status": 401,
                                             "detail": f"Your API key may be invalid: {key}"})
    context = ConnectionContext("mc", {"list_id": LIST}, {"api_key": key})
    [stream] = Mailchimp().streams(context)
    with pytest.raises(AuthenticationError) as refused:
        list(stream.read(Mailchimp().client(context)))
    assert key not in str(refused.value) and key[:32] not in str(refused.value)


# --- sink -------------------------------------------------------------------------------------


def outbound(**contact: Any) -> dict[str, Any]:
    view = {"email": "lena.okoro@example.net", "first_name": "Lena", "last_name": "Okoro",
            "consent": {"email": {"status": "granted"}}, **contact}
    payload, problems = FileMappingStore().get_outbound("mailchimp", "member").apply(view)
    assert problems == []
    return payload


def test_outbound_subscribes_only_new_members_and_only_ever_unsubscribes_existing_ones():
    assert outbound() == {"email_address": "lena.okoro@example.net",
                          "merge_fields": {"FNAME": "Lena", "LNAME": "Okoro"},
                          "status_if_new": "subscribed"}
    withdrawn = outbound(consent={"email": {"status": "withdrawn"}})
    assert (withdrawn["status_if_new"], withdrawn["status"]) == ("unsubscribed", "unsubscribed")
    unknown = outbound(consent={"email": {"status": "unknown"}})
    assert unknown["status_if_new"] == "transactional" and "status" not in unknown


@responses.activate
def test_a_member_is_put_at_the_subscriber_hash_of_its_address():
    responses.put(f"{MEMBERS}/{LENA_NEW}", json={"id": LENA_NEW, "status": "subscribed"})
    sink = Mailchimp().sinks(CONTEXT)["member"]
    [result] = sink.push(client()[0], [OutboundRecord(7, None, outbound())])
    assert (result.hub_id, result.outcome, result.external_id) == (7, Outcome.CREATED, LENA_NEW)
    assert json.loads(responses.calls[0].request.body)["status_if_new"] == "subscribed"


@responses.activate
def test_a_refused_member_is_rejected_alone_with_mailchimps_reason():
    responses.put(f"{MEMBERS}/{subscriber_hash('bad@example.com')}", status=400,
                  json={"title": "Invalid Resource", "status": 400,
                        "detail": "bad@example.com looks fake or invalid"})
    responses.put(f"{MEMBERS}/{LENA_NEW}", json={"id": LENA_NEW})
    sink = Mailchimp().sinks(CONTEXT)["member"]
    results = sink.push(client()[0], [
        OutboundRecord(1, None, outbound(email="bad@example.com")),
        OutboundRecord(2, LENA_NEW, outbound()),
    ])
    assert [(r.hub_id, r.outcome) for r in results] == [(1, Outcome.REJECTED),
                                                        (2, Outcome.UPDATED)]
    assert "looks fake or invalid" in (results[0].reason or "")


def test_a_record_without_address_or_id_is_rejected_without_a_request():
    sink = Mailchimp().sinks(CONTEXT)["member"]
    with responses.RequestsMock():  # any request would fail the test
        [result] = sink.push(client()[0], [OutboundRecord(3, None, {"merge_fields": {}})])
    assert result.outcome is Outcome.REJECTED and "email_address" in (result.reason or "")


@responses.activate
def test_an_erasure_deletes_the_member_permanently_and_a_gone_member_is_done():
    url = f"{MEMBERS}/{LENA_OLD}/actions/delete-permanent"
    responses.post(url, status=204)
    responses.post(url, status=404, json={"title": "Resource Not Found", "status": 404})
    sink = Mailchimp().sinks(CONTEXT)["member"]
    http, _ = client()
    assert sink.remove(http, 5, LENA_OLD).outcome is Outcome.DELETED
    gone = sink.remove(http, 5, LENA_OLD)
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")


@responses.activate
def test_archive_mode_archives_instead():
    responses.delete(f"{MEMBERS}/{LENA_OLD}", status=204)
    archive = ConnectionContext("mc", {"list_id": LIST, "delete_mode": "archive"},
                                {"api_key": API_KEY})
    result = Mailchimp().sinks(archive)["member"].remove(client()[0], 5, LENA_OLD)
    assert result.outcome is Outcome.DELETED and len(responses.calls) == 1


def test_an_unknown_delete_mode_is_a_configuration_error():
    odd = ConnectionContext("mc", {"list_id": LIST, "delete_mode": "shred"}, {})
    with pytest.raises(ConfigurationError, match="delete_mode"):
        Mailchimp().sinks(odd)


def test_delivery_headers_are_not_kept():
    delivery = Mailchimp().identify(request(form("subscribe")))
    assert delivery.headers == {}
    assert Mailchimp().keep_headers(Headers(fixture("subscribe")["headers"])) == {}
