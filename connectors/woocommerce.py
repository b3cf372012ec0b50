"""WooCommerce: customer and order webhooks in; customers and orders pulled, customers pushed
through the batch endpoint and deleted (REST API v3).

Follows WooCommerce's documentation and source:
- REST API v3 reference (customers, orders, batch endpoints, pagination headers X-WP-Total /
  X-WP-TotalPages, Basic auth with consumer key and secret over HTTPS):
  https://woocommerce.github.io/woocommerce-rest-api-docs/
- Webhooks (topics customer.created|updated, order.created|updated; headers X-WC-Webhook-Source,
  -Topic, -Resource, -Event, -Signature, -ID, -Delivery-ID):
  https://woocommerce.com/document/webhooks/ and the delivery code in woocommerce/woocommerce
  `plugins/woocommerce/includes/class-wc-webhook.php` (signature = base64 HMAC-SHA256 of the
  exact body with the webhook's secret; `deliver_ping` posts `webhook_id=<id>`, unsigned, and
  activates the webhook only on HTTP 200; the Delivery-ID changes on every send).
- Customers list parameters (no "modified after" filter, unlike orders' modified_after):
  https://developer.woocommerce.com/docs/wc-cli/wc-cli-commands/wc-customer/
WooCommerce bodies are WordPress JSON (escaped slashes `\\/`, `\\uXXXX`): the signature is
checked over the raw bytes, never over re-serialized JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    json_object,
    meta,
)
from connectors.http import Action, BasicAuth, VendorHttp
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import Page, PageNumberPaginator, Stream
from hub.domain.errors import ConfigurationError, HubError, PayloadError, SignatureError
from hub.domain.transforms import TransformError, datetime_utc
from hub.redaction import redact

API = "/wp-json/wc/v3"
PING = re.compile(rb"webhook_id=\d+")
PAGE_SIZE = 100  # the REST API's maximum per_page
BATCH_SIZE = 50  # the batch endpoints take up to 100; half keeps each request light


@dataclass
class TotalPagesPaginator(PageNumberPaginator):
    """page/per_page until the page number reaches the X-WP-TotalPages header."""

    def next(self, page: Page) -> dict[str, Any] | None:
        try:
            total = int(page.response.headers.get("X-WP-TotalPages", "1"))
        except ValueError:
            return None
        current = int(parse_qs(urlsplit(page.response.url).query).get(self.page_param,
                                                                        ["1"])[0])
        return {**self.first(), self.page_param: current + 1} if current < total else None

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[Any, dict[str, str]]:
        """WooCommerce answers a bare JSON array; the totals ride in headers."""
        return records, {"X-WP-TotalPages": str(pages), "X-WP-Total": str(len(records) * pages)}


@dataclass
class WooCommerceHttp(VendorHttp):
    """The consumer key and secret never reach an error message, even when a site's error page
    echoes them: the shared redaction does not know WooCommerce's ck_/cs_ key format."""

    def request(self, method: str, path: str, *, write: bool = False, **kwargs: Any
                ) -> requests.Response:
        try:
            return super().request(method, path, write=write, **kwargs)
        except HubError as exc:
            auth = self.authenticator
            keys = [auth.username, auth.password] if isinstance(auth, BasicAuth) else []
            exc.detail = _scrub(exc.detail, keys)
            exc.args = tuple(_scrub(a, keys) if isinstance(a, str) else a for a in exc.args)
            raise


def _scrub(text: str, keys: list[str]) -> str:
    for key in keys:
        if key:
            text = text.replace(key, "[redacted]")
    return text


