"""Zoho Books / Zoho Invoice: the URL token, the three webhook body shapes, thin contacts read
back, the contacts stream and sink, against `responses` shaped like Zoho's documented API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Delivery, Headers, WebhookRequest
from connectors.sinks import OutboundRecord, Outcome
from connectors.zoho import Zoho, zoho_time
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    RejectedRecordError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoho"
TOKEN = "zoho-url-token-for-tests"
API = "https://www.zohoapis.com/books/v3"
ACCOUNTS = "https://accounts.zoho.com/oauth/v2/token"
CONTEXT = ConnectionContext("books", {"organization_id": "10234695", "default_region": "US"},
                            {"client_id": "1000.CLIENT", "client_secret": "secret",
                             "refresh_token": "1000.refresh"})
ZOHO = Zoho()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body_of(name: str) -> bytes:
    body = load(name)["body"]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def request(name: str, query: dict[str, str] | None = None,
            body: bytes | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example/webhooks/books",
                          Headers(load(name)["headers"]), body_of(name) if body is None else body,
                          datetime(2026, 11, 20, tzinfo=UTC),
                          {"token": TOKEN} if query is None else query)


def client(context: ConnectionContext = CONTEXT):
    http = ZOHO.client(context)
    http.sleep = lambda _seconds: None
    return http


# --- the URL token ---------------------------------------------------------------------------


def test_the_connections_token_in_the_url_is_accepted_and_rotation_works():
    ZOHO.verify(request("contact_default_payload"), [TOKEN])
    ZOHO.verify(request("contact_default_payload"), ["new-token", TOKEN])


@pytest.mark.parametrize("query", [{}, {"token": "guessed"}, {"token": TOKEN[:-1]}])
def test_a_missing_or_wrong_token_is_refused(query):
    with pytest.raises(SignatureError):
        ZOHO.verify(request("contact_default_payload", query=query), [TOKEN])


# --- identify --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), [
    ("contact_default_payload", "contact:460000000026049:2026-11-12T16:48:03-0800"),
    ("contact_form_entity_params", "contact:460000000031007:2026-11-14T10:02:55+0100"),
    ("contact_ids_only", "contact:460000000026049:2026-11-16T08:30:00-0800"),
])
def test_every_body_shape_is_keyed_on_contact_id_and_last_modified_time(name, key):
    delivery = ZOHO.identify(request(name))
    assert (delivery.key, delivery.event_type) == (key, "contact")
    assert ZOHO.understands(delivery.event_type)


def test_a_form_field_holding_the_contacts_json_is_read():
    body = "JSONString=" + json.dumps(load("contact_default_payload")["body"])
    req = WebhookRequest("POST", "https://hub.example/webhooks/books", Headers(
        {"Content-Type": "application/x-www-form-urlencoded"}),
        body.replace("&", "%26").replace("+", "%2B").encode(), datetime.now(UTC))
    assert ZOHO.identify(req).key == "contact:460000000026049:2026-11-12T16:48:03-0800"


@pytest.mark.parametrize(("body", "message"), [
    (b'{"contact": {"last_modified_time": "2026-11-12T16:48:03-0800"}}', "no contact_id"),
    (b'{"contact_id": "4600"}', "no last_modified_time"),
    (b'{"contact_id": "4600", ', "neither JSON nor a form"),
    (b"[1, 2]", "must be a JSON object"),
])
def test_a_webhook_without_its_keys_says_what_to_add(body, message):
    with pytest.raises(PayloadError, match=message):
        ZOHO.identify(request("contact_default_payload", body=body))


# --- parse and fetch -------------------------------------------------------------------------


def delivery_for(name: str) -> Delivery:
    return ZOHO.identify(request(name))


def test_the_primary_contact_person_is_exposed_to_mappings_as_person():
    [record] = ZOHO.parse(delivery_for("contact_default_payload"),
                          body_of("contact_default_payload"), CONTEXT)
    assert record.payload["_person"]["first_name"] == "Lena"
    assert record.fetch is None
    assert record.observed_at == datetime(2026, 11, 13, 0, 48, 3, tzinfo=UTC)


def test_a_webhook_with_ids_only_is_read_back_from_the_api():
    [record] = ZOHO.parse(delivery_for("contact_ids_only"), body_of("contact_ids_only"), CONTEXT)
    assert record.fetch == f"{API}/contacts/460000000026049"
    invoice_eu = ConnectionContext("inv", {"product": "invoice", "data_center": "eu",
                                           "organization_id": "77"}, CONTEXT.credentials)
    [record] = ZOHO.parse(delivery_for("contact_ids_only"), body_of("contact_ids_only"),
                          invoice_eu)
    assert record.fetch == "https://www.zohoapis.eu/invoice/v3/contacts/460000000026049"


def test_unknown_data_centres_and_products_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="data centre"):
        ZOHO.client(ConnectionContext("b", {"data_center": "mars"}, CONTEXT.credentials))
    with pytest.raises(ConfigurationError, match="books or invoice"):
        ZOHO.client(ConnectionContext("b", {"product": "crm"}, CONTEXT.credentials))


def test_fetch_refreshes_the_token_and_sends_zohos_header_and_organisation():
    [thin] = ZOHO.parse(delivery_for("contact_ids_only"), body_of("contact_ids_only"), CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/contacts/460000000026049", status=401,
                 json={"code": 57, "message": "You are not authorized to perform this operation"})
        rsps.add(responses.POST, ACCOUNTS, json={"access_token": "1000.access",
                                                 "api_domain": "https://www.zohoapis.com",
                                                 "token_type": "Bearer", "expires_in": 3600})
        rsps.add(responses.GET, f"{API}/contacts/460000000026049",
                 json=load("api/contact_460000000026049"))
        record = ZOHO.fetch(client(), thin)
        token_call, read = rsps.calls[1], rsps.calls[2]
    assert parse_qs(token_call.request.body)["refresh_token"] == ["1000.refresh"]
    assert read.request.headers["Authorization"] == "Zoho-oauthtoken 1000.access"
    assert parse_qs(urlsplit(read.request.url).query) == {"organization_id": ["10234695"]}
    assert record.payload["_person"]["email"] == "lena.hollis@example.com"


def test_zoho_invoice_names_the_organisation_in_a_header():
    invoice = ConnectionContext("inv", {"product": "invoice", "organization_id": "77"},
                                CONTEXT.credentials)
    http = client(invoice)
    http.authenticator.access_token = "1000.access"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "https://www.zohoapis.com/invoice/v3/contacts/1",
                 json={"contact": {}})
        http.request("GET", "/contacts/1")
        sent = rsps.calls[0].request
    assert sent.headers["X-com-zoho-invoice-organizationid"] == "77"
    assert "organization_id" not in sent.url


def test_a_refresh_token_zoho_refuses_with_a_200_needs_the_admins_attention():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/contacts/1", status=401, json={"code": 57})
        rsps.add(responses.POST, ACCOUNTS, json={"error": "invalid_code"})
        with pytest.raises(AuthenticationError):
            client().request("GET", "/contacts/1")


def test_a_contact_deleted_before_it_was_read_back_is_rejected():
    [thin] = ZOHO.parse(delivery_for("contact_ids_only"), body_of("contact_ids_only"), CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/contacts/460000000026049", status=404,
                 json={"code": 1002, "message": "Contact does not exist."})
        with pytest.raises(RejectedRecordError, match="no longer exists"):
            ZOHO.fetch(client(), thin)


UNDERSTOOD = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_golden_file(name):
    delivery = delivery_for(name)
    [record] = ZOHO.parse(delivery, body_of(name), CONTEXT)
    if record.fetch:
        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, record.fetch, json=load(f"api/contact_{record.external_id}"))
            record = ZOHO.fetch(client(), record)
    fields, problems = FileMappingStore().get("zoho", "contact").apply(record.payload)
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == json.loads((FIXTURES / f"{name}.expected.json").read_text())


def test_every_webhook_fixture_has_an_expected_file():
    names = sorted(p.stem for p in FIXTURES.glob("*.json") if ".expected" not in p.name)
    assert names == UNDERSTOOD


# --- stream ----------------------------------------------------------------------------------


def test_the_stream_pages_until_zoho_says_there_is_no_more():
    [stream] = ZOHO.streams(CONTEXT)
    with responses.RequestsMock() as rsps:
        for page, more in ((1, True), (2, True), (3, False)):
            rsps.add(responses.GET, f"{API}/contacts", json={
                "code": 0, "message": "success",
                "contacts": [{"contact_id": f"{page}-{n}"} for n in range(200 if more else 7)],
                "page_context": {"page": page, "per_page": 200, "has_more_page": more}})
        records = [r for p in stream.read(client(), "2026-11-01T00:00:00+00:00") for r in p.records]
        queries = [parse_qs(urlsplit(c.request.url).query) for c in rsps.calls]
    assert len(records) == 407
    assert [q["page"] for q in queries] == [["1"], ["2"], ["3"]]
    assert all(q["per_page"] == ["200"] and q["organization_id"] == ["10234695"]
               for q in queries)
    assert queries[0]["last_modified_time"] == ["2026-11-01T00:00:00+0000"]
    assert queries[0]["sort_column"] == ["last_modified_time"]


def test_a_bookmark_is_written_the_way_zoho_writes_times():
    assert zoho_time("2026-11-12T16:48:03-0800") == "2026-11-13T00:48:03+0000"
    with pytest.raises(ConfigurationError):
        zoho_time("yesterday")


def test_a_rate_limited_read_waits_for_zohos_reset_then_goes_on():
    [stream] = ZOHO.streams(CONTEXT)
    http = ZOHO.client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{API}/contacts", status=429,
                 headers={"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Remaining": "0",
                          "X-Rate-Limit-Reset": "42"},
                 json={"code": 44, "message": "API calls per minute exceeded"})
        rsps.add(responses.GET, f"{API}/contacts", status=502, body="bad gateway")
        rsps.add(responses.GET, f"{API}/contacts", json={
            "contacts": [{"contact_id": "1"}], "page_context": {"has_more_page": False}})
        pages = list(stream.read(http))
    assert pages[0].records == [{"contact_id": "1"}]
    assert waits[0] >= 42


# --- sink ------------------------------------------------------------------------------------


def test_a_new_contact_gets_its_person_and_an_update_leaves_the_persons_alone():
    sink = ZOHO.sinks(CONTEXT)["contact"]
    payload = {"contact_name": "Ana Lima", "first_name": "Ana", "last_name": "Lima",
               "email": "ana.lima@example.com", "billing_address": {"city": "San Francisco"}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/contacts", status=201, json={
            "code": 0, "message": "The contact has been added.",
            "contact": {"contact_id": "460000000099001"}})
        rsps.add(responses.PUT, f"{API}/contacts/460000000026049",
                 json={"code": 0, "message": "Contact has been updated successfully"})
        results = sink.push(client(), [OutboundRecord(1, None, payload),
                                       OutboundRecord(2, "460000000026049", payload)])
        created, updated = (json.loads(c.request.body) for c in rsps.calls)
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.CREATED, "460000000099001"), (Outcome.UPDATED, "460000000026049")]
    assert created["contact_persons"] == [{"first_name": "Ana", "last_name": "Lima",
                                           "email": "ana.lima@example.com",
                                           "is_primary_contact": True}]
    assert "email" not in created
    assert updated == {"contact_name": "Ana Lima", "billing_address": {"city": "San Francisco"}}


def test_a_contact_zoho_refuses_is_rejected_with_its_reason_and_the_next_goes_on():
    sink = ZOHO.sinks(CONTEXT)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/contacts", status=400,
                 json={"code": 3062, "message": "The contact name already exists."})
        rsps.add(responses.POST, f"{API}/contacts", status=201,
                 json={"code": 0, "contact": {"contact_id": "7"}})
        results = sink.push(client(), [OutboundRecord(1, None, {"contact_name": "Twin"}),
                                       OutboundRecord(2, None, {"contact_name": "Other"})])
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.CREATED]
    assert "already exists" in results[0].reason


def test_delete_removes_the_contact_and_one_already_gone_counts_as_done():
    sink = ZOHO.sinks(CONTEXT)["contact"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{API}/contacts/7",
                 json={"code": 0, "message": "The contact has been deleted."})
        rsps.add(responses.DELETE, f"{API}/contacts/8", status=404,
                 json={"code": 1002, "message": "Contact does not exist."})
        assert sink.remove(client(), 1, "7").outcome is Outcome.DELETED
        gone = sink.remove(client(), 2, "8")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")
