"""HubSpot: contact webhooks in (thin, batched, fetched back), contacts pulled and pushed.

Follows HubSpot's developer documentation:
- Webhooks (batched JSON array of events, subscription types, retries):
  https://developers.hubspot.com/docs/api/webhooks
- Request validation, signature v3 (base64 HMAC-SHA256 of method + URI + body + timestamp with
  the app's client secret, timestamps older than 5 minutes refused, listed percent-escapes in
  the URI decoded): https://developers.hubspot.com/docs/api/webhooks/validating-requests and
  https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
  (cross-checked with HubSpot's own `hubspot-api-python` `hubspot/utils/signature.py`)
- Merge / restore subscription payloads (primaryObjectId, mergedObjectIds):
  https://developers.hubspot.com/changelog/new-subscription-types-for-webhooks
- Private-app webhooks: https://developers.hubspot.com/docs/guides/crm/private-apps/webhooks
- Contacts API v3 (read one, search, batch upsert by email, archive, GDPR delete):
  https://developers.hubspot.com/docs/api/crm/contacts and
  https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts
- CRM search (filterGroups, sorts, `after`, 10,000 results per query, its own rate limit):
  https://developers.hubspot.com/docs/api/crm/search
- Rate limits (private apps 100 requests / 10 s, X-HubSpot-RateLimit-* headers, 429 with
  policyName): https://developers.hubspot.com/docs/api/usage-details

HubSpot events carry an object id and at most one property, never the contact: every contact
in a delivery is read back with the connection's private-app token before it is mapped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from connectors.http import Action, BearerToken, SkippedError, VendorHttp, retry_after_header
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import CursorPaginator, Page, Stream
from hub.domain.errors import (
    ConfigurationError,
    PayloadError,
    RejectedRecordError,
    SignatureError,
)
from hub.domain.transforms import TransformError, datetime_utc
from hub.redaction import redact

API = "https://api.hubapi.com"
CONTACTS = "/crm/v3/objects/contacts"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
TOLERANCE_MS = 5 * 60 * 1000
SEARCH_CAP = 10_000  # HubSpot's search returns at most 10,000 results for one query
# The percent-escapes HubSpot's v3 instructions list for decoding in the request URI.
URI_ESCAPES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
               "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_ESCAPE = re.compile("|".join(URI_ESCAPES), re.IGNORECASE)
PROPERTIES = ("email", "firstname", "lastname", "phone", "mobilephone", "company", "jobtitle",
              "address", "city", "state", "zip", "country", "lifecyclestage",
              "hs_analytics_source", "hubspot_owner_id", "hs_email_optout", "createdate",
              "lastmodifieddate")
CONTACT_EVENTS = ("contact.creation", "contact.propertyChange", "contact.merge",
                  "contact.restore")
GONE_EVENTS = ("contact.deletion", "contact.privacyDeletion")


class HubSpot(Connector):
    key = "hubspot"
    kind = "crm"
    title = "HubSpot"
    docs_url = "https://developers.hubspot.com/docs/api/webhooks"
    settings = (
        Setting("portal_id", "The HubSpot account id (Hub ID); deliveries for any other account "
                "are refused", example="62515"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("access_token", "The private app's access token (pat-...) with the "
                "crm.objects.contacts.read and crm.objects.contacts.write scopes; webhook "
                "events are thin, so even receiving needs it", secret=True,
                example="pat-na1-00000000-0000-0000-0000-000000000000"),
        Setting("gdpr_delete", "yes: deleting a contact erases it for good (GDPR delete); "
                "anything else archives it (restorable for 90 days)", example="no"),
    )
    events = dict.fromkeys(CONTACT_EVENTS, "contact")
    kept_headers = (TIMESTAMP_HEADER,)
    rate_limit = RateLimit(requests=100, seconds=10.0)  # private apps; Pro/Enterprise: 190
    error_table = {404: Action.SKIP, 409: Action.REJECT}

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """Signature v3 over method + URI + body + timestamp; checked before the clock."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            legacy = request.headers.get("X-HubSpot-Signature-Version")
            hint = f" (only a {legacy} signature came; the hub checks v3)" if legacy else ""
            raise SignatureError(f"the {SIGNATURE_HEADER} header is missing{hint}")
        stamp = (request.headers.get(TIMESTAMP_HEADER) or "").strip()
        if not stamp.isdigit():
            raise SignatureError(f"the {TIMESTAMP_HEADER} header is missing or not a number")
        for uri in candidate_uris(request):
            message = request.method.upper().encode() + uri.encode() + request.body + \
                stamp.encode()
            try:
                verify_base64_hmac(message, signature, secrets, SIGNATURE_HEADER)
                break
            except SignatureError:
                continue
        else:
            raise SignatureError(f"the {SIGNATURE_HEADER} header does not match the request "
                                 "(method, URL as HubSpot called it, body, timestamp)")
        if int(stamp) < request.received_at.timestamp() * 1000 - TOLERANCE_MS:
            raise SignatureError(f"the {TIMESTAMP_HEADER} is more than 5 minutes old "
                                 "(replayed?)")

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        """A delivery signed by our app but for another HubSpot account is not ours."""
        expected = str(settings.get("portal_id") or "")
        if not expected:
            return
        portals = {str(e.get("portalId")) for e in _events(request.body)}
        if portals != {expected}:
            raise SignatureError("the events are for another HubSpot account (portalId)")

    def identify(self, request: WebhookRequest) -> Delivery:
        """One delivery holds up to 100 events: its key covers every event in it."""
        events = _events(request.body)
        tokens = sorted(f"{_require_id(e, 'eventId', i)}:{e.get('objectId')}:"
                        f"{e.get('occurredAt')}" for i, e in enumerate(events))
        key = tokens[0].split(":")[0] if len(tokens) == 1 else \
            f"batch:{len(tokens)}:{hashlib.sha256(';'.join(tokens).encode()).hexdigest()}"
        types = [str(e.get("subscriptionType") or "") for e in events]
        understood = [t for t in types if t in self.events]
        event_type = (understood or types)[0]
        if not event_type:
            raise PayloadError("the event has no subscriptionType", pointer="/0/subscriptionType")
        return Delivery(key=key, event_type=event_type, headers=self.keep_headers(request.headers))

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        """One thin record per contact: the newest event about it wins; a contact whose newest
        event deletes it is not fetched."""
        latest: dict[str, tuple[datetime, dict[str, Any]]] = {}
        for index, event in enumerate(_events(body)):
            kind = event.get("subscriptionType")
            if kind not in self.events and kind not in GONE_EVENTS:
                continue
            object_id = _contact_id(event, index)
            when = _epoch_ms(_require_id(event, "occurredAt", index))
            if object_id not in latest or when >= latest[object_id][0]:
                latest[object_id] = (when, event)
        records = []
        for object_id, (when, event) in latest.items():
            if event["subscriptionType"] in GONE_EVENTS:
                continue
            context = meta(connection, event_type=event["subscriptionType"],
                           event_id=event.get("eventId"), portal_id=event.get("portalId"),
                           change_source=event.get("changeSource"),
                           property_name=event.get("propertyName"))
            records.append(SourceRecord("contact", object_id, when, {"_meta": context},
                                        fetch=f"{CONTACTS}/{object_id}"))
        return records

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        """Read the contact the event names; its own updatedAt becomes the observed time."""
        try:
            contact = http.request("GET", record.fetch or "", params={
                "properties": ",".join(PROPERTIES)}).json()
        except SkippedError:
            raise RejectedRecordError(f"HubSpot contact {record.external_id} no longer exists "
                                      "(deleted after the event)") from None
        observed = record.observed_at
        if contact.get("updatedAt"):
            with contextlib.suppress(TransformError):
                observed = datetime_utc(contact["updatedAt"])
        payload = {**contact, "_meta": record.payload.get("_meta", {})}
        return SourceRecord(record.object_type, str(contact.get("id") or record.external_id),
                            observed, payload)

    def client(self, connection: ConnectionContext) -> VendorHttp:
        token = credential(connection, "access_token", self.title)
        return VendorHttp(API, BearerToken(token), error_table=self.error_table,
                          retry_after=hubspot_retry_after)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="contacts", object_type="contact", path=f"{CONTACTS}/search", method="POST",
            records_path="results", primary_key="id", replication_key="updatedAt",
            paginator=SearchPaginator(cursor_path="paging.next.after", param="after"),
            params={"sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": list(PROPERTIES), "limit": 100},
            since=modified_since,
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        erase = str(connection.settings.get("gdpr_delete", "")).strip().lower() == "yes"
        return {"contact": HubSpotContacts(gdpr_delete=erase)}


