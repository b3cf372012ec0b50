"""Salesforce: contacts and leads pulled by SOQL polling, golden records pushed as contacts.

Follows the Salesforce REST API Developer Guide (API v60.0 by default):
- OAuth 2.0 refresh token flow (POST /services/oauth2/token, grant_type=refresh_token):
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm
- Query (SOQL over GET /services/data/vXX.X/query, `nextRecordsUrl` paging, `done`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
- SOQL date-time literals and ORDER BY: https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
- Upsert up to 200 records by external id with sObject Collections (PATCH
  /composite/sobjects/{Object}/{ExternalIdField}, allOrNone, per-record UpsertResult):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
- Delete a record: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_delete_record.htm
- Status codes and error bodies ([{message, errorCode, fields}], 401 INVALID_SESSION_ID,
  403 REQUEST_LIMIT_EXCEEDED): https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
- API request limits (per 24 hours, Sforce-Limit-Info header):
  https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm
Salesforce sends the hub no webhooks: why the hub polls instead of subscribing to Change Data
Capture or Outbound Messages is written in docs/decisions/0010-salesforce-inbound.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import requests

from connectors.base import (
    ConnectionContext,
    Connector,
    RateLimit,
    Setting,
    WebhookRequest,
    credential,
)
from connectors.http import Action, OAuth2Refresh, VendorHttp, retry_after_header
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import NextUrlPaginator, Stream
from hub.domain.errors import (
    ConfigurationError,
    HubError,
    RejectedRecordError,
    SignatureError,
)
from hub.domain.transforms import TransformError, datetime_utc
from hub.redaction import redact

log = logging.getLogger(__name__)

LOGIN_URL = "https://login.salesforce.com"
API_VERSION = "60.0"
EXTERNAL_ID_FIELD = "Hub_Id__c"
COMMON_FIELDS = ("Id", "Email", "FirstName", "LastName", "Name", "Phone", "MobilePhone",
                 "Title", "LeadSource", "OwnerId", "HasOptedOutOfEmail", "DoNotCall",
                 "CreatedDate", "LastModifiedDate", "SystemModstamp")
FIELDS = {
    "Contact": COMMON_FIELDS + ("Account.Name", "MailingStreet", "MailingCity", "MailingState",
                                "MailingPostalCode", "MailingCountry"),
    "Lead": COMMON_FIELDS + ("Company", "Street", "City", "State", "PostalCode", "Country",
                             "Status", "IsConverted"),
}


class SalesforceOAuth(OAuth2Refresh):
    """The refresh-token flow. A token endpoint that cannot be reached leaves the 401 standing:
    the connection is reported as needing attention rather than retried without a session."""

    def refresh(self, session: requests.Session) -> bool:
        try:
            return super().refresh(session)
        except (requests.RequestException, KeyError, ValueError) as exc:
            log.warning("Salesforce token refresh at %s failed: %s", redact(self.token_url),
                        type(exc).__name__)
            return False


@dataclass
class SalesforceHttp(VendorHttp):
    """Salesforce answers an exhausted API allowance with 403 REQUEST_LIMIT_EXCEEDED, which a
    status table alone would read as refused credentials: the error code decides."""

    def _act(self, action: Action, method: str, url: str, response: requests.Response
             ) -> requests.Response:
        if response.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in error_codes(response):
            action = Action.RATE_LIMITED
        try:
            return super()._act(action, method, url, response)
        except HubError as exc:
            self._scrub(exc)
            raise

    def _scrub(self, exc: HubError) -> None:
        """Our own OAuth secrets never ride out in an error, whatever shape they have (the
        shared redaction knows no Salesforce token format)."""
        auth = self.authenticator
        if not isinstance(auth, OAuth2Refresh):
            return
        for secret in (auth.client_secret, auth.refresh_token, auth.access_token):
            if secret and secret in exc.detail:
                exc.detail = exc.detail.replace(secret, "[redacted]")
        exc.args = (exc.detail,)


def error_codes(response: requests.Response) -> list[str]:
    """The errorCode of each item in a Salesforce error body ([{message, errorCode}])."""
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [str(i.get("errorCode")) for i in items if isinstance(i, dict) and i.get("errorCode")]


def salesforce_retry_after(response: requests.Response) -> float | None:
    """Retry-After when sent; the daily allowance frees up slowly, so wait long for it."""
    asked = retry_after_header(response)
    if asked is not None:
        return asked
    return 300.0 if "REQUEST_LIMIT_EXCEEDED" in error_codes(response) else None


def soql(sobject: str, since: str | None = None) -> str:
    """SELECT ... ordered by SystemModstamp, the audit field every change moves forward."""
    where = f" WHERE SystemModstamp > {soql_datetime(since)}" if since else ""
    columns = ", ".join(FIELDS[sobject])
    # Constants and a time rebuilt by strftime: nothing from outside reaches the query text.
    return f"SELECT {columns} FROM {sobject}{where} ORDER BY SystemModstamp ASC"  # noqa: S608


def soql_datetime(bookmark: str) -> str:
    """A bookmark (Salesforce writes 2026-11-05T10:20:30.000+0000) as a SOQL literal in UTC.

    Cut to the second: with `>` that reads a few records again rather than skipping any."""
    try:
        moment = datetime_utc(bookmark)
    except TransformError:
        raise ConfigurationError(f"the Salesforce bookmark {bookmark!r} is not a time") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceContacts(Sink):
    """Upsert by the hub's external id field with sObject Collections: 200 per call, one
    UpsertResult per record in order; allOrNone false, so one refusal spares the others."""

    batch_size = 200
    can_delete = True

    def __init__(self, data_path: str, external_id_field: str) -> None:
        self.data_path = data_path
        self.external_id_field = external_id_field

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        body = {"allOrNone": False, "records": [
            {"attributes": {"type": "Contact"},
             **{k: v for k, v in r.payload.items() if k not in ("Id", "attributes")},
             self.external_id_field: str(r.hub_id)} for r in records]}
        path = f"{self.data_path}/composite/sobjects/Contact/{self.external_id_field}"
        answer = http.request("PATCH", path, json=body, write=True).json()
        if not isinstance(answer, list) or len(answer) != len(records):
            raise RejectedRecordError(f"Salesforce answered {type(answer).__name__} for "
                                      f"{len(records)} records; expected one result each")
        results = []
        for record, item in zip(records, answer, strict=True):
            if item.get("success"):
                outcome = Outcome.CREATED if item.get("created") else Outcome.UPDATED
                results.append(PushResult(record.hub_id, outcome, item.get("id")))
            else:
                reason = "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                                   for e in item.get("errors") or []) or "refused"
                results.append(PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                                          redact(reason, 300)))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        http.request("DELETE", f"{self.data_path}/sobjects/Contact/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


class Salesforce(Connector):
    key = "salesforce"
    kind = "crm"
    title = "Salesforce"
    docs_url = "https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/"
    settings = (
        Setting("instance_url", "Your org's My Domain URL, where the REST API is served",
                required=True, example="https://example.my.salesforce.com"),
        Setting("login_url", "Where tokens are refreshed: https://login.salesforce.com "
                "(production, the default), https://test.salesforce.com (sandboxes) or your "
                "My Domain URL", example=LOGIN_URL),
        Setting("client_id", "The connected app's consumer key", required=True,
                example="3MVG9example.consumer.key"),
        Setting("client_secret", "The connected app's consumer secret", secret=True,
                example="example-consumer-secret"),
        Setting("refresh_token", "A refresh token issued to the integration user for this "
                "connected app (scopes api and refresh_token)", secret=True,
                example="5Aep861example.refresh.token"),
        Setting("api_version", "REST API version to call", example=API_VERSION),
        Setting("external_id_field", "External ID field on Contact that holds the hub's "
                "contact id (create it as Text, External ID, Unique)",
                example=EXTERNAL_ID_FIELD),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
    )
    events: ClassVar[dict[str, str]] = {}  # no webhooks: see decision 0010
    rate_limit = RateLimit(requests=100_000, seconds=86_400.0)  # Enterprise base allocation
    error_table = {404: Action.SKIP}

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        raise SignatureError("Salesforce sends the hub no webhooks; this connection polls "
                             "the REST API instead")

    def client(self, connection: ConnectionContext) -> VendorHttp:
        settings = connection.settings
        instance = str(settings.get("instance_url") or "").rstrip("/")
        if not instance.startswith("https://"):
            raise ConfigurationError(f"Salesforce connection {connection.name!r} needs "
                                     "instance_url, e.g. https://example.my.salesforce.com")
        login = str(settings.get("login_url") or LOGIN_URL).rstrip("/")
        oauth = SalesforceOAuth(
            token_url=f"{login}/services/oauth2/token",
            client_id=str(settings.get("client_id") or ""),
            client_secret=credential(connection, "client_secret", self.title),
            refresh_token=credential(connection, "refresh_token", self.title),
        )
        return SalesforceHttp(instance, oauth, error_table=self.error_table,
                              retry_after=salesforce_retry_after)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        path = f"{_data_path(connection)}/query"
        return [self._stream("contacts", "contact", "Contact", path),
                self._stream("leads", "lead", "Lead", path)]

    @staticmethod
    def _stream(name: str, object_type: str, sobject: str, path: str) -> Stream:
        return Stream(
            name=name, object_type=object_type, path=path, records_path="records",
            primary_key="Id", replication_key="SystemModstamp",
            paginator=NextUrlPaginator(next_path="nextRecordsUrl"),
            params={"q": soql(sobject)},
            since=lambda bookmark: {"q": soql(sobject, bookmark)},
        )

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        field = str(connection.settings.get("external_id_field") or EXTERNAL_ID_FIELD)
        return {"contact": SalesforceContacts(_data_path(connection), field)}


def _data_path(connection: ConnectionContext) -> str:
    version = str(connection.settings.get("api_version") or API_VERSION).lstrip("v")
    return f"/services/data/v{version}"
