"""POST /webhooks/<connection>: verify, persist, signal, answer; nothing more on this path.

The chain is the whole contract with the vendor: 404 for an unknown connection, 413 for an
oversized body, 401 for a bad signature (nothing stored), 400 for a body we cannot read, and
once the inbox row is committed, 202 — whatever happens to Redis afterwards. The same delivery
again answers 200 "duplicate"; an event type we do not handle is stored as ignored, answered 200.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import Engine

from connectors.base import Connector, Headers, WebhookRequest
from connectors.registry import get_connector
from hub.adapters.db import admin, inbox
from hub.domain.errors import NotFoundError, PayloadTooLargeError, WebhookError
from hub.runtime import Runtime
from hub.services.pii_scrub import PII_HEADER, scrub_body
from hub.web.errors import ApiError
from hub.web.group_commit import GroupCommitter

bp = Blueprint("webhooks", __name__)


@dataclass
class _Cached:
    info: admin.ConnectionInfo
    until: float


class ConnectionCache:
    """Connections by name for a few seconds: spares the hot path a query per delivery.
    Misses are never cached, so a new connection works at once."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, _Cached] = {}

    def get(self, engine: Engine, name: str) -> admin.ConnectionInfo | None:
        hit = self._items.get(name)
        if hit and hit.until > time.monotonic():
            return hit.info
        info = admin.get_connection(engine, name)
        if info is not None:
            self._items[name] = _Cached(info, time.monotonic() + self.ttl)
        return info


@bp.post("/webhooks/<name>")
def receive(name: str) -> Response:
    rt: Runtime = current_app.extensions["hub.runtime"]
    cache: ConnectionCache = current_app.extensions["hub.connections"]
    connection = cache.get(rt.engine, name)
    if connection is None or connection.status == "disabled":
        rt.dispatcher.delivery_received("unknown", "unknown_connection", wake=False)
        raise NotFoundError(f"no connection named {name!r} accepts webhooks here")
    try:
        response = _accept(rt, connection)
    except WebhookError as exc:
        rt.dispatcher.delivery_received(connection.name, f"rejected_{exc.status}", wake=False)
        raise
    return response


def _accept(rt: Runtime, connection: admin.ConnectionInfo) -> Response:
    body = _read_body(rt.settings.max_body_bytes)
    now = datetime.now(UTC)
    incoming = _incoming(body, now)
    connector = get_connector(connection.connector)
    early = connector.handshake(incoming)
    if early is not None:
        return _handshake_response(rt, connection, connector, incoming, early)
    connector.verify(incoming, list(connection.secrets))
    connector.check_sender(incoming, connection.settings)
    delivery = connector.identify(incoming)
    understood = connector.understands(delivery.event_type)
    stored, redacted = scrub_body(body)
    headers = {**delivery.headers, PII_HEADER: ",".join(redacted)} if redacted else \
        delivery.headers
    committer: GroupCommitter = current_app.extensions["hub.group_commit"]
    accepted = committer.accept(tag=connection.name, row={
        "connection_id": connection.id,
        "delivery_key": delivery.key,
        "event_type": delivery.event_type,
        "headers": headers,
        "body": stored,
        "status": inbox.ACCEPTED if understood else inbox.IGNORED,
        "received_at": now,
    })
    outcome = _outcome(accepted)
    status_code = connector.accepted_status if outcome == "accepted" else 200
    # written directly: Flask's JSON provider costs as much as the rest of the answer
    return Response(f'{{"event_id":{int(accepted.event_id)},"status":"{outcome}"}}\n',
                    status=status_code, mimetype="application/json")


@bp.get("/webhooks/<name>")
def handshake(name: str) -> Response:
    """Some vendors check a webhook URL with a GET before they use it (Mailchimp)."""
    rt: Runtime = current_app.extensions["hub.runtime"]
    cache: ConnectionCache = current_app.extensions["hub.connections"]
    connection = cache.get(rt.engine, name)
    if connection is None or connection.status == "disabled":
        raise NotFoundError(f"no connection named {name!r} accepts webhooks here")
    connector = get_connector(connection.connector)
    incoming = _incoming(b"", datetime.now(UTC))
    answer = connector.handshake(incoming)
    if answer is None:
        raise ApiError(405, "Method Not Allowed", "webhooks are delivered with POST")
    return _handshake_response(rt, connection, connector, incoming, answer)


def _incoming(body: bytes, now: datetime) -> WebhookRequest:
    return WebhookRequest(request.method, request.url, Headers(dict(request.headers)), body,
                          now, dict(request.args.items()))


def _handshake_response(rt: Runtime, connection: admin.ConnectionInfo, connector: Connector,
                        incoming: WebhookRequest, answer: tuple[int, Any]) -> Response:
    """A set-up request is authenticated like a delivery, then answered, never stored."""
    connector.verify(incoming, list(connection.secrets))
    status, body = answer
    rt.dispatcher.delivery_received(connection.name, "handshake", wake=False)
    response = jsonify(body) if isinstance(body, dict) else Response(str(body), status=status)
    response.status_code = status
    return response


def _outcome(accepted: inbox.Accepted) -> str:
    if accepted.duplicate:
        return "duplicate"
    return "accepted" if accepted.status == inbox.ACCEPTED else "ignored"


def signal_batch(rt: Runtime) -> Any:
    """After each group commit: count the batch and wake a worker, in one Redis round trip."""

    def after_commit(batch: list[tuple[str, inbox.Accepted, dict[str, Any]]]) -> None:
        rt.dispatcher.deliveries_received([(tag, _outcome(r)) for tag, r, _ in batch])

    return after_commit


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the body is {request.content_length} bytes; the limit is "
                                   f"{limit}")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"the body is larger than the limit of {limit} bytes")
    return body
