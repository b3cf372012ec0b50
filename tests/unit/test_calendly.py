"""Calendly: the signature scheme, the dedupe key, parsing and the golden files.

Signatures are built here the way Calendly documents them (hex HMAC-SHA256 of "{t}.{body}"
with the subscription's signing key), independently of connectors.signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectionContext, Delivery, Headers, WebhookRequest
from connectors.calendly import Calendly
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calendly"
KEY = "calendly-signing-key-for-tests"
NOW = datetime(2026, 11, 12, 16, 4, 30, tzinfo=UTC)
CONTEXT = ConnectionContext("meetings", {"default_region": "US"})
CREATED_URI = ("https://api.calendly.com/scheduled_events/3d1f2b6e-9a77-4f0c-b2b8-5e4c1d0a9f21"
               "/invitees/7b1e6a4c-2f3d-4c55-9a0e-0c9b2f6d8e11")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def sign(body: bytes, key: str = KEY, timestamp: int | None = None) -> str:
    t = int(NOW.timestamp()) if timestamp is None else timestamp
    digest = hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def request(body: bytes | dict[str, Any], headers: dict[str, str] | None = None
            ) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest("POST", "https://hub.example/webhooks/meetings",
                          Headers(headers or {}), raw, NOW)


def body_of(name: str) -> bytes:
    return json.dumps(fixture(name)["body"]).encode()


# --- verify ----------------------------------------------------------------------------------


def test_a_delivery_signed_with_the_signing_key_is_accepted():
    body = body_of("invitee_created")
    Calendly().verify(request(body, {"Calendly-Webhook-Signature": sign(body)}), [KEY])


def test_the_header_is_read_in_any_case():
    body = body_of("invitee_created")
    Calendly().verify(request(body, {"calendly-webhook-signature": sign(body)}), [KEY])


def test_a_tampered_body_is_refused():
    body = body_of("invitee_created")
    header = sign(body)
    tampered = body.replace(b"Priya", b"Mallory")
    with pytest.raises(SignatureError, match="no v1 signature"):
        Calendly().verify(request(tampered, {"Calendly-Webhook-Signature": header}), [KEY])


def test_a_signature_older_than_three_minutes_is_a_replay():
    body = body_of("invitee_created")
    old = int(NOW.timestamp()) - 181
    with pytest.raises(SignatureError, match="more than 180 s old"):
        Calendly().verify(request(body, {"Calendly-Webhook-Signature": sign(body, timestamp=old)}),
                          [KEY])


def test_a_signature_just_inside_the_tolerance_is_accepted():
    body = body_of("invitee_created")
    recent = int(NOW.timestamp()) - 179
    Calendly().verify(request(body, {"Calendly-Webhook-Signature": sign(body, timestamp=recent)}),
                      [KEY])


def test_during_a_key_rotation_either_key_verifies():
    body = body_of("invitee_created")
    header = sign(body, key="the-new-key")
    Calendly().verify(request(body, {"Calendly-Webhook-Signature": header}),
                      [KEY, "the-new-key"])
    with pytest.raises(SignatureError):
        Calendly().verify(request(body, {"Calendly-Webhook-Signature": header}), [KEY])


def test_a_missing_header_is_refused():
    with pytest.raises(SignatureError, match="Calendly-Webhook-Signature header is missing"):
        Calendly().verify(request(body_of("invitee_created")), [KEY])


@pytest.mark.parametrize("header", [
    "sha256=abc",  # another vendor's scheme
    "v1=abc",  # no timestamp
    "t=1795000000",  # no signature
    "t=yesterday,v1=abc",
])
def test_a_header_in_another_scheme_is_refused(header):
    with pytest.raises(SignatureError):
        Calendly().verify(request(body_of("invitee_created"),
                                  {"Calendly-Webhook-Signature": header}), [KEY])


def test_a_base64_signature_of_the_right_bytes_is_not_accepted():
    import base64

    body = body_of("invitee_created")
    t = int(NOW.timestamp())
    raw = hmac.new(KEY.encode(), f"{t}.".encode() + body, hashlib.sha256).digest()
    header = f"t={t},v1={base64.b64encode(raw).decode()}"
    with pytest.raises(SignatureError):
        Calendly().verify(request(body, {"Calendly-Webhook-Signature": header}), [KEY])


# --- identify --------------------------------------------------------------------------------


def test_the_dedupe_key_is_the_event_and_the_invitee_uri():
    delivery = Calendly().identify(request(fixture("invitee_created")["body"]))
    assert delivery.event_type == "invitee.created"
    assert delivery.key == f"invitee.created:{CREATED_URI}"


def test_a_reschedule_gives_the_cancel_and_the_create_different_keys():
    created = Calendly().identify(request(fixture("invitee_created")["body"]))
    canceled = Calendly().identify(request(fixture("invitee_canceled")["body"]))
    assert canceled.key == f"invitee.canceled:{CREATED_URI}"
    assert canceled.key != created.key


def test_an_envelope_without_event_is_refused():
    body = fixture("invitee_created")["body"]
    del body["event"]
    with pytest.raises(PayloadError, match="no valid 'event'") as caught:
        Calendly().identify(request(body))
    assert caught.value.pointer == "/event"


@pytest.mark.parametrize("payload", [None, "text", []])
def test_an_envelope_without_a_payload_object_is_refused(payload):
    body = {**fixture("invitee_created")["body"], "payload": payload}
    with pytest.raises(PayloadError, match="no 'payload' object"):
        Calendly().identify(request(body))


def test_a_payload_without_uri_is_refused():
    body = fixture("invitee_created")["body"]
    del body["payload"]["uri"]
    with pytest.raises(PayloadError, match="no 'uri'"):
        Calendly().identify(request(body))


def test_malformed_json_is_refused():
    with pytest.raises(PayloadError, match="not valid JSON"):
        Calendly().identify(request(b'{"event": "invitee.created",'))


def test_only_invitee_created_and_canceled_are_understood():
    calendly = Calendly()
    assert calendly.understands("invitee.created")
    assert calendly.understands("invitee.canceled")
    assert not calendly.understands("routing_form_submission.created")
    assert not calendly.understands("invitee_no_show.created")


def test_there_is_no_setup_handshake():
    get = WebhookRequest("GET", "https://hub.example/webhooks/meetings", Headers({}), b"", NOW)
    assert Calendly().handshake(get) is None


# --- parse -----------------------------------------------------------------------------------


def parse(name: str, body: dict[str, Any] | None = None, context: ConnectionContext = CONTEXT):
    data = fixture(name)["body"] if body is None else body
    delivery = Delivery("k", data.get("event", "invitee.created"), {})
    return Calendly().parse(delivery, json.dumps(data).encode(), context)


def test_an_invitee_is_a_booking_so_it_carries_no_external_id():
    [record] = parse("invitee_created")
    assert (record.object_type, record.external_id) == ("invitee", None)


def test_observed_at_is_the_invitees_updated_at_in_utc():
    [record] = parse("invitee_canceled")
    assert record.observed_at == datetime(2026, 11, 14, 9, 12, 4, 573310, tzinfo=UTC)


def test_without_updated_at_the_event_time_is_used():
    body = fixture("invitee_created")["body"]
    del body["payload"]["updated_at"]
    [record] = parse("invitee_created", body)
    assert record.observed_at == datetime(2026, 11, 12, 16, 4, 28, tzinfo=UTC)


def test_a_record_without_any_time_is_refused():
    body = fixture("invitee_created")["body"]
    del body["payload"]["updated_at"]
    del body["created_at"]
    with pytest.raises(PayloadError, match="no updated_at"):
        parse("invitee_created", body)


def test_a_record_with_a_bad_time_is_refused():
    body = fixture("invitee_created")["body"]
    body["payload"]["updated_at"] = "next Thursday"
    with pytest.raises(PayloadError, match="bad timestamp"):
        parse("invitee_created", body)


def test_meta_carries_the_connection_the_event_and_its_time():
    [record] = parse("invitee_created")
    assert record.payload["_meta"] == {"connection": "meetings", "default_region": "US",
                                       "event_type": "invitee.created",
                                       "event_created_at": "2026-11-12T16:04:28.000000Z"}


def test_a_cancelled_booking_sets_no_scheduling_fields():
    [record] = parse("invitee_canceled")
    fields, _ = FileMappingStore().get("calendly", "invitee").apply(record.payload)
    assert not any(name.startswith("scheduling.") for name in fields)


def test_separate_first_and_last_names_win_over_splitting_the_full_name():
    body = fixture("invitee_created")["body"]
    body["payload"].update(first_name="Priya", last_name="Raman Iyer", name="Priya Raman Iyer")
    [record] = parse("invitee_created", body)
    fields, _ = FileMappingStore().get("calendly", "invitee").apply(record.payload)
    assert (fields["first_name"], fields["last_name"]) == ("Priya", "Raman Iyer")


def test_a_national_reminder_number_uses_the_connections_region():
    body = fixture("invitee_created")["body"]
    body["payload"]["text_reminder_number"] = "(503) 555-0182"
    [record] = parse("invitee_created", body)
    fields, problems = FileMappingStore().get("calendly", "invitee").apply(record.payload)
    assert fields["phone"] == "+15035550182"
    assert problems == []


# --- golden files ----------------------------------------------------------------------------

GOLDEN = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


def test_every_fixture_has_an_expected_file():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")
                            if not p.name.endswith(".expected.json")) == GOLDEN


@pytest.mark.parametrize("name", GOLDEN)
def test_fixture_maps_to_its_expected_canonical_fields(name):
    [record] = parse(name)
    fields, problems = FileMappingStore().get("calendly", record.object_type).apply(
        record.payload)
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == expected


# --- what Calendly does not offer ------------------------------------------------------------


def test_calendly_is_webhooks_only():
    assert Calendly.capabilities() == {"webhooks": True, "pull": False, "push": False,
                                       "delete": False}
    with pytest.raises(ConfigurationError, match="no API client"):
        Calendly().client(CONTEXT)
