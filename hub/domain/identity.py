"""Deterministic identity resolution: which contact a source record is about.

Order of evidence: the tool's own id for this person (linked external id), then the normalised
email, then the E.164 phone. The strongest evidence decides; weaker identifiers that already
belong to another contact are never moved or merged on their own: they are reported as a clash,
which becomes a duplicate flag for an admin. Storage makes each identity unique, so two workers
can never give one identity to two contacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from hub.domain.contact import CanonicalRecord


class IdentityKind(str, Enum):
    EXTERNAL = "external"
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True, order=True)
class IdentityKey:
    kind: IdentityKind
    scope: str  # the connection name for external ids, "" for emails and phones
    value: str

    def describe(self) -> str:
        if self.kind is IdentityKind.EXTERNAL:
            return f"{self.scope} id {self.value}"
        return f"{self.kind.value} {self.value}"


EVIDENCE_ORDER = (IdentityKind.EXTERNAL, IdentityKind.EMAIL, IdentityKind.PHONE)


def identity_keys(record: CanonicalRecord) -> list[IdentityKey]:
    """The identifiers a record carries, strongest first."""
    keys = []
    if record.external_id:
        keys.append(IdentityKey(IdentityKind.EXTERNAL, record.connection, record.external_id))
    if record.fields.get("email"):
        keys.append(IdentityKey(IdentityKind.EMAIL, "", str(record.fields["email"])))
    if record.fields.get("phone"):
        keys.append(IdentityKey(IdentityKind.PHONE, "", str(record.fields["phone"])))
    return keys


@dataclass
class Resolution:
    contact_id: int | None  # None: a new contact is to be created
    matched_by: IdentityKey | None
    attach: list[IdentityKey] = field(default_factory=list)
    clashes: list[tuple[IdentityKey, int]] = field(default_factory=list)


def resolve_identity(keys: list[IdentityKey], owners: Mapping[IdentityKey, int]) -> Resolution:
    """Pick the contact by the strongest known key; say which keys to link and which clash."""
    matched = next(
        (k for kind in EVIDENCE_ORDER for k in keys if k.kind is kind and k in owners), None
    )
    contact_id = owners[matched] if matched else None
    resolution = Resolution(contact_id=contact_id, matched_by=matched)
    for key in keys:
        owner = owners.get(key)
        if owner is None:
            resolution.attach.append(key)
        elif contact_id is not None and owner != contact_id:
            resolution.clashes.append((key, owner))
    return resolution
