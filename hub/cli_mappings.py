"""`hub mappings`: validate, save, preview, diff, activate, roll back and reapply field
mappings, and declare custom fields. The same use cases as the API (hub.services.mapping_admin).

Exit codes: 0 done, 1 the document has errors (each printed), 2 anything else the hub refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

ACTOR = "cli"
OBJECT = click.option("--object", "object_type", required=True,
                      help="The record type the mapping is for: customer, order, ...")
CONNECTION = click.option("--connection", required=True, help="The connection's name.")
DIRECTION = click.option("--direction", type=click.Choice(["inbound", "outbound"]),
                         default="inbound", show_default=True)


def _runtime() -> Any:
    from hub.runtime import Runtime

    return Runtime.from_settings()


def _read(path: str) -> Any:
    """A mapping document from a YAML (or JSON) file."""
    import yaml

    from hub.domain.errors import ConfigurationError

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read it as YAML: {exc}") from None


def _print_findings(findings: list[Any]) -> None:
    for finding in findings:
        click.echo(finding.text(), err=finding.severity == "error")


def _fail_if_invalid(checked: Any) -> None:
    _print_findings(checked.findings)
    if not checked.ok:
        click.echo(f"{checked.name}: not valid, nothing saved", err=True)
        sys.exit(1)


@click.group()
def mappings() -> None:
    """Field mappings per connection: validate -> preview -> create -> activate -> reapply."""


@mappings.command("validate")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--connection", default=None,
              help="Check against this connection: its connector, and source paths against "
                   "its stored deliveries. Without FILE: check its active versions.")
@click.option("--sample", default=50, show_default=True,
              help="How many stored deliveries to check source paths against.")
def validate(file: str | None, connection: str | None, sample: int) -> None:
    """Every error and warning of a mapping document (or of a connection's active versions)."""
    from hub.adapters.db import mapping_store
    from hub.services import mapping_admin

    if not file and not connection:
        raise click.UsageError("give a FILE, --connection, or both")
    rt = _runtime()
    documents: list[tuple[str, Any]] = []
    if file:
        documents.append((Path(file).name, _read(file)))
    elif connection:
        for version in mapping_store.list_versions(rt.engine, connection):
            if version.active:
                documents.append((version.label, version.document))
    if not documents:
        click.echo(f"{connection} uses the shipped mappings only: nothing stored to validate")
    failed = False
    for name, raw in documents:
        checked = mapping_admin.validate(rt.engine, rt.mappings, raw, name=name,
                                         connection_name=connection, sample_size=sample)
        _print_findings(checked.findings)
        click.echo(f"{name}: {'valid' if checked.ok else 'NOT valid'}")
        failed = failed or not checked.ok
    sys.exit(1 if failed else 0)


@mappings.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@CONNECTION
@click.option("--reason", required=True, help="Why: kept in the version's history.")
def create(file: str, connection: str, reason: str) -> None:
    """Save FILE as the next version of its object's mapping (not live until activated)."""
    from hub.domain.mapping_checks import MappingInvalidError
    from hub.services import mapping_admin

    rt = _runtime()
    try:
        version, checked = mapping_admin.create_version(rt.engine, rt.mappings, connection,
                                                        _read(file), reason=reason,
                                                        author=ACTOR)
    except MappingInvalidError as exc:
        _print_findings(exc.findings)
        click.echo(f"{file}: not valid, nothing saved", err=True)
        sys.exit(1)
    _print_findings(checked.findings)
    click.echo(f"saved {version.label} (not live yet): hub mappings activate {version.number} "
               f"--connection {connection} --object {version.object_type}"
               + ("" if version.direction == "inbound" else " --direction outbound"))


@mappings.command("list")
@CONNECTION
@click.option("--object", "object_type", default=None)
def list_versions(connection: str, object_type: str | None) -> None:
    """Stored versions with author, time and reason; * marks the live one."""
    from hub.adapters.db import mapping_store

    rt = _runtime()
    versions = mapping_store.list_versions(rt.engine, connection, object_type)
    if not versions:
        click.echo(f"{connection} has no stored versions: the shipped mappings are live")
    for v in versions:
        mark = "*" if v.active else " "
        click.echo(f"{mark} {v.label:<36} {v.created_at.isoformat()[:19]}  {v.author:<16} "
                   f"{v.reason}")


@mappings.command("show")
@click.argument("version", default="active")
@CONNECTION
@OBJECT
@DIRECTION
def show(version: str, connection: str, object_type: str, direction: str) -> None:
    """A version's document as YAML (VERSION: a number, `default` or `active`)."""
    import yaml

    from hub.services import mapping_admin

    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    shown = mapping_admin.document_of(rt.engine, rt.mappings, info, object_type, direction,
                                      version)
    click.echo(f"# {shown['label']} ({'live' if shown['active'] else 'not live'})")
    click.echo(yaml.safe_dump(shown["document"], sort_keys=False, allow_unicode=True))


@mappings.command("preview")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@CONNECTION
@click.option("--object", "object_type", default=None, help="Default: the document's object.")
@click.option("--version", default=None, help="Preview a stored version instead of FILE.")
@click.option("--last", default=100, show_default=True,
              help="Replay the connection's last N stored deliveries.")
@click.option("--sample", "sample_file", default=None, type=click.Path(exists=True),
              help="A JSON payload instead of stored deliveries.")
@click.option("--event-type", default=None,
              help="With --sample: the payload is a whole delivery of this event type.")
@click.option("--json", "as_json", is_flag=True, help="The whole result as JSON.")
@click.option("--show", default=20, show_default=True, help="Contacts to list.")
def preview(file: str | None, connection: str, object_type: str | None, version: str | None,
            last: int, sample_file: str | None, event_type: str | None, as_json: bool,
            show: int) -> None:
    """What a draft would change, contact by contact, next to the live version. Writes nothing."""
    from hub.services import mapping_admin
    from hub.services.mapping_preview import preview as run_preview

    if bool(file) == bool(version):
        raise click.UsageError("give a FILE or --version")
    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    if version:
        if not object_type:
            raise click.UsageError("--version needs --object")
        raw = mapping_admin.document_of(rt.engine, rt.mappings, info, object_type, "inbound",
                                        version)["document"]
    else:
        raw = _read(str(file))
    object_type = object_type or (raw.get("object") if isinstance(raw, dict) else None)
    if not object_type:
        raise click.UsageError("the document names no object; give --object")
    checked = mapping_admin.validate(rt.engine, rt.mappings, raw, name=f"{connection} draft",
                                     connection_name=connection)
    _fail_if_invalid(checked)
    draft = mapping_admin.draft_mapping(checked, rt.mappings.custom_fields())
    sample = json.loads(Path(sample_file).read_text(encoding="utf-8")) if sample_file else None
    result = run_preview(rt.engine, rt.mappings, info, object_type, draft,
                         replay_last=None if sample else last, sample=sample,
                         event_type=event_type)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    _print_preview(result, show)


def _print_preview(result: dict[str, Any], show: int) -> None:
    counts = result["counts"]
    click.echo(f"draft vs {result['active_version'] or 'nothing live'} on {counts['records']} "
               f"{result['object']} record(s) ({counts['skipped']} skipped)")
    click.echo(f"contacts: {counts['contacts']}  changed: {counts['changed']}  "
               f"unchanged: {counts['unchanged']}  failing: {counts['failing']}")
    listed = [c for c in result["contacts"] if c["status"] != "unchanged"][:show]
    for contact in listed:
        click.echo(f"\ncontact {contact['contact']}: {contact['status']}")
        for name, change in contact["changes"].items():
            click.echo(f"  {name}: {change['active']!r} -> {change['draft']!r}")
        for problem in contact["problems"]:
            click.echo(f"  problem: {problem}")


@mappings.command("diff")
@CONNECTION
@OBJECT
@DIRECTION
@click.option("--from", "from_ref", default="default", show_default=True,
              help="A version number, default or active.")
@click.option("--to", "to_ref", default="active", show_default=True)
def diff(connection: str, object_type: str, direction: str, from_ref: str, to_ref: str) -> None:
    """Rule by rule: what changed between two versions."""
    from hub.services import mapping_admin

    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    result = mapping_admin.diff(rt.engine, rt.mappings, info, object_type, direction,
                                from_ref, to_ref)
    click.echo(f"{result['from']} -> {result['to']}: {len(result['added'])} added, "
               f"{len(result['removed'])} removed, {len(result['changed'])} changed, "
               f"{result['unchanged']} unchanged")
    for rule in result["added"]:
        click.echo(f"+ rule {rule['rule']} {rule['target']}: {json.dumps(rule['definition'])}")
    for rule in result["removed"]:
        click.echo(f"- rule {rule['rule']} {rule['target']}: {json.dumps(rule['definition'])}")
    for rule in result["changed"]:
        for key, change in rule["changes"].items():
            click.echo(f"~ rule {rule['to_rule']} {rule['target']} {key}: "
                       f"{json.dumps(change['from'])} -> {json.dumps(change['to'])}")


@mappings.command("activate")
@click.argument("version")
@CONNECTION
@OBJECT
@DIRECTION
@click.option("--reason", default="", help="Kept in the activation history.")
def activate(version: str, connection: str, object_type: str, direction: str,
             reason: str) -> None:
    """Make VERSION live for new events (a number, or `default` for the shipped file)."""
    from hub.services import mapping_admin

    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    result = mapping_admin.activate(rt.engine, rt.mappings, info, object_type, direction,
                                    version, actor=ACTOR, reason=reason)
    _print_activation(result)


def _print_activation(result: dict[str, Any]) -> None:
    label = result["active"]["label"]
    if not result["changed"]:
        click.echo(f"{label} was already live")
        return
    click.echo(f"{label} is live for new events (every worker within "
               f"{result['applies_within_seconds']:g} s); run `hub mappings reapply` to "
               "apply it to stored deliveries")


@mappings.command("rollback")
@CONNECTION
@OBJECT
@DIRECTION
@click.option("--to", "to_ref", default=None,
              help="A version number or default (default: the one live before this one).")
@click.option("--reason", default="", help="Kept in the activation history.")
def rollback(connection: str, object_type: str, direction: str, to_ref: str | None,
             reason: str) -> None:
    """Activate an earlier version again."""
    from hub.services import mapping_admin

    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    _print_activation(mapping_admin.rollback(rt.engine, rt.mappings, info, object_type,
                                             direction, to_ref, actor=ACTOR, reason=reason))


@mappings.command("reapply")
@CONNECTION
@click.option("--since", required=True,
              help="2026-11-16, 2026-11-16T08:00:00Z, or a span back from now: 7d, 36h.")
@click.option("--batch-size", default=None, type=int, help="Default: HUB_BATCH_SIZE.")
def reapply(connection: str, since: str, batch_size: int | None) -> None:
    """Reprocess the connection's stored deliveries since a time through the live mappings.

    Safe to repeat or interrupt: an older delivery never overwrites a newer value.
    """
    from hub.adapters.db import history
    from hub.services import mapping_admin

    rt = _runtime()
    info = mapping_admin.connection(rt.engine, connection)
    start = mapping_admin.parse_since(since)
    total = history.count_since(rt.engine, info.name, start).get("processed", 0)
    settings = rt.settings
    with click.progressbar(length=total, label=f"reapplying {total} deliveries",
                           file=sys.stderr) as bar:
        result = mapping_admin.reapply(
            rt.engine, rt.mappings, info, start, actor=ACTOR,
            batch_size=batch_size or settings.batch_size, max_attempts=settings.max_attempts,
            retry_base=settings.retry_base_seconds, progress=bar.update)
    click.echo(f"reprocessed {result['reprocessed']} deliveries since {result['since']}; "
               f"failed {result['failed']}")
    if result["dead"]:
        click.echo(f"{result['dead']} dead deliveries in that window were not touched: "
                   "`hub events replay --dead` after checking why they failed")
    if result["waiting"]:
        click.echo(f"{result['waiting']} deliveries are still queued; workers apply the live "
                   "mappings to them")


@mappings.group("custom-fields")
def custom_fields() -> None:
    """Custom canonical fields (custom.<name>) that mappings may target."""


@custom_fields.command("add")
@click.argument("name")
@click.option("--type", "type_", required=True,
              type=click.Choice(["string", "number", "boolean", "date", "enum"]))
@click.option("--values", default="", help="For an enum: its values, comma-separated.")
@click.option("--label", default=None, help="How people call it (default: from the name).")
def custom_fields_add(name: str, type_: str, values: str, label: str | None) -> None:
    """Declare a custom field, e.g. `loyalty_tier --type enum --values bronze,silver,gold`."""
    from hub.services import mapping_admin

    rt = _runtime()
    data = {"name": name, "type": type_, "label": label,
            "values": [v.strip() for v in values.split(",") if v.strip()]}
    added = mapping_admin.add_custom_field(rt.engine, rt.mappings, data, actor=ACTOR)
    click.echo(f"custom field {added['name']} ({added['type']}) added; map to it with "
               f"`target: {added['name']}`")


@custom_fields.command("list")
def custom_fields_list() -> None:
    """Every custom field with its type and values."""
    from hub.adapters.db import mapping_store

    for f in mapping_store.list_custom_fields(_runtime().engine):
        values = f" [{', '.join(f['values'])}]" if f["values"] else ""
        click.echo(f"{f['name']:<32} {f['type']:<8} {f['label']}{values}")
