"""Dry runs: what a draft mapping would make of real deliveries, next to what the active one made.

Stored deliveries are parsed with the connector exactly as the worker parses them, mapped with
both mappings, and compared per contact after survivorship (hub.domain.mapping_diff). Nothing
is written: no contact, no event, no flag. Thin deliveries (the record is fetched from the
vendor's API when processed) are skipped rather than calling the vendor from a preview.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from connectors.base import ConnectionContext, Delivery, SourceRecord, meta
from connectors.registry import get_connector
from hub.adapters.db import contacts as contact_store
from hub.adapters.db import history
from hub.adapters.db.admin import ConnectionInfo
from hub.adapters.db.inbox import ClaimedEvent
from hub.adapters.db.mapping_store import DbMappingStore
from hub.domain.contact import CanonicalRecord
from hub.domain.errors import ConfigurationError, HubError
from hub.domain.identity import IdentityKey, identity_keys
from hub.domain.mapping import Mapping
from hub.domain.mapping_diff import RecordPair, compare_outputs, count_statuses

SAMPLE_SIZE = 50  # stored deliveries sampled to check that source paths exist
PREVIEW_MAX = 1000  # deliveries one preview may replay


def parse_event(event: ClaimedEvent) -> list[SourceRecord]:
    """The source records of a stored delivery, as the worker would see them."""
    connector = get_connector(event.connector)
    delivery = Delivery(key=event.delivery_key, event_type=event.event_type,
                        headers=event.headers)
    context = ConnectionContext(name=event.connection, settings=event.settings,
                                credentials=event.credentials)
    return connector.parse(delivery, event.body, context)


def sample_payloads(engine: Engine, connection: str, object_type: str,
                    limit: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
    """Payloads of `object_type` found in the connection's last `limit` deliveries."""
    payloads: list[dict[str, Any]] = []
    for event in history.recent_deliveries(engine, connection, limit):
        if not get_connector(event.connector).understands(event.event_type):
            continue
        try:
            records = parse_event(event)
        except HubError:
            continue  # an unusable delivery says nothing about the paths
        payloads.extend(r.payload for r in records if r.object_type == object_type
                        and not r.fetch)
    return payloads


@dataclass
class _Item:
    event_id: str
    event_type: str
    record: SourceRecord | None
    error: str | None = None


def _sample_items(info: ConnectionInfo, object_type: str, sample: dict[str, Any],
                  event_type: str | None) -> list[_Item]:
    """A payload pasted by the admin: a whole delivery body when its event type is given, else
    the record itself (what the mapping's paths read)."""
    if event_type:
        event = ClaimedEvent(0, info.name, info.connector, info.settings, info.credentials,
                             event_type, "preview", {}, json.dumps(sample).encode(), 1,
                             datetime.now(UTC))
        return _event_items(event)
    context = ConnectionContext(info.name, info.settings, info.credentials)
    record = SourceRecord(object_type, None, datetime.now(UTC),
                          {**sample, "_meta": meta(context)})
    return [_Item("sample", "sample", record)]


def _event_items(event: ClaimedEvent) -> list[_Item]:
    event_id = str(event.id) if event.id else "sample"
    if not get_connector(event.connector).understands(event.event_type):
        return []
    try:
        return [_Item(event_id, event.event_type, r) for r in parse_event(event)]
    except HubError as exc:
        return [_Item(event_id, event.event_type, None, f"{type(exc).__name__}: {exc.detail}")]


def _mapped(mapping: Mapping | None, info: ConnectionInfo, item: _Item
            ) -> CanonicalRecord | None:
    if mapping is None or item.record is None:
        return None
    fields, problems = mapping.apply(item.record.payload)
    return CanonicalRecord(info.name, item.record.object_type, item.record.external_id,
                           item.record.observed_at, item.event_id, fields, mapping.version,
                           problems)


