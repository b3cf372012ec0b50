"""Odoo (17 and later): partners from automation-rule webhooks, pulled and pushed by JSON-RPC.

Follows Odoo's documentation and source:
- Automation rules with the action "Send Webhook Notification": a POST of JSON holding `_model`,
  `_id`, `_action` and the fields the admin selected (read with load=None, so a many2one field
  is a bare id), sent once after commit with a 1 s timeout, never retried, never signed:
  https://www.odoo.com/documentation/17.0/applications/studio/automated_actions.html and
  odoo/addons/base/models/ir_actions.py (`_run_action_webhook`)
- External API: JSON-RPC `POST /jsonrpc`, service `common` method `authenticate`, service
  `object` method `execute_kw(db, uid, api_key, model, method, args, kwargs)`; search_read with
  domain/fields/offset/limit/order, create (a list of values), write, unlink; errors come back
  with HTTP 200 and an `error` object:
  https://www.odoo.com/documentation/17.0/developer/reference/external_api.html
- res.partner fields (name, email, phone, mobile, street, street2, city, zip, state_id,
  country_id, country_code, parent_id, company_name, function, is_company, write_date; with
  Accounting: credit, trust; with Discuss: is_blacklisted):
  https://github.com/odoo/odoo/blob/17.0/odoo/addons/base/models/res_partner.py
Odoo publishes no API rate limit. Datetimes (write_date) are UTC without an offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

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
)
from connectors.http import SkippedError, VendorHttp, VendorRequestError
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import OffsetPaginator, Page, Stream, place
from hub.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    RejectedRecordError,
)
from hub.domain.transforms import TransformError, datetime_utc
from hub.redaction import redact

MODEL = "res.partner"
PAGE_SIZE = 200
BATCH_SIZE = 50
PARTNER_FIELDS = (
    "id", "name", "email", "phone", "mobile", "street", "street2", "city", "zip", "state_id",
    "country_id", "country_code", "parent_id", "parent_name", "company_name", "function",
    "is_company", "active", "write_date", "credit", "trust", "is_blacklisted",
)
_KWARGS = 6  # execute_kw(db, uid, key, model, method, args, kwargs): where kwargs sit
BOOLEANS = frozenset({"is_company", "active", "is_blacklisted", "phone_sanitized_blacklisted",
                      "employee", "is_public"})


def cleaned(record: dict[str, Any]) -> dict[str, Any]:
    """Odoo writes `false` for every empty field; mappings read null there (but a real boolean
    field keeps its false)."""
    return {k: None if v is False and k not in BOOLEANS else v for k, v in record.items()}


class MissingRecordError(RejectedRecordError):
    title = "Record no longer exists"


def raise_rpc_error(body: Any, write: bool) -> None:
    """Odoo answers 200 with an `error` object; turn it into the hub's typed errors."""
    error = body.get("error") if isinstance(body, dict) else None
    if not error:
        return
    data = error.get("data") or {}
    name = str(data.get("name") or "")
    message = redact(str(data.get("message") or error.get("message") or "Odoo error"), 300)
    if name.endswith("AccessDenied"):
        raise AuthenticationError(f"Odoo refused the login or API key: {message}")
    if name.endswith("AccessError"):
        raise ConfigurationError(f"the Odoo API user may not do this: {message}")
    if name.endswith("MissingError"):
        raise MissingRecordError(message)
    if "Invalid field" in message:
        raise ConfigurationError(f"{message}; list the fields this database has in the "
                                 "connection's partner_fields setting")
    if write or name.endswith(("ValidationError", "UserError")):
        raise RejectedRecordError(f"Odoo refused the record: {message}")
    raise VendorRequestError(f"Odoo answered an error: {message}")


