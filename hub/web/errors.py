"""Every error leaves as RFC 9457 problem details: what went wrong and where, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from hub.domain.errors import (
    ConfigurationError,
    ConflictError,
    HubError,
    NotFoundError,
    TransientError,
    WebhookError,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


class ApiError(HubError):
    """An error of the admin API itself (bad query parameter, missing permission)."""

    def __init__(self, status: int, title: str, detail: str, pointer: str | None = None,
                 errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail, pointer=pointer)
        self.status = status
        self.title = title
        self.errors = errors


def problem(status: int, title: str, detail: str, pointer: str | None = None,
            **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if pointer:
        body["pointer"] = pointer
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.content_type = PROBLEM
    return response


def _status_of(error: HubError) -> int:
    if isinstance(error, ApiError | WebhookError):
        return int(error.status)
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, ConfigurationError):
        return 422
    if isinstance(error, TransientError):
        return 503
    return 400


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HubError)
    def _hub_error(error: HubError) -> Response:
        extra = {"errors": error.errors} if isinstance(error, ApiError) and error.errors else {}
        if hasattr(error, "merged_into"):
            extra["merged_into"] = error.merged_into
            return problem(410, error.title, error.detail, error.pointer, **extra)
        return problem(_status_of(error), error.title, error.detail, error.pointer, **extra)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        return problem(status, error.name, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error")  # the trace goes to the log, not to the caller
        return problem(500, "Internal Server Error",
                       "the hub could not complete this request; nothing was accepted")
