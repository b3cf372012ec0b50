"""Mailchimp: audience webhooks in; audience members pulled and pushed through the Marketing API.

Follows Mailchimp's documentation:
- Webhooks (GET validation that must answer 200, then form-encoded POSTs of `type`, `fired_at`
  and `data[...]`; no signature, so a secret goes in the URL; 10 s timeout, retries over
  75 minutes): https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/
  and https://mailchimp.com/developer/marketing/api/list-webhooks/
- Event payloads (subscribe, unsubscribe with `action` unsub/delete and `reason`
  manual/abuse, profile, upemail with `old_email`/`new_email`/`new_id`, cleaned with `reason`
  hard/abuse, campaign): Mailchimp's webhook guide, "sample data" section
  https://mailchimp.com/developer/guides/about-webhooks/ (legacy page, same samples)
- List members (`count`/`offset`, `total_items`, `since_last_changed`; the member `id` is the
  MD5 hash of the lower-cased address): https://mailchimp.com/developer/marketing/api/list-members/
- Add or update a member (`PUT /lists/{list_id}/members/{subscriber_hash}`, `status_if_new`),
  archive (`DELETE`) and permanent delete (`POST .../actions/delete-permanent`):
  https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/
- Base URL from the API key's data-center suffix, HTTP Basic with any user name:
  https://mailchimp.com/developer/marketing/docs/fundamentals/#api-structure
- Limits (10 simultaneous connections, 429 over it): https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits

The member's id in the hub is Mailchimp's subscriber hash, computed here from the address, so a
webhook (which carries no hash) and a pulled member land on the same external id. The hash
follows the address: see docs/decisions/0011-email-marketing-identity-and-consent.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

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
from connectors.http import Action, BasicAuth, VendorHttp
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import OffsetPaginator, Page, Stream, place
from hub.domain.errors import ConfigurationError, PayloadError, SignatureError
from hub.domain.paths import parse_path, resolve
from hub.domain.transforms import TransformError, datetime_utc

MEMBER_EVENTS = ("subscribe", "unsubscribe", "profile", "upemail", "cleaned")
DELETE_MODES = ("permanent", "archive")
MAX_KEY = 255  # the inbox's delivery key column


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def data_center(api_key: str) -> str:
    """`0123...-us21` -> `us21`: Mailchimp API keys end with the account's data center."""
    _, dash, suffix = api_key.rpartition("-")
    if not dash or not re.fullmatch(r"[a-z]+[0-9]+", suffix):
        raise ConfigurationError("the Mailchimp API key must end with its data center, like "
                                 "-us21; copy the whole key from Profile > Extras > API keys")
    return suffix


@dataclass
class TotalOffsetPaginator(OffsetPaginator):
    """limit/offset paging that stops where the vendor's own total says (Mailchimp
    `total_items`, ActiveCampaign `meta.total`), so a full last page costs no extra request and
    a short page in the middle does not end the read early. Without a total it falls back to
    "a short page is the last one"; an empty page always ends it."""

    total_path: str = "total"

    def next(self, page: Page) -> dict[str, Any] | None:
        if not page.records:
            return None
        total = _whole(resolve(page.response.json(), parse_path(self.total_path)))
        if total is None:
            return super().next(page)
        offset = _whole(_query(page).get(self.offset_param)) or 0
        seen = offset + len(page.records)
        if seen >= total:
            return None
        return {self.limit_param: self.page_size, self.offset_param: seen}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        more = page < pages - 1
        body.update(place(1_000_000 * pages if more else len(records), self.total_path))
        return body, {}


def _query(page: Page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.response.url).query))


