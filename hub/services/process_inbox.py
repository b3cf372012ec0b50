"""Process claimed inbox events: parse, map, resolve identity, merge, store. In batches.

A batch is one transaction: identities locked, contacts read once, every record reconciled in
memory, changes written together, events marked done in the same commit, so a crash anywhere
leaves the events claimable and the contacts as they were. If the batch transaction fails
(a constraint, a deadlock), each event is retried alone, so one bad event cannot hold back
the others; an event that fails alone is retried later with backoff, then marked dead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.registry import get_connector
from hub.adapters.db import admin, compliance_store, inbox, merges
from hub.adapters.db import contacts as contact_store
from hub.domain.contact import CanonicalRecord, FieldSpec
from hub.domain.errors import HubError, PayloadError, RejectedRecordError
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import identity_keys, previous_key
from hub.domain.reconcile import reconcile
from hub.domain.sync import withheld_contacts
from hub.redaction import redact
from hub.services.canonical import MappingSource, canonical_records
from hub.services.pii_scrub import PII_HEADER
from hub.services.token_rotation import keep_rotated_tokens

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    processed: int = 0
    failed: int = 0
    dead: int = 0
    latencies: list[float] = field(default_factory=list)
    withheld: list[int] = field(default_factory=list)  # contacts whose consent was withdrawn


@dataclass
class Prepared:
    event: inbox.ClaimedEvent
    records: list[CanonicalRecord]


@dataclass
class Stored:
    """What one `_store` transaction did, for whoever finishes it (the inbox or the sync)."""

    batch: list[Prepared]  # the items stored (dropped ones left out)
    touched_by: list[list[int]]  # per item, the (batch-local) contact of each record
    dropped: list[Prepared]  # items about an erased person, not stored
    contacts: list[GoldenRecord]  # every contact the batch resolved, changed or not
    before: dict[int, dict[str, Any]]  # their values before the batch (existing ones)
    ids: dict[int, int]  # batch-local id -> stored id for new contacts


Finish = Callable[[Any, Stored, datetime], None]


def process_events(
    engine: Engine,
    events: list[inbox.ClaimedEvent],
    mappings: MappingSource,
    *,
    max_attempts: int,
    retry_base: float,
    now: datetime | None = None,
) -> BatchReport:
    now = now or datetime.now(UTC)
    report = BatchReport()
    ready: list[Prepared] = []
    ignored: list[tuple[int, str, dict[str, Any]]] = []
    for event in events:
        if event.attempts > max_attempts:  # claimed again and again, never finished
            error = GaveUpError(f"claimed {event.attempts - 1} times without finishing (the "
                                "worker died or timed out on it each time)")
            _fail(engine, event, error, report, now, max_attempts, retry_base, permanent=True)
        elif not get_connector(event.connector).understands(event.event_type):
            ignored.append((event.id, inbox.IGNORED, {"reason": "event type not handled"}))
        else:
            _prepare(engine, event, mappings, ready, report, now, max_attempts, retry_base)
    if ignored:
        with engine.begin() as conn:
            inbox.mark_done(conn, ignored, now)
    if not ready:
        return report
    specs = mappings.field_specs()  # built-in and custom fields, for survivorship
    try:
        report.withheld += _withheld(_store(engine, ready, now, specs))
        _count_done(report, ready, now)
    except Exception:  # noqa: BLE001 - whatever broke the batch, isolate the event that did
        log.warning("batch of %d events failed as a whole; retrying one by one", len(ready))
        for item in ready:
            try:
                report.withheld += _withheld(_store(engine, [item], now, specs))
                _count_done(report, [item], now)
            except Exception as exc:  # noqa: BLE001 - recorded on the event, retried later
                _fail(engine, item.event, exc, report, now, max_attempts, retry_base)
    return report


class GaveUpError(RejectedRecordError):
    title = "Gave up"


def _prepare(engine: Engine, event: inbox.ClaimedEvent, mappings: MappingSource,
             ready: list[Prepared], report: BatchReport, now: datetime, max_attempts: int,
             retry_base: float) -> None:
    """Parse and map one event; a failure is recorded on it and never stops the batch."""
    try:
        ready.append(Prepared(event, _records_of(engine, event, mappings)))
    except (PayloadError, RejectedRecordError) as exc:  # the delivery itself is unusable
        _fail(engine, event, exc, report, now, max_attempts, retry_base, permanent=True)
    except Exception as exc:  # noqa: BLE001 - config errors, vendor outages, our own bugs
        _fail(engine, event, exc, report, now, max_attempts, retry_base)


def _records_of(engine: Engine, event: inbox.ClaimedEvent, mappings: MappingSource
                ) -> list[CanonicalRecord]:
    return canonical_records(
        connection=event.connection,
        connector_key=event.connector,
        settings=event.settings,
        credentials=event.credentials,
        event_type=event.event_type,
        delivery_key=event.delivery_key,
        headers=event.headers,
        body=event.body,
        event_id=str(event.id),
        mappings=mappings,
        keep_tokens=lambda http: keep_rotated_tokens(http, engine, event.connection),
    )


def _store(engine: Engine, batch: list[Prepared], now: datetime,
           specs: dict[str, FieldSpec] | None = None, *, finish: Finish | None = None
           ) -> Stored:
    """Map, resolve, merge and save a batch in one transaction; `finish` adds its own writes
    to that transaction (the inbox marks its events done, the sync its page and bookmark)."""
    salt = compliance_store.salt(engine)
    with engine.begin() as conn:
        batch, dropped = _drop_erased(conn, batch, salt)
        records = [r for item in batch for r in item.records]
        keys = {k for r in records for k in identity_keys(r)}
        keys |= {k for r in records if (k := previous_key(r)) is not None}
        contact_store.lock_identities(conn, keys)
        owners = contact_store.find_owners(conn, keys)
        preloaded = contact_store.load_many(conn, set(owners.values()))
        before = {cid: dict(golden.values) for cid, golden in preloaded.items()}
        policy = merges.load_policy(conn)
        outcome = reconcile(records, owners, lambda cid: preloaded[cid], policy=policy,
                            specs=specs)
        flags = list(outcome.flags)
        position = 0
        touched_by: list[list[int]] = []
        for item in batch:
            touched = outcome.contact_of_record[position : position + len(item.records)]
            position += len(item.records)
            touched_by.append(touched)
            flags.extend(_redaction_flags(item, touched))
        flags.extend(_dropped_flags(dropped))
        changed = list(outcome.contacts.values())
        ids = contact_store.save(conn, changed, flags, now)
        compliance_store.record_consent_history(conn, changed, ids, now)
        admin.audit_many(conn, _audit_rows(changed, ids, now))
        stored = Stored(batch, touched_by, dropped, changed, before, ids)
        (finish or _finish_events)(conn, stored, now)
    return stored


def _withheld(stored: Stored) -> list[int]:
    return withheld_contacts(stored.contacts, stored.before, stored.ids)


def _finish_events(conn: Any, stored: Stored, now: datetime) -> None:
    """The inbox's part of the batch transaction: its events are done, with their results."""
    ids = stored.ids
    results = [(item.event.id, inbox.PROCESSED, _result(item, touched, ids))
               for item, touched in zip(stored.batch, stored.touched_by, strict=True)]
    results += [(item.event.id, inbox.PROCESSED, {"dropped": "a tombstoned (erased) person",
                                                  "contacts": []}) for item in stored.dropped]
    inbox.mark_done(conn, results, now)
    inbox.blank_bodies(conn, [item.event.id for item in stored.dropped])


