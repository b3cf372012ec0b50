"""Export (GDPR Art. 15 and 20): everything the hub holds about one person, as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from hub.adapters.db import compliance_store, queries


def export_contact(engine: Engine, contact_id: int) -> dict[str, Any]:
    contact = queries.get_contact(engine, contact_id)
    with engine.connect().execution_options(hub_readonly=True) as conn:
        extra = compliance_store.export_rows(conn, contact_id)
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "format": "crm-hub export v1",
        "contact": contact,
        **extra,
    }