def _whole(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def bounded_key(*parts: str) -> str:
    """A delivery key that fits the inbox column whatever the vendor put in it."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def form_body(body: bytes) -> dict[str, Any]:
    """The form as nested dicts, with `type` checked (the receiver stores it as event type)."""
    form = form_fields(body)
    event_type = form.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise PayloadError("the form has no 'type' field", pointer="type")
    if len(event_type) > 64:
        raise PayloadError("the form's 'type' is longer than any event type", pointer="type")
    return form


def text_field(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"the form has no '{name}' field", pointer=name)
    return value.strip()


def utc_time(value: str, name: str) -> datetime:
    try:
        return datetime_utc(value)
    except TransformError as exc:
        raise PayloadError(f"'{name}' is not a date and time: {exc}", pointer=name) from None


class MailchimpMembers(Sink):
    """One member per request: PUT with `status_if_new` is an upsert that never re-subscribes
    an existing member. The synchronous batch endpoint (`POST /lists/{id}`) has no
    `status_if_new`, and `/batches` is asynchronous (poll, then download results), so neither
    is used; 10 simultaneous connections are plenty for one-by-one writes."""

    batch_size = 1
    can_delete = True

    def __init__(self, list_id: str, delete_mode: str) -> None:
        self.members = f"/lists/{quote(list_id, safe='')}/members"
        self.delete_mode = delete_mode

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            email = record.payload.get("email_address")
            member = subscriber_hash(email) if isinstance(email, str) and email.strip() \
                else record.external_id
            if not member:
                results.append(PushResult(record.hub_id, Outcome.REJECTED, None,
                                          "no email_address to add the member with"))
                continue
            answer = http.request("PUT", f"{self.members}/{member}", json=record.payload,
                                  write=True).json()
            outcome = Outcome.UPDATED if record.external_id == member else Outcome.CREATED
            results.append(PushResult(record.hub_id, outcome, str(answer.get("id") or member)))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        """Erase (or archive) a member; one that is already gone answers 404, which is done."""
        gone_is_done = replace(http, error_table={**http.error_table, 404: Action.SKIP})
        member = f"{self.members}/{quote(external_id, safe='')}"
        if self.delete_mode == "archive":
            gone_is_done.request("DELETE", member, write=True)
        else:
            gone_is_done.request("POST", f"{member}/actions/delete-permanent", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


class Mailchimp(Connector):
    key = "mailchimp"
    kind = "email_marketing"
    title = "Mailchimp"
    docs_url = "https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/"
    settings = (
        Setting("list_id", "The audience id (Audience > Settings > Audience name and "
                "defaults); deliveries for another audience are refused", required=True,
                example="5e8a1c0b7d"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code when the address has none", example="US"),
        Setting("delete_mode", "How an erasure removes a member: 'permanent' (GDPR delete; "
                "the address cannot be re-imported) or 'archive'", example="permanent"),
        Setting("api_key", "A Marketing API key (ends with the data center, e.g. -us21), for "
                "pulling and pushing members; webhooks alone need none", secret=True,
                example="0123456789abcdef0123456789abcdef-us21"),
    )
    events = dict.fromkeys(MEMBER_EVENTS, "member")
    # Mailchimp limits simultaneous connections (10 per user), not a rate; 10 requests a
    # second, each taking well under a second, stays within it.
    rate_limit = RateLimit(requests=10, seconds=1.0)

    def handshake(self, request: WebhookRequest) -> tuple[int, Any] | None:
        """Mailchimp checks a new webhook URL with a GET that must answer 200."""
        return (200, "ok") if request.method == "GET" else None

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        """A delivery for another audience is not this connection's to accept."""
        expected = settings.get("list_id")
        data = form_fields(request.body).get("data")
        given = data.get("list_id") if isinstance(data, dict) else None
        if expected and given and given != expected:
            raise SignatureError("data[list_id] is not this connection's audience")

    def identify(self, request: WebhookRequest) -> Delivery:
        """No delivery id: `type` + `fired_at` + the member (data[id], else the address)."""
        form = form_body(request.body)
        event_type = form["type"].strip()
        fired_at = text_field(form, "fired_at")
        raw = form.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        who = _first(data, "id", "new_id")
        if not who:
            address = _first(data, "email", "new_email")
            who = subscriber_hash(address) if address else \
                "body-" + hashlib.sha256(request.body).hexdigest()[:32]
        return Delivery(key=bounded_key(event_type, fired_at, who), event_type=event_type)

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        form = form_body(body)
        data = form.get("data")
        if not isinstance(data, dict):
            raise PayloadError("the form has no data[...] fields", pointer="data")
        fired_at = text_field(form, "fired_at")
        observed = utc_time(fired_at, "fired_at")
        extra: dict[str, Any] = {}
        previous = None
        if delivery.event_type == "upemail":
            # Mailchimp's member id is the hash of the address, so the member is renamed:
            # the record carries the new id and names the old one (an id succession).
            old, new = _address(data, "old_email"), _address(data, "new_email")
            previous, external_id = subscriber_hash(old), subscriber_hash(new)
            extra = {"previous_id": previous, "new_member_id": external_id, "old_email": old}
        else:
            external_id = subscriber_hash(_address(data, "email"))
        context = meta(connection, event_type=delivery.event_type, fired_at=fired_at,
                       list_id=data.get("list_id"), reason=data.get("reason"),
                       action=data.get("action"), **extra)
        return [SourceRecord("member", external_id, observed, {**form, "_meta": context},
                             previous_external_id=previous)]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        api_key = credential(connection, "api_key", self.title)
        return VendorHttp(f"https://{data_center(api_key)}.api.mailchimp.com/3.0",
                          BasicAuth("hub", api_key))

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="members", object_type="member",
            path=f"/lists/{quote(_list_id(connection), safe='')}/members",
            records_path="members", primary_key="id", replication_key="last_changed",
            paginator=TotalOffsetPaginator("count", "offset", 1000, total_path="total_items"),
            since=lambda bookmark: {"since_last_changed": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        mode = str(connection.settings.get("delete_mode") or "permanent")
        if mode not in DELETE_MODES:
            raise ConfigurationError(f"Mailchimp delete_mode must be one of "
                                     f"{', '.join(DELETE_MODES)}, not {mode!r}")
        return {"member": MailchimpMembers(_list_id(connection), mode)}


def _first(data: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _address(data: dict[str, Any], name: str) -> str:
    value = _first(data, name)
    if not value:
        raise PayloadError(f"the form has no data[{name}]", pointer=f"data[{name}]")
    return value


def _list_id(connection: ConnectionContext) -> str:
    list_id = connection.settings.get("list_id")
    if not list_id:
        raise ConfigurationError(f"Mailchimp connection {connection.name!r} has no list_id; "
                                 "add the audience id with `hub connections update "
                                 f"{connection.name} --setting list_id=...`")
    return str(list_id)
