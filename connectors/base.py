"""The connector contract: what a tool sends, how it is verified, and what records it yields.

A connector is a description (key, kind, settings, events) plus three small pure steps the hub
calls in order: `verify` (on the raw bytes, before anything is parsed), `identify` (the
vendor's delivery id and event type, to persist and deduplicate), and, later in a worker,
`parse` (the source records the delivery carries). A connection is one configured instance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from hub.domain.errors import PayloadError


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


@dataclass(frozen=True)
class Delivery:
    """What the receiver persists: the vendor's dedupe key and event type, and the headers worth
    keeping to parse the body later (never the signature headers)."""

    key: str
    event_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRecord:
    """One record a delivery carries, before mapping. `payload` is what mapping paths read."""

    object_type: str
    external_id: str | None
    observed_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    required: bool = False
    secret: bool = False
    example: str = ""


@dataclass(frozen=True)
class ConnectionContext:
    """What a connector may know about the connection it serves (never the secrets)."""

    name: str
    settings: Mapping[str, Any]


class Connector:
    key: ClassVar[str]
    kind: ClassVar[str]
    title: ClassVar[str]
    docs_url: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]] = ()
    events: ClassVar[dict[str, str]] = {}  # event type -> object type it yields
    kept_headers: ClassVar[tuple[str, ...]] = ()

    def verify(self, request: WebhookRequest, secrets: list[str]) -> None:
        """Raise SignatureError unless the request is signed with one of `secrets`."""
        raise NotImplementedError

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


def meta(connection: ConnectionContext, **extra: Any) -> dict[str, Any]:
    """The `_meta` block every payload carries for mappings: connection settings and context."""
    return {"connection": connection.name, **dict(connection.settings), **extra}
