"""ERPNext / Frappe: Customer and Contact documents from Frappe webhooks, pulled and pushed by REST.

Follows Frappe's documentation and source:
- Webhooks (doctype and doc event chosen by the admin; body = the admin's JSON template, sent as
  `json.dumps(data)` with Python's default separators and no Content-Type unless one is added;
  `X-Frappe-Webhook-Signature` = base64 HMAC-SHA256 of that body with the webhook secret, only
  when "Enable Security" is ticked; 3 attempts, 5 s timeout):
  https://frappeframework.com/docs/user/en/guides/integration/webhooks and
  frappe/integrations/doctype/webhook/webhook.py
- REST API v1 (`Authorization: token <api_key>:<api_secret>`; GET /api/resource/<DocType> with
  fields, filters, order_by, limit_start, limit_page_length, records in `data`; POST to create,
  PUT /api/resource/<DocType>/<name> to update, DELETE to delete; ValidationError answers 417):
  https://frappeframework.com/docs/user/en/api/rest
- Contact (first_name, last_name, email_id and phone/mobile_no mirrored from the email_ids and
  phone_nos child tables, designation, company_name, links, unsubscribed) and Customer
  (customer_name, customer_type, email_id, mobile_no, is_frozen, disabled, default_currency):
  frappe/contacts/doctype/contact/contact.json, erpnext/selling/doctype/customer/customer.json
Frappe keeps datetimes (`modified`) in the site's time zone, without an offset: the connection's
time_zone setting says which one. Frappe applies no API rate limit of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    Setting,
    SourceRecord,
    WebhookRequest,
    credential,
    json_object,
    meta,
    verify_url_token,
)
from connectors.http import Action, Authenticator, VendorHttp
from connectors.signatures import verify_base64_hmac
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import OffsetPaginator, Stream
from hub.domain.errors import ConfigurationError, PayloadError, SignatureError

SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"
PAGE_SIZE = 100
MAX_KEY = 255  # the inbox keeps delivery keys of up to 255 characters
DOCTYPES = {"Customer": "customer", "Contact": "contact"}
CHILD_ROWS = {  # a flat outbound field -> the child table row Frappe derives it from
    "email_id": ("email_ids", "email_id", "is_primary"),
    "phone": ("phone_nos", "phone", "is_primary_phone"),
    "mobile_no": ("phone_nos", "phone", "is_primary_mobile_no"),
}


@dataclass
class FrappeToken(Authenticator):
    """`Authorization: token <api_key>:<api_secret>`; key and secret are kept apart so that the
    client blanks each of them out of an error body that echoes them."""

    api_key: str
    api_secret: str

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"token {self.api_key}:{self.api_secret}"


class ErpnextContacts(Sink):
    """One Contact per request. Frappe derives email_id, phone and mobile_no from the email_ids
    and phone_nos child tables, and a PUT with a child table replaces all its rows: so a new
    contact gets them as child rows, and an update leaves the existing rows alone."""

    batch_size = 1
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            fields = {k: v for k, v in record.payload.items() if k not in CHILD_ROWS}
            if record.external_id:
                http.request("PUT", f"/api/resource/Contact/{record.external_id}", json=fields,
                             write=True)
                results.append(PushResult(record.hub_id, Outcome.UPDATED, record.external_id))
                continue
            created = http.request("POST", "/api/resource/Contact",
                                   json={**fields, **child_rows(record.payload)},
                                   write=True).json()
            name = (created.get("data") or {}).get("name")
            results.append(PushResult(record.hub_id, Outcome.CREATED, name))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        http.request("DELETE", f"/api/resource/Contact/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


def child_rows(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for flat, (table, column, flag) in CHILD_ROWS.items():
        value = payload.get(flat)
        if not value:
            continue
        rows = tables.setdefault(table, [])
        same = [r for r in rows if r[column] == value]
        if same:
            same[0][flag] = 1
        else:
            rows.append({column: value, flag: 1})
    return tables


class Erpnext(Connector):
    key = "erpnext"
    kind = "erp"
    title = "ERPNext / Frappe"
    docs_url = "https://frappeframework.com/docs/user/en/guides/integration/webhooks"
    settings = (
        Setting("url", "The site address, e.g. https://erp.example.com", required=True,
                example="https://erp.example.com"),
        Setting("time_zone", "The site's time zone (System Settings), in which Frappe writes "
                "`modified`; default UTC", example="UTC"),
        Setting("require_signature", "true to refuse deliveries without "
                "X-Frappe-Webhook-Signature (tick Enable Security on every webhook)",
                example="false"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("api_key", "API key of the API user (User > Settings > API Access)",
                secret=True, example="0a1b2c3d4e5f6a7"),
        Setting("api_secret", "API secret generated with the key", secret=True,
                example="9f8e7d6c5b4a3f2"),
    )
    events = {"Customer": "customer", "Contact": "contact"}
    kept_headers = ()
    # Frappe: 404 DoesNotExistError (a delete of what is gone), 409 DuplicateEntryError (the
    # record is refused, retrying will not help).
    error_table = {404: Action.SKIP, 409: Action.REJECT}

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """The signature when Frappe sends one ("Enable Security"), else the URL token."""
        if SIGNATURE_HEADER in request.headers:
            verify_base64_hmac(request.body, request.headers.get(SIGNATURE_HEADER), secrets,
                               SIGNATURE_HEADER)
        else:
            verify_url_token(request, secrets)

    def check_sender(self, request: WebhookRequest, settings: Any) -> None:
        required = str(settings.get("require_signature") or "").lower() in ("true", "1", "yes")
        if required and SIGNATURE_HEADER not in request.headers:
            raise SignatureError(f"this connection requires {SIGNATURE_HEADER}; tick Enable "
                                 "Security on the Frappe webhook")

    def identify(self, request: WebhookRequest) -> Delivery:
        doctype, name, modified = _keys(json_object(request.body))
        key = f"{doctype}:{name}:{modified}"
        if len(key) > MAX_KEY:  # document names may be up to 140 characters
            key = f"{doctype}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return Delivery(key=key, event_type=doctype, headers={})

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        doc = json_object(body)
        doctype, name, modified = _keys(doc)
        observed = site_time(modified, str(connection.settings.get("time_zone") or "UTC"))
        context = meta(connection, doctype=doctype)
        if doctype not in DOCTYPES:
            raise PayloadError(f"the hub reads Customer and Contact documents, not {doctype}")
        return [SourceRecord(DOCTYPES[doctype], name, observed, {**doc, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        url = str(connection.settings.get("url") or "").rstrip("/")
        if not url.startswith("https://"):
            raise ConfigurationError("the ERPNext url setting must be an https:// address")
        token = FrappeToken(credential(connection, "api_key", self.title),
                            credential(connection, "api_secret", self.title))
        return VendorHttp(url, token, error_table=self.error_table)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [self._stream("customers", "Customer"), self._stream("contacts", "Contact")]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"contact": ErpnextContacts()}

    @staticmethod
    def _stream(name: str, doctype: str) -> Stream:
        return Stream(
            name=name, object_type=DOCTYPES[doctype], path=f"/api/resource/{doctype}",
            records_path="data", primary_key="name", replication_key="modified",
            paginator=OffsetPaginator("limit_page_length", "limit_start", PAGE_SIZE),
            params={"fields": '["*"]', "order_by": "modified asc"},
            since=lambda bookmark: {"filters": json.dumps([["modified", ">=", bookmark]])},
        )


def _keys(doc: dict[str, Any]) -> tuple[str, str, str]:
    doctype, name, modified = doc.get("doctype"), doc.get("name"), doc.get("modified")
    if not isinstance(doctype, str) or not doctype:
        raise PayloadError("the body has no doctype: use the webhook JSON template from the "
                           "hub's ERPNext guide", pointer="/doctype")
    if not isinstance(name, str | int) or isinstance(name, bool) or name == "":
        raise PayloadError("the body has no document name", pointer="/name")
    if not isinstance(modified, str) or not modified:
        raise PayloadError("the body has no modified time", pointer="/modified")
    return doctype, str(name), modified


def site_time(value: str, zone: str) -> datetime:
    """Frappe's `2026-11-20 19:32:08.123456`, written in the site's zone, as UTC."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {zone!r} in the ERPNext connection") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"bad modified time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)
