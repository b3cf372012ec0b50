"""Apply a batch of canonical records to the golden records they are about.

Pure: storage hands in who owns which identity and the current state of those contacts; this
decides which contact each record belongs to, what changes, and what needs an admin's eye.
Records later in the batch see what earlier ones did (a person created by the first delivery
is found by the second), so a batch gives the same result as processing one event at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hub.domain.contact import CanonicalRecord
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind, identity_keys, resolve_identity
from hub.domain.merge import plan_merge


@dataclass
class BatchOutcome:
    contacts: dict[int, GoldenRecord] = field(default_factory=dict)
    flags: list[NewFlag] = field(default_factory=list)
    contact_of_record: list[int] = field(default_factory=list)


def reconcile(
    records: list[CanonicalRecord],
    owners: dict[IdentityKey, int],
    load: Callable[[int], GoldenRecord],
) -> BatchOutcome:
    """Resolve and merge each record in order; `owners` is updated as identities are linked."""
    outcome = BatchOutcome()
    next_new_id = -1
    for record in records:
        keys = identity_keys(record)

        def external_ids_of(contact_id: int, scope: str) -> set[str]:
            golden = outcome.contacts.get(contact_id) or load(contact_id)
            return {k.value for k in golden.identities
                    if k.kind is IdentityKind.EXTERNAL and k.scope == scope}

        resolution = resolve_identity(keys, owners, external_ids_of)
        if resolution.contact_id is None:
            golden = GoldenRecord(id=next_new_id)
            next_new_id -= 1
        else:
            golden = outcome.contacts.get(resolution.contact_id) or load(resolution.contact_id)
        outcome.contacts[golden.id] = golden
        for key in resolution.attach:
            golden.link(key)
            owners[key] = golden.id
        golden.apply(plan_merge(golden.values, golden.provenance, record))
        outcome.flags.extend(_clash_flags(golden.id, resolution.clashes, record))
        outcome.contact_of_record.append(golden.id)
    return outcome


def _clash_flags(
    contact_id: int, clashes: list[tuple[IdentityKey, int]], record: CanonicalRecord
) -> list[NewFlag]:
    """An identifier that already belongs to someone else: maybe one person, maybe two."""
    return [
        NewFlag(
            kind=FlagKind.DUPLICATE,
            contact_id=contact_id,
            other_contact_id=other,
            topic=f"{key.kind.value}",
            summary=(
                f"{record.connection} says {key.describe()} belongs to this contact, "
                "but another contact already has it"
            ),
            details={
                "reasons": [f"same {key.kind.value}"],
                "identifier": key.describe(),
                "source": record.connection,
                "event_id": record.event_id,
            },
        )
        for key, other in clashes
    ]
