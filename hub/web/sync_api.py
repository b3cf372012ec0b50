"""The sync API, /api/v1/syncs: the run history (viewers), starting a run (admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from hub.adapters.db import admin, sync_store
from hub.runtime import Runtime
from hub.web.auth import actor, requires
from hub.web.errors import ApiError

bp = Blueprint("syncs", __name__, url_prefix="/api/v1")
MAX_PAGE = 200
STATUSES = ("running", *sync_store.FINAL)


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


def _int(name: str, default: int | None, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or int(raw) < 1 or (high is not None and int(raw) > high):
        bounds = f"between 1 and {high}" if high else "a positive whole number"
        raise ApiError(400, "Bad Request", f"{name} must be {bounds}", pointer=f"query/{name}")
    return int(raw)


@bp.get("/syncs")
@requires("viewer")
def list_syncs() -> ResponseReturnValue:
    """Newest first; `page` is the `next` of the previous answer."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "Bad Request", f"status must be one of {', '.join(STATUSES)}",
                       pointer="query/status")
    items, cursor = sync_store.list_runs(
        _rt().engine, connection=request.args.get("connection") or None, status=status,
        before=_int("page", None), limit=_int("limit", 50, MAX_PAGE) or 50)
    return jsonify({"items": items, "next": str(cursor) if cursor is not None else None})


@bp.get("/syncs/<int:run_id>")
@requires("viewer")
def get_sync(run_id: int) -> ResponseReturnValue:
    run = sync_store.run_detail(_rt().engine, run_id)
    if run is None:
        raise ApiError(404, "Not Found", f"no sync run {run_id}")
    run["bookmarks"] = sync_store.bookmarks(_rt().engine, run["connection"])
    run["dead_letters"] = sync_store.dead_letter_list(_rt().engine, run["connection"])
    return jsonify(run)


@bp.post("/syncs")
@requires("admin")
def start_sync() -> ResponseReturnValue:
    """Start a run now: {"connection": "name" (default: all), "full": false}."""
    from hub.services import sync_run
    from hub.sync_jobs import deps_for

    body: Any = request.get_json(silent=True) or {}
    if not isinstance(body, dict) or not isinstance(body.get("full", False), bool):
        raise ApiError(400, "Bad Request", "send {\"connection\": name, \"full\": bool}",
                       pointer="/")
    connection = body.get("connection")
    rt = _rt()
    if connection is not None and admin.get_connection(rt.engine, str(connection)) is None:
        raise ApiError(404, "Not Found", f"no connection named {connection!r}")
    started = sync_run.start(deps_for(rt), connection, full=body.get("full", False),
                             trigger=f"api:{actor()}"[:32])
    response = jsonify({"started": started})
    response.status_code = 202
    return response
