"""What an admin does to golden records: merge (with a preview), undo a merge, say "not a
duplicate", resolve a conflict, set a value by hand, and set survivorship rules.

Every action is one transaction with its audit line. Merging uses the same survivorship rules
as any delivery (hub.domain.reconcile.absorb), so a merge preview is exactly what will happen.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from hub.adapters.db import admin, inbox
from hub.adapters.db import contacts as contact_store
from hub.adapters.db import merges as store
from hub.domain.contact import CANONICAL_FIELDS, IDENTITY_FIELDS, CanonicalRecord
from hub.domain.errors import ConfigurationError, ConflictError
from hub.domain.identity import IdentityKind
from hub.domain.mapping import stored_form, type_problem
from hub.domain.merge import MANUAL_SOURCE, FieldPolicy, Strategy, plan_merge
from hub.domain.reconcile import absorb
from hub.services.contact_view import nest


def preview_merge(engine: Engine, winner_id: int, loser_id: int) -> dict[str, Any]:
    """The winner as it would look after the merge, and which fields would change."""
    with engine.connect().execution_options(hub_readonly=True) as conn:
        records = store.live_contacts(conn, _pair(winner_id, loser_id))
        policy = store.load_policy(conn)
    winner, loser = records[winner_id], records[loser_id]
    before = dict(winner.values)
    absorb(winner, loser, policy)
    changed = {f: {"from": before.get(f), "to": winner.values.get(f),
                   "source": winner.provenance[f].connection}
               for f in sorted(winner.changed_fields)}
    return {"winner": winner_id, "loser": loser_id, "result": nest(winner.values),
            "changes": changed,
            "identities": sorted(k.describe() for k in winner.identities)}


def merge(engine: Engine, winner_id: int, loser_id: int, actor: str, reason: str = ""
          ) -> dict[str, Any]:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        records = store.live_contacts(conn, _pair(winner_id, loser_id))
        winner, loser = records[winner_id], records[loser_id]
        state = {"winner": store.snapshot(winner), "loser": store.snapshot(loser)}
        absorb(winner, loser, store.load_policy(conn))
        winner.new_identities.clear()  # they move by UPDATE below, never re-inserted
        store.move_identities(conn, loser_id, winner_id)
        contact_store.save(conn, [winner], [], now)
        merge_id = store.record_merge(conn, winner_id, loser_id, state, actor, reason, now)
        admin.audit(conn, actor, "contact.merged", "contact", str(winner_id),
                    {"merge_id": merge_id, "loser": loser_id, "reason": reason,
                     "fields_changed": sorted(winner.changed_fields)})
    return {"merge_id": merge_id, "winner": winner_id, "loser": loser_id}


def unmerge(engine: Engine, merge_id: int, actor: str) -> dict[str, Any]:
    """Both contacts back exactly as they were, identities included; then every delivery that
    touched them since the merge is replayed, so later changes land on the right person."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = store.merge_row(conn, merge_id)
        store.live_contacts(conn, [row.winner_id])
        state = row.snapshot
        store.restore(conn, row.winner_id, state["winner"], now)
        store.restore(conn, row.loser_id, state["loser"], now)
        store.move_identities(conn, row.winner_id, row.loser_id,
                              only=store.identities_of(state["loser"]))
        replay = store.events_since(conn, {row.winner_id, row.loser_id}, row.created_at)
        conn.execute(store.M.update().where(store.M.c.id == merge_id).values(undone_at=now))
        admin.audit(conn, actor, "contact.unmerged", "contact", str(row.winner_id),
                    {"merge_id": merge_id, "loser": row.loser_id, "replayed": len(replay)})
    if replay:
        inbox.replay(engine, replay, now)
    return {"merge_id": merge_id, "restored": [row.winner_id, row.loser_id],
            "replayed_events": len(replay)}


