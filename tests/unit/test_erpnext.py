"""ERPNext / Frappe: X-Frappe-Webhook-Signature or the URL token, Customer and Contact documents
in the site's time zone, the REST streams and the Contact sink, against `responses` shaped like
Frappe's /api/resource answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.erpnext import Erpnext, site_time
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "erpnext"
SECRET = "frappe-webhook-secret-for-tests"
SITE = "https://erp.example.com"
CONTEXT = ConnectionContext("erp", {"url": SITE, "time_zone": "Europe/Stockholm",
                                    "default_region": "SE"},
                            {"api_key": "0a1b2c3d4e5f6a7", "api_secret": "9f8e7d6c5b4a3f2"})
ERP = Erpnext()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body_of(name: str) -> bytes:
    """What Frappe sends: json.dumps of the data, Python's default separators."""
    return json.dumps(load(name)["body"]).encode()


def frappe_signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(body: bytes, headers: dict[str, str] | None = None,
            query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example/webhooks/erp", Headers(headers or {}),
                          body, datetime(2026, 11, 22, 14, 31, 10, tzinfo=UTC), query or {})


def client():
    http = ERP.client(CONTEXT)
    http.sleep = lambda _seconds: None
    return http


# --- signature or URL token ------------------------------------------------------------------


def test_a_signed_delivery_is_checked_against_its_signature():
    body = body_of("contact_on_update")
    ERP.verify(request(body, {"X-Frappe-Webhook-Signature": frappe_signature(body)}), [SECRET])


def test_a_tampered_signed_delivery_is_refused_even_with_a_good_url_token():
    body = body_of("contact_on_update")
    tampered = body.replace(b'"unsubscribed": 1', b'"unsubscribed": 0')
    with pytest.raises(SignatureError, match="does not match"):
        ERP.verify(request(tampered, {"X-Frappe-Webhook-Signature": frappe_signature(body)},
                           {"token": SECRET}), [SECRET])


def test_a_rotated_secret_still_verifies_while_both_are_listed():
    body = body_of("customer_after_insert")
    headers = {"x-frappe-webhook-signature": frappe_signature(body, "old-secret")}
    ERP.verify(request(body, headers), ["new-secret", "old-secret"])
    with pytest.raises(SignatureError):
        ERP.verify(request(body, headers), ["new-secret"])


def test_an_unsigned_delivery_needs_the_url_token():
    body = body_of("contact_on_update")
    ERP.verify(request(body, query={"token": SECRET}), [SECRET])
    with pytest.raises(SignatureError, match="no \\?token="):
        ERP.verify(request(body), [SECRET])
    with pytest.raises(SignatureError, match="not this connection's"):
        ERP.verify(request(body, query={"token": "guess"}), [SECRET])


def test_a_connection_that_requires_signatures_refuses_unsigned_deliveries():
    body = body_of("contact_on_update")
    with pytest.raises(SignatureError, match="Enable Security"):
        ERP.check_sender(request(body, query={"token": SECRET}), {"require_signature": "true"})
    ERP.check_sender(request(body, {"X-Frappe-Webhook-Signature": "x"}),
                     {"require_signature": "true"})
    ERP.check_sender(request(body), {"require_signature": "false"})


# --- identify and parse ----------------------------------------------------------------------


def test_a_document_is_keyed_on_doctype_name_and_modified():
    delivery = ERP.identify(request(body_of("contact_on_update")))
    assert delivery.key == "Contact:Sofia Lindqvist-Northwind Traders:2026-11-22 15:31:09.412233"
    assert delivery.event_type == "Contact"
    assert not ERP.understands(ERP.identify(request(body_of("sales_invoice_on_submit")))
                               .event_type)


def test_a_key_longer_than_the_inbox_keeps_is_hashed_and_a_normal_one_is_not():
    doc = {"doctype": "Contact", "name": "N" * 140, "modified": "2026-11-22 15:31:09.412233"}
    assert ERP.identify(request(json.dumps(doc).encode())).key == \
        f"Contact:{'N' * 140}:2026-11-22 15:31:09.412233"
    doc["name"] = "N" * 300  # a custom doctype's name field can be longer than 140
    key = ERP.identify(request(json.dumps(doc).encode())).key
    assert len(key) <= 255 and key.startswith("Contact:sha256:")


@pytest.mark.parametrize(("drop", "message"), [("doctype", "JSON template"),
                                               ("name", "no document name"),
                                               ("modified", "no modified time")])
def test_a_body_without_its_keys_is_refused(drop, message):
    body = load("contact_on_update")["body"]
    del body[drop]
    with pytest.raises(PayloadError, match=message):
        ERP.identify(request(json.dumps(body).encode()))


