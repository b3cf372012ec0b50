"""Connections, API tokens and the audit log: the hub's own configuration, in SQL.

Tokens are 32 random bytes shown once; only their SHA-256 is stored. A slow password hash
buys nothing for a secret with 256 bits of entropy, and lookups stay one indexed query.
Connection secrets are stored for signature checks and never leave this module except to a
verifier: listings and API responses carry only whether a secret is set.
"""

from __future__ import annotations

import hashlib
import re
import secrets as random_secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.engine import Connection as SqlConnection
from sqlalchemy.exc import IntegrityError

from hub.adapters.db.dialect import insert_many
from hub.adapters.db.models import ApiToken, AuditEntry, Connection
from hub.domain.errors import ConfigurationError, ConflictError, NotFoundError

CONN = cast(Table, Connection.__table__)
TOK = cast(Table, ApiToken.__table__)
AUD = cast(Table, AuditEntry.__table__)
ROLES = ("admin", "viewer")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
RESERVED_NAMES = frozenset({"admin", "hub", "unknown"})  # sources the hub itself uses


@dataclass(frozen=True)
class ConnectionInfo:
    id: int
    name: str
    connector: str
    secrets: tuple[str, ...]
    settings: dict[str, Any]
    status: str
    created_at: datetime
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    status_detail: str | None = None

    def public(self) -> dict[str, Any]:
        """What an API caller or a listing may see: never the secrets themselves."""
        return {
            "name": self.name,
            "connector": self.connector,
            "settings": self.settings,
            "status": self.status,
            "webhook_path": f"/webhooks/{self.name}",
            "secrets_configured": len(self.secrets),
            "credentials_configured": sorted(self.credentials),
            "status_detail": self.status_detail,
            "created_at": self.created_at.isoformat(),
        }


def _info(row: Any) -> ConnectionInfo:
    return ConnectionInfo(row.id, row.name, row.connector, tuple(row.webhook_secrets or ()),
                          dict(row.settings or {}), row.status, row.created_at,
                          dict(row.credentials or {}), row.status_detail)


def get_connection(engine: Engine, name: str) -> ConnectionInfo | None:
    with engine.connect() as conn:
        row = conn.execute(select(CONN).where(CONN.c.name == name)).first()
    return _info(row) if row else None


def list_connections(engine: Engine) -> list[ConnectionInfo]:
    with engine.connect() as conn:
        return [_info(r) for r in conn.execute(select(CONN).order_by(CONN.c.name))]


def add_connection(engine: Engine, *, name: str, connector: str, secrets: list[str],
                   settings: dict[str, Any], actor: str) -> ConnectionInfo:
    """Add a connection; settings the connector marks secret are kept apart as credentials."""
    from connectors.registry import get_connector

    settings, credentials = type(get_connector(connector)).split_settings(settings)
    if not NAME_PATTERN.match(name):
        raise ConfigurationError(
            f"connection name {name!r} must be 1-64 lower-case letters, digits, - or _"
        )
    if name in RESERVED_NAMES:
        raise ConfigurationError(f"{name!r} is reserved for the hub's own records")
    takes_webhooks = bool(type(get_connector(connector)).events)
    if (takes_webhooks and not secrets) or any(not s for s in secrets):
        raise ConfigurationError("a connection needs a non-empty webhook secret")
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(insert(CONN).values(name=name, connector=connector,
                                             webhook_secrets=secrets, settings=settings,
                                             credentials=credentials, status="active",
                                             created_at=now))
            audit(conn, actor, "connection.created", "connection", name,
                  {"connector": connector, "settings": settings})
    except IntegrityError:
        raise ConflictError(f"a connection named {name!r} already exists") from None
    found = get_connection(engine, name)
    assert found is not None
    return found


def create_token(engine: Engine, *, name: str, role: str, actor: str) -> str:
    if role not in ROLES:
        raise ConfigurationError(f"role must be one of {', '.join(ROLES)}")
    token = "hub_" + random_secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(insert(TOK).values(name=name, role=role, token_hash=hash_token(token),
                                        prefix=token[:10], created_at=datetime.now(UTC)))
        audit(conn, actor, "token.created", "token", name, {"role": role})
    return token


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str


