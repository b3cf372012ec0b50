"""Admin actions on golden records: merge (preview first), undo, manual values, flag decisions,
survivorship rules. Reads need a viewer token, changes an admin token; all are audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from hub.adapters.db import merges as merge_store
from hub.adapters.db import queries
from hub.runtime import Runtime
from hub.services import contact_admin
from hub.web.auth import actor, requires
from hub.web.errors import ApiError

bp = Blueprint("contacts_admin", __name__, url_prefix="/api/v1")


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


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


class MergeSchema(Schema):
    winner_id = fields.Integer(required=True, validate=validate.Range(min=1))
    loser_id = fields.Integer(required=True, validate=validate.Range(min=1))
    reason = fields.String(load_default="", validate=validate.Length(max=500))


@bp.post("/contacts/merge/preview")
@requires("viewer")
def preview_merge() -> ResponseReturnValue:
    data = _load(MergeSchema())
    return jsonify(contact_admin.preview_merge(_rt().engine, data["winner_id"],
                                               data["loser_id"]))


@bp.post("/contacts/merge")
@requires("admin")
def merge() -> ResponseReturnValue:
    data = _load(MergeSchema())
    result = contact_admin.merge(_rt().engine, data["winner_id"], data["loser_id"], actor(),
                                 data["reason"])
    return jsonify(result), 201


@bp.get("/merges")
@requires("viewer")
def list_merges() -> ResponseReturnValue:
    contact = request.args.get("contact_id", type=int)
    after = request.args.get("page", type=int)
    items, cursor = queries.list_merges(_rt().engine, contact_id=contact, after=after,
                                        limit=100)
    return jsonify({"items": items, "next": str(cursor) if cursor else None})


@bp.post("/merges/<int:merge_id>/undo")
@requires("admin")
def undo_merge(merge_id: int) -> ResponseReturnValue:
    rt = _rt()
    result = contact_admin.unmerge(rt.engine, merge_id, actor())
    if result["replayed_events"]:
        rt.dispatcher.delivery_received("hub", "replayed")
    return jsonify(result)


class EditSchema(Schema):
    fields_ = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                          required=True, data_key="fields")


@bp.patch("/contacts/<int:contact_id>")
@requires("admin")
def edit_contact(contact_id: int) -> ResponseReturnValue:
    data = _load(EditSchema())
    contact_admin.edit_contact(_rt().engine, contact_id, data["fields_"], actor())
    return jsonify(queries.get_contact(_rt().engine, contact_id))


class DecisionSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


@bp.post("/flags/<int:flag_id>/dismiss")
@requires("admin")
def dismiss_flag(flag_id: int) -> ResponseReturnValue:
    data = _load(DecisionSchema())
    contact_admin.dismiss_flag(_rt().engine, flag_id, actor(), data["reason"])
    return jsonify({"flag_id": flag_id, "status": "dismissed"})


class ResolveSchema(Schema):
    value = fields.Raw(required=True, allow_none=False)


@bp.post("/flags/<int:flag_id>/resolve")
@requires("admin")
def resolve_flag(flag_id: int) -> ResponseReturnValue:
    data = _load(ResolveSchema())
    return jsonify(contact_admin.resolve_conflict(_rt().engine, flag_id, data["value"],
                                                  actor()))


@bp.get("/survivorship")
@requires("viewer")
def list_rules() -> ResponseReturnValue:
    with _rt().engine.connect() as conn:
        return jsonify({"items": merge_store.list_rules(conn), "next": None})


class RuleSchema(Schema):
    strategy = fields.String(required=True)
    sources = fields.List(fields.String(), load_default=list)
    conflict_window_seconds = fields.Integer(load_default=None, allow_none=True,
                                             validate=validate.Range(min=1))


@bp.put("/survivorship/<path:field>")
@requires("admin")
def put_rule(field: str) -> ResponseReturnValue:
    data = _load(RuleSchema())
    contact_admin.set_rule(_rt().engine, field, data["strategy"], data["sources"],
                           data["conflict_window_seconds"], actor())
    return list_rules()
