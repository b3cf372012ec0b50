"""Salesforce: OAuth refresh, SOQL polling with nextRecordsUrl, composite upsert, errors.

API responses are in tests/fixtures/salesforce/api/, shaped like the REST API Developer Guide's
examples; the expected canonical records beside them were written by hand (fixtures README).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.salesforce import Salesforce, soql, soql_datetime
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitedError,
    SignatureError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce" / "api"
INSTANCE = "https://example.my.salesforce.com"
TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
QUERY = f"{INSTANCE}/services/data/v60.0/query"
COLLECTION = f"{INSTANCE}/services/data/v60.0/composite/sobjects/Contact/Hub_Id__c"
ACCESS = "00DRO000000Example!AQ4AQFakeAccessTokenValue"
REFRESH = "5Aep861FakeRefreshTokenValueForTests"
CLIENT_SECRET = "FAKE0CONSUMER0SECRET0FOR0TESTS"
CONTEXT = ConnectionContext(
    "crm", {"instance_url": INSTANCE, "client_id": "3MVG9fake.consumer.key",
            "default_region": "US"},
    {"client_secret": CLIENT_SECRET, "refresh_token": REFRESH})
SALESFORCE = Salesforce()
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def api(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def quiet_client(context: ConnectionContext = CONTEXT) -> tuple[Any, list[float]]:
    http = SALESFORCE.client(context)
    waits: list[float] = []
    http.sleep = waits.append
    return http, waits


def token(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, TOKEN_URL, json={
        "access_token": ACCESS, "instance_url": INSTANCE, "token_type": "Bearer",
        "id": "https://login.salesforce.com/id/00DRO000000Example/005RO000001kQ3hYAE",
        "issued_at": "1794166330000", "signature": "c2lnbmF0dXJl"})


def streams() -> dict[str, Any]:
    return {s.name: s for s in SALESFORCE.streams(CONTEXT)}


# --- OAuth and errors ------------------------------------------------------------------------


def test_an_expired_session_is_refreshed_once_then_the_query_runs_with_the_new_token():
    http, _ = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=401, json=INVALID_SESSION)
        token(rsps)
        rsps.add(responses.GET, QUERY, json=api("query_leads"),
                 match=[responses.matchers.header_matcher(
                     {"Authorization": f"Bearer {ACCESS}"})])
        pages = list(streams()["leads"].read(http))
        refresh = parse_qs(rsps.calls[1].request.body)
    assert len(pages[0].records) == 1
    assert refresh == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH],
                       "client_id": ["3MVG9fake.consumer.key"],
                       "client_secret": [CLIENT_SECRET]}


def test_a_refused_refresh_token_is_an_authentication_error_without_echoed_secrets():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=401, json=[{
            "message": f"Session expired or invalid ({REFRESH} {CLIENT_SECRET})",
            "errorCode": "INVALID_SESSION_ID"}])
        rsps.add(responses.POST, TOKEN_URL, status=400, json={
            "error": "invalid_grant", "error_description": "expired access/refresh token"})
        with pytest.raises(AuthenticationError) as refused:
            list(streams()["contacts"].read(SALESFORCE.client(CONTEXT)))
    for secret in (REFRESH, CLIENT_SECRET):
        assert secret not in str(refused.value)


def test_a_401_after_a_fresh_token_is_an_authentication_error():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=401, json=INVALID_SESSION)
        token(rsps)
        with pytest.raises(AuthenticationError, match="refused the credentials"):
            list(streams()["contacts"].read(SALESFORCE.client(CONTEXT)))


def test_a_sandbox_refreshes_at_its_own_login_url():
    context = ConnectionContext("crm", {**CONTEXT.settings,
                                        "login_url": "https://test.salesforce.com/"},
                                CONTEXT.credentials)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=401, json=INVALID_SESSION)
        rsps.add(responses.POST, "https://test.salesforce.com/services/oauth2/token",
                 json={"access_token": ACCESS})
        rsps.add(responses.GET, QUERY, json=api("query_leads"))
        assert len(list(streams()["leads"].read(SALESFORCE.client(context)))) == 1


def test_request_limit_exceeded_is_rate_limiting_not_refused_credentials():
    http, waits = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=403, json=LIMIT,
                 headers={"Sforce-Limit-Info": "api-usage=15000/15000"})
        rsps.add(responses.GET, QUERY, json=api("query_leads"))
        assert len(list(streams()["leads"].read(http))) == 1
    assert waits[0] >= 300
    http, _ = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=403, json=LIMIT)
        with pytest.raises(RateLimitedError):
            list(streams()["leads"].read(http))


def test_other_403s_still_mean_the_connection_needs_attention():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=403, json=[
            {"message": "API is disabled for this User", "errorCode": "API_DISABLED_FOR_ORG"}])
        with pytest.raises(AuthenticationError):
            list(streams()["leads"].read(SALESFORCE.client(CONTEXT)))


def test_a_server_error_is_retried():
    http, waits = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, status=503, body="Service Unavailable")
        rsps.add(responses.GET, QUERY, json=api("query_leads"))
        assert len(list(streams()["leads"].read(http))) == 1
    assert len(waits) == 1


# --- streams ---------------------------------------------------------------------------------


def test_contacts_are_read_to_the_last_page_through_next_records_url():
    http, _ = quiet_client()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, QUERY, json=api("query_contacts_page1"))
        rsps.add(responses.GET, f"{QUERY}/01gRO0000016PIAYA2-2000",
                 json=api("query_contacts_page2"))
        pages = list(streams()["contacts"].read(http, bookmark="2026-11-10T14:22:05.000+0000"))
        first = parse_qs(urlsplit(rsps.calls[0].request.url).query)["q"][0]
    assert [r["Id"] for p in pages for r in p.records] == [
        "003RO00000A1b2cYAB", "003RO00000A1b2dYAB", "003RO00000A1b2eYAB"]
    assert first == soql("Contact", "2026-11-10T14:22:05.000+0000")
    assert "FROM Contact WHERE SystemModstamp > 2026-11-10T14:22:05Z ORDER BY SystemModstamp ASC" \
        in first
    assert "Account.Name" in first and "HasOptedOutOfEmail" in first


def test_without_a_bookmark_everything_is_read_in_modstamp_order():
    query = streams()["leads"].params["q"]
    assert query.startswith("SELECT Id, Email,") and "WHERE" not in query
    assert query.endswith("FROM Lead ORDER BY SystemModstamp ASC")


@pytest.mark.parametrize(("bookmark", "literal"), [
    ("2026-11-10T14:22:05.999+0000", "2026-11-10T14:22:05Z"),
    ("2026-11-10T16:22:05+02:00", "2026-11-10T14:22:05Z"),
    ("2026-11-10T14:22:05Z", "2026-11-10T14:22:05Z"),
])
def test_bookmarks_become_utc_soql_literals_cut_to_the_second(bookmark: str, literal: str):
    assert soql_datetime(bookmark) == literal


def test_a_bookmark_that_is_not_a_time_is_refused():
    with pytest.raises(ConfigurationError, match="not a time"):
        soql_datetime("yesterday; DELETE")


@pytest.mark.parametrize(("name", "object_type"), [("query_contacts", "contact"),
                                                   ("query_leads", "lead")])
def test_query_records_map_to_their_expected_canonical_fields(name: str, object_type: str):
    pages = [api(f"{name}_page1"), api(f"{name}_page2")] if name == "query_contacts" \
        else [api(name)]
    mapping = FileMappingStore().get("salesforce", object_type)
    meta = {"connection": "crm", "default_region": "US"}
    got = []
    for record in (r for p in pages for r in p["records"]):
        fields, problems = mapping.apply({**record, "_meta": meta})
        got.append({"object_type": object_type, "external_id": record["Id"], "fields": fields,
                    "problems": problems})
    assert got == json.loads((FIXTURES / f"{name}.expected.json").read_text())


# --- sink ------------------------------------------------------------------------------------


def contact(hub_id: int, **fields: Any) -> OutboundRecord:
    return OutboundRecord(hub_id, None, fields)


def test_composite_upsert_reports_each_record_in_order():
    sink = SALESFORCE.sinks(CONTEXT)["contact"]
    http, _ = quiet_client()
    records = [contact(41, Email="new@example.com", LastName="New"),
               contact(42, Email="nolast@example.com"),
               contact(43, Email="daniel.okoye@example.com", LastName="Okoye", Id="003X")]
    with responses.RequestsMock() as rsps:
        token(rsps)
        rsps.add(responses.PATCH, COLLECTION, status=401, json=INVALID_SESSION)
        rsps.add(responses.PATCH, COLLECTION, json=api("composite_upsert_partial"))
        results = sink.push(http, records)
        sent = json.loads(rsps.calls[-1].request.body)
    assert sent["allOrNone"] is False
    assert sent["records"][0] == {"attributes": {"type": "Contact"}, "Email": "new@example.com",
                                  "LastName": "New", "Hub_Id__c": "41"}
    assert "Id" not in sent["records"][2]
    assert [(r.hub_id, r.outcome, r.external_id) for r in results] == [
        (41, Outcome.CREATED, "003RO00000A1b2fYAB"), (42, Outcome.REJECTED, None),
        (43, Outcome.UPDATED, "003RO00000A1b2cYAB")]
    assert results[1].reason == "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]"


def test_the_external_id_field_and_api_version_come_from_the_connection():
    context = ConnectionContext("crm", {**CONTEXT.settings, "external_id_field": "Golden_Id__c",
                                        "api_version": "v61.0"}, CONTEXT.credentials)
    sink = SALESFORCE.sinks(context)["contact"]
    http, _ = quiet_client(context)
    http.authenticator.access_token = ACCESS
    url = f"{INSTANCE}/services/data/v61.0/composite/sobjects/Contact/Golden_Id__c"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PATCH, url, json=[{"id": "003A", "success": True, "errors": [],
                                              "created": False}])
        [result] = sink.push(http, [contact(7, LastName="Seven")])
        assert json.loads(rsps.calls[0].request.body)["records"][0]["Golden_Id__c"] == "7"
    assert result.outcome is Outcome.UPDATED


def test_a_malformed_batch_falls_back_to_one_record_at_a_time():
    sink = SALESFORCE.sinks(CONTEXT)["contact"]
    http, _ = quiet_client()
    http.authenticator.access_token = ACCESS
    bad = [{"message": "Cannot deserialize instance of date from VALUE_STRING value x",
            "errorCode": "JSON_PARSER_ERROR"}]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PATCH, COLLECTION, status=400, json=bad)
        rsps.add(responses.PATCH, COLLECTION, json=[{"id": "003A", "success": True,
                                                     "errors": [], "created": True}])
        rsps.add(responses.PATCH, COLLECTION, status=400, json=bad)
        results = sink.push(http, [contact(1, LastName="A"), contact(2, Birthdate="x")])
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REJECTED]
    assert "JSON_PARSER_ERROR" in (results[1].reason or "")


def test_delete_and_already_deleted():
    sink = SALESFORCE.sinks(CONTEXT)["contact"]
    http, _ = quiet_client()
    http.authenticator.access_token = ACCESS
    base = f"{INSTANCE}/services/data/v60.0/sobjects/Contact"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.DELETE, f"{base}/003A", status=204)
        rsps.add(responses.DELETE, f"{base}/003B", status=404, json=[
            {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}])
        assert sink.remove(http, 1, "003A").outcome is Outcome.DELETED
        assert sink.remove(http, 2, "003B").reason == "already gone"


def test_outbound_mapping_sets_the_email_opt_out_from_consent():
    outbound = FileMappingStore().get_outbound("salesforce", "contact")
    withdrawn, _ = outbound.apply({"email": "a@example.com", "last_name": "A",
                                   "consent": {"email": {"status": "withdrawn"}}})
    unknown, _ = outbound.apply({"email": "a@example.com", "consent": {"email": {
        "status": "unknown"}}})
    assert withdrawn["HasOptedOutOfEmail"] is True
    assert "HasOptedOutOfEmail" not in unknown


# --- what Salesforce does not do -------------------------------------------------------------


def test_salesforce_sends_no_webhooks_so_every_post_is_refused():
    request = WebhookRequest("POST", "https://hub.example/webhooks/crm", Headers({}), b"{}",
                             datetime.now(UTC), {"token": "anything"})
    with pytest.raises(SignatureError, match="no webhooks"):
        SALESFORCE.verify(request, ["anything"])
    assert SALESFORCE.events == {}


def test_the_client_needs_an_https_instance_url_and_the_oauth_secrets():
    with pytest.raises(ConfigurationError, match="instance_url"):
        SALESFORCE.client(ConnectionContext("crm", {}, CONTEXT.credentials))
    with pytest.raises(ConfigurationError, match="refresh_token"):
        SALESFORCE.client(ConnectionContext("crm", CONTEXT.settings,
                                            {"client_secret": CLIENT_SECRET}))
