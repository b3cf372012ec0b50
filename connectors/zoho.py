"""Zoho Books and Zoho Invoice: contacts from workflow-rule webhooks, pulled and pushed by API.

Follows Zoho's documentation:
- Contacts API (contact_id, contact_name, company_name, contact_persons[], billing_address,
  outstanding_receivable_amount, last_modified_time; create POST /contacts, update
  PUT /contacts/{id}, delete DELETE /contacts/{id}): https://www.zoho.com/books/api/v3/contacts/
  and, for Zoho Invoice (same contact shape, organisation in a header),
  https://www.zoho.com/invoice/api/v3/contacts/
- Pagination (page, per_page up to 200, page_context.has_more_page):
  https://www.zoho.com/books/api/v3/pagination/
- OAuth 2.0 (refresh at accounts.zoho.<dc>/oauth/v2/token; header
  `Authorization: Zoho-oauthtoken <token>`; data centres com, eu, in, com.au, jp, ca, com.cn,
  sa): https://www.zoho.com/books/api/v3/oauth/ and
  https://www.zoho.com/accounts/protocol/oauth/multi-dc.html
- Workflow-rule webhooks (URL, method, entity parameters, default or raw JSON payload; no
  signature the hub can rely on, so the URL carries the connection's token):
  https://www.zoho.com/books/help/settings/automation/workflow-actions/webhooks.html and
  https://www.zoho.com/books/api/v3/webhooks/
- Rate limit (100 requests per minute per organisation; 429):
  https://www.zoho.com/books/api/v3/introduction/#api-call-limit
A webhook body is either Zoho's default payload ({"contact": {...}}), a raw JSON template the
admin pasted (the contact's own keys), or form fields (entity parameters); all three are read.
A body with only contact_id and last_modified_time is thin: the contact is read back by API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    form_fields,
    meta,
)
from connectors.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Action,
    OAuth2Refresh,
    SkippedError,
    VendorHttp,
    retry_after_header,
)
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import PageNumberPaginator, Stream
from hub.domain.errors import ConfigurationError, PayloadError, RejectedRecordError
from hub.domain.transforms import TransformError, datetime_utc

DATA_CENTRES = ("com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa")
PRODUCTS = {"books": "books", "invoice": "invoice"}
PAGE_SIZE = 200
MINUTE = 60.0
PERSON_KEYS = ("first_name", "last_name", "email", "phone", "mobile", "salutation",
               "designation", "department")


@dataclass
class ZohoAuth(OAuth2Refresh):
    """Zoho's own token header, and the organisation every call names (a query parameter for
    Zoho Books, a header for Zoho Invoice)."""

    organization_id: str = ""
    product: str = "books"

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        if self.access_token:
            headers["Authorization"] = f"Zoho-oauthtoken {self.access_token}"
        if self.product == "invoice":
            headers["X-com-zoho-invoice-organizationid"] = self.organization_id
        else:
            params.setdefault("organization_id", self.organization_id)

    def refresh(self, session: requests.Session) -> bool:
        try:
            response = session.post(self.token_url, data={
                "grant_type": "refresh_token", "refresh_token": self.refresh_token,
                "client_id": self.client_id, "client_secret": self.client_secret,
            }, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            body = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return False
        # Zoho answers 200 with {"error": "invalid_code"} for a refused refresh token.
        if not isinstance(body, dict) or not body.get("access_token"):
            return False
        self.access_token = body["access_token"]
        if self.on_refresh:
            self.on_refresh(self.access_token, self.refresh_token)
        return True


def wait_for(response: requests.Response) -> float:
    """Retry-After, else Zoho's X-Rate-Limit-Reset seconds, else the rest of the minute."""
    asked = retry_after_header(response)
    if asked is not None:
        return asked
    reset = response.headers.get("X-Rate-Limit-Reset", "")
    return float(reset) if reset.isdigit() else MINUTE