def token_for(engine: Engine, token: str) -> TokenInfo | None:
    """The live token matching this secret; the lookup is by hash, so timing tells nothing."""
    with engine.connect() as conn:
        row = conn.execute(
            select(TOK.c.id, TOK.c.name, TOK.c.role).where(
                TOK.c.token_hash == hash_token(token), TOK.c.revoked_at.is_(None))
        ).first()
    return TokenInfo(row.id, row.name, row.role) if row else None


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(TOK.c.id, TOK.c.name, TOK.c.role, TOK.c.prefix,
                                   TOK.c.created_at, TOK.c.revoked_at).order_by(TOK.c.id))
        return [dict(r._mapping) for r in rows]


def revoke_token(engine: Engine, token_id: int, actor: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(TOK).where(TOK.c.id == token_id, TOK.c.revoked_at.is_(None))
                            .values(revoked_at=datetime.now(UTC)))
        if not done.rowcount:
            raise NotFoundError(f"no live token with id {token_id}")
        audit(conn, actor, "token.revoked", "token", str(token_id), {})


def audit_many(conn: SqlConnection, rows: list[dict[str, Any]]) -> None:
    """Many audit lines in one statement (a worker's batch)."""
    insert_many(conn, AUD, rows)


def audit(conn: SqlConnection, actor: str, action: str, entity_type: str, entity_id: str,
          details: dict[str, Any]) -> None:
    """One audit line, written in the caller's transaction so it exists exactly when the
    change does. Details must never hold secrets."""
    conn.execute(insert(AUD).values(at=datetime.now(UTC), actor=actor, action=action,
                                    entity_type=entity_type, entity_id=entity_id,
                                    details=details))


def set_connection_status(engine: Engine, name: str, status: str, detail: str | None,
                          actor: str) -> None:
    """Mark a connection active, or as needing attention with the vendor's (redacted) reason."""
    with engine.begin() as conn:
        conn.execute(update(CONN).where(CONN.c.name == name)
                     .values(status=status, status_detail=detail))
        audit(conn, actor, "connection.status", "connection", name, {"status": status})


def store_refresh_token(engine: Engine, name: str, token: str) -> None:
    """The refresh token a vendor rotated, in place of the old one (never logged or audited
    with its value)."""
    with engine.begin() as conn:
        row = conn.execute(select(CONN.c.credentials).where(CONN.c.name == name)
                           .with_for_update()).first()
        if row is None:
            return
        conn.execute(update(CONN).where(CONN.c.name == name).values(
            credentials={**(row.credentials or {}), "refresh_token": token}))
        audit(conn, "vendor", "connection.token_rotated", "connection", name,
              {"credential": "refresh_token"})


def update_connection(engine: Engine, name: str, *, secrets: list[str] | None,
                      settings: dict[str, Any] | None, actor: str) -> ConnectionInfo:
    """Replace the webhook secrets (a rotation: give new and old) and/or change settings."""
    from connectors.registry import get_connector

    current = get_connection(engine, name)
    if current is None:
        raise NotFoundError(f"no connection named {name!r}")
    values: dict[str, Any] = {}
    if secrets is not None:
        if not secrets or any(not s for s in secrets):
            raise ConfigurationError("a connection needs a non-empty webhook secret")
        values["webhook_secrets"] = secrets
    if settings is not None:
        merged = {**current.settings, **current.credentials, **settings}
        values["settings"], values["credentials"] = type(
            get_connector(current.connector)).split_settings(merged)
    with engine.begin() as conn:
        conn.execute(update(CONN).where(CONN.c.name == name).values(**values))
        audit(conn, actor, "connection.updated", "connection", name,
              {"secrets_replaced": secrets is not None,
               "settings_changed": sorted(settings or {})})
    found = get_connection(engine, name)
    assert found is not None
    return found
