"""`hub contacts`, `hub flags`, `hub survivorship`: the admin's decisions from the shell."""

from __future__ import annotations

import json
from typing import Any

import click

ACTOR = "cli"


def _engine() -> Any:
    from hub.runtime import Runtime

    return Runtime.from_settings().engine


@click.group()
def contacts() -> None:
    """Golden records: show, merge (preview first), undo a merge, set values by hand."""


@contacts.command("show")
@click.argument("contact_id", type=int)
def contacts_show(contact_id: int) -> None:
    """One golden record with the provenance of every field."""
    from hub.adapters.db import queries

    click.echo(json.dumps(queries.get_contact(_engine(), contact_id), indent=2))


@contacts.command("merge")
@click.argument("winner_id", type=int)
@click.argument("loser_id", type=int)
@click.option("--reason", default="", help="Why, for the audit log.")
@click.option("--yes", is_flag=True, help="Merge without showing the preview first.")
def contacts_merge(winner_id: int, loser_id: int, reason: str, yes: bool) -> None:
    """Merge LOSER_ID into WINNER_ID (undo with `hub contacts unmerge MERGE_ID`)."""
    from hub.services import contact_admin

    engine = _engine()
    if not yes:
        preview = contact_admin.preview_merge(engine, winner_id, loser_id)
        for field, change in preview["changes"].items():
            click.echo(f"  {field}: {change['from']!r} -> {change['to']!r} ({change['source']})")
        click.echo(f"  identities: {', '.join(preview['identities'])}")
        click.confirm("Merge?", abort=True)
    result = contact_admin.merge(engine, winner_id, loser_id, ACTOR, reason)
    click.echo(f"merged {loser_id} into {winner_id} (merge {result['merge_id']})")


@contacts.command("unmerge")
@click.argument("merge_id", type=int)
def contacts_unmerge(merge_id: int) -> None:
    """Undo a merge: both contacts and their identities as they were."""
    from hub.services import contact_admin

    result = contact_admin.unmerge(_engine(), merge_id, ACTOR)
    click.echo(f"restored contacts {result['restored']}; "
               f"{result['replayed_events']} later event(s) queued again")


@contacts.command("set")
@click.argument("contact_id", type=int)
@click.argument("pairs", nargs=-1, required=True)
def contacts_set(contact_id: int, pairs: tuple[str, ...]) -> None:
    """Set fields by hand (field=value ...); tools never overwrite a manual value."""
    from hub.services import contact_admin

    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not field=value")
        values[name] = value
    contact_admin.edit_contact(_engine(), contact_id, values, ACTOR)
    click.echo(f"contact {contact_id}: {', '.join(sorted(values))} set by hand")


@click.group()
def flags() -> None:
    """Duplicates, conflicts and rule breaks waiting for a decision."""


@flags.command("list")
@click.option("--kind", type=click.Choice(["duplicate", "conflict", "compliance",
                                           "data_quality"]))
@click.option("--status", type=click.Choice(["open", "resolved", "dismissed"]), default="open",
              show_default=True)
def flags_list(kind: str | None, status: str) -> None:
    from hub.adapters.db import queries

    items, _ = queries.list_flags(_engine(), kind=kind, status=status, after=None, limit=500)
    for f in items:
        other = f" & {f['other_contact_id']}" if f["other_contact_id"] else ""
        click.echo(f"{f['id']:>5} {f['kind']:<12} contact {f['contact_id']}{other}: "
                   f"{f['summary']}")


@flags.command("dismiss")
@click.argument("flag_id", type=int)
@click.option("--reason", default="")
def flags_dismiss(flag_id: int, reason: str) -> None:
    """Not a duplicate / not a problem: never raised again for the same finding."""
    from hub.services import contact_admin

    contact_admin.dismiss_flag(_engine(), flag_id, ACTOR, reason)
    click.echo(f"flag {flag_id} dismissed")


@flags.command("resolve")
@click.argument("flag_id", type=int)
@click.argument("value")
def flags_resolve(flag_id: int, value: str) -> None:
    """Resolve a conflict by choosing the value (kept as a manual value)."""
    from hub.services import contact_admin

    result = contact_admin.resolve_conflict(_engine(), flag_id, value, ACTOR)
    click.echo(f"contact {result['contact_id']}: {result['field']} set to {value!r}")


@click.group()
def survivorship() -> None:
    """Which source wins, per field or group."""


@survivorship.command("list")
def survivorship_list() -> None:
    from hub.adapters.db import merges

    with _engine().connect() as conn:
        for rule in merges.list_rules(conn):
            click.echo(f"{rule['field']:<24} {rule['strategy']:<16} "
                       f"{','.join(rule['sources']) or '-':<24} "
                       f"conflict window {rule['conflict_window_seconds'] or '-'} s")


@survivorship.command("set")
@click.argument("field")
@click.option("--strategy", type=click.Choice(["most_recent", "source_priority",
                                               "most_complete"]), required=True)
@click.option("--source", "sources", multiple=True, help="Connection, in priority order.")
@click.option("--conflict-window", type=int, default=None, help="Seconds; flag disagreements.")
def survivorship_set(field: str, strategy: str, sources: tuple[str, ...],
                     conflict_window: int | None) -> None:
    from hub.services import contact_admin

    contact_admin.set_rule(_engine(), field, strategy, list(sources), conflict_window, ACTOR)
    click.echo(f"{field}: {strategy}")