class WooCommerceCustomers(Sink):
    """POST /customers/batch {create, update}: the answer lists each item in order, either the
    customer or {"id": 0, "error": {...}}, so one refused customer never hides the others."""

    batch_size = BATCH_SIZE
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = {id(r): _foreign(r) for r in records if not _known(r)}
        creates = [r for r in records if not r.external_id]
        updates = [r for r in records if r.external_id and _known(r)]
        body = {"create": [r.payload for r in creates],
                "update": [{**r.payload, "id": int(str(r.external_id))} for r in updates]}
        if not creates and not updates:
            return [results[id(r)] for r in records]
        answer = http.request("POST", f"{API}/customers/batch", json=body, write=True).json()
        results.update({id(r): _item(r, item, Outcome.CREATED)
                        for r, item in _pairs(creates, answer.get("create"))})
        results.update({id(r): _item(r, item, Outcome.UPDATED)
                        for r, item in _pairs(updates, answer.get("update"))})
        return [results[id(r)] for r in records]

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        """Customers cannot be trashed: force=true is required."""
        http.request("DELETE", f"{API}/customers/{int(external_id)}", params={"force": "true"},
                     write=True)
        return PushResult(0, Outcome.DELETED, external_id)


def _known(record: OutboundRecord) -> bool:
    return not record.external_id or str(record.external_id).isdigit()


def _foreign(record: OutboundRecord) -> PushResult:
    return PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                      f"{record.external_id!r} is not a WooCommerce customer id")


def _pairs(records: list[OutboundRecord], items: Any) -> list[tuple[OutboundRecord, Any]]:
    items = items if isinstance(items, list) else []
    return [(r, items[i] if i < len(items) else None) for i, r in enumerate(records)]


def _item(record: OutboundRecord, item: Any, outcome: Outcome) -> PushResult:
    if not isinstance(item, dict):
        return PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                          "WooCommerce returned no result for this customer")
    error = item.get("error")
    if error:
        reason = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        return PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                          redact(f"{code}: {reason}" if code else reason))
    return PushResult(record.hub_id, outcome, str(item.get("id") or record.external_id))


def _is_ping(request: WebhookRequest) -> bool:
    """The creation ping: `webhook_id=N`, form-encoded, without topic or signature."""
    return "X-WC-Webhook-Topic" not in request.headers and \
        PING.fullmatch(request.body.strip()) is not None


