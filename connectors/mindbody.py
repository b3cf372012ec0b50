"""Mindbody: clients and appointment bookings in (Webhooks API), clients pulled and pushed
(Public API v6).

Follows Mindbody's developer documentation:
- Webhooks: events, payload envelope (`messageId`, `eventId`, `eventSchemaVersion`,
  `eventInstanceOriginationDateTime`, `eventData`), the X-Mindbody-Signature header
  ("sha256=" + base64 HMAC-SHA256 of the raw body, keyed with the subscription's
  `messageSignatureKey` as UTF-8 text) and the HEAD request that checks a webhook URL before a
  subscription is activated: https://developers.mindbodyonline.com/WebhooksDocumentation
- Public API v6 (`Api-Key`, `SiteId` and a staff user token in `Authorization`; POST
  /usertoken/issue; GET /client/clients with `request.lastModifiedDate`, `request.limit`,
  `request.offset` and a `PaginationResponse`; POST /client/addclient and
  /client/updateclient with `CrossRegionalUpdate`):
  https://developers.mindbodyonline.com/PublicDocumentation/V6
- Call quotas (1,000 calls per API key per day, then billed per call) and FAQs:
  https://developers.mindbodyonline.com/resources/faqs

The person's id is the client `Id` (the id the Public API reads and updates by); a booking
event carries it as `clientId`. One developer account's subscription sends events for every
site it is linked to, so a connection set to one site skips the other sites' events instead of
refusing them (a refusal would make Mindbody retry and finally deactivate the subscription).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    json_object,
    meta,
    require,
)
from connectors.http import CONNECT_TIMEOUT, READ_TIMEOUT, Authenticator, VendorHttp
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import OffsetPaginator, Stream
from hub.domain.errors import PayloadError, SignatureError
from hub.domain.transforms import TransformError, datetime_utc

API = "https://api.mindbodyonline.com"
BASE = "/public/v6"
SIGNATURE_HEADER = "X-Mindbody-Signature"
SIGNATURE_PREFIX = "sha256="
CLIENT_EVENTS = ("client.created", "client.updated")
BOOKING_EVENTS = ("appointmentBooking.created",)
PAGE_SIZE = 200  # the largest `request.limit` the Public API accepts


class MindbodyUserToken(Authenticator):
    """Api-Key and SiteId on every call, plus a staff user token issued from a staff login.

    The token is issued when the API first answers 401 (and again when it expires), so a
    connection that only receives webhooks never logs in.
    """

    def __init__(self, api_key: str, site_id: str, username: str, password: str) -> None:
        self.api_key, self.site_id = api_key, site_id
        self.username, self.password = username, password
        self.access_token = ""

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Api-Key"] = self.api_key
        headers["SiteId"] = self.site_id
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"  # TokenType is Bearer

    def refresh(self, session: requests.Session) -> bool:
        try:
            response = session.post(
                f"{API}{BASE}/usertoken/issue",
                json={"Username": self.username, "Password": self.password},
                headers={"Api-Key": self.api_key, "SiteId": self.site_id},
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            token = response.json().get("AccessToken") if response.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            return False
        if not isinstance(token, str) or not token:
            return False
        self.access_token = token
        return True


class MindbodyClients(Sink):
    """One client per call: the Public API has no batch endpoint for clients."""

    batch_size = 1
    can_delete = False  # Mindbody has no client delete; deactivation is a business decision

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            if record.external_id:
                body = {"Client": {**record.payload, "Id": record.external_id},
                        "CrossRegionalUpdate": False}
                http.request("POST", f"{BASE}/client/updateclient", json=body, write=True)
                results.append(PushResult(record.hub_id, Outcome.UPDATED, record.external_id))
            else:
                created = http.request("POST", f"{BASE}/client/addclient", json=record.payload,
                                       write=True).json()
                client_id = str((created.get("Client") or {}).get("Id") or "") or None
                results.append(PushResult(record.hub_id, Outcome.CREATED, client_id))
        return results


class Mindbody(Connector):
    key = "mindbody"
    kind = "scheduling"
    title = "Mindbody"
    docs_url = "https://developers.mindbodyonline.com/WebhooksDocumentation"
    settings = (
        Setting("site_id", "The Mindbody site (business) this connection serves; events of "
                "other sites on the same subscription are skipped", required=True,
                example="-99"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("staff_username", "A staff login of the site that may read and edit clients, "
                "used to issue the Public API user token", example="hub.sync"),
        Setting("api_key", "The Public API key (developer portal > API Credentials)",
                secret=True, example="example-mindbody-api-key"),
        Setting("staff_password", "The password of staff_username", secret=True,
                example="example-staff-password"),
    )
    events = {**dict.fromkeys(CLIENT_EVENTS, "client"),
              **dict.fromkeys(BOOKING_EVENTS, "appointment")}
    # No burst limit is documented; calls beyond 1,000 a day per API key are billed.
    rate_limit = RateLimit(requests=1000, seconds=86400.0)

    def handshake(self, request: WebhookRequest) -> tuple[int, Any] | None:
        """Mindbody checks a webhook URL with a HEAD request before it activates the
        subscription; it must get a 2xx."""
        return (200, "") if request.method == "HEAD" else None

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        if request.method == "HEAD":
            return  # the URL check carries no body and no signature, and stores nothing
        header = (request.headers.get(SIGNATURE_HEADER) or "").strip()
        if not header:
            raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
        if not header.startswith(SIGNATURE_PREFIX):
            raise SignatureError(f"the {SIGNATURE_HEADER} header does not start with sha256=")
        verify_base64_hmac(request.body, header[len(SIGNATURE_PREFIX):], secrets,
                           SIGNATURE_HEADER)

    def identify(self, request: WebhookRequest) -> Delivery:
        message = json_object(request.body)
        return Delivery(key=require(message, "messageId"), event_type=require(message, "eventId"),
                        headers={})

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        message = json_object(body)
        data = message.get("eventData")
        if not isinstance(data, dict):
            raise PayloadError("the message has no eventData object", pointer="/eventData")
        site = connection.settings.get("site_id")
        if site not in (None, "") and str(data.get("siteId")) != str(site):
            return []  # another site's event on a shared subscription: not this connection's
        when = message.get("eventInstanceOriginationDateTime")
        observed = _time(when)
        client_id = data.get("clientId")
        external_id = str(client_id) if client_id not in (None, "") else None
        context = meta(connection, event_type=delivery.event_type, event_time=when,
                       schema_version=message.get("eventSchemaVersion"))
        object_type = self.events[delivery.event_type]
        return [SourceRecord(object_type, external_id, observed, {**data, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        auth = MindbodyUserToken(
            api_key=credential(connection, "api_key", self.title),
            site_id=str(connection.settings.get("site_id") or ""),
            username=str(connection.settings.get("staff_username") or ""),
            password=credential(connection, "staff_password", self.title),
        )
        return VendorHttp(API, auth)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="clients", object_type="client", path=f"{BASE}/client/clients",
            records_path="Clients", primary_key="Id", replication_key="LastModifiedDateTime",
            paginator=OffsetPaginator(limit_param="request.limit",
                                      offset_param="request.offset", page_size=PAGE_SIZE),
            since=lambda bookmark: {"request.lastModifiedDate": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"client": MindbodyClients()}


def _time(value: Any) -> datetime:
    if not value:
        raise PayloadError("the message has no eventInstanceOriginationDateTime",
                           pointer="/eventInstanceOriginationDateTime")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
