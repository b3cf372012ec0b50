"""BigCommerce: thin customer webhooks (fetched back through the API); customers pulled,
pushed in batches and deleted through the Customers V3 API.

Follows BigCommerce's documentation:
- Webhooks overview (payload {scope, store_id, data {type, id}, hash, created_at, producer},
  the hash for duplicates, retries over 48 h, custom `headers` on a hook):
  https://developer.bigcommerce.com/docs/integrations/webhooks
- HTTPS webhooks and their signature (Standard Webhooks: webhook-id, webhook-timestamp,
  webhook-signature, HMAC-SHA256 keyed with the app's client secret, timestamp against replays):
  https://developer.bigcommerce.com/docs/integrations/webhooks/https-webhook-overview
- Webhook events (store/customer/*, store/customer/address/* carrying data.address.customer_id):
  https://developer.bigcommerce.com/docs/integrations/webhooks/events#customers
- Customers V3 (GET with id:in, date_modified:min, include, sort, page/limit and
  meta.pagination; POST and PUT of up to 10 customers; DELETE with id:in):
  https://developer.bigcommerce.com/docs/rest-management/customers
- Rate limits (X-Rate-Limit-Time-Reset-Ms, X-Rate-Limit-Requests-Left, 429; 150 requests per
  30 s on Standard and Plus plans):
  https://docs.bigcommerce.com/developer/docs/overview/api-fundamentals/rate-limits
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
    require,
)
from connectors.http import HeaderKey, VendorHttp, retry_after_header
from connectors.signatures import verify_standard_webhook
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import Page, PageNumberPaginator, Stream, place
from hub.domain.errors import ConfigurationError, PayloadError, RejectedRecordError, SignatureError
from hub.domain.transforms import TransformError, datetime_utc

API = "https://api.bigcommerce.com"
TOLERANCE_SECONDS = 300
SECRET_HEADER = "X-Hub-Webhook-Token"  # noqa: S105 - a header name, set on each hook
CUSTOMER_SCOPES = ("store/customer/created", "store/customer/updated")
ADDRESS_SCOPES = ("store/customer/address/created", "store/customer/address/updated",
                  "store/customer/address/deleted")
BATCH_SIZE = 10  # POST and PUT /v3/customers take at most 10 customers
PAGE_SIZE = 100


def bigcommerce_retry_after(response: requests.Response) -> float | None:
    """X-Rate-Limit-Time-Reset-Ms (milliseconds until the quota refills), else Retry-After."""
    reset = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    if reset:
        try:
            return max(0.0, float(reset) / 1000.0)
        except ValueError:
            pass
    return retry_after_header(response)


@dataclass
class MetaPaginator(PageNumberPaginator):
    """page=1,2,... until meta.pagination.current_page reaches total_pages."""

    def next(self, page: Page) -> dict[str, Any] | None:
        pagination = (page.response.json().get("meta") or {}).get("pagination") or {}
        current = pagination.get("current_page") or _page_of(page.response.url, self.page_param)
        total = pagination.get("total_pages") or 0
        if not isinstance(current, int) or not isinstance(total, int) or current >= total:
            return None
        return {**self.first(), self.page_param: current + 1}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        body["meta"] = {"pagination": {"total": len(records), "count": len(records),
                                       "per_page": self.page_size, "current_page": page + 1,
                                       "total_pages": pages, "links": {}}}
        return body, {}


def _page_of(url: str, param: str) -> int:
    return int(parse_qs(urlsplit(url).query).get(param, ["1"])[0])


class BigCommerceCustomers(Sink):
    """PUT /v3/customers for known customers, POST for new ones, 10 at a time. A 422 refuses the
    whole request; Sink.push then retries the records one by one for per-record reasons."""

    batch_size = BATCH_SIZE
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = {id(r): PushResult(r.hub_id, Outcome.REJECTED, r.external_id,
                                     f"{r.external_id!r} is not a BigCommerce customer id")
                   for r in records if r.external_id and not str(r.external_id).isdigit()}
        updates = [r for r in records if r.external_id and id(r) not in results]
        creates = [r for r in records if not r.external_id]
        if updates:
            body = [{**_without_address(r.payload), "id": int(str(r.external_id))}
                    for r in updates]
            http.request("PUT", "/v3/customers", json=body, write=True)
            results.update({id(r): PushResult(r.hub_id, Outcome.UPDATED, r.external_id)
                            for r in updates})
        if creates:
            body = [_for_create(r.payload) for r in creates]
            created = http.request("POST", "/v3/customers", json=body, write=True).json()
            results.update(_created(creates, created.get("data") or []))
        return [results[id(r)] for r in records]

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        http.request("DELETE", "/v3/customers", params={"id:in": external_id}, write=True)
        return PushResult(0, Outcome.DELETED, external_id)


def _without_address(payload: dict[str, Any]) -> dict[str, Any]:
    """PUT does not update sub-resources: the address book is left as BigCommerce has it."""
    return {k: v for k, v in payload.items() if k != "address"}


def _for_create(payload: dict[str, Any]) -> dict[str, Any]:
    body = _without_address(payload)
    address = payload.get("address") or {}
    if all(address.get(k) for k in ("address1", "city", "country_code")):
        body["addresses"] = [{"first_name": payload.get("first_name"),
                              "last_name": payload.get("last_name"), **address}]
    return body


def _created(records: list[OutboundRecord], created: list[Any]) -> dict[int, PushResult]:
    """New customers by email (BigCommerce emails are unique), else in the order sent."""
    by_email = {str(c.get("email", "")).lower(): c for c in created if isinstance(c, dict)}
    results = {}
    for index, record in enumerate(records):
        match = by_email.get(str(record.payload.get("email", "")).lower())
        if match is None and index < len(created) and isinstance(created[index], dict):
            match = created[index]
        if not match or not match.get("id"):
            results[id(record)] = PushResult(record.hub_id, Outcome.REJECTED, None,
                                             "BigCommerce returned no customer for this record")
        else:
            results[id(record)] = PushResult(record.hub_id, Outcome.CREATED, str(match["id"]))
    return results


class BigCommerce(Connector):
    key = "bigcommerce"
    kind = "ecommerce"
    title = "BigCommerce"
    docs_url = "https://developer.bigcommerce.com/docs/integrations/webhooks"
    settings = (
        Setting("store_hash", "The store's permanent id: the {store_hash} in "
                "api.bigcommerce.com/stores/{store_hash}; deliveries from other stores are "
                "refused", required=True, example="a1b2c3d4e5"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code when the address has none", example="US"),
        Setting("access_token", "Access token (X-Auth-Token) of a store API account with "
                "Customers: modify; needed to read what each webhook names", secret=True,
                example="bc_example_access_token"),
    )
    events = {**dict.fromkeys(CUSTOMER_SCOPES, "customer"),
              **dict.fromkeys(ADDRESS_SCOPES, "customer")}
    kept_headers = ("webhook-id", "webhook-timestamp")
    rate_limit = RateLimit(requests=150, seconds=30.0)  # Standard and Plus plans

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """The Standard Webhooks signature when BigCommerce sends one; otherwise the secret the
        admin put in the hook's custom `headers` as X-Hub-Webhook-Token."""
        headers = request.headers
        if headers.get("webhook-signature"):
            verify_standard_webhook(
                request.body, headers.get("webhook-id"), headers.get("webhook-timestamp"),
                headers.get("webhook-signature"), [s.encode() for s in secrets],
                TOLERANCE_SECONDS, now=request.received_at.timestamp())
            return
        given = (headers.get(SECRET_HEADER) or "").encode()
        if not given:
            raise SignatureError(f"neither a webhook-signature nor an {SECRET_HEADER} header")
        matched = False
        for secret in secrets:
            matched |= hmac.compare_digest(given, secret.encode())
        if not matched:
            raise SignatureError(f"the {SECRET_HEADER} header is not this connection's secret")

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        expected = settings.get("store_hash")
        try:
            producer = json_object(request.body).get("producer")
        except PayloadError:
            return  # identify refuses the body with a clear message
        if expected and producer != f"stores/{expected}":
            raise SignatureError("the delivery's producer is not this connection's store")

    def identify(self, request: WebhookRequest) -> Delivery:
        """BigCommerce: the same event delivered twice carries the same `hash`."""
        body = json_object(request.body)
        scope = require(body, "scope")
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise PayloadError("the body has no data.id", pointer="/data/id")
        key = body.get("hash") or f"{data['id']}:{body.get('created_at')}"
        return Delivery(key=f"{scope}:{key}", event_type=scope,
                        headers=self.keep_headers(request.headers))

    def parse(self, delivery: Delivery, body: bytes, connection: ConnectionContext
              ) -> list[SourceRecord]:
        event = json_object(body)
        data = event.get("data") or {}
        if delivery.event_type in ADDRESS_SCOPES:
            customer_id = (data.get("address") or {}).get("customer_id")
        else:
            customer_id = data.get("id")
        if not customer_id:
            raise PayloadError("the event names no customer", pointer="/data")
        created = event.get("created_at")
        if not isinstance(created, int):
            raise PayloadError("the event has no created_at time", pointer="/created_at")
        context = meta(connection, scope=delivery.event_type, store_id=event.get("store_id"))
        url = f"/v3/customers?id:in={int(customer_id)}&include=addresses"
        return [SourceRecord("customer", str(customer_id), datetime.fromtimestamp(created, UTC),
                             {"_meta": context}, fetch=url)]

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        """The customer as it is now; observed at its date_modified (the event time if absent)."""
        found = http.request("GET", str(record.fetch)).json().get("data") or []
        if not found:
            raise RejectedRecordError(f"BigCommerce customer {record.external_id} no longer "
                                      "exists; nothing to read")
        customer = found[0]
        try:
            observed = datetime_utc(customer["date_modified"])
        except (KeyError, TransformError):
            observed = record.observed_at
        return SourceRecord(record.object_type, str(customer.get("id", record.external_id)),
                            observed, {**customer, "_meta": record.payload.get("_meta", {})})

    def client(self, connection: ConnectionContext) -> VendorHttp:
        store_hash = str(connection.settings.get("store_hash") or "")
        if not store_hash.isalnum():
            raise ConfigurationError(f"BigCommerce connection {connection.name!r} needs its "
                                     "store_hash (letters and digits)")
        token = credential(connection, "access_token", self.title)
        return VendorHttp(f"{API}/stores/{store_hash}", HeaderKey("X-Auth-Token", token),
                          retry_after=bigcommerce_retry_after)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="customers", object_type="customer", path="/v3/customers",
            records_path="data", primary_key="id", replication_key="date_modified",
            paginator=MetaPaginator(page_param="page", size_param="limit", page_size=PAGE_SIZE),
            params={"include": "addresses", "sort": "date_modified:asc"},
            since=lambda bookmark: {"date_modified:min": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"customer": BigCommerceCustomers()}