def zoho_time(bookmark: str) -> str:
    """A bookmark as Zoho writes times: 2026-11-10T14:22:31+0530."""
    try:
        return datetime_utc(bookmark).strftime("%Y-%m-%dT%H:%M:%S%z")
    except TransformError as exc:
        raise ConfigurationError(f"not a Zoho timestamp bookmark: {exc}") from None


class ZohoContacts(Sink):
    """One contact per request (Zoho has no batch endpoint for contacts). The person's name,
    email and phones go into contact_persons when the contact is created; on update Zoho would
    replace the contact persons, so only the contact's own fields are sent."""

    batch_size = 1
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            body, person = split_person(record.payload)
            if record.external_id:
                http.request("PUT", f"/contacts/{record.external_id}", json=body, write=True)
                results.append(PushResult(record.hub_id, Outcome.UPDATED, record.external_id))
                continue
            if person:
                body["contact_persons"] = [{**person, "is_primary_contact": True}]
            created = http.request("POST", "/contacts", json=body, write=True).json()
            contact_id = (created.get("contact") or {}).get("contact_id")
            results.append(PushResult(record.hub_id, Outcome.CREATED, str(contact_id)))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        http.request("DELETE", f"/contacts/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


def split_person(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {k: v for k, v in payload.items() if k not in PERSON_KEYS}
    return body, {k: v for k, v in payload.items() if k in PERSON_KEYS}


class Zoho(Connector):
    key = "zoho"
    kind = "erp"
    title = "Zoho Books / Zoho Invoice"
    docs_url = "https://www.zoho.com/books/api/v3/contacts/"
    settings = (
        Setting("product", "books (Zoho Books) or invoice (Zoho Invoice)", example="books"),
        Setting("data_center", "The Zoho data centre of the account: com, eu, in, com.au, jp, "
                "ca, com.cn or sa", example="com"),
        Setting("organization_id", "The organisation id (Settings > Organization Profile)",
                required=True, example="10234695"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("client_id", "OAuth client id of a Self Client or server app (api-console)",
                secret=True, example="1000.EXAMPLECLIENTID"),
        Setting("client_secret", "OAuth client secret", secret=True, example="client-secret"),
        Setting("refresh_token", "Refresh token with the ZohoBooks.contacts.ALL (or "
                "ZohoInvoice.contacts.ALL) scope", secret=True,
                example="1000.example.refresh.token"),
    )
    events = {"contact": "contact"}
    kept_headers = ("Content-Type",)
    rate_limit = RateLimit(requests=100, seconds=MINUTE)
    error_table = {404: Action.SKIP}  # deleting a contact that is already gone

    # verify: the default URL token (?token=...), as documented in docs/connectors/zoho.md.

    def identify(self, request: WebhookRequest) -> Delivery:
        contact = contact_in(request.body, request.headers.get("Content-Type", ""))
        contact_id, modified = _ids(contact)
        return Delivery(key=f"contact:{contact_id}:{modified}", event_type="contact",
                        headers=self.keep_headers(request.headers))

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        contact = contact_in(body, delivery.headers.get("Content-Type", ""))
        contact_id, modified = _ids(contact)
        observed = _utc(modified)
        context = meta(connection, event_type=delivery.event_type)
        if not contact.get("contact_name"):  # thin: only ids were sent
            return [SourceRecord("contact", contact_id, observed, {"_meta": context},
                                 fetch=f"{self._api(connection)}/contacts/{contact_id}")]
        payload = {**contact, "_person": primary_person(contact), "_meta": context}
        return [SourceRecord("contact", contact_id, observed, payload)]

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        assert record.fetch
        try:
            contact = http.request("GET", record.fetch).json().get("contact")
        except SkippedError:
            raise RejectedRecordError(
                f"Zoho contact {record.external_id} no longer exists") from None
        if not isinstance(contact, dict):
            raise RejectedRecordError(f"Zoho returned no contact for {record.external_id}")
        modified = contact.get("last_modified_time")
        observed = max(_utc(modified), record.observed_at) if modified else record.observed_at
        payload = {**contact, "_person": primary_person(contact),
                   "_meta": record.payload.get("_meta", {})}
        return SourceRecord("contact", record.external_id, observed, payload)

    def client(self, connection: ConnectionContext) -> VendorHttp:
        centre = self._centre(connection)
        auth = ZohoAuth(
            f"https://accounts.zoho.{centre}/oauth/v2/token",
            credential(connection, "client_id", self.title),
            credential(connection, "client_secret", self.title),
            credential(connection, "refresh_token", self.title),
            organization_id=str(connection.settings.get("organization_id") or ""),
            product=self._product(connection))
        return VendorHttp(self._api(connection), auth, error_table=self.error_table,
                          retry_after=wait_for)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="contacts", object_type="contact", path="/contacts", records_path="contacts",
            primary_key="contact_id", replication_key="last_modified_time",
            paginator=PageNumberPaginator(page_param="page", size_param="per_page",
                                          page_size=PAGE_SIZE,
                                          has_more_path="page_context.has_more_page"),
            params={"sort_column": "last_modified_time"},
            since=lambda bookmark: {"last_modified_time": zoho_time(bookmark)},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"contact": ZohoContacts()}

    def _api(self, connection: ConnectionContext) -> str:
        return f"https://www.zohoapis.{self._centre(connection)}/" \
               f"{self._product(connection)}/v3"

    @staticmethod
    def _centre(connection: ConnectionContext) -> str:
        centre = str(connection.settings.get("data_center") or "com").lower().lstrip(".")
        if centre not in DATA_CENTRES:
            raise ConfigurationError(f"unknown Zoho data centre {centre!r} (known: "
                                     f"{', '.join(DATA_CENTRES)})")
        return centre

    @staticmethod
    def _product(connection: ConnectionContext) -> str:
        product = str(connection.settings.get("product") or "books").lower()
        if product not in PRODUCTS:
            raise ConfigurationError(f"Zoho product must be books or invoice, not {product!r}")
        return PRODUCTS[product]


def contact_in(body: bytes, content_type: str) -> dict[str, Any]:
    """The contact a webhook carries, from a JSON or a form body."""
    if "x-www-form-urlencoded" in content_type.lower():
        data: Any = form_fields(body)
    else:
        try:
            data = json.loads(body)
        except UnicodeDecodeError:
            raise PayloadError("the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise PayloadError(f"the body is neither JSON nor a form: {exc.msg} at line "
                               f"{exc.lineno} column {exc.colno}") from None
    if isinstance(data, dict) and isinstance(data.get("JSONString"), str):
        data = _nested_json(data["JSONString"])
    if isinstance(data, dict) and isinstance(data.get("contact"), str):
        data = {"contact": _nested_json(data["contact"])}
    if isinstance(data, dict) and isinstance(data.get("contact"), dict):
        data = data["contact"]
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object or a form", pointer="/")
    return data


def _nested_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise PayloadError("a form field that should hold the contact's JSON does not") from None


def _ids(contact: dict[str, Any]) -> tuple[str, str]:
    contact_id, modified = contact.get("contact_id"), contact.get("last_modified_time")
    if contact_id in (None, "") or isinstance(contact_id, bool | dict | list):
        raise PayloadError("the webhook has no contact_id; add it to the webhook's payload",
                           pointer="/contact_id")
    if not isinstance(modified, str) or not modified:
        raise PayloadError("the webhook has no last_modified_time; add it to the webhook's "
                           "payload (the hub orders and deduplicates on it)",
                           pointer="/last_modified_time")
    return str(contact_id), modified


def primary_person(contact: dict[str, Any]) -> dict[str, Any]:
    """The primary contact person (or the first one), for mappings to read as `_person`."""
    persons = [p for p in contact.get("contact_persons") or [] if isinstance(p, dict)]
    primary = [p for p in persons if p.get("is_primary_contact")]
    return (primary or persons or [{}])[0]


def _utc(value: str) -> datetime:
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad last_modified_time: {exc}") from None
