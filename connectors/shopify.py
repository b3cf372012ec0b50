"""Shopify: customer, order and consent webhooks in; customers pulled and pushed (GraphQL).

Follows Shopify's documentation:
- Webhook delivery structure and headers: https://shopify.dev/docs/apps/build/webhooks/delivery-structure
- HMAC verification (base64 HMAC-SHA256 of the raw body, header X-Shopify-Hmac-Sha256):
  https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
- Duplicates (dedupe on X-Shopify-Event-Id): https://shopify.dev/apps/build/webhooks/ignore-duplicates
- Payload change in API 2025-01 (customer payloads lose tags and marketing consent, which move to
  the `customers_email_marketing_consent/update` and `customers_marketing_consent/update` topics):
  https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload
  and the topic list https://shopify.dev/docs/api/webhooks
- GraphQL Admin API (POST /admin/api/{version}/graphql.json, X-Shopify-Access-Token):
  https://shopify.dev/docs/api/admin-graphql ; customers query and search syntax:
  https://shopify.dev/docs/api/admin-graphql/latest/queries/customers ; Customer object with
  defaultEmailAddress / defaultPhoneNumber (2025-04+):
  https://shopify.dev/docs/api/admin-graphql/latest/objects/Customer ; mutations customerCreate,
  customerUpdate, customerEmailMarketingConsentUpdate (SUBSCRIBED / UNSUBSCRIBED / PENDING only).
- Rate limits (calculated query cost, THROTTLED errors, extensions.cost.throttleStatus):
  https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
The payload's API version travels in `_meta.api_version`, so mappings can tell versions apart.
Why GraphQL rather than the legacy REST Admin API: docs/decisions/0012-shopify-api.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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
)
from connectors.http import HeaderKey, VendorHttp, VendorRequestError, retry_after_header
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import CursorPaginator, Stream, place
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    RateLimitedError,
    RejectedRecordError,
    SignatureError,
)
from hub.domain.transforms import TransformError, datetime_utc
from hub.redaction import redact

CUSTOMER_TOPICS = ("customers/create", "customers/update", "customers/enable", "customers/disable")
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid")
# The X-Shopify-Topic values Shopify sends; the changelog also spells the email one
# `customers/email_marketing_consent_update`, accepted too so no consent change is ignored.
EMAIL_CONSENT_TOPICS = ("customers_email_marketing_consent/update",
                        "customers/email_marketing_consent_update")
SMS_CONSENT_TOPICS = ("customers_marketing_consent/update", "customers/marketing_consent_update")

API_VERSION = "2026-01"
PAGE_SIZE = 100  # a page costs about 5 points per customer; the single-query cap is 1000
BATCH_SIZE = 10  # mutations cost 10 points each: one batch stays well under the bucket
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")

# Aliases give pulled customers the field names of the webhook (REST) payload, so one inbound
# mapping reads both; enum values stay upper case (value_map matches without regard to case).
CUSTOMERS_QUERY = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id: legacyResourceId
      admin_graphql_api_id: id
      first_name: firstName
      last_name: lastName
      state
      tags
      note
      created_at: createdAt
      updated_at: updatedAt
      orders_count: numberOfOrders
      amount_spent: amountSpent { amount currency_code: currencyCode }
      email_marketing_consent: defaultEmailAddress {
        email: emailAddress state: marketingState opt_in_level: marketingOptInLevel
        consent_updated_at: marketingUpdatedAt
      }
      sms_marketing_consent: defaultPhoneNumber {
        phone: phoneNumber state: marketingState opt_in_level: marketingOptInLevel
        consent_updated_at: marketingUpdatedAt consent_collected_from: marketingCollectedFrom
      }
      default_address: defaultAddress {
        first_name: firstName last_name: lastName company address1 address2 city province
        province_code: provinceCode country country_code: countryCodeV2 zip phone
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RESULT = "customer { id: legacyResourceId } userErrors { field message }"


def graphql_path(version: str) -> str:
    return f"/admin/api/{version}/graphql.json"


def throttle_wait(body: Any) -> float | None:
    """Seconds until the bucket holds the query's cost again, from extensions.cost."""
    if not isinstance(body, dict):
        return None
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost") or 0)
        available = float(status.get("currentlyAvailable") or 0)
        rate = float(status.get("restoreRate") or 0)
    except (TypeError, ValueError):
        return None
    if rate <= 0:
        return None
    return max(1.0, (needed - available) / rate)


def shopify_retry_after(response: requests.Response) -> float | None:
    """Retry-After when Shopify sends one, else the wait the GraphQL cost data implies."""
    asked = retry_after_header(response)
    if asked is not None:
        return asked
    try:
        return throttle_wait(response.json())
    except ValueError:
        return None


def _codes(errors: list[Any]) -> set[str]:
    return {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}


