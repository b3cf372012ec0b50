"""Stripe: customer and Checkout events.

Follows Stripe's documentation and its official library:
- Webhook signatures (`Stripe-Signature: t=...,v1=...`, hex HMAC-SHA256 of "{t}.{body}" keyed
  with the whole `whsec_...` string, 300 s tolerance, several v1 during secret rolls):
  https://docs.stripe.com/webhooks#verify-events and stripe-python `stripe/_webhook.py`
- Event object: https://docs.stripe.com/api/events/object (dedupe on `id`)
- Customer object: https://docs.stripe.com/api/customers/object
- Checkout Session (customer_details, consent): https://docs.stripe.com/api/checkout/sessions/object
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    Setting,
    SourceRecord,
    WebhookRequest,
    json_object,
    meta,
    require,
)
from connectors.signatures import verify_timestamped_hex_hmac
from hub.domain.errors import PayloadError

TOLERANCE_SECONDS = 300


class Stripe(Connector):
    key = "stripe"
    kind = "ecommerce"
    title = "Stripe"
    docs_url = "https://docs.stripe.com/webhooks"
    settings = (
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
    )
    events = {
        "customer.created": "customer",
        "customer.updated": "customer",
        "checkout.session.completed": "checkout_session",
    }
    kept_headers = ("Stripe-Signature-Version",)

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
