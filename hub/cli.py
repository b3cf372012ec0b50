"""The `hub` command: set up, serve, work, and look after connections, tokens and events."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import click

from hub.cli_dedupe import dedupe
from hub.cli_mappings import mappings
from hub.domain.errors import HubError

ACTOR = "cli"


def _runtime() -> Any:
    from hub.runtime import Runtime

    return Runtime.from_settings()


class HubGroup(click.Group):
    """Turns the hub's own errors into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except HubError as exc:
            click.echo(f"error: {exc.detail}", err=True)
            sys.exit(2)
        except (OperationalError, ProgrammingError) as exc:
            first = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
            hint = " (run `hub init` first)" if "no such table" in first or \
                "does not exist" in first else ""
            click.echo(f"error: the database refused: {first}{hint}", err=True)
            sys.exit(2)


@click.group(cls=HubGroup)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING (default HUB_LOG_LEVEL).")
def cli(log_level: str | None) -> None:
    """Keep a CRM and the tools around it in step."""
    from hub.config import load_settings

    level = (log_level or load_settings().log_level).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.getLevelName(level), logging.WARNING))


@cli.command()
def init() -> None:
    """Create var/ and bring the database schema up to date."""
    from hub.adapters.db import migrate

    rt = _runtime()
    migrate.upgrade(rt.engine)
    click.echo(f"database ready: {rt.engine.url.render_as_string(hide_password=True)}")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations."""
    from hub.adapters.db import migrate

    migrate.upgrade(_runtime().engine, revision)
    click.echo("database upgraded")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option("--threads", default=8, show_default=True, type=int, help="threads per process")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the webhook receiver and admin API under gunicorn."""
    from hub.config import load_settings
    from hub.gunicorn_app import serve as run

    run(host=host, port=port, workers=workers, threads=threads,
        log_level=load_settings().log_level)


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker(burst: bool) -> None:
    """Process deliveries (and later syncs and pushes) from the queues."""
    from hub.worker_process import run_worker

    run_worker(_runtime(), burst=burst)


@cli.group()
def connectors() -> None:
    """The tools the hub can connect."""


@connectors.command("list")
def connectors_list() -> None:
    """Every connector with its kind and the events it understands."""
    from connectors.registry import CONNECTORS

    click.echo(f"{'CONNECTOR':<16} {'KIND':<16} {'WEBHOOKS':<9} {'PULL':<5} {'PUSH':<5} DELETE")
    for key, cls in sorted(CONNECTORS.items()):
        caps = cls.capabilities()
        marks = ["yes" if caps[c] else "-" for c in ("webhooks", "pull", "push", "delete")]
        click.echo(f"{key:<16} {cls.kind:<16} {marks[0]:<9} {marks[1]:<5} {marks[2]:<5} "
                   f"{marks[3]}")


@cli.group()
def connections() -> None:
    """Configured instances of connectors, with their secrets."""


def _settings_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--setting")
        settings[key] = value
    return settings


@connections.command("add")
@click.argument("name")
@click.option("--connector", required=True, help="shopify, stripe, ... (hub connectors list)")
@click.option("--webhook-secret", "secrets", multiple=True,
              help="The vendor's signing secret (or the URL token for tools that sign "
                   "nothing); repeat during a rotation. Not needed for pull/push-only tools.")
@click.option("--setting", "pairs", multiple=True, help="key=value, repeatable.")
def connections_add(name: str, connector: str, secrets: tuple[str, ...],
                    pairs: tuple[str, ...]) -> None:
    """Add a connection; its webhook URL is POST /webhooks/NAME."""
    from connectors.registry import get_connector
    from hub.adapters.db import admin

    get_connector(connector)
    info = admin.add_connection(_runtime().engine, name=name, connector=connector,
                                secrets=list(secrets), settings=_settings_pairs(pairs),
                                actor=ACTOR)
    click.echo(f"connection {info.name} ({info.connector}) added; "
               f"webhook URL: POST /webhooks/{info.name}")


@connections.command("update")
@click.argument("name")
@click.option("--webhook-secret", "secrets", multiple=True,
              help="Replaces the secrets; during a rotation give the new and the old one.")
@click.option("--setting", "pairs", multiple=True, help="key=value, repeatable.")
def connections_update(name: str, secrets: tuple[str, ...], pairs: tuple[str, ...]) -> None:
    """Rotate a connection's webhook secrets or change its settings."""
    from hub.adapters.db import admin

    if not secrets and not pairs:
        raise click.UsageError("give --webhook-secret and/or --setting")
    info = admin.update_connection(_runtime().engine, name,
                                   secrets=list(secrets) if secrets else None,
                                   settings=_settings_pairs(pairs) if pairs else None,
                                   actor=ACTOR)
    click.echo(f"connection {info.name} updated; secrets configured: {len(info.secrets)}")


