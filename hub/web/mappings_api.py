"""The mapping API, /api/v1: versions per connection, validation, dry runs, activation,
rollback, reapply, and custom fields. Reads need a viewer token; anything that writes, and
previews (they show values taken from raw deliveries), need an admin token. Every change is
written to the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from hub.adapters.db import mapping_store
from hub.adapters.mapping_schema import CustomFieldSchema
from hub.domain.mapping_checks import MappingInvalidError
from hub.runtime import Runtime
from hub.services import mapping_admin
from hub.services.mapping_preview import PREVIEW_MAX, preview
from hub.web.auth import actor, requires
from hub.web.errors import ApiError, problem

bp = Blueprint("mappings", __name__, url_prefix="/api/v1")
DIRECTIONS = ("inbound", "outbound")


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


@bp.errorhandler(MappingInvalidError)
def _invalid(error: MappingInvalidError) -> Response:
    return problem(422, error.title, error.detail, findings=[f.as_dict() for f in error.findings])


def _load(schema: Schema) -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if payload is None and not request.data:
        payload = {}
    if not isinstance(payload, dict):
        raise ApiError(400, "Bad Request", "send a JSON object", pointer="/")
    try:
        data: dict[str, Any] = schema.load(payload)
    except ValidationError as exc:
        raise ApiError(422, "Unprocessable Content", "see errors for each field",
                       errors=exc.messages_dict) from None
    return data


def _object_and_direction(data: dict[str, Any] | None = None) -> tuple[str, str]:
    source = data if data is not None else request.args
    object_type = source.get("object")
    if not object_type:
        raise ApiError(400, "Bad Request", "say which object: object=customer (a connection "
                       "has one mapping per object and direction)", pointer="query/object")
    direction = source.get("direction") or "inbound"
    if direction not in DIRECTIONS:
        raise ApiError(400, "Bad Request", "direction must be inbound or outbound",
                       pointer="query/direction")
    return str(object_type), str(direction)


@bp.get("/connections/<name>/mappings")
@requires("viewer")
def list_versions(name: str) -> ResponseReturnValue:
    """Every stored version (newest activation marks `active`), and per object what is live."""
    rt = _rt()
    info = mapping_admin.connection(rt.engine, name)
    versions = mapping_store.list_versions(rt.engine, info.name, request.args.get("object"),
                                           request.args.get("direction"))
    return jsonify({"items": [v.public() for v in versions], "next": None,
                    "active": _active_summary(rt, info.name, info.connector)})


def _active_summary(rt: Runtime, name: str, connector: str) -> list[dict[str, Any]]:
    from connectors.registry import CONNECTORS

    objects = {(o, "inbound") for o in CONNECTORS[connector].events.values()} \
        if connector in CONNECTORS else set()
    objects |= {(v.object_type, v.direction) for v in mapping_store.list_versions(rt.engine,
                                                                                  name)}
    summary = []
    for object_type, direction in sorted(objects):
        number = mapping_store.active_number(rt.engine, name, object_type, direction)
        summary.append({"object": object_type, "direction": direction,
                        "version": number if number is not None else "default"})
    return summary


class CreateSchema(Schema):
    document = fields.Dict(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


@bp.post("/connections/<name>/mappings")
@requires("admin")
def create_version(name: str) -> ResponseReturnValue:
    """Save a draft as the next version; it goes live only when activated."""
    rt = _rt()
    data = _load(CreateSchema())
    version, checked = mapping_admin.create_version(rt.engine, rt.mappings, name,
                                                    data["document"], reason=data["reason"],
                                                    author=actor())
    response = jsonify({**version.public(with_document=True),
                        "findings": [f.as_dict() for f in checked.findings]})
    response.status_code = 201
    return response


class ValidateSchema(Schema):
    document = fields.Dict(required=True)
    sample = fields.Integer(load_default=50, validate=validate.Range(min=0, max=PREVIEW_MAX))


@bp.post("/connections/<name>/mappings/validate")
@requires("viewer")
def validate_document(name: str) -> ResponseReturnValue:
    """Every error and warning of a draft, without saving it (200 either way)."""
    rt = _rt()
    data = _load(ValidateSchema())
    checked = mapping_admin.validate(rt.engine, rt.mappings, data["document"],
                                     name=f"{name} draft", connection_name=name,
                                     sample_size=data["sample"])
    return jsonify(checked.report())


@bp.get("/connections/<name>/mappings/diff")
@requires("viewer")
def diff_versions(name: str) -> ResponseReturnValue:
    """Rule-level diff; from/to are numbers, `default` (the shipped file) or `active`."""
    rt = _rt()
    info = mapping_admin.connection(rt.engine, name)
    object_type, direction = _object_and_direction()
    return jsonify(mapping_admin.diff(rt.engine, rt.mappings, info, object_type, direction,
                                      request.args.get("from"), request.args.get("to")))


@bp.get("/connections/<name>/mappings/<version>")
@requires("viewer")
def get_version(name: str, version: str) -> ResponseReturnValue:
    rt = _rt()
    info = mapping_admin.connection(rt.engine, name)
    object_type, direction = _object_and_direction()
    shown = mapping_admin.document_of(rt.engine, rt.mappings, info, object_type, direction,
                                      version)
    shown["activations"] = mapping_store.activation_history(rt.engine, name, object_type,
                                                            direction)
    return jsonify(shown)


class ActivateSchema(Schema):
    object = fields.String(required=True)
    direction = fields.String(load_default="inbound", validate=validate.OneOf(DIRECTIONS))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


@bp.post("/connections/<name>/mappings/<version>/activate")
@requires("admin")
def activate(name: str, version: str) -> ResponseReturnValue:
    """Make a version live for new events; activating an earlier one is a rollback."""
    rt = _rt()
    data = _load(ActivateSchema())
    info = mapping_admin.connection(rt.engine, name)
    return jsonify(mapping_admin.activate(rt.engine, rt.mappings, info, data["object"],
                                          data["direction"], version, actor=actor(),
                                          reason=data["reason"]))


class RollbackSchema(ActivateSchema):
    to = fields.String(load_default=None, allow_none=True)


@bp.post("/connections/<name>/mappings/rollback")
@requires("admin")
def rollback(name: str) -> ResponseReturnValue:
    """Activate the version live before the current one (or `to`)."""
    rt = _rt()
    data = _load(RollbackSchema())
    info = mapping_admin.connection(rt.engine, name)
    return jsonify(mapping_admin.rollback(rt.engine, rt.mappings, info, data["object"],
                                          data["direction"], data["to"], actor=actor(),
                                          reason=data["reason"]))


class PreviewSchema(Schema):
    object = fields.String(required=True)
    document = fields.Dict()
    version = fields.Raw()  # 3, "3", "v3", "default" or "active"
    sample = fields.Dict()
    event_type = fields.String()
    replay_last = fields.Integer(validate=validate.Range(min=1, max=PREVIEW_MAX))


@bp.post("/connections/<name>/mappings/preview")
@requires("admin")
def preview_mapping(name: str) -> ResponseReturnValue:
    """A dry run of a draft (or a stored version) on a sample payload or on the last N stored
    deliveries, against the active version. Writes nothing."""
    rt = _rt()
    data = _load(PreviewSchema())
    if ("document" in data) == ("version" in data):
        raise ApiError(422, "Unprocessable Content", "give a draft `document` or a stored "
                       "`version` to preview")
    if ("sample" in data) == ("replay_last" in data):
        raise ApiError(422, "Unprocessable Content", "give a `sample` payload or "
                       f"`replay_last` (1 to {PREVIEW_MAX} stored deliveries)")
    info = mapping_admin.connection(rt.engine, name)
    if "version" in data:
        raw = mapping_admin.document_of(rt.engine, rt.mappings, info, data["object"],
                                        "inbound", str(data["version"]))["document"]
    else:
        raw = {"object": data["object"], **data["document"]}
        if raw["object"] != data["object"]:
            raise ApiError(422, "Unprocessable Content", f"the document maps {raw['object']!r} "
                           f"records, not {data['object']!r}", pointer="/document/object")
    checked = mapping_admin.validate(rt.engine, rt.mappings, raw, name=f"{name} draft",
                                     connection_name=name)
    draft = mapping_admin.draft_mapping(checked, rt.mappings.custom_fields())
    result = preview(rt.engine, rt.mappings, info, data["object"], draft,
                     replay_last=data.get("replay_last"), sample=data.get("sample"),
                     event_type=data.get("event_type"))
    result["findings"] = [f.as_dict() for f in checked.findings]
    return jsonify(result)


class ReapplySchema(Schema):
    since = fields.String(required=True, validate=validate.Length(min=2, max=40))


@bp.post("/connections/<name>/mappings/reapply")
@requires("admin")
def reapply(name: str) -> ResponseReturnValue:
    """Queue the connection's processed deliveries since a time for the workers again; they
    go through the active mappings (idempotently) within seconds."""
    rt = _rt()
    data = _load(ReapplySchema())
    since = mapping_admin.parse_since(data["since"])
    info = mapping_admin.connection(rt.engine, name)
    result = mapping_admin.queue_reapply(rt.engine, info, since, actor=actor())
    rt.dispatcher.delivery_received("admin", "reapplied")
    response = jsonify(result)
    response.status_code = 202
    return response


@bp.get("/custom-fields")
@requires("viewer")
def list_custom_fields() -> ResponseReturnValue:
    return jsonify({"items": mapping_store.list_custom_fields(_rt().engine), "next": None})


@bp.post("/custom-fields")
@requires("admin")
def add_custom_field() -> ResponseReturnValue:
    """Declare a custom canonical field; mappings may then target it."""
    rt = _rt()
    data = _load(CustomFieldSchema())
    response = jsonify(mapping_admin.add_custom_field(rt.engine, rt.mappings, data,
                                                      actor=actor()))
    response.status_code = 201
    return response
