"""Use cases of the mapping life cycle: validate, save a version, diff, activate, roll back,
reapply to stored deliveries, declare custom fields. The API and the CLI both call these.

A version is validated when it is saved (errors refuse it, warnings ride along), so activating
is only ever a pointer move; rollback is activating an earlier version, nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.registry import CONNECTORS
from hub.adapters.db import admin, history, mapping_store
from hub.adapters.db.admin import ConnectionInfo
from hub.adapters.db.mapping_store import MAPPING_CACHE_SECONDS, DbMappingStore
from hub.adapters.mapping_schema import load_document
from hub.domain.custom_fields import define_custom_field
from hub.domain.errors import ConfigurationError, NotFoundError
from hub.domain.mapping import Mapping, compile_mapping, compile_outbound
from hub.domain.mapping_checks import (
    ERROR,
    WARNING,
    Finding,
    MappingInvalidError,
    check_document,
    errors_of,
)
from hub.domain.mapping_diff import diff_rules
from hub.services.mapping_preview import SAMPLE_SIZE, sample_payloads
from hub.services.process_inbox import process_events

DEFAULT, ACTIVE = "default", "active"


def connection(engine: Engine, name: str) -> ConnectionInfo:
    info = admin.get_connection(engine, name)
    if info is None:
        raise NotFoundError(f"no connection named {name!r}")
    return info


@dataclass
class Checked:
    """A document after validation: `document` is None when even its shape is wrong."""

    name: str
    document: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.document is not None and not errors_of(self.findings)

    def report(self) -> dict[str, Any]:
        return {"valid": self.ok, "document": self.name,
                "errors": sum(f.severity == ERROR for f in self.findings),
                "warnings": sum(f.severity == WARNING for f in self.findings),
                "findings": [f.as_dict() for f in self.findings]}


def validate(engine: Engine, store: DbMappingStore, raw: Any, *, name: str,
             connection_name: str | None = None, sample_size: int = SAMPLE_SIZE) -> Checked:
    """Every problem of a document; with a connection, source paths are checked against its
    last `sample_size` deliveries and the connector must match."""
    info = connection(engine, connection_name) if connection_name else None
    if info is not None and isinstance(raw, dict):
        raw = {"connector": info.connector, **raw}
    try:
        document = load_document(raw, name)
    except ConfigurationError as exc:
        message = exc.detail.removeprefix(f"{name}: ")
        return Checked(name, None, [Finding(ERROR, name, None, None, "schema", message)])
    document = as_stored(document)
    findings = _connector_findings(document, info, name)
    samples = None
    if info is not None and document["direction"] == "inbound" and sample_size > 0:
        samples = sample_payloads(engine, info.name, document["object"], sample_size)
    kind = CONNECTORS[document["connector"]].kind if document["connector"] in CONNECTORS \
        else None
    store.refresh()
    findings += check_document(document, name=name, custom=store.custom_fields(),
                               connector_kind=kind, samples=samples)
    return Checked(name, document, findings)


def as_stored(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the database keeps it (JSON): YAML's `true:` keys become "true", its
    dates text. Validating and diffing this form means what is checked is what is stored;
    value_map compares keys as text, so the meaning does not change."""
    stored: dict[str, Any] = json.loads(json.dumps(document, default=str))
    return stored


def _connector_findings(document: dict[str, Any], info: ConnectionInfo | None, name: str
                        ) -> list[Finding]:
    connector = document["connector"]
    if connector not in CONNECTORS:
        known = ", ".join(sorted(CONNECTORS))
        return [Finding(ERROR, name, None, None, "unknown_connector",
                        f"unknown connector {connector!r} (known: {known})")]
    if info is not None and connector != info.connector:
        return [Finding(ERROR, name, None, None, "wrong_connector",
                        f"connection {info.name} is a {info.connector} connection, but the "
                        f"document is for {connector}")]
    yields = sorted(set(CONNECTORS[connector].events.values()))
    if document["direction"] == "inbound" and document["object"] not in yields:
        return [Finding(WARNING, name, None, None, "unknown_object",
                        f"{connector} deliveries carry no {document['object']!r} records "
                        f"(they carry: {', '.join(yields)}); this mapping would not be used "
                        "for webhooks")]
    return []