def test_modified_is_read_in_the_sites_time_zone():
    assert site_time("2026-07-01 12:00:00", "Europe/Stockholm") == \
        datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # summer time, +02:00
    assert site_time("2026-11-22 15:31:09.412233", "UTC") == \
        datetime(2026, 11, 22, 15, 31, 9, 412233, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        site_time("2026-11-22 15:31:09", "Mars/Olympus")
    with pytest.raises(PayloadError):
        site_time("last week", "UTC")


UNDERSTOOD = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_golden_file(name):
    body = body_of(name)
    [record] = ERP.parse(ERP.identify(request(body)), body, CONTEXT)
    fields, problems = FileMappingStore().get("erpnext", record.object_type).apply(record.payload)
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == json.loads((FIXTURES / f"{name}.expected.json").read_text())


def test_only_the_ignored_doctype_lacks_an_expected_file():
    names = sorted(p.stem for p in FIXTURES.glob("*.json") if ".expected" not in p.name)
    assert sorted(set(names) - set(UNDERSTOOD)) == ["sales_invoice_on_submit"]


# --- streams ---------------------------------------------------------------------------------


def test_both_doctypes_are_read_page_by_page_with_the_token_header():
    customers, contacts = ERP.streams(CONTEXT)
    assert (customers.path, contacts.path) == ("/api/resource/Customer", "/api/resource/Contact")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{SITE}/api/resource/Contact",
                 json={"data": [{"name": f"C{n}"} for n in range(100)]})
        rsps.add(responses.GET, f"{SITE}/api/resource/Contact",
                 json={"data": [{"name": "C100"}]})
        records = [r for page in contacts.read(client(), "2026-11-20 00:00:00")
                   for r in page.records]
        first, second = (parse_qs(urlsplit(c.request.url).query) for c in rsps.calls)
        auth = rsps.calls[0].request.headers["Authorization"]
    assert len(records) == 101
    assert auth == "token 0a1b2c3d4e5f6a7:9f8e7d6c5b4a3f2"
    assert json.loads(first["filters"][0]) == [["modified", ">=", "2026-11-20 00:00:00"]]
    assert (first["fields"], first["order_by"]) == (['["*"]'], ["modified asc"])
    assert (first["limit_start"], first["limit_page_length"]) == (["0"], ["100"])
    assert second["limit_start"] == ["100"]


def test_a_rate_limited_read_honours_retry_after_then_goes_on():
    [customers, _] = ERP.streams(CONTEXT)
    http = ERP.client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{SITE}/api/resource/Customer", status=429,
                 headers={"Retry-After": "30"}, body="Too Many Requests")
        rsps.add(responses.GET, f"{SITE}/api/resource/Customer", status=500,
                 json={"exc_type": "OperationalError"})
        rsps.add(responses.GET, f"{SITE}/api/resource/Customer", json={"data": [{"name": "A"}]})
        pages = list(customers.read(http))
    assert pages[0].records == [{"name": "A"}]
    assert waits[0] >= 30


def test_the_url_must_be_https():
    with pytest.raises(ConfigurationError, match="https"):
        ERP.client(ConnectionContext("erp", {"url": "erp.example.com"}, CONTEXT.credentials))


# --- sink ------------------------------------------------------------------------------------

PAYLOAD = {"first_name": "Ana", "last_name": "Lima", "email_id": "ana.lima@example.com",
           "phone": "+14155550134", "unsubscribed": 0}


def test_a_new_contact_gets_child_rows_and_an_update_leaves_them_alone():
    sink = ERP.sinks(CONTEXT)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{SITE}/api/resource/Contact",
                 json={"data": {"name": "Ana Lima", "doctype": "Contact"}})
        rsps.add(responses.PUT, f"{SITE}/api/resource/Contact/Sofia%20Lindqvist",
                 json={"data": {"name": "Sofia Lindqvist"}})
        results = sink.push(client(), [OutboundRecord(1, None, PAYLOAD),
                                       OutboundRecord(2, "Sofia Lindqvist", PAYLOAD)])
        created, updated = (json.loads(c.request.body) for c in rsps.calls)
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.CREATED, "Ana Lima"), (Outcome.UPDATED, "Sofia Lindqvist")]
    assert created["email_ids"] == [{"email_id": "ana.lima@example.com", "is_primary": 1}]
    assert created["phone_nos"] == [{"phone": "+14155550134", "is_primary_phone": 1}]
    assert "email_id" not in created
    assert updated == {"first_name": "Ana", "last_name": "Lima", "unsubscribed": 0}


def test_a_contact_frappe_refuses_is_rejected_alone():
    sink = ERP.sinks(CONTEXT)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{SITE}/api/resource/Contact", status=417, json={
            "exc_type": "InvalidEmailAddressError",
            "_server_messages": "[\"{\\\"message\\\": \\\"x is not a valid Email Address\\\"}\"]"})
        rsps.add(responses.POST, f"{SITE}/api/resource/Contact", status=409,
                 json={"exc_type": "DuplicateEntryError"})
        rsps.add(responses.POST, f"{SITE}/api/resource/Contact", json={"data": {"name": "Ben"}})
        results = sink.push(client(), [OutboundRecord(n, None, PAYLOAD) for n in (1, 2, 3)])
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.CREATED]
    assert "InvalidEmailAddressError" in results[0].reason


def test_delete_removes_the_contact_and_one_already_gone_counts_as_done():
    sink = ERP.sinks(CONTEXT)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{SITE}/api/resource/Contact/Ana%20Lima",
                 json={"message": "ok"})
        rsps.add(responses.DELETE, f"{SITE}/api/resource/Contact/Ben", status=404,
                 json={"exc_type": "DoesNotExistError"})
        assert sink.remove(client(), 1, "Ana Lima").outcome is Outcome.DELETED
        gone = sink.remove(client(), 2, "Ben")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")


def test_an_error_that_echoes_the_token_header_does_not_leak_the_secret():
    http = client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{SITE}/api/resource/Contact", status=401,
                 body="Invalid header: token 0a1b2c3d4e5f6a7:9f8e7d6c5b4a3f2")
        with pytest.raises(AuthenticationError) as refused:
            http.request("GET", "/api/resource/Contact")
    assert "9f8e7d6c5b4a3f2" not in str(refused.value)
    assert "0a1b2c3d4e5f6a7" not in refused.value.detail
