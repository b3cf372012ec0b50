"""Process claimed inbox events: parse, map, resolve identity, merge, store. In batches.

A batch is one transaction: identities locked, contacts read once, every record reconciled in
memory, changes written together, events marked done in the same commit, so a crash anywhere
leaves the events claimable and the contacts as they were. If the batch transaction fails
(a constraint, a deadlock), each event is retried alone, so one bad event cannot hold back
the others; an event that fails alone is retried later with backoff, then marked dead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.registry import get_connector
from hub.adapters.db import contacts as contact_store
from hub.adapters.db import inbox, merges
from hub.domain.contact import CanonicalRecord, FieldSpec
from hub.domain.errors import HubError, PayloadError, RejectedRecordError
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.identity import identity_keys, previous_key
from hub.domain.reconcile import reconcile
from hub.redaction import redact
from hub.services.canonical import MappingSource, canonical_records
from hub.services.pii_scrub import PII_HEADER

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    processed: int = 0
    failed: int = 0
    dead: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Prepared:
    event: inbox.ClaimedEvent
    records: list[CanonicalRecord]


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
        _store(engine, ready, now, specs)
        _count_done(report, ready, now)
    except Exception:  # noqa: BLE001 - whatever broke the batch, isolate the event that did
        log.warning("batch of %d events failed as a whole; retrying one by one", len(ready))
        for item in ready:
            try:
                _store(engine, [item], now, specs)
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
        ready.append(Prepared(event, _records_of(event, mappings)))
    except (PayloadError, RejectedRecordError) as exc:  # the delivery itself is unusable
        _fail(engine, event, exc, report, now, max_attempts, retry_base, permanent=True)
    except Exception as exc:  # noqa: BLE001 - config errors, vendor outages, our own bugs
        _fail(engine, event, exc, report, now, max_attempts, retry_base)


def _records_of(event: inbox.ClaimedEvent, mappings: MappingSource) -> list[CanonicalRecord]:
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
    )


def _store(engine: Engine, batch: list[Prepared], now: datetime,
           specs: dict[str, FieldSpec] | None = None) -> None:
    records = [r for item in batch for r in item.records]
    keys = {k for r in records for k in identity_keys(r)}
    keys |= {k for r in records if (k := previous_key(r)) is not None}
    with engine.begin() as conn:
        contact_store.lock_identities(conn, keys)
        owners = contact_store.find_owners(conn, keys)
        preloaded = contact_store.load_many(conn, set(owners.values()))
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
        ids = contact_store.save(conn, list(outcome.contacts.values()), flags, now)
        results = [(item.event.id, inbox.PROCESSED, _result(item, touched, ids))
                   for item, touched in zip(batch, touched_by, strict=True)]
        inbox.mark_done(conn, results, now)


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