def draft_mapping(checked: Checked, custom: dict[str, Any]) -> Mapping:
    """The compiled draft of a valid inbound document, or MappingInvalidError."""
    if not checked.ok or checked.document is None:
        raise MappingInvalidError(checked.name, checked.findings)
    if checked.document["direction"] != "inbound":
        raise ConfigurationError("only inbound mappings can be previewed on deliveries")
    return compile_mapping({**checked.document, "version": "draft"}, custom)


def create_version(engine: Engine, store: DbMappingStore, connection_name: str, raw: Any, *,
                   reason: str, author: str) -> tuple[mapping_store.VersionInfo, Checked]:
    """Validate and store a document as the next version (not yet live)."""
    if not reason.strip():
        raise ConfigurationError("say why: a version needs a reason (shown in its history)")
    checked = validate(engine, store, raw, name=f"{connection_name} draft",
                       connection_name=connection_name)
    if not checked.ok or checked.document is None:
        raise MappingInvalidError(checked.name, checked.findings)
    version = mapping_store.create_version(engine, connection=connection_name,
                                           document=checked.document, reason=reason.strip(),
                                           author=author)
    return version, checked


def parse_ref(ref: str | int | None) -> str | int:
    """A version reference: 3, "3", "v3", "default" (the shipped file) or "active"."""
    if ref is None or ref == "":
        return ACTIVE
    if isinstance(ref, int):
        return ref
    text = ref.strip().lower()
    if text in (DEFAULT, ACTIVE):
        return text
    number = text.removeprefix("v")
    if not number.isdigit() or int(number) < 1:
        raise ConfigurationError(f"{ref!r} is not a version: give a number (3 or v3), "
                                 "'default' (the shipped file) or 'active'")
    return int(number)


def resolve_ref(engine: Engine, info: ConnectionInfo, object_type: str, direction: str,
                ref: str | int | None) -> int | None:
    """The version number a reference means (None: the shipped file)."""
    parsed = parse_ref(ref)
    if parsed == ACTIVE:
        return mapping_store.active_number(engine, info.name, object_type, direction)
    return None if parsed == DEFAULT else int(parsed)


def document_of(engine: Engine, store: DbMappingStore, info: ConnectionInfo, object_type: str,
                direction: str, ref: str | int | None) -> dict[str, Any]:
    """A version (or the shipped default) as the API shows it, with its document."""
    number = resolve_ref(engine, info, object_type, direction, ref)
    if number is not None:
        return mapping_store.get_version(engine, info.name, object_type, direction, number
                                         ).public(with_document=True)
    try:
        document = as_stored(store.files.document(info.connector, object_type, direction))
    except ConfigurationError as exc:
        raise NotFoundError(exc.detail) from None
    live = mapping_store.active_number(engine, info.name, object_type, direction) is None
    return {"version": DEFAULT, "label": document.pop("version"), "object": object_type,
            "direction": direction, "author": "hub", "reason": "shipped default",
            "created_at": None, "active": live, "document": document}


def diff(engine: Engine, store: DbMappingStore, info: ConnectionInfo, object_type: str,
         direction: str, from_ref: str | int | None, to_ref: str | int | None
         ) -> dict[str, Any]:
    old = document_of(engine, store, info, object_type, direction, from_ref or DEFAULT)
    new = document_of(engine, store, info, object_type, direction, to_ref)
    return {"from": old["label"], "to": new["label"],
            **diff_rules(old["document"], new["document"])}


