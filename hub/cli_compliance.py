"""`hub compliance` and `hub audit`: erasure, export, retention and the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

ACTOR = "cli"


def _runtime() -> Any:
    from hub.runtime import Runtime

    return Runtime.from_settings()


@click.group()
def compliance() -> None:
    """Erase or export a person; apply retention limits."""


@compliance.command("erase")
@click.argument("contact_id", type=int)
@click.option("--reason", default="", help="e.g. the ticket of the request, for the audit log")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(contact_id: int, reason: str, yes: bool) -> None:
    """Erase a contact in the hub now and in every connected tool that can delete."""
    from hub.adapters.db import compliance_store
    from hub.services.erasure import request_erasure

    if not yes:
        click.confirm(f"Erase contact {contact_id} everywhere? This cannot be undone",
                      abort=True)
    rt = _runtime()
    result = request_erasure(rt.engine, contact_id, ACTOR, reason)
    if result["status"] == "pending":
        with rt.engine.begin() as conn:
            compliance_store.update_erasure(conn, result["erasure_id"], next_attempt_at=(
                datetime.now(UTC) + timedelta(minutes=10)))
        rt.dispatcher.enqueue_erasure(result["erasure_id"])
    click.echo(json.dumps(result, indent=2))
    click.echo(f"receipt: hub compliance receipt {result['erasure_id']}")


@compliance.command("receipt")
@click.argument("erasure_id", type=int)
def receipt(erasure_id: int) -> None:
    """What an erasure removed where and when, and what is still owed."""
    from hub.adapters.db import compliance_store

    with _runtime().engine.connect() as conn:
        row = compliance_store.erasure(conn, erasure_id)
    if row is None:
        raise click.ClickException(f"no erasure with id {erasure_id}")
    click.echo(json.dumps({"erasure_id": row.id, "status": row.status,
                           "requested_at": row.requested_at.isoformat(),
                           "receipt": row.receipt}, indent=2))


@compliance.command("export")
@click.argument("contact_id", type=int)
def export(contact_id: int) -> None:
    """Everything the hub holds about a contact, as JSON on standard output."""
    from hub.services.export import export_contact

    click.echo(json.dumps(export_contact(_runtime().engine, contact_id), indent=2))


@compliance.command("retention")
@click.option("--days", type=int, required=True, help="Inactivity limit in days.")
@click.option("--anonymize", is_flag=True, help="Also erase them in the hub (tools untouched).")
def retention(days: int, anonymize: bool) -> None:
    """Flag contacts without activity for DAYS; optionally anonymise them."""
    from hub.services.erasure import apply_retention

    if days < 1:
        raise click.BadParameter("must be at least 1", param_hint="--days")
    result = apply_retention(_runtime().engine, days, anonymize=anonymize)
    click.echo(f"{result['inactive']} inactive contact(s) flagged, "
               f"{result['anonymised']} anonymised")


@click.group()
def audit() -> None:
    """Who changed what, when and why."""


@audit.command("list")
@click.option("--entity-type", default=None)
@click.option("--entity-id", default=None)
@click.option("--action", default=None)
@click.option("--limit", default=50, show_default=True)
def audit_list(entity_type: str | None, entity_id: str | None, action: str | None,
               limit: int) -> None:
    from typing import cast

    from sqlalchemy import Table, select

    from hub.adapters.db.models import AuditEntry

    table = cast(Table, AuditEntry.__table__)
    stmt = select(table).order_by(table.c.id.desc()).limit(limit)
    for name, value in (("entity_type", entity_type), ("entity_id", entity_id),
                        ("action", action)):
        if value:
            stmt = stmt.where(table.c[name] == value)
    with _runtime().engine.connect() as conn:
        for r in conn.execute(stmt):
            click.echo(f"{r.at.isoformat()[:19]} {r.actor:<24} {r.action:<20} "
                       f"{r.entity_type}:{r.entity_id} {json.dumps(r.details)[:80]}")