def preview(engine: Engine, store: DbMappingStore, info: ConnectionInfo, object_type: str,
            draft: Mapping, *, replay_last: int | None = None,
            sample: dict[str, Any] | None = None, event_type: str | None = None
            ) -> dict[str, Any]:
    store.refresh()
    try:
        active: Mapping | None = store.get_for(info.name, info.connector, object_type)
    except ConfigurationError:
        active = None  # no default and nothing stored yet: everything the draft maps is new
    if sample is not None:
        items = _sample_items(info, object_type, sample, event_type)
    else:
        events = history.recent_deliveries(engine, info.name, min(replay_last or 100,
                                                                  PREVIEW_MAX))
        items = [i for e in events for i in _event_items(e)]
    wanted = [i for i in items if i.record is None or (
        i.record.object_type == object_type and not i.record.fetch)]
    pairs = [RecordPair("", _mapped(active, info, i), _mapped(draft, info, i), i.error)
             for i in wanted]
    contacts = _contact_keys(engine, pairs, wanted)
    for pair, key in zip(pairs, contacts, strict=True):
        pair.contact = key
    specs = store.field_specs()
    compared = compare_outputs(pairs, specs)
    current = _current_values(engine, [c.contact for c in compared])
    return {
        "connection": info.name,
        "object": object_type,
        "active_version": active.version if active else None,
        "draft_version": draft.version,
        "counts": {"contacts": len(compared), **count_statuses(compared),
                   "records": len(wanted), "skipped": len(items) - len(wanted)},
        "contacts": [_contact_view(c, current.get(c.contact, {})) for c in compared],
        "records": [_record_view(i, p) for i, p in zip(wanted, pairs, strict=True)],
    }


def _contact_keys(engine: Engine, pairs: list[RecordPair], items: list[_Item]) -> list[str]:
    """The stored contact each record belongs to (its id), or a stand-in for a new one."""
    keys_of: list[list[IdentityKey]] = []
    for pair in pairs:
        keys: list[IdentityKey] = []
        for record in (pair.active, pair.draft):
            if record is not None:
                keys += [k for k in identity_keys(record) if k not in keys]
        keys_of.append(keys)
    wanted = {k for keys in keys_of for k in keys}
    with engine.connect().execution_options(hub_readonly=True) as conn:
        owners = contact_store.find_owners(conn, wanted)
    result = []
    for keys, item in zip(keys_of, items, strict=True):
        owned = [owners[k] for k in keys if k in owners]
        if owned:
            result.append(str(owned[0]))
        else:
            result.append(f"new: {keys[0].describe()}" if keys else f"event {item.event_id}")
    return result


def _current_values(engine: Engine, contacts: list[str]) -> dict[str, dict[str, Any]]:
    ids = {int(c) for c in contacts if c.isdigit()}
    with engine.connect().execution_options(hub_readonly=True) as conn:
        loaded = contact_store.load_many(conn, ids)
    return {str(cid): golden.values for cid, golden in loaded.items()}


def _contact_view(comparison: Any, current: dict[str, Any]) -> dict[str, Any]:
    changes = {name: {**change, "current": current.get(name)} if current else change
               for name, change in comparison.changes.items()}
    return {"contact": comparison.contact, "status": comparison.status,
            "records": comparison.records, "changes": changes,
            "problems": comparison.problems}


def _record_view(item: _Item, pair: RecordPair) -> dict[str, Any]:
    record = item.record
    active, draft = pair.active, pair.draft
    diff = {}
    if active is not None and draft is not None:
        for name in sorted(active.fields.keys() | draft.fields.keys()):
            if active.fields.get(name) != draft.fields.get(name):
                diff[name] = {"active": active.fields.get(name), "draft": draft.fields.get(name)}
    elif draft is not None:
        diff = {n: {"active": None, "draft": v} for n, v in sorted(draft.fields.items())}
    problems = [pair.error] if pair.error else (draft.problems if draft else [])
    status = "failing" if problems else ("changed" if diff else "unchanged")
    return {
        "event_id": item.event_id, "event_type": item.event_type,
        "external_id": record.external_id if record else None,
        "observed_at": record.observed_at.isoformat() if record else None,
        "contact": pair.contact, "status": status,
        "fields": draft.fields if draft else {}, "problems": problems,
        "active_problems": active.problems if active else [], "diff": diff,
    }
