"""Stripe: customer and Checkout events in; customers pulled and pushed through the API.

Follows Stripe's documentation and its official library:
- Webhook signatures (`Stripe-Signature: t=...,v1=...`, hex HMAC-SHA256 of "{t}.{body}" keyed
  with the whole `whsec_...` string, 300 s tolerance, several v1 during secret rolls):
  https://docs.stripe.com/webhooks#verify-events and stripe-python `stripe/_webhook.py`
- Event object: https://docs.stripe.com/api/events/object (dedupe on `id`)
- Customer object: https://docs.stripe.com/api/customers/object
- Checkout Session (customer_details, consent): https://docs.stripe.com/api/checkout/sessions/object
- List customers (`limit`, `starting_after`, `has_more`, `created[gte]`):
  https://docs.stripe.com/api/customers/list and https://docs.stripe.com/api/pagination
- Update / create / delete a customer (form-encoded bodies, `Idempotency-Key`):
  https://docs.stripe.com/api/customers/update, https://docs.stripe.com/api/idempotent_requests
- Rate limits (100 operations/s live, 25 in test mode; 429): https://docs.stripe.com/rate-limits
Stripe has no "updated since" filter on customers: incremental pulls use `created[gte]`, and
changes to older customers reach the hub through `customer.updated` webhooks.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    RateLimit,
    Setting,
    SourceRecord,
    WebhookRequest,
    credential,
    form_pairs,
    json_object,
    meta,
    require,
)
from connectors.http import BearerToken, VendorHttp
from connectors.signatures import verify_timestamped_hex_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import StartingAfterPaginator, Stream
from hub.domain.errors import PayloadError

TOLERANCE_SECONDS = 300
API = "https://api.stripe.com"


class StripeCustomers(Sink):
    """One customer per request: Stripe has no batch endpoint for customers."""

    batch_size = 1
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            body = form_pairs(record.payload)
            key = hashlib.sha256(json.dumps([record.hub_id, record.payload], sort_keys=True)
                                 .encode()).hexdigest()
            headers = {"Idempotency-Key": key}
            if record.external_id:
                http.request("POST", f"/v1/customers/{record.external_id}", data=body,
                             headers=headers, write=True)
                results.append(PushResult(record.hub_id, Outcome.UPDATED, record.external_id))
            else:
                created = http.request("POST", "/v1/customers", data=body, headers=headers,
                                       write=True).json()
                results.append(PushResult(record.hub_id, Outcome.CREATED, created["id"]))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        http.request("DELETE", f"/v1/customers/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


class Stripe(Connector):
    key = "stripe"
    kind = "ecommerce"
    title = "Stripe"
    docs_url = "https://docs.stripe.com/webhooks"
    settings = (
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("api_key", "A restricted API key (rk_...) with Customers read and write, for "
                "pulling and pushing; webhooks alone need none", secret=True,
                example="rk_test_example"),
    )
    events = {
        "customer.created": "customer",
        "customer.updated": "customer",
        "checkout.session.completed": "checkout_session",
    }
    rate_limit = RateLimit(requests=25, seconds=1.0)  # test-mode limit; live allows 100/s

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        verify_timestamped_hex_hmac(
            request.body,
            request.headers.get("Stripe-Signature"),
            secrets,
            "Stripe-Signature",
            TOLERANCE_SECONDS,
            now=request.received_at.timestamp(),
        )

    def identify(self, request: WebhookRequest) -> Delivery:
        event = json_object(request.body)
        event_id = require(event, "id")
        event_type = require(event, "type")
        return Delivery(key=event_id, event_type=event_type, headers={})

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        event = json_object(body)
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict):
            raise PayloadError("the event has no data.object", pointer="/data/object")
        created = event.get("created")
        if not isinstance(created, int):
            raise PayloadError("the event has no created time", pointer="/created")
        observed = datetime.fromtimestamp(created, tz=UTC)
        object_type = self.events[delivery.event_type]
        context = meta(connection, event_type=delivery.event_type, api_version=event.get(
            "api_version"), livemode=event.get("livemode"))
        external_id = obj.get("id") if object_type == "customer" else obj.get("customer")
        return [SourceRecord(object_type, external_id, observed, {**obj, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        return VendorHttp(API, BearerToken(credential(connection, "api_key", self.title)))

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="customers", object_type="customer", path="/v1/customers",
            records_path="data", primary_key="id", replication_key="created",
            paginator=StartingAfterPaginator(), params={"limit": 100},
            since=lambda bookmark: {"created[gte]": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"customer": StripeCustomers()}
