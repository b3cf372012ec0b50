"""Apply a batch of canonical records to the golden records they are about.

Pure: storage hands in who owns which identity and the current state of those contacts; this
decides which contact each record belongs to, what changes, and what needs an admin's eye.
Records later in the batch see what earlier ones did (a person created by the first delivery
is found by the second), so a batch gives the same result as processing one event at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.domain.contact import (
    CANONICAL_FIELDS,
    CanonicalRecord,
    FieldSpec,
    FieldType,
    Provenance,
)
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import (
    IdentityKey,
    IdentityKind,
    identity_keys,
    previous_key,
    resolve_identity,
)
from hub.domain.merge import Conflict, Policy, find_conflicts, plan_merge
from hub.domain.quality import QualityRules, as_flags, audit_record, problem_findings


@dataclass
class BatchOutcome:
    contacts: dict[int, GoldenRecord] = field(default_factory=dict)
    flags: list[NewFlag] = field(default_factory=list)
    contact_of_record: list[int] = field(default_factory=list)


def reconcile(
    records: list[CanonicalRecord],
    owners: dict[IdentityKey, int],
    load: Callable[[int], GoldenRecord],
    *,
    policy: Policy | None = None,
    specs: dict[str, FieldSpec] | None = None,
    quality: QualityRules | None = None,
) -> BatchOutcome:
    """Resolve and merge each record in order; `owners` is updated as identities are linked.

    `policy` holds the admin's survivorship rules, `specs` the canonical fields including the
    admin's custom fields (defaults: built-in rules and fields)."""
    outcome = BatchOutcome()
    next_new_id = -1
    for record in records:
        keys = identity_keys(record)

        def external_ids_of(contact_id: int, scope: str) -> set[str]:
            golden = outcome.contacts.get(contact_id) or load(contact_id)
            return {k.value for k in golden.identities
                    if k.kind is IdentityKind.EXTERNAL and k.scope == scope}

        resolution = resolve_identity(keys, owners, external_ids_of, previous_key(record))
        if resolution.contact_id is None:
            golden = GoldenRecord(id=next_new_id)
            next_new_id -= 1
        else:
            golden = outcome.contacts.get(resolution.contact_id) or load(resolution.contact_id)
        outcome.contacts[golden.id] = golden
        for key in resolution.attach:
            golden.link(key)
            owners[key] = golden.id
        conflicts = find_conflicts(golden.values, golden.provenance, record, policy, specs)
        golden.apply(plan_merge(golden.values, golden.provenance, record, specs, policy))
        outcome.flags.extend(_clash_flags(golden.id, resolution.clashes, record))
        outcome.flags.extend(_conflict_flags(golden.id, conflicts))
        outcome.flags.extend(as_flags(golden.id, problem_findings(record.problems,
                                                                   record.connection)))
        outcome.contact_of_record.append(golden.id)
    for golden in outcome.contacts.values():
        if golden.is_dirty:
            outcome.flags.extend(as_flags(golden.id, audit_record(golden, quality)))
    return outcome


def _clash_flags(
    contact_id: int, clashes: list[tuple[IdentityKey, int]], record: CanonicalRecord
) -> list[NewFlag]:
    """Identifiers that already belong to someone else: maybe one person, maybe two. One flag
    per pair of contacts, naming every identifier they share."""
    by_other: dict[int, list[IdentityKey]] = {}
    for key, other in clashes:
        by_other.setdefault(other, []).append(key)
    flags = []
    for other, keys in sorted(by_other.items()):
        shared = ", ".join(k.describe() for k in keys)
        flags.append(NewFlag(
            kind=FlagKind.DUPLICATE,
            contact_id=contact_id,
            other_contact_id=other,
            summary=(f"{record.connection} says {shared} belong to this contact, "
                     "but another contact already has them" if len(keys) > 1 else
                     f"{record.connection} says {shared} belongs to this contact, "
                     "but another contact already has it"),
            details={
                "reasons": [f"same {k.kind.value}" for k in keys],
                "identifiers": [k.describe() for k in keys],
                "source": record.connection,
                "event_id": record.event_id,
            },
        ))
    return flags


def _conflict_flags(contact_id: int, conflicts: list[Conflict]) -> list[NewFlag]:
    """Two trusted sources said different things about one field at nearly the same time."""
    flags = []
    for c in conflicts:
        sides = sorted([(str(c.current), c.current_provenance), (str(c.incoming),
                                                                 c.incoming_provenance)])
        flags.append(NewFlag(
            kind=FlagKind.CONFLICT,
            contact_id=contact_id,
            topic=f"{c.field}:{'|'.join(v for v, _ in sides)}",
            summary=(f"{c.field}: {c.current_provenance.connection} says {c.current!r}, "
                     f"{c.incoming_provenance.connection} says {c.incoming!r}"),
            details={
                "field": c.field,
                "values": [
                    {"value": value, "connection": p.connection, "event_id": p.event_id,
                     "observed_at": p.observed_at.isoformat()}
                    for value, p in ((c.current, c.current_provenance),
                                     (c.incoming, c.incoming_provenance))
                ],
            },
        ))
    return flags


def absorb(winner: GoldenRecord, loser: GoldenRecord, policy: Policy | None = None,
           specs: dict[str, FieldSpec] | None = None) -> None:
    """Merge `loser` into `winner` by the same survivorship rules as any source: each of the
    loser's values competes with its own provenance, oldest observation first. Custom fields
    (`custom.*`) merge like plain fields even when `specs` is not given: their values were
    checked against their type when they were stored."""
    specs = specs or {**CANONICAL_FIELDS, **{
        name: FieldSpec(name, FieldType.STRING)
        for name in (*loser.values, *winner.values) if name.startswith("custom.")}}
    by_source: dict[Provenance, dict[str, object]] = {}
    for name, value in loser.values.items():
        origin = loser.provenance.get(name)
        if origin is not None and value is not None:
            by_source.setdefault(origin, {})[name] = value
    for origin in sorted(by_source, key=lambda p: (p.observed_at, p.connection)):
        record = CanonicalRecord(
            connection=origin.connection, object_type="merge", external_id=None,
            observed_at=origin.observed_at, event_id=origin.event_id,
            fields=dict(by_source[origin]), mapping_version=origin.mapping_version,
        )
        winner.apply(plan_merge(winner.values, winner.provenance, record, specs, policy))
    for key in sorted(loser.identities):
        winner.link(key)