def dismiss_flag(engine: Engine, flag_id: int, actor: str, reason: str = "") -> None:
    """"Not a duplicate" (or "not a problem"): the flag stays, dismissed, so the same pair or
    finding is never raised again (flags are unique on their dedupe key)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = store.set_flag_status(conn, flag_id, "dismissed", now, reason or "dismissed")
        admin.audit(conn, actor, "flag.dismissed", "flag", str(flag_id),
                    {"kind": row.kind, "reason": reason})


def resolve_conflict(engine: Engine, flag_id: int, value: Any, actor: str) -> dict[str, Any]:
    """Choose the value of a conflicting field; it is kept as a manual value from now on."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = store.set_flag_status(conn, flag_id, "resolved", now, "value chosen by admin")
        if row.kind != "conflict":
            raise ConflictError(f"flag {flag_id} is a {row.kind} flag, not a conflict")
        field = row.details["field"]
        _set_manual(conn, row.contact_id, {field: value}, actor, now)
        admin.audit(conn, actor, "flag.resolved", "flag", str(flag_id), {"field": field})
    return {"flag_id": flag_id, "contact_id": row.contact_id, "field": field}


def edit_contact(engine: Engine, contact_id: int, fields: dict[str, Any], actor: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        _set_manual(conn, contact_id, fields, actor, now)
        admin.audit(conn, actor, "contact.edited", "contact", str(contact_id),
                    {"fields": sorted(fields)})


def _set_manual(conn: Any, contact_id: int, fields: dict[str, Any], actor: str,
                now: datetime) -> None:
    golden = store.live_contacts(conn, [contact_id])[contact_id]
    specs = {**CANONICAL_FIELDS, **_custom_specs(conn)}
    problems = []
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{name}: unknown canonical field")
        elif name in IDENTITY_FIELDS and value not in golden.identities_of(
                IdentityKind(name)):
            problems.append(f"{name}: choose one of this contact's own {name}s "
                            f"({', '.join(golden.identities_of(IdentityKind(name)))}); "
                            "new identities arrive through their tools or a merge")
        elif value is not None and (problem := type_problem(spec, value)):
            problems.append(f"{name}: {problem}")
    if problems:
        raise ConfigurationError("; ".join(problems))
    record = CanonicalRecord(MANUAL_SOURCE, "manual", None, now, f"admin:{actor}",
                             {k: stored_form(v) for k, v in fields.items()})
    golden.apply(plan_merge(golden.values, golden.provenance, record, specs))
    contact_store.save(conn, [golden], [], now)


def _custom_specs(conn: Any) -> dict[str, Any]:
    """The admin's custom fields, so they can be set by hand like built-in ones."""
    from hub.adapters.db.mapping_store import custom_field_specs

    return custom_field_specs(conn)


def set_rule(engine: Engine, field: str, strategy: str, sources: list[str],
             conflict_window_seconds: int | None, actor: str) -> None:
    groups = {s.group for s in CANONICAL_FIELDS.values() if s.group}
    if field not in CANONICAL_FIELDS and field not in groups:
        raise ConfigurationError(f"{field!r} is neither a canonical field nor a group "
                                 f"({', '.join(sorted(groups))})")
    try:
        chosen = Strategy(strategy)
    except ValueError:
        raise ConfigurationError(
            f"strategy must be one of {', '.join(s.value for s in Strategy)}") from None
    if chosen is Strategy.SOURCE_PRIORITY and not sources:
        raise ConfigurationError("source_priority needs the sources in priority order")
    window = timedelta(seconds=conflict_window_seconds) if conflict_window_seconds else None
    with engine.begin() as conn:
        store.put_rule(conn, field, FieldPolicy(chosen, tuple(sources), window), actor,
                       datetime.now(UTC))
        admin.audit(conn, actor, "survivorship.set", "field", field,
                    {"strategy": strategy, "sources": sources,
                     "conflict_window_seconds": conflict_window_seconds})


def _pair(winner_id: int, loser_id: int) -> list[int]:
    if winner_id == loser_id:
        raise ConflictError("a contact cannot be merged with itself")
    return [winner_id, loser_id]
