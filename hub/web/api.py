"""The admin API, /api/v1: contacts, events, flags, connections. JSON in, JSON out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from connectors.registry import CONNECTORS
from hub.adapters.db import admin, inbox, queries
from hub.runtime import Runtime
from hub.web.auth import actor, requires
from hub.web.errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_PAGE = 200


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


def _int_arg(name: str, default: int | None = None, *, low: int = 1,
             high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "Bad Request", f"{name} must be a whole number",
                       pointer=f"query/{name}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high else f"at least {low}"
        raise ApiError(400, "Bad Request", f"{name} must be {bounds}", pointer=f"query/{name}")
    return value


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        raise ApiError(400, "Bad Request", f"{name} must be one of {', '.join(choices)}",
                       pointer=f"query/{name}")
    return value


def _page(items: list[dict[str, Any]], cursor: int | None) -> ResponseReturnValue:
    return jsonify({"items": items, "next": str(cursor) if cursor is not None else None})


@bp.get("/contacts")
@requires("viewer")
def list_contacts() -> ResponseReturnValue:
    items, cursor = queries.list_contacts(
        _rt().engine,
        email=request.args.get("email") or None,
        q=request.args.get("q") or None,
        after=_int_arg("page"),
        limit=_int_arg("limit", 50, high=MAX_PAGE) or 50,
    )
    return _page(items, cursor)


@bp.get("/contacts/<int:contact_id>")
@requires("viewer")
def get_contact(contact_id: int) -> ResponseReturnValue:
    return jsonify(queries.get_contact(_rt().engine, contact_id))


@bp.get("/events")
@requires("viewer")
def list_events() -> ResponseReturnValue:
    items, cursor = queries.list_events(
        _rt().engine,
        status=_choice_arg("status", inbox.STATUSES),
        connection=request.args.get("connection") or None,
        before=_int_arg("page"),
        limit=_int_arg("limit", 50, high=MAX_PAGE) or 50,
    )
    return _page(items, cursor)


@bp.get("/events/<int:event_id>")
@requires("viewer")
def get_event(event_id: int) -> ResponseReturnValue:
    with_body = request.args.get("include") == "body"
    if with_body and g.token.role != "admin":
        raise ApiError(403, "Forbidden", "raw payloads hold personal data: admin tokens only")
    return jsonify(queries.get_event(_rt().engine, event_id, with_body=with_body))


@bp.post("/events/<int:event_id>/replay")
@requires("admin")
def replay_event(event_id: int) -> ResponseReturnValue:
    rt = _rt()
    queries.get_event(rt.engine, event_id, with_body=False)  # 404 when absent
    if not inbox.replay(rt.engine, [event_id], datetime.now(UTC)):
        raise ApiError(409, "Conflict", "the event is being processed right now; try again")
    with rt.engine.begin() as conn:
        admin.audit(conn, actor(), "event.replayed", "event", str(event_id), {})
    rt.dispatcher.delivery_received("admin", "replayed")
    response = jsonify({"event_id": event_id, "status": "accepted"})
    response.status_code = 202
    return response


@bp.get("/flags")
@requires("viewer")
def list_flags() -> ResponseReturnValue:
    items, cursor = queries.list_flags(
        _rt().engine,
        kind=_choice_arg("kind", ("duplicate", "conflict", "compliance", "data_quality")),
        status=_choice_arg("status", ("open", "resolved", "dismissed")),
        after=_int_arg("page"),
        limit=_int_arg("limit", 50, high=MAX_PAGE) or 50,
    )
    return _page(items, cursor)


class ConnectionSchema(Schema):
    name = fields.String(required=True, validate=validate.Regexp(admin.NAME_PATTERN.pattern))
    connector = fields.String(required=True, validate=validate.OneOf(sorted(CONNECTORS)))
    webhook_secrets = fields.List(fields.String(validate=validate.Length(min=1)),
                                  load_default=list, validate=validate.Length(max=5))
    settings = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)


@bp.get("/connections")
@requires("viewer")
def list_connections() -> ResponseReturnValue:
    return jsonify({"items": [c.public() for c in admin.list_connections(_rt().engine)],
                    "next": None})


class ConnectionUpdateSchema(Schema):
    webhook_secrets = fields.List(fields.String(validate=validate.Length(min=1)),
                                  validate=validate.Length(min=1, max=5))
    settings = fields.Dict(keys=fields.String(), values=fields.Raw())


@bp.patch("/connections/<name>")
@requires("admin")
def update_connection(name: str) -> ResponseReturnValue:
    """Rotate webhook secrets (send new and old together) or change settings."""
    data = _load(ConnectionUpdateSchema())
    info = admin.update_connection(_rt().engine, name, secrets=data.get("webhook_secrets"),
                                   settings=data.get("settings"), actor=actor())
    return jsonify(info.public())


def _load(schema: Schema) -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise ApiError(400, "Bad Request", "send a JSON object", pointer="/")
    try:
        data: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        raise ApiError(422, "Unprocessable Content", "see errors for each field",
                       errors=exc.messages_dict) from None
    return data


@bp.post("/connections")
@requires("admin")
def add_connection() -> ResponseReturnValue:
    data = _load(ConnectionSchema())
    info = admin.add_connection(_rt().engine, name=data["name"], connector=data["connector"],
                                secrets=data["webhook_secrets"], settings=data["settings"],
                                actor=actor())
    response = jsonify(info.public())
    response.status_code = 201
    return response