class SearchPaginator(CursorPaginator):
    """`paging.next.after`, stopping before the 10,000th result HubSpot refuses to page past.

    The stream sorts by lastmodifieddate ascending, so a run that stops at the cap has
    read the oldest changes; the next run starts from the bookmark it reached."""

    def next(self, page: Page) -> dict[str, Any] | None:
        following = super().next(page)
        if following is None:
            return None
        after = str(following[self.param])
        if after.isdigit() and int(after) >= SEARCH_CAP:
            return None
        return following


def modified_since(bookmark: str) -> dict[str, Any]:
    """Contacts modified at or after the bookmark (an ISO time or epoch milliseconds).

    GTE, not GT: contacts sharing the bookmark's millisecond are read again rather than lost."""
    if bookmark.isdigit():
        millis = int(bookmark)
    else:
        try:
            millis = int(datetime_utc(bookmark).timestamp() * 1000)
        except TransformError:
            raise ConfigurationError(f"the HubSpot bookmark {bookmark!r} is not a time") from None
    return {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(millis)}]}]}


def hubspot_retry_after(response: requests.Response) -> float | None:
    """Retry-After when sent; else HubSpot's own window: the rolling interval of the policy
    that refused us (X-HubSpot-RateLimit-Interval-Milliseconds), an hour for the daily one."""
    asked = retry_after_header(response)
    if asked is not None:
        return asked
    try:
        body = response.json()
    except ValueError:
        body = {}
    if isinstance(body, dict) and body.get("policyName") == "DAILY":
        return 3600.0
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else None


