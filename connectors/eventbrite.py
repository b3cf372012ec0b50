"""Eventbrite: orders and attendees, from thin webhooks read back through the API (v3).

Follows Eventbrite's platform documentation:
- Webhooks (POST, JSON, no signature; `config.action` and an `api_url` to read the object
  from; a `410 Gone` answer unsubscribes the webhook): https://www.eventbrite.com/platform/docs/webhooks
  and https://www.eventbrite.com/developer/v3/api_overview/webhooks/
- Webhook actions (attendee.updated, order.placed, order.updated, ...):
  https://www.eventbrite.com/developer/v3/endpoints/webhooks/
- Authentication (`Authorization: Bearer <private token>`), expansions (`expand=`) and
  pagination (`pagination.continuation`, `has_more_items`):
  https://www.eventbrite.com/platform/api#/introduction/authentication and
  https://www.eventbrite.com/platform/api#/introduction/paginated-responses
- Attendees of an organization changed since a time (`changed_since`):
  https://www.eventbrite.com/platform/api#/reference/attendee/list/list-attendees-by-organization
- Attendee and Order objects (`profile`, `addresses`, `changed`):
  https://www.eventbrite.com/platform/docs/attendees and
  https://www.eventbrite.com/platform/api#/reference/order

Eventbrite signs nothing, so the webhook URL carries the connection's secret (`?token=`), and
the body is only a pointer: the worker reads `api_url` with the connection's own token and
trusts only that answer. The token is only ever sent to https://www.eventbriteapi.com/v3/.
Orders and attendees name a purchase and a ticket, not a person: they carry no external id
and the person is matched by email (docs/decisions/0013-scheduling-connectors.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from connectors.http import BearerToken, VendorHttp
from connectors.sinks import Sink
from connectors.streams import CursorPaginator, Stream, place
from hub.domain.errors import ConfigurationError, PayloadError
from hub.domain.transforms import TransformError, datetime_utc

API = "https://www.eventbriteapi.com"
API_PREFIX = API + "/v3/"
ORDER_ACTIONS = ("order.placed", "order.updated")
ATTENDEE_ACTIONS = ("attendee.updated",)
EXPAND = {"order": "attendees,event", "attendee": "event"}


class Eventbrite(Connector):
    key = "eventbrite"
    kind = "scheduling"
    title = "Eventbrite"
    docs_url = "https://www.eventbrite.com/platform/docs/webhooks"
    settings = (
        Setting("organization_id", "The Eventbrite organization whose attendees are pulled "
                "(Organization Settings > ID, or GET /v3/users/me/organizations/)",
                example="123456789012"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("private_token", "A private token (API Keys page) or an OAuth token of a user "
                "of the organization: reads the orders and attendees webhooks point to",
                secret=True, example="EXAMPLEPRIVATETOKEN"),
    )
    events = {**dict.fromkeys(ORDER_ACTIONS, "order"),
              **dict.fromkeys(ATTENDEE_ACTIONS, "attendee")}
    kept_headers = ("X-Eventbrite-Event", "X-Eventbrite-Delivery")
    # Widely cited figure (2,000 calls an hour per token); Eventbrite's pages we could read do
    # not state it, so it is a ceiling to stay under rather than a documented promise.
    rate_limit = RateLimit(requests=2000, seconds=3600.0)

    # verify: Eventbrite signs nothing; the inherited URL-token check applies.

    def identify(self, request: WebhookRequest) -> Delivery:
        """Every delivery is kept: the body only says "this object changed", identically for
        two different changes of one object, so no key taken from it could tell a retry from
        a second change. The worker reads the object's current state, so processing a retry
        twice is harmless; dropping a real change would not be."""
        body = json_object(request.body)
        config = body.get("config")
        if not isinstance(config, dict):
            raise PayloadError("the body has no 'config' object", pointer="/config")
        action = require(config, "action")
        found = body.get("api_url")
        api_url = found if isinstance(found, str) else ""
        if action in self.events and not api_url.startswith(API_PREFIX):
            raise PayloadError(f"api_url must start with {API_PREFIX}", pointer="/api_url")
        key = f"{action}:{api_url}:{request.received_at.isoformat()}"
        return Delivery(key=key, event_type=action, headers=self.keep_headers(request.headers))

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        api_url = json_object(body).get("api_url")
        if not isinstance(api_url, str) or not api_url.startswith(API_PREFIX):
            raise PayloadError(f"api_url must start with {API_PREFIX}", pointer="/api_url")
        object_type = self.events[delivery.event_type]
        context = meta(connection, action=delivery.event_type)
        # Thin: the time is a placeholder until fetch() reads the object's own `changed`.
        return [SourceRecord(object_type, None, datetime.now(UTC), {"_meta": context},
                             fetch=api_url)]

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        url = record.fetch or ""
        if not url.startswith(API_PREFIX):  # never send the token anywhere else
            raise PayloadError(f"refusing to read {url[:80]!r}: not an Eventbrite API URL")
        found = http.request("GET", url, params={"expand": EXPAND[record.object_type]}).json()
        if not isinstance(found, dict) or not found.get("id"):
            raise PayloadError(f"Eventbrite answered no {record.object_type} at api_url")
        observed = _time(found.get("changed") or found.get("created"))
        return SourceRecord(record.object_type, None, observed,
                            {**found, "_meta": record.payload.get("_meta", {})})

    def client(self, connection: ConnectionContext) -> VendorHttp:
        return VendorHttp(API, BearerToken(credential(connection, "private_token", self.title)))

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        organization = connection.settings.get("organization_id")
        if not organization:
            raise ConfigurationError(f"{self.title} connection {connection.name!r} has no "
                                     "organization_id; pulling attendees needs it")
        return [Stream(
            name="attendees", object_type="attendee",
            path=f"/v3/organizations/{organization}/attendees/",
            records_path="attendees", primary_key="id", replication_key="changed",
            paginator=ContinuationPaginator(),
            params={"expand": EXPAND["attendee"]},
            since=lambda bookmark: {"changed_since": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {}  # Eventbrite's API has no way to create or update a person


class ContinuationPaginator(CursorPaginator):
    """Eventbrite's `pagination.continuation` token, read while `pagination.has_more_items`.

    Only the contract-test page differs from CursorPaginator's: its fake_page puts the cursor
    and has_more side by side under one `pagination` object, as Eventbrite does (the base
    class replaces the whole parent object when both paths share it).
    """

    def __init__(self) -> None:
        super().__init__(cursor_path="pagination.continuation", param="continuation",
                         has_more_path="pagination.has_more_items")

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        more = page < pages - 1
        pagination = {"has_more_items": more, "continuation": f"cursor-{page + 1}" if more
                      else None}
        return {**place(records, records_path), "pagination": pagination}, {}


def _time(value: Any) -> datetime:
    if not value:
        raise PayloadError("the Eventbrite object has no changed or created time")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