@dataclass
class ShopifyHttp(VendorHttp):
    """GraphQL answers 200 even when it refuses: THROTTLED is retried after the wait the cost
    data gives, ACCESS_DENIED needs an admin, other errors fail the request (a write's errors
    reject the batch, so the sink retries its records one by one)."""

    def _once(self, method: str, path: str, write: bool, kwargs: dict[str, Any]
              ) -> requests.Response:
        response = super()._once(method, path, write, kwargs)
        if path.endswith("/graphql.json"):
            check_graphql(response, write=write)
        return response


def check_graphql(response: requests.Response, *, write: bool) -> None:
    try:
        body = response.json()
    except ValueError:
        raise VendorRequestError("Shopify answered GraphQL with a body that is not JSON") from None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return
    errors = errors if isinstance(errors, list) else [{"message": str(errors)}]
    codes = _codes(errors)
    messages = redact("; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)))
    if "THROTTLED" in codes:
        raise RateLimitedError(f"Shopify throttled the query: {messages}",
                               retry_after=throttle_wait(body))
    if "ACCESS_DENIED" in codes:
        raise AuthenticationError(f"Shopify refused the access token's scopes: {messages}")
    if write:
        raise RejectedRecordError(f"Shopify refused the mutation: {messages}")
    raise VendorRequestError(f"Shopify refused the query: {messages}")


@dataclass
class GraphQLStream(Stream):
    """A stream whose page requests are GraphQL documents: the paginator's params are the
    query's variables."""

    document: str = ""

    def _get(self, http: VendorHttp, params: dict[str, Any]) -> requests.Response:
        return http.request("POST", self.path, json={"query": self.document, "variables": params})


@dataclass
class GraphQLCursorPaginator(CursorPaginator):
    """`after: pageInfo.endCursor` while `pageInfo.hasNextPage`. The connection's nodes and its
    pageInfo share a parent, so the fake page merges them (CursorPaginator's replaces it)."""

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        more = page < pages - 1
        _merge(body, place(more, self.has_more_path or "hasNextPage"))
        _merge(body, place(f"cursor-{page + 1}" if more else None, self.cursor_path))
        return body, {}


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def graphql_cursor(connection: str) -> GraphQLCursorPaginator:
    return GraphQLCursorPaginator(cursor_path=f"data.{connection}.pageInfo.endCursor",
                                  param="after",
                                  has_more_path=f"data.{connection}.pageInfo.hasNextPage")


def customer_gid(external_id: str) -> str:
    return external_id if external_id.startswith("gid://") else \
        f"gid://shopify/Customer/{external_id}"


class ShopifyCustomers(Sink):
    """Several customerCreate / customerUpdate mutations in one GraphQL document, each under
    its own alias, so each record gets its own result and userErrors. An address goes with a
    new customer only (customerUpdate would rewrite the address book); email consent of an
    existing customer goes through customerEmailMarketingConsentUpdate."""

    batch_size = BATCH_SIZE

    def __init__(self, version: str) -> None:
        self.path = graphql_path(version)

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        fields, declarations, variables = [], [], {}
        for n, record in enumerate(records):
            for alias, mutation, kind, value in _mutations(n, record):
                fields.append(f"{alias}: {mutation}(input: ${alias}) {{ {RESULT} }}")
                declarations.append(f"${alias}: {kind}!")
                variables[alias] = value
        document = f"mutation Upsert({', '.join(declarations)}) {{ {' '.join(fields)} }}"
        data = http.request("POST", self.path, json={"query": document, "variables": variables},
                            write=True).json().get("data") or {}
        return [_result(n, record, data) for n, record in enumerate(records)]


def _mutations(n: int, record: OutboundRecord) -> list[tuple[str, str, str, Any]]:
    payload = dict(record.payload)
    address = payload.pop("address", None)
    consent = payload.pop("emailMarketingConsent", None)
    if not record.external_id:
        if address:
            payload["addresses"] = [address]
        if consent:
            payload["emailMarketingConsent"] = consent
        return [(f"c{n}", "customerCreate", "CustomerInput", payload)]
    gid = customer_gid(record.external_id)
    found = [(f"c{n}", "customerUpdate", "CustomerInput", {**payload, "id": gid})]
    if consent:
        found.append((f"e{n}", "customerEmailMarketingConsentUpdate",
                      "CustomerEmailMarketingConsentUpdateInput",
                      {"customerId": gid, "emailMarketingConsent": consent}))
    return found


def _result(n: int, record: OutboundRecord, data: dict[str, Any]) -> PushResult:
    outcome = Outcome.UPDATED if record.external_id else Outcome.CREATED
    main = data.get(f"c{n}") or {}
    problems = _user_errors(main)
    if not main or problems:
        return PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                          problems or "Shopify returned no result for this customer")
    external_id = str((main.get("customer") or {}).get("id") or record.external_id or "")
    consent = data.get(f"e{n}")
    if consent is not None and _user_errors(consent):
        return PushResult(record.hub_id, Outcome.REJECTED, external_id,
                          f"customer saved, email consent refused: {_user_errors(consent)}")
    return PushResult(record.hub_id, outcome, external_id or None)