def activate(engine: Engine, store: DbMappingStore, info: ConnectionInfo, object_type: str,
             direction: str, ref: str | int | None, *, actor: str, reason: str = "",
             action: str = "mapping.activated") -> dict[str, Any]:
    """Make a version live for new events (every process sees it within seconds)."""
    number = resolve_ref(engine, info, object_type, direction, ref)
    if number is None:
        # Going back to the shipped file: it must exist and compile, or events would fail.
        document = document_of(engine, store, info, object_type, direction, DEFAULT)["document"]
        compiler = compile_outbound if direction == "outbound" else compile_mapping
        compiler({**document, "connector": info.connector})
    changed = mapping_store.activate(engine, connection=info.name, object_type=object_type,
                                     direction=direction, number=number, actor=actor,
                                     reason=reason, action=action)
    store.refresh()
    shown = document_of(engine, store, info, object_type, direction, number or DEFAULT)
    shown.pop("document")
    return {"active": shown, "changed": changed,
            "applies_within_seconds": MAPPING_CACHE_SECONDS}


def rollback(engine: Engine, store: DbMappingStore, info: ConnectionInfo, object_type: str,
             direction: str, to: str | int | None, *, actor: str, reason: str = ""
             ) -> dict[str, Any]:
    """Activate an earlier version: the one live before the current one, unless `to` says."""
    target: str | int = parse_ref(to) if to not in (None, "") else (
        mapping_store.previous_number(engine, info.name, object_type, direction) or DEFAULT)
    return activate(engine, store, info, object_type, direction, target, actor=actor,
                    reason=reason or "rollback", action="mapping.rolled_back")


_SPANS = {"d": 86400, "h": 3600, "m": 60}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A start time: 2026-11-16 (midnight UTC), 2026-11-16T08:00:00+01:00 (a time without an
    offset is UTC), or a span back from now: 7d, 36h, 90m."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value[:-1].isdigit() and value[-1:].lower() in _SPANS:
        return now - timedelta(seconds=int(value[:-1]) * _SPANS[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"since {text!r}: give a date (2026-11-16), a date and time "
                                 "(2026-11-16T08:00:00Z) or a span such as 7d") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed > now:
        raise ConfigurationError(f"since {text!r} is in the future")
    return parsed.astimezone(UTC)


def reapply(engine: Engine, store: DbMappingStore, info: ConnectionInfo, since: datetime, *,
            actor: str, batch_size: int, max_attempts: int, retry_base: float,
            progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Reprocess the connection's processed deliveries since a time through the active
    mappings, oldest first, in batches, in this process. Idempotent: survivorship keeps a
    newer observation over an older one, and restating a value changes only its provenance.
    """
    store.refresh()
    processed = failed = 0
    after = 0
    while True:
        events = history.processed_since(engine, info.name, since, after_id=after,
                                         limit=batch_size)
        if not events:
            break
        report = process_events(engine, events, store, max_attempts=max_attempts,
                                retry_base=retry_base)
        processed, failed, after = processed + report.processed, failed + report.failed, \
            events[-1].id
        if progress:
            progress(len(events))
    counts = history.count_since(engine, info.name, since)
    result = {"connection": info.name, "since": since.isoformat(), "reprocessed": processed,
              "failed": failed, "dead": counts.get("dead", 0),
              "waiting": counts.get("accepted", 0) + counts.get("processing", 0)}
    with engine.begin() as conn:
        admin.audit(conn, actor, "mapping.reapplied", "connection", info.name, result)
    return result


def queue_reapply(engine: Engine, info: ConnectionInfo, since: datetime, *, actor: str
                  ) -> dict[str, Any]:
    """The same through the workers (for the API): the deliveries go back to the queue, due
    once every worker has seen the newest activation."""
    now = datetime.now(UTC)
    queued = history.requeue_processed_since(engine, info.name, since, now,
                                             MAPPING_CACHE_SECONDS + 1)
    result = {"connection": info.name, "since": since.isoformat(), "queued": queued}
    with engine.begin() as conn:
        admin.audit(conn, actor, "mapping.reapply_queued", "connection", info.name, result)
    return result


def add_custom_field(engine: Engine, store: DbMappingStore, data: dict[str, Any], *,
                     actor: str) -> dict[str, Any]:
    custom = define_custom_field(data["name"], data["type"], data.get("label"),
                                 data.get("values") or ())
    mapping_store.add_custom_field(engine, custom, actor)
    store.refresh()
    return custom.describe()