class WooCommerce(Connector):
    key = "woocommerce"
    kind = "ecommerce"
    title = "WooCommerce"
    docs_url = "https://woocommerce.github.io/woocommerce-rest-api-docs/"
    settings = (
        Setting("site_url", "The shop's https:// address (as in X-WC-Webhook-Source); deliveries "
                "from another site are refused, and the REST API is called there",
                required=True, example="https://shop.example.com/"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code when the billing address has none", example="US"),
        Setting("consumer_key", "REST API consumer key (ck_...) with Read/Write permission",
                secret=True, example="ck_example_key"),
        Setting("consumer_secret", "REST API consumer secret (cs_...)", secret=True,
                example="cs_example_secret"),
    )
    events = {"customer.created": "customer", "customer.updated": "customer",
              "order.created": "order", "order.updated": "order"}
    kept_headers = ("X-WC-Webhook-Source", "X-WC-Webhook-Topic", "X-WC-Webhook-Resource",
                    "X-WC-Webhook-Event", "X-WC-Webhook-ID", "X-WC-Webhook-Delivery-ID")
    # No documented limit: a self-imposed, polite pace for a shop's own server.
    rate_limit = RateLimit(requests=2, seconds=1.0)
    error_table = {404: Action.SKIP}  # a delete of a customer already gone

    def handshake(self, request: WebhookRequest) -> tuple[int, Any] | None:
        """WooCommerce activates a new webhook only if its ping gets exactly 200."""
        return (200, {"status": "ok"}) if _is_ping(request) else None

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """Deliveries carry X-WC-Webhook-Signature. The ping is unsigned by WooCommerce; it is
        answered and never stored, so there is nothing in it to trust."""
        if _is_ping(request):
            return
        verify_base64_hmac(request.body, request.headers.get("X-WC-Webhook-Signature"), secrets,
                           "X-WC-Webhook-Signature")

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        expected = _site(settings.get("site_url"))
        source = _site(request.headers.get("X-WC-Webhook-Source"))
        if expected and source != expected:
            raise SignatureError("X-WC-Webhook-Source is not this connection's site")

    def identify(self, request: WebhookRequest) -> Delivery:
        """The Delivery-ID changes on every send, so the key is the webhook, the resource and
        its modification time: a resend of the same state is a duplicate."""
        headers = request.headers
        topic = headers.get("X-WC-Webhook-Topic")
        if not topic:
            raise PayloadError("the X-WC-Webhook-Topic header is missing", pointer="header")
        webhook_id = headers.get("X-WC-Webhook-ID")
        if not webhook_id:
            raise PayloadError("the X-WC-Webhook-ID header is missing", pointer="header")
        body = json_object(request.body)
        if body.get("id") and (body.get("date_modified_gmt") or body.get("date_created_gmt")):
            version = body.get("date_modified_gmt") or body.get("date_created_gmt")
            key = f"{webhook_id}:{body['id']}:{version}"
        elif topic in self.events:
            raise PayloadError(f"the {topic} body has no id or date_modified_gmt", pointer="/id")
        else:  # action.* and deleted topics: {"action", "arg"} or {"id"}; ignored anyway
            key = f"{webhook_id}:{headers.get('X-WC-Webhook-Delivery-ID') or body.get('id')}"
        return Delivery(key=f"{topic}:{key}", event_type=topic, headers=self.keep_headers(headers))

    def parse(self, delivery: Delivery, body: bytes, connection: ConnectionContext
              ) -> list[SourceRecord]:
        data = json_object(body)
        object_type = self.events[delivery.event_type]
        context = meta(connection, topic=delivery.event_type,
                       webhook_id=delivery.headers.get("X-WC-Webhook-ID"))
        observed = _time(data.get("date_modified_gmt") or data.get("date_created_gmt"))
        if object_type == "order":
            customer_id = data.get("customer_id")
            external_id = str(customer_id) if customer_id else None  # 0 is a guest
            return [SourceRecord("order", external_id, observed, {**data, "_meta": context})]
        if not data.get("id"):
            raise PayloadError("the customer has no id", pointer="/id")
        return [SourceRecord("customer", str(data["id"]), observed, {**data, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        site = str(connection.settings.get("site_url") or "")
        if not re.match(r"^https://[^/?#\s]+", site):
            raise ConfigurationError(f"WooCommerce connection {connection.name!r} needs its "
                                     "site_url with https:// (keys travel in Basic auth)")
        key = credential(connection, "consumer_key", self.title)
        secret = credential(connection, "consumer_secret", self.title)
        return WooCommerceHttp(site.rstrip("/"), BasicAuth(key, secret),
                               error_table=self.error_table)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        pages = TotalPagesPaginator(page_param="page", size_param="per_page",
                                    page_size=PAGE_SIZE)
        return [
            # Customers have no "modified after" filter: every run reads them all, by id.
            Stream(name="customers", object_type="customer", path=f"{API}/customers",
                   records_path="[*]", primary_key="id", paginator=pages,
                   params={"orderby": "id", "order": "asc"}),
            Stream(name="orders", object_type="order", path=f"{API}/orders",
                   records_path="[*]", primary_key="id", replication_key="date_modified_gmt",
                   paginator=pages,
                   params={"orderby": "id", "order": "asc", "dates_are_gmt": "true"},
                   since=lambda bookmark: {"modified_after": bookmark}),
        ]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"customer": WooCommerceCustomers()}


def _site(value: Any) -> str:
    return str(value or "").strip().rstrip("/").lower()


def _time(value: Any) -> Any:
    """WooCommerce's *_gmt times are UTC written without an offset."""
    if not value:
        raise PayloadError("the body has no date_modified_gmt or date_created_gmt")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None