def _user_errors(result: dict[str, Any]) -> str:
    errors = result.get("userErrors") or []
    return redact("; ".join(f"{'.'.join(map(str, e.get('field') or []))}: {e.get('message')}"
                            for e in errors if isinstance(e, dict)))


class Shopify(Connector):
    key = "shopify"
    kind = "ecommerce"
    title = "Shopify"
    docs_url = "https://shopify.dev/docs/apps/build/webhooks"
    settings = (
        Setting("shop_domain", "The shop's *.myshopify.com domain; deliveries from any other shop "
                "are refused, and the API is called there (required to pull and push)",
                example="example-shop.myshopify.com"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code when the address has none", example="US"),
        Setting("access_token", "Admin API access token (shpat_...) of the shop's custom app, "
                "with read_customers and write_customers; only for pulling and pushing",
                secret=True, example="shpat_example_token"),
        Setting("api_version", f"Admin API version to call (default {API_VERSION}); Shopify "
                "supports each version for about a year", example=API_VERSION),
    )
    events = {**dict.fromkeys(CUSTOMER_TOPICS, "customer"), **dict.fromkeys(ORDER_TOPICS, "order"),
              **dict.fromkeys(EMAIL_CONSENT_TOPICS, "email_consent"),
              **dict.fromkeys(SMS_CONSENT_TOPICS, "sms_consent")}
    kept_headers = (
        "X-Shopify-Topic",
        "X-Shopify-Shop-Domain",
        "X-Shopify-API-Version",
        "X-Shopify-Webhook-Id",
        "X-Shopify-Event-Id",
        "X-Shopify-Triggered-At",
    )
    # Cost-based: Standard shops restore 100 points/s; a 100-customer page costs up to ~500.
    rate_limit = RateLimit(requests=1, seconds=5.0)

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
        object_type = self.events.get(delivery.event_type)
        if object_type == "order":
            customer = data.get("customer") or {}
            external_id = str(customer["id"]) if customer.get("id") else None
            observed = _time(data.get("updated_at") or data.get("created_at") or fallback)
            return [SourceRecord("order", external_id, observed, {**data, "_meta": context})]
        if object_type in ("email_consent", "sms_consent"):
            return [_consent_record(object_type, data, fallback, context)]
        if not data.get("id"):
            raise PayloadError("the customer has no id", pointer="/id")
        observed = _time(data.get("updated_at") or fallback)
        return [SourceRecord("customer", str(data["id"]), observed, {**data, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        domain = str(connection.settings.get("shop_domain") or "").strip().lower()
        if not SHOP_DOMAIN.match(domain):
            raise ConfigurationError(
                f"Shopify connection {connection.name!r} needs shop_domain (the shop's "
                "*.myshopify.com domain) to call the Admin API")
        token = credential(connection, "access_token", self.title)
        return ShopifyHttp(f"https://{domain}", HeaderKey("X-Shopify-Access-Token", token),
                           retry_after=shopify_retry_after)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [GraphQLStream(
            name="customers", object_type="customer", path=graphql_path(_version(connection)),
            records_path="data.customers.nodes", primary_key="id", replication_key="updated_at",
            paginator=graphql_cursor("customers"),
            params={"first": PAGE_SIZE}, method="POST", document=CUSTOMERS_QUERY,
            since=lambda bookmark: {"query": f"updated_at:>='{bookmark}'"},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"customer": ShopifyCustomers(_version(connection))}


def _version(connection: ConnectionContext) -> str:
    version = str(connection.settings.get("api_version") or API_VERSION)
    if not re.fullmatch(r"\d{4}-\d{2}|unstable", version):
        raise ConfigurationError(f"Shopify api_version {version!r} is not YYYY-MM")
    return version


def _consent_record(object_type: str, data: dict[str, Any], fallback: Any,
                    context: dict[str, Any]) -> SourceRecord:
    """customers_email_marketing_consent/update names the customer `customer_id`; the SMS topic
    names it `id`. Either consent object may have a null consent_updated_at."""
    key = "customer_id" if object_type == "email_consent" else "id"
    consent = "email_marketing_consent" if object_type == "email_consent" else \
        "sms_marketing_consent"
    if not data.get(key):
        raise PayloadError(f"the consent update has no {key}", pointer=f"/{key}")
    if not isinstance(data.get(consent), dict):
        raise PayloadError(f"the consent update has no {consent} object", pointer=f"/{consent}")
    observed = _time(data[consent].get("consent_updated_at") or fallback)
    return SourceRecord(object_type, str(data[key]), observed, {**data, "_meta": context})


def _time(value: Any) -> Any:
    if not value:
        raise PayloadError("the payload carries no updated_at or created_at time")
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad timestamp: {exc}") from None

