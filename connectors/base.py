"""The connector contract: what a tool sends, how it is verified, and what records it yields.

A connector is a description (key, kind, settings, events) plus three small pure steps the hub
calls in order: `verify` (on the raw bytes, before anything is parsed), `identify` (the
vendor's delivery id and event type, to persist and deduplicate), and, later in a worker,
`parse` (the source records the delivery carries). A connection is one configured instance.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from connectors.http import Action, VendorHttp
from hub.domain.errors import ConfigurationError, PayloadError, SignatureError

if TYPE_CHECKING:
    from connectors.sinks import Sink
    from connectors.streams import Stream


class Headers(dict[str, str]):
    """HTTP headers with case-insensitive lookup (vendors and proxies disagree on case)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__({k.lower(): v for k, v in (items or {}).items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str
    headers: Headers
    body: bytes
    received_at: datetime
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What the receiver persists: the vendor's dedupe key and event type, and the headers worth
    keeping to parse the body later (never the signature headers)."""

    key: str
    event_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRecord:
    """One record a delivery carries, before mapping. `payload` is what mapping paths read.

    A thin delivery (Eventbrite, QuickBooks) only names what changed: `fetch` is then the URL
    the worker reads the record from, with the connection's own credentials, before mapping.
    """

    object_type: str
    external_id: str | None
    observed_at: datetime
    payload: dict[str, Any]
    fetch: str | None = None
    previous_external_id: str | None = None  # the tool renamed the person's id (Mailchimp)


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    required: bool = False
    secret: bool = False
    example: str = ""


@dataclass(frozen=True)
class ConnectionContext:
    """The connection a connector serves. Credentials (API keys, OAuth tokens) are for the
    connector's HTTP client only: they never enter a payload, a mapping or a log."""

    name: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimit:
    """The vendor's documented limit: `requests` per `seconds` (per connection)."""

    requests: int
    seconds: float


KINDS = ("email_marketing", "ecommerce", "scheduling", "erp", "crm", "forms", "sheets",
         "generic")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Settings every connection accepts, whatever its tool: how the nightly sync treats it.
SYNC_SETTINGS = (
    Setting("sync_cron", "When the nightly sync runs, as a cron expression in HUB_TIMEZONE "
            "(default 0 2 * * *); off: never on a schedule", example="0 2 * * *"),
    Setting("push", "Which golden records the sync writes into this tool: linked (default: "
            "contacts the tool already holds), all, or off", example="linked"),
    Setting("rate_limit", "The vendor's request rate as requests/seconds when your plan allows "
            "more than the documented default (e.g. 100/1)", example="25/1"),
    Setting("api_base_url", "Call this base URL instead of the vendor's API (loopback only: a "
            "local fake vendor for tests and benchmarks)", example="http://127.0.0.1:8099"),
)


def loopback_base_url(value: str) -> str:
    """An API base URL override, refused unless it is http(s) on this machine: the override
    exists for fake vendors, and must never send a connection's credentials elsewhere."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigurationError("api_base_url must be an http(s) URL on 127.0.0.1, localhost "
                                 "or ::1 (it exists for local fake vendors)")
    return value.strip().rstrip("/")


class Connector:
    key: ClassVar[str]
    kind: ClassVar[str]
    title: ClassVar[str]
    docs_url: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = ()
    events: ClassVar[dict[str, str]] = {}  # event type -> object type it yields
    kept_headers: ClassVar[tuple[str, ...]] = ()
    rate_limit: ClassVar[RateLimit | None] = None
    error_table: ClassVar[dict[int, Action]] = {}
    accepted_status: ClassVar[int] = 202  # what an accepted delivery is answered with

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """Raise SignatureError unless the request is signed with one of `secrets`.

        Vendors that sign nothing are given an unguessable token in the webhook URL
        (`?token=...`); the default compares it, in constant time, with the secrets.
        """
        verify_url_token(request, secrets)

    def handshake(self, request: WebhookRequest) -> tuple[int, Any] | None:
        """An answer for a vendor's set-up request (Mailchimp's GET, WooCommerce's ping) that
        is not a delivery; None for ordinary deliveries."""
        return None

    def client(self, connection: ConnectionContext) -> VendorHttp:
        """The HTTP client for this connection's API (pull, push, fetch)."""
        raise ConfigurationError(f"{self.title} has no API client in the hub yet")

    def api_client(self, connection: ConnectionContext) -> VendorHttp:
        """`client()`, sent to the connection's `api_base_url` when one is set (a fake vendor
        on loopback); what the hub calls instead of `client()`."""
        http = self.client(connection)
        override = str(connection.settings.get("api_base_url") or "")
        if override:
            http.base_url = loopback_base_url(override)
        return http

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return []

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        return {}

    def fetch(self, http: VendorHttp, record: SourceRecord) -> SourceRecord:
        """Resolve a thin record by reading `record.fetch` with the connection's client."""
        raise ConfigurationError(f"{self.title} does not fetch thin records")

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        probe = ConnectionContext("probe", {s.name: s.example for s in cls.settings},
                                  {s.name: s.example or "x" for s in cls.settings if s.secret})
        instance = cls()
        sinks = instance.sinks(probe)
        return {"webhooks": bool(cls.events), "pull": bool(instance.streams(probe)),
                "push": bool(sinks), "delete": any(s.can_delete for s in sinks.values())}

    @classmethod
    def split_settings(cls, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(settings, credentials) checked against the spec; errors name every problem."""
        spec = {s.name: s for s in (*cls.settings, *SYNC_SETTINGS)}
        problems = [f"unknown setting {k!r} (known: {', '.join(spec) or 'none'})"
                    for k in values if k not in spec]
        problems += [f"missing required setting {s.name!r}: {s.description}"
                     for s in cls.settings if s.required and not values.get(s.name)]
        if values.get("api_base_url"):
            try:
                loopback_base_url(str(values["api_base_url"]))
            except ConfigurationError as exc:
                problems.append(exc.detail)
        if problems:
            raise ConfigurationError(f"{cls.title} connection: " + "; ".join(problems))
        settings = {k: v for k, v in values.items() if not spec[k].secret}
        credentials = {k: str(v) for k, v in values.items() if spec[k].secret}
        return settings, credentials

    def identify(self, request: WebhookRequest) -> Delivery:
        """The vendor's delivery key and event type; raise PayloadError when they are absent."""
        raise NotImplementedError

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        """The source records in a stored delivery (runs in a worker, never on the hot path)."""
        raise NotImplementedError

    def check_sender(self, request: WebhookRequest, settings: Mapping[str, Any]) -> None:
        """Refuse a correctly signed delivery meant for another account (after verify)."""

    def understands(self, event_type: str) -> bool:
        return event_type in self.events

    def keep_headers(self, headers: Headers) -> dict[str, str]:
        return {h: headers[h] for h in self.kept_headers if h in headers}


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a PayloadError that says what is wrong and where."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            pointer=f"char {exc.pos}",
        ) from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object", pointer="/")
    return data


def require(data: dict[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or value == "":
        raise PayloadError(f"the body has no valid {key!r}", pointer=f"/{key}")
    return value


def verify_url_token(request: WebhookRequest, secrets: list[str]) -> None:
    given = (request.query.get("token") or "").encode()
    if not given:
        raise SignatureError("the webhook URL has no ?token=; copy the URL the hub gave you")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given, secret.encode())
    if not matched:
        raise SignatureError("the token in the webhook URL is not this connection's")


def form_fields(body: bytes) -> dict[str, Any]:
    """A form-encoded body with bracketed keys (`data[merges][FNAME]=Ana`) as nested dicts,
    the way Mailchimp and ActiveCampaign post them. Numeric keys stay dict keys."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise PayloadError("the form body is not UTF-8 text") from None
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = [p for p in re.split(r"[\[\]]+", key) if p] or [key]
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError(f"form key {key!r} conflicts with another key")
            node = child
        node[parts[-1]] = value
    return result


def form_pairs(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as bracketed form pairs (`address[city]=Paris`), as Stripe expects them."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs.extend(form_pairs(value, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                pairs.append((f"{name}[{index}]", str(item)))
        elif value is not None:
            pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs


def credential(connection: ConnectionContext, name: str, title: str) -> str:
    value = connection.credentials.get(name)
    if not value:
        raise ConfigurationError(
            f"{title} connection {connection.name!r} has no {name!r}; add it with "
            f"`hub connections update {connection.name} --setting {name}=...`")
    return value


def meta(connection: ConnectionContext, **extra: Any) -> dict[str, Any]:
    """The `_meta` block every payload carries for mappings: connection settings and context."""
    return {"connection": connection.name, **dict(connection.settings), **extra}