@dataclass
class OdooRpc:
    """execute_kw over JSON-RPC; the user id is looked up once unless the settings give it."""

    database: str
    username: str
    api_key: str
    uid: int | None = None

    def call(self, http: VendorHttp, model: str, method: str, args: list[Any],
             kwargs: dict[str, Any] | None = None, *, write: bool = False) -> Any:
        response = self.post(http, "object", "execute_kw",
                             [self.database, self.login(http), self.api_key, model, method, args,
                              kwargs or {}], write=write)
        return response.json().get("result")

    def post(self, http: VendorHttp, service: str, method: str, args: list[Any], *,
             write: bool = False) -> requests.Response:
        body = {"jsonrpc": "2.0", "method": "call", "id": 1,
                "params": {"service": service, "method": method, "args": args}}
        response = http.request("POST", "/jsonrpc", json=body, write=write)
        raise_rpc_error(response.json(), write)
        return response

    def login(self, http: VendorHttp) -> int:
        if self.uid is None:
            result = self.post(http, "common", "authenticate",
                               [self.database, self.username, self.api_key, {}]).json()
            uid = result.get("result")
            if isinstance(uid, bool) or not isinstance(uid, int):
                raise AuthenticationError("Odoo refused the username or API key (authenticate "
                                          "returned no user id)")
            self.uid = uid
        return self.uid


@dataclass
class RpcOffsetPaginator(OffsetPaginator):
    """offset/limit inside the execute_kw keyword arguments; a short page is the last one."""

    limit_param: str = "limit"
    offset_param: str = "offset"
    page_size: int = PAGE_SIZE

    def next(self, page: Page) -> dict[str, Any] | None:
        if len(page.records) < self.page_size:
            return None
        body = page.response.request.body
        sent = json.loads(body if isinstance(body, bytes | str) else b"{}")
        offset = int(sent["params"]["args"][_KWARGS].get("offset", 0))
        return {self.limit_param: self.page_size, self.offset_param: offset + self.page_size}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        return {"jsonrpc": "2.0", "id": 1, **place(records, records_path)}, {}


@dataclass
class PartnerStream(Stream):
    """search_read on res.partner through execute_kw, oldest change first."""

    rpc: OdooRpc | None = None
    fields: tuple[str, ...] = PARTNER_FIELDS

    def read(self, http: VendorHttp, bookmark: str | None = None) -> Iterator[Page]:
        for page in super().read(http, bookmark):
            yield Page([cleaned(r) for r in page.records], page.response)

    def _get(self, http: VendorHttp, params: dict[str, Any]) -> requests.Response:
        assert self.rpc is not None
        kwargs = {"fields": list(self.fields), "order": "write_date asc, id asc",
                  "limit": params["limit"], "offset": params["offset"]}
        args = [self.rpc.database, self.rpc.login(http), self.rpc.api_key, MODEL, "search_read",
                [params.get("domain") or []], kwargs]
        return self.rpc.post(http, "object", "execute_kw", args)


@dataclass
class OdooPartners(Sink):
    """Creates go in one `create` call per batch (all or nothing, so a refusal falls back to
    one by one); updates are one `write` each. Delete unlinks, or archives a partner Odoo keeps
    because documents use it. An ISO country code is turned into Odoo's country id."""

    rpc: OdooRpc
    countries: dict[str, int | None] = field(default_factory=dict)
    batch_size = BATCH_SIZE
    can_delete = True

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        creates = [r for r in records if not r.external_id]
        results: dict[int, PushResult] = {}
        if creates:
            values = [self.values(http, r.payload) for r in creates]
            ids = self.rpc.call(http, MODEL, "create", [values], write=True)
            for record, new_id in zip(creates, _as_list(ids), strict=True):
                results[id(record)] = PushResult(record.hub_id, Outcome.CREATED, str(new_id))
        for record in records:
            if record.external_id:
                results[id(record)] = self.update(http, record)
        return [results[id(r)] for r in records]

    def update(self, http: VendorHttp, record: OutboundRecord) -> PushResult:
        ext = str(record.external_id)
        if not ext.isdigit():
            return PushResult(record.hub_id, Outcome.REJECTED, ext, f"{ext!r} is not an Odoo id")
        try:
            self.rpc.call(http, MODEL, "write", [[int(ext)], self.values(http, record.payload)],
                          write=True)
        except RejectedRecordError as exc:
            return PushResult(record.hub_id, Outcome.REJECTED, ext, exc.detail)
        return PushResult(record.hub_id, Outcome.UPDATED, ext)

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        if not external_id.isdigit():
            raise SkippedError(f"{external_id!r} is not an Odoo id")
        try:
            self.rpc.call(http, MODEL, "unlink", [[int(external_id)]], write=True)
        except MissingRecordError:
            raise SkippedError(f"partner {external_id} is already gone") from None
        except RejectedRecordError as refused:
            self.rpc.call(http, MODEL, "write", [[int(external_id)], {"active": False}],
                          write=True)
            return PushResult(0, Outcome.DELETED, external_id, f"archived: {refused.detail}")
        return PushResult(0, Outcome.DELETED, external_id)

    def values(self, http: VendorHttp, payload: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in payload.items() if k != "country_code"}
        code = payload.get("country_code")
        if isinstance(code, str) and code:
            if code not in self.countries:
                found = self.rpc.call(http, "res.country", "search_read",
                                      [[["code", "=", code.upper()]]],
                                      {"fields": ["id"], "limit": 1})
                self.countries[code] = found[0]["id"] if found else None
            if self.countries[code]:
                values["country_id"] = self.countries[code]
        return values


