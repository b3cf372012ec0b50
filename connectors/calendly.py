"""Calendly: invitees booking and cancelling, from webhook subscriptions (API v2).

Follows Calendly's developer documentation:
- Webhook signatures (`Calendly-Webhook-Signature: t=...,v1=...`, hex HMAC-SHA256 of
  "{t}.{raw body}" keyed with the subscription's signing key; a timestamp older than about
  three minutes is a replay): https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures
- Webhook events and payloads (`event`, `created_at`, `created_by`, `payload` = the Invitee):
  https://developer.calendly.com/api-docs/calendly-api/webhooks/get-sample-webhook-data and
  https://developer.calendly.com/api-docs/calendly-api/scheduled-events/get-event-invitee
- Rescheduling sends invitee.canceled (rescheduled: true, new_invitee) and invitee.created
  (old_invitee): https://developer.calendly.com/docs/api-guides/see-how-webhook-payloads-change-when-invitees-reschedule-events
- Rate limits (500 requests per user per minute on paid plans, 50 on free; 429 with
  X-RateLimit-Reset): https://developer.calendly.com/api-docs/overview/rate-limits

An invitee is one booking, not one person: the same person booking twice is two invitee URIs.
The invitee URI is therefore the dedupe key, never the person's external id; the person is
found by email (docs/decisions/0013-scheduling-connectors.md). The hub
pulls and pushes nothing through Calendly's API yet (see that decision).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    RateLimit,
    Setting,
    SourceRecord,
    WebhookRequest,
    json_object,
    meta,
    require,
)
from connectors.signatures import verify_timestamped_hex_hmac
from hub.domain.errors import PayloadError
from hub.domain.transforms import TransformError, datetime_utc

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
TOLERANCE_SECONDS = 180  # Calendly's own example refuses signatures older than 3 minutes
INVITEE_EVENTS = ("invitee.created", "invitee.canceled")


class Calendly(Connector):
    key = "calendly"
    kind = "scheduling"
    title = "Calendly"
    docs_url = "https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures"
    settings = (
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for SMS reminder numbers "
                "written without a country code", example="US"),
    )
    events = dict.fromkeys(INVITEE_EVENTS, "invitee")
    rate_limit = RateLimit(requests=500, seconds=60.0)  # paid plans; free plans allow 50/min

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        verify_timestamped_hex_hmac(
            request.body,
            request.headers.get(SIGNATURE_HEADER),
            secrets,
            SIGNATURE_HEADER,
            TOLERANCE_SECONDS,
            now=request.received_at.timestamp(),
        )

    def identify(self, request: WebhookRequest) -> Delivery:
        """Calendly sends no delivery id: the invitee URI and the event name make the key
        (a reschedule is a cancel of one invitee and a create of another, two keys)."""
        envelope = json_object(request.body)
        event = require(envelope, "event")
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise PayloadError("the body has no 'payload' object", pointer="/payload")
        uri = payload.get("uri")
        if not isinstance(uri, str) or not uri:
            raise PayloadError("the payload has no 'uri'", pointer="/payload/uri")
        return Delivery(key=f"{event}:{uri}", event_type=event, headers={})

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        envelope = json_object(body)
        invitee = envelope.get("payload")
        if not isinstance(invitee, dict):
            raise PayloadError("the body has no 'payload' object", pointer="/payload")
        observed = _time(invitee.get("updated_at") or envelope.get("created_at"))
        context = meta(connection, event_type=delivery.event_type,
                       event_created_at=envelope.get("created_at"))
        # No external id: the invitee URI names a booking; the person is matched by email.
        return [SourceRecord("invitee", None, observed, {**invitee, "_meta": context})]


def _time(value: Any) -> datetime:
    if not value:
        raise PayloadError("the invitee has no updated_at and the event no created_at")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
