"""Shopify: customer and order webhooks in the REST payload shape.

Follows Shopify's documentation:
- Webhook delivery structure and headers: https://shopify.dev/docs/apps/build/webhooks/delivery-structure
- HMAC verification (base64 HMAC-SHA256 of the raw body, header X-Shopify-Hmac-Sha256):
  https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
- Duplicates (dedupe on X-Shopify-Event-Id): https://shopify.dev/apps/build/webhooks/ignore-duplicates
- Payload change in API 2025-01 (customer payloads lose tags and marketing consent):
  https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload
The payload's API version travels in `_meta.api_version`, so mappings can tell versions apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    Setting,
    SourceRecord,
    WebhookRequest,
    json_object,
    meta,
)
from connectors.signatures import verify_base64_hmac
from hub.domain.errors import PayloadError, SignatureError
from hub.domain.transforms import TransformError, datetime_utc

CUSTOMER_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid")


class Shopify(Connector):
    key = "shopify"
    kind = "ecommerce"
    title = "Shopify"
    docs_url = "https://shopify.dev/docs/apps/build/webhooks"
    settings = (
        Setting("shop_domain", "The shop's *.myshopify.com domain; deliveries from any other shop "
                "are refused", example="example-shop.myshopify.com"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code when the address has none", example="US"),
    )
    events = {**dict.fromkeys(CUSTOMER_TOPICS, "customer"), **dict.fromkeys(ORDER_TOPICS, "order")}
    kept_headers = (
        "X-Shopify-Topic",
        "X-Shopify-Shop-Domain",
        "X-Shopify-API-Version",
        "X-Shopify-Webhook-Id",
        "X-Shopify-Event-Id",
        "X-Shopify-Triggered-At",
    )

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        verify_base64_hmac(
            request.body,
            request.headers.get("X-Shopify-Hmac-Sha256"),
            secrets,
            "X-Shopify-Hmac-Sha256",
        )

    def identify(self, request: WebhookRequest) -> Delivery:
        headers = request.headers
        topic = headers.get("X-Shopify-Topic")
        if not topic:
            raise PayloadError("the X-Shopify-Topic header is missing", pointer="header")
        key = headers.get("X-Shopify-Event-Id") or headers.get("X-Shopify-Webhook-Id")
        if not key:
            raise PayloadError(
                "neither X-Shopify-Event-Id nor X-Shopify-Webhook-Id is present", pointer="header"
            )
        json_object(request.body)
        return Delivery(key=f"{topic}:{key}", event_type=topic, headers=self.keep_headers(headers))

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        """A delivery signed for this app but from another shop is not ours to accept."""
        expected = settings.get("shop_domain")
        if expected and request.headers.get("X-Shopify-Shop-Domain") != expected:
            raise SignatureError("X-Shopify-Shop-Domain is not this connection's shop")

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        data = json_object(body)
        context = meta(
            connection,
            topic=delivery.event_type,
            api_version=delivery.headers.get("X-Shopify-API-Version", ""),
        )
        fallback = delivery.headers.get("X-Shopify-Triggered-At")
        if self.events.get(delivery.event_type) == "order":
            customer = data.get("customer") or {}
            external_id = str(customer["id"]) if customer.get("id") else None
            observed = _time(data.get("updated_at") or data.get("created_at") or fallback)
            return [SourceRecord("order", external_id, observed, {**data, "_meta": context})]
        if not data.get("id"):
            raise PayloadError("the customer has no id", pointer="/id")
        observed = _time(data.get("updated_at") or fallback)
        return [SourceRecord("customer", str(data["id"]), observed, {**data, "_meta": context})]


def _time(value: Any) -> Any:
    if not value:
        raise PayloadError("the payload carries no updated_at or created_at time")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