def _drop_erased(conn: Any, batch: list[Prepared], salt: bytes
                 ) -> tuple[list[Prepared], list[Prepared]]:
    """Deliveries about an erased person are dropped, never stored as a contact again.
    Hashing every identity of a batch costs more than one look at whether anybody was ever
    erased, which is the common case."""
    if not compliance_store.any_tombstone(conn):
        return batch, []
    hashes = {id(item): {compliance_store.tombstone_hash(k, salt) for r in item.records
                         for k in identity_keys(r)} for item in batch}
    erased = compliance_store.tombstoned(conn, set().union(*hashes.values()) if hashes else set())
    if not erased:
        return batch, []
    keep = [item for item in batch if not hashes[id(item)] & erased]
    drop = [item for item in batch if hashes[id(item)] & erased]
    return keep, drop


def _dropped_flags(dropped: list[Prepared]) -> list[NewFlag]:
    return [NewFlag(kind=FlagKind.COMPLIANCE, contact_id=None, topic=f"erased:{item.event.id}",
                    summary=(f"a {item.event.connection} delivery ({item.event.event_type}) for "
                             "an erased person was dropped; its payload was not kept"),
                    details={"event_id": item.event.id, "connection": item.event.connection})
            for item in dropped]


def _audit_rows(records: list[Any], ids: dict[int, int], now: datetime) -> list[dict[str, Any]]:
    """One audit line per contact a batch created or changed: which fields, from where."""
    rows = []
    for record in records:
        if not record.is_dirty:
            continue
        sources = sorted({record.provenance[f].connection for f in record.changed_fields})
        events = sorted({str(record.provenance[f].event_id) for f in record.changed_fields})
        rows.append({"at": now, "actor": "worker:" + ",".join(sources or ["identity"]),
                     "action": "contact.created" if record.is_new else "contact.updated",
                     "entity_type": "contact", "entity_id": str(ids.get(record.id, record.id)),
                     "details": {"fields": sorted(record.changed_fields), "event_ids": events,
                                 "identities_added": len(record.new_identities)}})
    return rows


