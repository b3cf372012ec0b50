"""How a golden record is shown to an admin: nested, with identities and provenance.

Canonical fields are flat dotted names in storage; people read them nested ("address": {...}).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.domain.contact import CONSENT_CHANNELS, Provenance
from hub.domain.identity import IdentityKey, IdentityKind


def nest(values: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name in sorted(values):
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = values[name]
    return nested


def contact_view(
    contact_id: int,
    values: dict[str, Any],
    identities: list[IdentityKey],
    created_at: datetime,
    updated_at: datetime,
    provenance: dict[str, Provenance] | None = None,
) -> dict[str, Any]:
    body = nest(values)
    primary_email = values.get("email")
    emails = sorted(
        (k.value for k in identities if k.kind is IdentityKind.EMAIL),
        key=lambda e: (e != primary_email, e),
    )
    phones = sorted(
        (k.value for k in identities if k.kind is IdentityKind.PHONE),
        key=lambda p: (p != values.get("phone"), p),
    )
    consent = body.pop("consent", {})
    view: dict[str, Any] = {
        "id": contact_id,
        "email": primary_email,
        "emails": emails,
        "phone": values.get("phone"),
        "phones": phones,
        "first_name": values.get("first_name"),
        "last_name": values.get("last_name"),
        "full_name": values.get("full_name"),
        "company": values.get("company"),
        "job_title": values.get("job_title"),
        "address": body.pop("address", {}),
        "external_ids": [
            {"connection": k.scope, "external_id": k.value}
            for k in sorted(identities)
            if k.kind is IdentityKind.EXTERNAL
        ],
        "consent": {ch: consent.get(ch, {"status": "unknown"}) for ch in CONSENT_CHANNELS},
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
    }
    for key in ("first_name", "last_name", "full_name", "company", "job_title", "email", "phone"):
        body.pop(key, None)
    view.update(body)  # lifecycle, commerce, scheduling, finance, tags, custom fields
    if provenance is not None:
        view["sources"] = sorted({p.connection for p in provenance.values()})
        view["provenance"] = {
            name: {
                "connection": p.connection,
                "event_id": p.event_id,
                "observed_at": p.observed_at.isoformat(),
                "mapping_version": p.mapping_version,
            }
            for name, p in sorted(provenance.items())
        }
    return view