class HubSpotContacts(Sink):
    """Batch upsert by email (100 per call); delete archives, or erases for GDPR."""

    batch_size = 100
    can_delete = True

    def __init__(self, gdpr_delete: bool = False) -> None:
        self.gdpr_delete = gdpr_delete

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        refused: dict[int, str] = {}
        inputs: dict[str, tuple[OutboundRecord, dict[str, Any]]] = {}
        for record in records:
            properties = dict(record.payload.get("properties") or {})
            email = str(properties.get("email") or "").strip().lower()
            if not email:
                refused[id(record)] = "no email: HubSpot upserts contacts by email"
            elif email in inputs:
                refused[id(record)] = "another record in the same batch has this email"
            else:
                inputs[email] = (record, {"id": email, "idProperty": "email",
                                          "properties": {**properties, "email": email}})
        done: dict[str, dict[str, Any]] = {}
        errors: list[dict[str, Any]] = []
        if inputs:
            body = http.request("POST", f"{CONTACTS}/batch/upsert", write=True, json={
                "inputs": [item for _, item in inputs.values()]}).json()
            done, errors = _match_results(body, list(inputs))
        results = []
        for record in records:
            email = str((record.payload.get("properties") or {}).get("email") or "")
            email = email.strip().lower()
            if id(record) in refused:
                results.append(PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                                          refused[id(record)]))
            elif email in done:
                item = done[email]
                outcome = Outcome.CREATED if item.get("new") else Outcome.UPDATED
                results.append(PushResult(record.hub_id, outcome, str(item.get("id"))))
            elif len(inputs) > 1:  # the vendor did not say which error is whose: ask alone
                results.extend(self._alone(http, record))
            else:
                results.append(PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                                          _reason(errors)))
        return results

    def _alone(self, http: VendorHttp, record: OutboundRecord) -> list[PushResult]:
        try:
            return self.upsert_batch(http, [record])
        except RejectedRecordError as exc:
            return [PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                               redact(exc.detail, 300))]

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        if self.gdpr_delete:
            http.request("POST", f"{CONTACTS}/gdpr-delete", json={"objectId": external_id},
                         write=True)
        else:
            http.request("DELETE", f"{CONTACTS}/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


def _match_results(body: Any, emails: list[str]
                   ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Upsert results by email (207 multi-status lists the failures apart, in `errors`)."""
    if not isinstance(body, dict):
        return {}, []
    results = [r for r in body.get("results") or [] if isinstance(r, dict)]
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    done = {}
    for item in results:
        email = str((item.get("properties") or {}).get("email") or "").strip().lower()
        if email in emails:
            done[email] = item
    if len(emails) == 1 and len(results) == 1 and not done:
        done[emails[0]] = results[0]
    return done, errors


def _reason(errors: list[dict[str, Any]]) -> str:
    text = "; ".join(f"{e.get('category') or e.get('status') or 'error'}: {e.get('message')}"
                     for e in errors) or "HubSpot did not return this contact"
    return redact(text, 300)


def candidate_uris(request: WebhookRequest) -> list[str]:
    """The URL HubSpot called, as it may have signed it: as received, rebuilt from a proxy's
    X-Forwarded-Proto/-Host, each also with HubSpot's listed percent-escapes decoded."""
    urls = [request.url]
    proto = (request.headers.get("X-Forwarded-Proto") or "").split(",")[0].strip()
    host = (request.headers.get("X-Forwarded-Host") or "").split(",")[0].strip()
    if proto or host:
        parts = urlsplit(request.url)
        urls.append(urlunsplit((proto or parts.scheme, host or parts.netloc, parts.path,
                                parts.query, parts.fragment)))
    found: list[str] = []
    for url in urls:
        for variant in (url, _ESCAPE.sub(lambda m: URI_ESCAPES[m.group(0).upper()], url)):
            if variant not in found:
                found.append(variant)
    return found


def _events(body: bytes) -> list[dict[str, Any]]:
    """The body as HubSpot sends it: a JSON array of event objects."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}", pointer=f"char {exc.pos}") from None
    if not isinstance(data, list) or not data:
        raise PayloadError("HubSpot sends a non-empty JSON array of events", pointer="/")
    for index, event in enumerate(data):
        if not isinstance(event, dict):
            raise PayloadError("every event must be a JSON object", pointer=f"/{index}")
    return data


def _require_id(event: dict[str, Any], key: str, index: int) -> str:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise PayloadError(f"event {index} has no valid {key!r}", pointer=f"/{index}/{key}")
    return str(value)


def _contact_id(event: dict[str, Any], index: int) -> str:
    """The contact to read: for a merge, the one that survives it."""
    if event.get("subscriptionType") == "contact.merge":
        for key in ("newObjectId", "primaryObjectId"):
            if event.get(key):
                return _require_id(event, key, index)
    return _require_id(event, "objectId", index)


def _epoch_ms(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise PayloadError(f"occurredAt {value!r} is not epoch milliseconds") from None