def _redaction_flags(item: Prepared, touched: list[int]) -> list[NewFlag]:
    """The receiver removed card numbers or IBANs from this delivery: tell the admin where."""
    kinds = item.event.headers.get(PII_HEADER)
    if not kinds:
        return []
    return [NewFlag(kind=FlagKind.COMPLIANCE, contact_id=contact_id, topic=f"pii:{item.event.id}",
                    summary=(f"{kinds.replace(',', ' and ')} found in a free-text field of a "
                             f"{item.event.connection} delivery and removed before storage"),
                    details={"event_id": item.event.id, "kinds": kinds.split(",")})
            for contact_id in sorted(set(touched))]


def _result(item: Prepared, touched: list[int], ids: dict[int, int]) -> dict[str, Any]:
    return {
        "contacts": sorted({ids.get(c, c) for c in touched}),
        "records": len(item.records),
        "problems": [p for r in item.records for p in r.problems],
    }


def _count_done(report: BatchReport, batch: list[Prepared], now: datetime) -> None:
    report.processed += len(batch)
    report.latencies.extend((now - item.event.received_at).total_seconds() for item in batch)


def _fail(
    engine: Engine,
    event: inbox.ClaimedEvent,
    exc: Exception,
    report: BatchReport,
    now: datetime,
    max_attempts: int,
    retry_base: float,
    *,
    permanent: bool = False,
) -> None:
    message = describe_error(exc)
    status = inbox.mark_failed(
        engine, event, message, now=now, max_attempts=max_attempts, retry_base=retry_base,
        permanent=permanent,
    )
    report.failed += 1
    report.dead += status == inbox.DEAD
    log.warning("event %s failed (%s, attempt %d): %s", event.id, status, event.attempts,
                type(exc).__name__)


def describe_error(exc: Exception) -> str:
    """What an admin reads in the event's last_error: the class and our own message. SQL
    errors are cut to their first line, which names the constraint but not the values."""
    if isinstance(exc, SQLAlchemyError):
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"{type(exc).__name__}: {redact(first, 300)}"
    if isinstance(exc, HubError):
        return f"{type(exc).__name__}: {exc.detail}"
    return f"{type(exc).__name__}: {redact(exc)}"