@connections.command("list")
def connections_list() -> None:
    """Connections with their status (secrets are never shown)."""
    from hub.adapters.db import admin

    for info in admin.list_connections(_runtime().engine):
        click.echo(f"{info.name:<16} {info.connector:<12} {info.status:<10} "
                   f"secrets: {len(info.secrets)}  POST /webhooks/{info.name}")


@cli.group()
def tokens() -> None:
    """API tokens for the admin API."""


@tokens.command("create")
@click.option("--role", type=click.Choice(["admin", "viewer"]), required=True)
@click.option("--name", default=None, help="Who or what uses it (default: the role).")
def tokens_create(role: str, name: str | None) -> None:
    """Create a token; it is printed once, as the last line, and stored only as a hash."""
    from hub.adapters.db import admin

    token = admin.create_token(_runtime().engine, name=name or role, role=role, actor=ACTOR)
    click.echo(f"{role} token created; store it now, it cannot be shown again:")
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """Tokens with their role and state (only a prefix of each is shown)."""
    from hub.adapters.db import admin

    for t in admin.list_tokens(_runtime().engine):
        state = "revoked" if t["revoked_at"] else "live"
        click.echo(f"{t['id']:>4} {t['name']:<16} {t['role']:<7} {t['prefix']}…  {state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token at once; requests using it then get 401."""
    from hub.adapters.db import admin

    admin.revoke_token(_runtime().engine, token_id, ACTOR)
    click.echo(f"token {token_id} revoked")


@cli.group()
def events() -> None:
    """The webhook inbox: what arrived, what happened to it, replays."""


@events.command("list")
@click.option("--status", type=click.Choice(["accepted", "processing", "processed", "ignored",
                                             "dead"]))
@click.option("--connection", default=None)
@click.option("--limit", default=50, show_default=True)
def events_list(status: str | None, connection: str | None, limit: int) -> None:
    """The newest inbox events with status, attempts and last error."""
    from hub.adapters.db import queries

    items, _ = queries.list_events(_runtime().engine, status=status, connection=connection,
                                   before=None, limit=limit)
    for e in items:
        error = f"  {e['last_error']}" if e["last_error"] else ""
        click.echo(f"{e['id']:>6} {e['received_at'][:19]} {e['connection']:<12} "
                   f"{e['event_type']:<28} {e['status']:<10} tries {e['attempts']}{error}")


@events.command("show")
@click.argument("event_id", type=int)
@click.option("--body", is_flag=True, help="Include the raw payload (personal data).")
def events_show(event_id: int, body: bool) -> None:
    """One event whole: headers kept, result (contacts touched, mapping problems)."""
    from hub.adapters.db import queries

    click.echo(json.dumps(queries.get_event(_runtime().engine, event_id, with_body=body),
                          indent=2))


@events.command("replay")
@click.argument("event_ids", type=int, nargs=-1)
@click.option("--dead", is_flag=True, help="Replay every dead event.")
def events_replay(event_ids: tuple[int, ...], dead: bool) -> None:
    """Put events back in the queue (processing is idempotent)."""
    from hub.adapters.db import inbox, queries

    rt = _runtime()
    ids = list(event_ids)
    if dead:
        items, _ = queries.list_events(rt.engine, status="dead", connection=None, before=None,
                                       limit=10_000)
        ids += [e["id"] for e in items]
    if not ids:
        raise click.UsageError("name event ids or use --dead")
    count = inbox.replay(rt.engine, ids, datetime.now(UTC))
    rt.dispatcher.delivery_received("admin", "replayed")
    click.echo(f"{count} event(s) queued again")


@cli.command()
def demo() -> None:
    """Run the hub on embedded defaults with demo deliveries and show the golden records."""
    from hub.demo.run import run_demo

    sys.exit(run_demo())


def _register_groups() -> None:
    from hub.cli_compliance import audit, compliance
    from hub.cli_contacts import contacts, flags, survivorship
    from hub.cli_sync import scheduler, sync

    for group in (contacts, flags, survivorship, compliance, audit, sync, scheduler):
        cli.add_command(group)


_register_groups()
cli.add_command(dedupe)
cli.add_command(mappings)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="hub")


if __name__ == "__main__":
    main()
