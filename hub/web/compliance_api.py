"""Erasure, export and the audit log: admin tokens only (they hold or remove personal data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Table, select

from hub.adapters.db import compliance_store
from hub.adapters.db.models import AuditEntry
from hub.domain.errors import NotFoundError
from hub.runtime import Runtime
from hub.services import erasure, export
from hub.web.auth import actor, requires
from hub.web.errors import ApiError

bp = Blueprint("compliance", __name__, url_prefix="/api/v1")
AUD = cast(Table, AuditEntry.__table__)


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


@bp.post("/contacts/<int:contact_id>/erase")
@requires("admin")
def erase(contact_id: int) -> ResponseReturnValue:
    payload = request.get_json(silent=True) or {}
    reason = str(payload.get("reason", ""))[:500] if isinstance(payload, dict) else ""
    rt = _rt()
    result = erasure.request_erasure(rt.engine, contact_id, actor(), reason)
    if result["status"] == "pending":
        with rt.engine.begin() as conn:  # this job runs now; the sweeper retries after it
            compliance_store.update_erasure(conn, result["erasure_id"],
                                            next_attempt_at=_soon())
        rt.dispatcher.enqueue_erasure(result["erasure_id"])
    return jsonify(result), 202


def _soon() -> datetime:
    from datetime import UTC

    return datetime.now(UTC) + timedelta(minutes=10)


@bp.get("/erasures/<int:erasure_id>")
@requires("admin")
def receipt(erasure_id: int) -> ResponseReturnValue:
    with _rt().engine.connect() as conn:
        row = compliance_store.erasure(conn, erasure_id)
    if row is None:
        raise NotFoundError(f"no erasure with id {erasure_id}")
    return jsonify({
        "erasure_id": row.id, "contact_id": row.contact_id, "status": row.status,
        "requested_by": row.requested_by, "requested_at": row.requested_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "reason": row.reason, "receipt": row.receipt, "attempts": row.attempts,
    })


@bp.get("/contacts/<int:contact_id>/export")
@requires("admin")
def export_contact(contact_id: int) -> ResponseReturnValue:
    response = jsonify(export.export_contact(_rt().engine, contact_id))
    response.headers["Content-Disposition"] = f'attachment; filename="contact-{contact_id}.json"'
    return response


@bp.get("/audit")
@requires("admin")
def audit_log() -> ResponseReturnValue:
    stmt = select(AUD).order_by(AUD.c.id.desc()).limit(201)
    for name in ("entity_type", "entity_id", "action"):
        if request.args.get(name):
            stmt = stmt.where(AUD.c[name] == request.args[name])
    if request.args.get("actor"):
        stmt = stmt.where(AUD.c.actor.contains(request.args["actor"], autoescape=True))
    if request.args.get("since"):
        stmt = stmt.where(AUD.c.at >= _time_arg("since"))
    if request.args.get("page"):
        stmt = stmt.where(AUD.c.id < _int_arg("page"))
    with _rt().engine.connect() as conn:
        rows = conn.execute(stmt).all()
    page = rows[:200]
    items: list[dict[str, Any]] = [
        {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
         "entity_type": r.entity_type, "entity_id": r.entity_id, "details": r.details}
        for r in page]
    return jsonify({"items": items, "next": str(page[-1].id) if len(rows) > 200 else None})


def _time_arg(name: str) -> datetime:
    from datetime import UTC

    try:
        value = datetime.fromisoformat(request.args[name].replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "Bad Request", f"{name} must be an ISO-8601 time",
                       pointer=f"query/{name}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _int_arg(name: str) -> int:
    try:
        return int(request.args[name])
    except ValueError:
        raise ApiError(400, "Bad Request", f"{name} must be a whole number",
                       pointer=f"query/{name}") from None
