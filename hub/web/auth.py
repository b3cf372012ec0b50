"""Bearer-token authentication for the admin API: viewers read, admins also write."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from hub.adapters.db import admin
from hub.web.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def _authenticate() -> admin.TokenInfo:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Unauthorized", "send 'Authorization: Bearer <token>'; create one "
                       "with `hub tokens create`")
    info = admin.token_for(current_app.extensions["hub.runtime"].engine, token.strip())
    if info is None:
        raise ApiError(401, "Unauthorized", "the token is unknown or revoked")
    return info


def requires(role: str) -> Callable[[F], F]:
    """`viewer` lets any valid token in; `admin` only admin tokens."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.token = _authenticate()
            if role == "admin" and g.token.role != "admin":
                raise ApiError(403, "Forbidden", "this needs an admin token; yours is a "
                               f"{g.token.role} token")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def actor() -> str:
    """Who is acting, for the audit log: the token's name, never the token."""
    return f"token:{g.token.name}"
