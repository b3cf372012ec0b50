"""QuickBooks Online: customer change notifications in, customers pulled and pushed.

Follows Intuit's documentation:
- Webhooks (`intuit-signature` = base64 HMAC-SHA256 of the raw body keyed with the app's
  verifier token; answer within 3 s; legacy `eventNotifications` payload):
  https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks
- CloudEvents payload (a JSON array; `id`, `type` such as `qbo.customer.updated.v1`, `time`,
  `intuitentityid`, `intuitaccountid`, `data`, which may be absent or carry `deletedid` on a merge):
  https://developers.intuit.com/app/developer/qbo/docs/develop/webhooks/data-objects and
  https://blogs.intuit.com/2025/11/12/upcoming-change-to-webhooks-payload-structure/
- Both formats are thin: the customer is read back with
  GET /v3/company/{realmId}/customer/{id} (JSON only with `Accept: application/json`):
  https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer
- Query language (`select * from Customer where ... STARTPOSITION n MAXRESULTS 1000`, records
  at QueryResponse.Customer; name-list queries return active customers unless asked):
  https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
- Batch operations (create, sparse update, query; per-item `Fault`; `requestid` for safe
  retries): https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/batch
- OAuth 2.0 refresh (token endpoint, client credentials as HTTP Basic):
  https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0
- Limits (500 requests/minute per realm, 429 then wait 60 s):
  https://developer.intuit.com/app/developer/qbo/docs/learn/rest-api-features#limits-and-throttles
Customers cannot be deleted in QuickBooks; the hub's delete makes them inactive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    RateLimit,
    Setting,
    SourceRecord,
    WebhookRequest,
    credential,
    meta,
)
from connectors.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    OAuth2Refresh,
    SkippedError,
    VendorHttp,
    retry_after_header,
)
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import OffsetPaginator, Page, Stream, place
from hub.domain.errors import ConfigurationError, PayloadError, RejectedRecordError
from hub.domain.transforms import TransformError, datetime_utc

API_HOSTS = {"production": "https://quickbooks.api.intuit.com",
             "sandbox": "https://sandbox-quickbooks.api.intuit.com"}
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL
MINOR_VERSION = "75"
PAGE_SIZE = 1000
BATCH_SIZE = 30  # Intuit recommends at most 30 operations per batch request
THROTTLED_WAIT = 60.0  # Intuit: after a 429, wait 60 s
SIGNATURE_HEADER = "intuit-signature"
_BOOKMARK = re.compile(r"^[0-9T:.+\-Z ]{10,40}$")
_START = re.compile(r"STARTPOSITION (\d+)")


@dataclass(frozen=True)
class Change:
    """One entity change, whichever payload format announced it."""

    event_type: str  # "Customer.Update" (legacy) or "qbo.customer.updated.v1" (CloudEvents)
    realm_id: str
    entity_id: str
    at: str
    event_id: str = ""
    merged_from: str = ""


@dataclass
class IntuitAuth(OAuth2Refresh):
    """Bearer token renewed at Intuit's token endpoint; every call also asks for JSON and pins
    the API minor version, which QuickBooks needs on each request."""

    minor_version: str = MINOR_VERSION

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        super().apply(headers, params)
        headers.setdefault("Accept", "application/json")
        params.setdefault("minorversion", self.minor_version)

    def refresh(self, session: requests.Session) -> bool:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        try:
            response = session.post(
                self.token_url,
                data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            body = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return False  # the 401 that asked for a refresh stands
        if not isinstance(body, dict) or not body.get("access_token"):
            return False
        self.access_token = body["access_token"]
        self.refresh_token = body.get("refresh_token", self.refresh_token)
        if self.on_refresh:
            self.on_refresh(self.access_token, self.refresh_token)
        return True


def throttled_for(response: requests.Response) -> float:
    """Retry-After when Intuit sends one, else the 60 s its throttling policy asks for."""
    return retry_after_header(response) or THROTTLED_WAIT


@dataclass
class QueryPaginator(OffsetPaginator):
    """QuickBooks pages through STARTPOSITION/MAXRESULTS inside the `query` text; a page shorter
    than MAXRESULTS is the last one (the response carries no total)."""

    limit_param: str = "MAXRESULTS"
    offset_param: str = "STARTPOSITION"
    page_size: int = PAGE_SIZE

    def first(self) -> dict[str, Any]:
        return {}

    def next(self, page: Page) -> dict[str, Any] | None:
        if len(page.records) < self.page_size:
            return None
        query = parse_qs(urlsplit(page.response.url).query).get("query", [""])[0]
        found = _START.search(query)
        if not found:
            raise ConfigurationError("the QuickBooks query has no STARTPOSITION to advance")
        start = int(found.group(1)) + self.page_size
        return {"query": _START.sub(f"STARTPOSITION {start}", query)}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        body["QueryResponse"].update(startPosition=page * self.page_size + 1,
                                     maxResults=len(records))
        return body, {}


def customer_query(bookmark: str | None, start: int = 1) -> str:
    where = "Active IN (true, false)"
    if bookmark:
        if not _BOOKMARK.match(bookmark):
            raise ConfigurationError(f"not a QuickBooks timestamp bookmark: {bookmark!r}")
        where += f" AND Metadata.LastUpdatedTime >= '{bookmark}'"
    # QuickBooks' own query language, not SQL; the bookmark was checked above.
    return (f"select * from Customer where {where} ORDERBY Metadata.LastUpdatedTime "  # noqa: S608
            f"STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}")


class QuickBooksCustomers(Sink):
    """Customers through the batch endpoint: one query for the SyncTokens updates need, then
    one batch of creates and sparse updates with a result per item."""

    batch_size = BATCH_SIZE
    can_delete = True

    def __init__(self, realm_id: str) -> None:
        self.base = f"/v3/company/{realm_id}"

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        tokens = self.sync_tokens(http, [r.external_id for r in records if r.external_id])
        items, results = [], {}
        for number, record in enumerate(records):
            if not record.external_id:
                items.append({"bId": str(number), "operation": "create",
                              "Customer": record.payload})
            elif record.external_id in tokens:
                items.append({"bId": str(number), "operation": "update", "Customer": {
                    **record.payload, "Id": record.external_id,
                    "SyncToken": tokens[record.external_id], "sparse": True}})
            else:
                results[str(number)] = PushResult(
                    record.hub_id, Outcome.REJECTED, record.external_id,
                    f"customer {record.external_id} is not in QuickBooks (merged away?)")
        answers = self.batch(http, items) if items else {}
        for number, record in enumerate(records):
            key = str(number)
            if key not in results:
                results[key] = _result(record, answers.get(key))
        return [results[str(n)] for n in range(len(records))]

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        tokens = self.sync_tokens(http, [external_id])
        if external_id not in tokens:
            raise SkippedError(f"customer {external_id} is not in QuickBooks")
        answer = self.batch(http, [{"bId": "0", "operation": "update", "Customer": {
            "Id": external_id, "SyncToken": tokens[external_id], "sparse": True,
            "Active": False}}]).get("0")
        if not answer or "Fault" in answer:
            raise RejectedRecordError(f"QuickBooks refused to deactivate customer "
                                      f"{external_id}: {_fault(answer)}")
        return PushResult(0, Outcome.DELETED, external_id,
                          "made inactive (QuickBooks keeps customers)")

    def sync_tokens(self, http: VendorHttp, ids: list[str]) -> dict[str, str]:
        numeric = [i for i in ids if i.isdigit()]  # QuickBooks ids are numbers; others: absent
        if not numeric:
            return {}
        quoted = ", ".join(f"'{i}'" for i in numeric)
        query = ("select * from Customer where Active IN (true, false) "  # noqa: S608 - checked
                 f"AND Id IN ({quoted})")
        answer = self.batch(http, [{"bId": "tokens", "Query": query}]).get("tokens") or {}
        if "Fault" in answer:
            raise RejectedRecordError(f"QuickBooks refused the SyncToken query: "
                                      f"{_fault(answer)}")
        found = (answer.get("QueryResponse") or {}).get("Customer") or []
        return {str(c["Id"]): str(c["SyncToken"]) for c in found if "Id" in c}

    def batch(self, http: VendorHttp, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        body = {"BatchItemRequest": items}
        request_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:36]
        response = http.request("POST", f"{self.base}/batch", json=body,
                                params={"requestid": request_id}, write=True).json()
        return {str(item.get("bId")): item for item in response.get("BatchItemResponse", [])}


def _result(record: OutboundRecord, answer: dict[str, Any] | None) -> PushResult:
    if not answer or "Customer" not in answer:
        return PushResult(record.hub_id, Outcome.REJECTED, record.external_id, _fault(answer))
    outcome = Outcome.UPDATED if record.external_id else Outcome.CREATED
    return PushResult(record.hub_id, outcome, str(answer["Customer"].get("Id")))


def _fault(answer: dict[str, Any] | None) -> str:
    errors = ((answer or {}).get("Fault") or {}).get("Error") or []
    if not errors:
        return "QuickBooks gave no answer for this item"
    first = errors[0]
    return f"{first.get('Message', 'error')} ({first.get('code', '?')}): {first.get('Detail', '')}"


class QuickBooks(Connector):
    key = "quickbooks"
    kind = "erp"
    accepted_status = 200  # Intuit: "respond with HTTP 200"; anything else is retried
    title = "QuickBooks Online"
    docs_url = "https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks"
    settings = (
        Setting("realm_id", "The company (realm) id this connection reads and writes; changes "
                "for other companies connected to the same app are skipped", required=True,
                example="9341455130166501"),
        Setting("environment", "production or sandbox (the API host to call)",
                example="production"),
        Setting("minor_version", f"QuickBooks API minor version (default {MINOR_VERSION})",
                example=MINOR_VERSION),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("client_id", "The app's OAuth 2.0 Client ID (Keys & credentials)", secret=True,
                example="ABcdEFghIJklMNopQRstUVwxYZ0123456789"),
        Setting("client_secret", "The app's OAuth 2.0 Client Secret", secret=True,
                example="client-secret-example"),
        Setting("refresh_token", "A refresh token for the company, with the "
                "com.intuit.quickbooks.accounting scope", secret=True,
                example="AB11800000000example-refresh-token"),
    )
    events = {
        "Customer.Create": "customer",
        "Customer.Update": "customer",
        "Customer.Merge": "customer",
        "qbo.customer.created.v1": "customer",
        "qbo.customer.updated.v1": "customer",
        "qbo.customer.merged.v1": "customer",
    }
    kept_headers = ("Content-Type",)
    rate_limit = RateLimit(requests=500, seconds=60.0)

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        verify_base64_hmac(request.body, request.headers.get(SIGNATURE_HEADER), secrets,
                           SIGNATURE_HEADER)

    def identify(self, request: WebhookRequest) -> Delivery:
        data = _load(request.body)
        changes = changes_in(data)
        if isinstance(data, list):
            ids = sorted(c.event_id for c in changes)
            key = "ce:" + (ids[0] if len(ids) == 1 else
                           hashlib.sha256("\n".join(ids).encode()).hexdigest())
        else:
            parts = sorted([c.realm_id, c.event_type, c.entity_id, c.at] for c in changes)
            key = "legacy:" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        handled = [c.event_type for c in changes if c.event_type in self.events]
        event_type = handled[0] if handled else changes[0].event_type
        return Delivery(key=key, event_type=event_type,
                        headers=self.keep_headers(request.headers))

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        realm = str(connection.settings.get("realm_id") or "")
        latest: dict[str, Change] = {}
        for change in changes_in(_load(body)):
            if change.event_type not in self.events or (realm and change.realm_id != realm):
                continue  # another entity, or another company connected to the same app
            if change.entity_id not in latest or change.at > latest[change.entity_id].at:
                latest[change.entity_id] = change
        base = self._api(connection) + f"/v3/company/{realm}"
        records = []
        for change in latest.values():
            context = meta(connection, event_type=change.event_type, realm_id=change.realm_id,
                           event_id=change.event_id, merged_from=change.merged_from or None)
            records.append(SourceRecord("customer", change.entity_id, _utc(change.at),
                                        {"_meta": context},
                                        fetch=f"{base}/customer/{change.entity_id}"))
        return records

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        assert record.fetch
        customer = http.request("GET", record.fetch).json().get("Customer")
        if not isinstance(customer, dict) or not customer.get("Id"):
            raise RejectedRecordError(f"QuickBooks returned no Customer for {record.external_id}")
        updated = (customer.get("MetaData") or {}).get("LastUpdatedTime")
        observed = _utc(updated) if updated else record.observed_at
        return SourceRecord("customer", str(customer["Id"]), max(observed, record.observed_at),
                            {**customer, "_meta": record.payload.get("_meta", {})})

    def client(self, connection: ConnectionContext) -> VendorHttp:
        auth = IntuitAuth(
            TOKEN_URL,
            credential(connection, "client_id", self.title),
            credential(connection, "client_secret", self.title),
            credential(connection, "refresh_token", self.title),
            minor_version=str(connection.settings.get("minor_version") or MINOR_VERSION))
        return VendorHttp(self._api(connection), auth, retry_after=throttled_for)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        realm = connection.settings.get("realm_id")
        return [Stream(
            name="customers", object_type="customer", path=f"/v3/company/{realm}/query",
            records_path="QueryResponse.Customer", primary_key="Id",
            replication_key="MetaData.LastUpdatedTime", paginator=QueryPaginator(),
            params={"query": customer_query(None)},
            since=lambda bookmark: {"query": customer_query(bookmark)},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"customer": QuickBooksCustomers(str(connection.settings.get("realm_id")))}

    @staticmethod
    def _api(connection: ConnectionContext) -> str:
        environment = str(connection.settings.get("environment") or "production")
        if environment not in API_HOSTS:
            raise ConfigurationError(f"QuickBooks environment must be production or sandbox, "
                                     f"not {environment!r}")
        return API_HOSTS[environment]


def _load(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}", pointer=f"char {exc.pos}") from None
    return data


def changes_in(data: Any) -> list[Change]:
    """The entity changes of a legacy notification (an object) or a CloudEvents array."""
    if isinstance(data, list):
        changes = [_cloud_event(event, n) for n, event in enumerate(data)]
    elif isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        changes = _legacy(data["eventNotifications"])
    else:
        raise PayloadError("the body is neither an eventNotifications object nor a CloudEvents "
                           "array", pointer="/")
    if not changes:
        raise PayloadError("the notification names no entity change", pointer="/")
    return changes


def _cloud_event(event: Any, number: int) -> Change:
    where = f"/{number}"
    if not isinstance(event, dict):
        raise PayloadError("a CloudEvent must be an object", pointer=where)
    for name in ("id", "type", "time", "intuitentityid", "intuitaccountid"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise PayloadError(f"the CloudEvent has no valid {name!r}", pointer=f"{where}/{name}")
    data = event["data"] if isinstance(event.get("data"), dict) else {}
    return Change(event["type"], event["intuitaccountid"], event["intuitentityid"],
                  event["time"], event["id"], str(data.get("deletedid") or ""))


def _legacy(notifications: list[Any]) -> list[Change]:
    changes = []
    for n, notification in enumerate(notifications):
        note: dict[str, Any] = notification if isinstance(notification, dict) else {}
        changed = note.get("dataChangeEvent")
        event: dict[str, Any] = changed if isinstance(changed, dict) else {}
        realm, entities = note.get("realmId"), event.get("entities")
        if not isinstance(realm, str) or not isinstance(entities, list):
            raise PayloadError("a notification needs realmId and dataChangeEvent.entities",
                               pointer=f"/eventNotifications/{n}")
        for m, entity in enumerate(entities):
            fields = [entity.get(k) if isinstance(entity, dict) else None
                      for k in ("name", "id", "operation", "lastUpdated")]
            if not all(isinstance(f, str) and f for f in fields):
                raise PayloadError("an entity needs name, id, operation and lastUpdated",
                                   pointer=f"/eventNotifications/{n}/dataChangeEvent/entities/{m}")
            name, entity_id, operation, at = (str(f) for f in fields)
            changes.append(Change(f"{name}.{operation}", realm, entity_id, at,
                                  merged_from=str(entity.get("deletedId") or "")))
    return changes


def _utc(value: str) -> datetime:
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
