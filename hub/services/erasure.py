"""Erasure (GDPR Art. 17): gone from the hub at once, then deleted in every tool that can.

The hub part is one transaction: identities, field values, consent history, raw deliveries,
merge snapshots and flag details go; a tombstone per identifier stays so that a later delivery
for the person is dropped instead of re-creating them. Tool deletes run in a job and are
retried with backoff until each tool has confirmed or failed for good; the receipt says what
was erased where and when, and which tools have no delete API (an admin must act there).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.base import ConnectionContext
from connectors.registry import get_connector
from hub.adapters.db import admin, merges
from hub.adapters.db import compliance_store as store
from hub.domain.errors import ConflictError, HubError
from hub.domain.identity import IdentityKind
from hub.redaction import redact
from hub.services.token_rotation import keep_rotated_tokens

log = logging.getLogger(__name__)
MAX_TOOL_ATTEMPTS = 6


def request_erasure(engine: Engine, contact_id: int, actor: str, reason: str = "",
                    *, in_tools: bool = True) -> dict[str, Any]:
    """Erase in the hub now; with `in_tools`, owe a delete to every tool holding the person
    (anonymising after a retention period passes in_tools=False: the tools keep their own)."""
    salt = store.salt(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        golden = merges.live_contacts(conn, [contact_id])[contact_id]
        if not golden.identities and not golden.values:
            raise ConflictError(f"contact {contact_id} holds no personal data (erased already?)")
        erasure_id = store.new_erasure(conn, contact_id, actor, reason, now)
        pending = sorted([k.scope, k.value] for k in golden.identities
                         if k.kind is IdentityKind.EXTERNAL) if in_tools else []
        removed = store.erase_in_hub(conn, golden, erasure_id, salt, now)
        receipt = {"hub": {"erased_at": now.isoformat(), "removed": removed},
                   "tools": {name: {"status": "pending"} for name, _ in pending}}
        store.update_erasure(conn, erasure_id, receipt=receipt, pending=pending,
                             status="pending" if pending else "completed",
                             completed_at=None if pending else now)
        admin.audit(conn, actor, "contact.erased", "contact", str(contact_id),
                    {"erasure_id": erasure_id, "tools": [name for name, _ in pending],
                     "reason": reason})
    return {"erasure_id": erasure_id, "status": "pending" if pending else "completed",
            "receipt": receipt}


def delete_in_tools(engine: Engine, erasure_id: int) -> dict[str, Any]:
    """One round of tool deletes; what failed stays pending for the next round."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        row = store.erasure(conn, erasure_id)
    if row is None or row.status != "pending":
        return {"erasure_id": erasure_id, "status": getattr(row, "status", "unknown")}
    receipt = dict(row.receipt)
    tools = dict(receipt.get("tools", {}))
    still: list[list[str]] = []
    for name, external_id in row.pending:
        outcome = _delete_one(engine, name, external_id, now)
        tools[name] = outcome
        if outcome["status"] == "failed":
            still.append([name, external_id])
    attempts = row.attempts + 1
    gave_up = bool(still) and attempts >= MAX_TOOL_ATTEMPTS
    status = "completed" if not still else ("partial" if gave_up else "pending")
    receipt["tools"] = tools
    with engine.begin() as conn:
        store.update_erasure(
            conn, erasure_id, receipt=receipt, pending=[] if gave_up else still,
            attempts=attempts, status=status,
            next_attempt_at=None if status != "pending" else
            now + timedelta(seconds=60 * 2 ** (attempts - 1)),
            completed_at=now if status != "pending" else None)
        admin.audit(conn, "job:erasure", "erasure.tools", "erasure", str(erasure_id),
                    {"status": status, "tools": {k: v["status"] for k, v in tools.items()}})
    return {"erasure_id": erasure_id, "status": status, "receipt": receipt}


def _delete_one(engine: Engine, name: str, external_id: str, now: datetime) -> dict[str, Any]:
    info = admin.get_connection(engine, name)
    stamp = now.isoformat()
    if info is None:
        return {"status": "skipped", "at": stamp, "detail": "the connection no longer exists"}
    connector = get_connector(info.connector)
    context = ConnectionContext(info.name, info.settings, info.credentials)
    sink = next((s for s in connector.sinks(context).values() if s.can_delete), None)
    if sink is None:
        return {"status": "not_supported", "at": stamp,
                "detail": f"{connector.title} has no delete in the hub: delete the record "
                          f"there by hand"}
    try:
        sink.remove(keep_rotated_tokens(connector.api_client(context), engine, name), 0,
                    external_id)
    except HubError as exc:
        log.warning("erasure in %s failed: %s", name, type(exc).__name__)
        return {"status": "failed", "at": stamp, "detail": redact(exc.detail)}
    return {"status": "deleted", "at": stamp}


def apply_retention(engine: Engine, days: int, *, anonymize: bool, actor: str = "retention"
                    ) -> dict[str, int]:
    """Contacts without activity for `days`: flagged, and anonymised in the hub if asked."""
    from hub.adapters.db.contacts import insert_flags
    from hub.domain.flags import FlagKind, NewFlag

    cutoff = datetime.now(UTC) - timedelta(days=days)
    with engine.connect() as conn:
        stale = store.inactive_since(conn, cutoff)
    flags = [NewFlag(kind=FlagKind.COMPLIANCE, contact_id=cid, topic=f"retention:{days}",
                     summary=f"no activity for more than {days} days (retention limit)",
                     details={"cutoff": cutoff.isoformat()}) for cid in stale]
    with engine.begin() as conn:
        insert_flags(conn, flags, {}, datetime.now(UTC))
    erased = 0
    if anonymize:
        for contact_id in stale:
            request_erasure(engine, contact_id, actor, f"retention: inactive {days} days",
                            in_tools=False)
            erased += 1
    return {"inactive": len(stale), "anonymised": erased}