def _as_list(ids: Any) -> list[Any]:
    return ids if isinstance(ids, list) else [ids]


class Odoo(Connector):
    key = "odoo"
    kind = "erp"
    title = "Odoo"
    docs_url = ("https://www.odoo.com/documentation/17.0/applications/studio/"
                "automated_actions.html")
    settings = (
        Setting("url", "The Odoo address, e.g. https://mycompany.odoo.com", required=True,
                example="https://mycompany.odoo.com"),
        Setting("database", "The database name", required=True, example="mycompany"),
        Setting("username", "Login of the API user", required=True,
                example="api@mycompany.example"),
        Setting("user_id", "The API user's numeric id (optional: saves a login call)",
                example="2"),
        Setting("partner_fields", "Comma-separated res.partner fields to pull (default: the "
                "fields the mapping reads; drop credit,trust without Accounting)",
                example="id,name,email,phone,write_date"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("api_key", "An API key of the API user (Preferences > Account Security)",
                secret=True, example="0123456789abcdef0123456789abcdef01234567"),
    )
    events = {MODEL: "partner"}
    kept_headers = ()

    # verify: the default URL token (?token=...): Odoo signs nothing.

    def identify(self, request: WebhookRequest) -> Delivery:
        data = json_object(request.body)
        model, record_id, written = _keys(data)
        return Delivery(key=f"{model}:{record_id}:{written}", event_type=model, headers={})

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        data = json_object(body)
        model, record_id, written = _keys(data)
        context = meta(connection, model=model, action=data.get("_action"))
        return [SourceRecord("partner", str(record_id), _utc(written),
                             {**cleaned(data), "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        url = str(connection.settings.get("url") or "").rstrip("/")
        if not url.startswith("https://"):
            raise ConfigurationError("the Odoo url setting must be an https:// address")
        return VendorHttp(url)

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        wanted = str(connection.settings.get("partner_fields") or "")
        fields = tuple(f.strip() for f in wanted.split(",") if f.strip()) or PARTNER_FIELDS
        return [PartnerStream(
            name="partners", object_type="partner", path="/jsonrpc", records_path="result",
            primary_key="id", replication_key="write_date", paginator=RpcOffsetPaginator(),
            method="POST", rpc=self.rpc(connection), fields=fields,
            params={"domain": [["active", "in", [True, False]]]},
            since=lambda bookmark: {"domain": [["active", "in", [True, False]],
                                               ["write_date", ">=", bookmark]]},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {"partner": OdooPartners(self.rpc(connection))}

    def rpc(self, connection: ConnectionContext) -> OdooRpc:
        user_id = str(connection.settings.get("user_id") or "")
        return OdooRpc(str(connection.settings.get("database") or ""),
                       str(connection.settings.get("username") or ""),
                       credential(connection, "api_key", self.title),
                       int(user_id) if user_id.isdigit() else None)


def _keys(data: dict[str, Any]) -> tuple[str, int, str]:
    model, record_id, written = data.get("_model"), data.get("_id"), data.get("write_date")
    if not isinstance(model, str) or not model:
        raise PayloadError("the body has no _model: is this an Odoo webhook?", pointer="/_model")
    if isinstance(record_id, bool) or not isinstance(record_id, int):
        raise PayloadError("the body has no integer _id", pointer="/_id")
    if not isinstance(written, str) or not written:
        raise PayloadError("the body has no write_date: add Last Updated on (write_date) to "
                           "the webhook's fields", pointer="/write_date")
    return model, record_id, written


def _utc(value: str) -> datetime:
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"bad write_date: {exc}") from None
