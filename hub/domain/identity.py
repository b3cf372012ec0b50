"""Deterministic identity resolution: which contact a source record is about.

Order of evidence: the tool's own id for this person (linked external id), then the normalised
email, then the E.164 phone. Two refinements keep a guess from merging two people:
- a phone decides only for a record that carries no email: people share phones (a household,
  a switchboard) far more often than email addresses, so "same phone, different email" is a
  duplicate flag for an admin, not a merge;
- a contact that already holds another id of the same tool is not that record's person (the
  tool itself says they are two), so the match is refused and flagged.
Identifiers that already belong to someone else are never moved: they are reported as clashes.
Storage makes each identity unique, so two workers can never give one identity to two contacts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from hub.domain.contact import CanonicalRecord


class IdentityKind(StrEnum):
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


ExternalIdsOf = Callable[[int, str], set[str]]


def previous_key(record: CanonicalRecord) -> IdentityKey | None:
    """The id the tool knew this person by before it renamed them (an id succession)."""
    if record.previous_external_id and record.previous_external_id != record.external_id:
        return IdentityKey(IdentityKind.EXTERNAL, record.connection, record.previous_external_id)
    return None


def resolve_identity(
    keys: list[IdentityKey],
    owners: Mapping[IdentityKey, int],
    external_ids_of: ExternalIdsOf = lambda contact, scope: set(),
    previous: IdentityKey | None = None,
) -> Resolution:
    """Pick the contact by the strongest admissible key; say which keys to link and which clash.

    `previous` is the id a tool says this person had before (Mailchimp derives its member id
    from the email, so an email change is an id change): when a contact holds it and the new
    id is still free, that contact is the person, and the new id joins the old one.
    """
    new_external = next((k for k in keys if k.kind is IdentityKind.EXTERNAL), None)
    if previous is not None and previous in owners and (
            new_external is None or new_external not in owners):
        return _succession(keys, owners, owners[previous], previous)
    matched = _strongest_match(keys, owners, external_ids_of)
    contact_id = owners[matched] if matched else None
    resolution = Resolution(contact_id=contact_id, matched_by=matched)
    for key in keys:
        owner = owners.get(key)
        if owner is None:
            resolution.attach.append(key)
        elif owner != contact_id:
            resolution.clashes.append((key, owner))
    return resolution


def _strongest_match(
    keys: list[IdentityKey], owners: Mapping[IdentityKey, int], external_ids_of: ExternalIdsOf
) -> IdentityKey | None:
    by_kind = {k.kind: k for k in keys}
    external = by_kind.get(IdentityKind.EXTERNAL)
    if external and external in owners:
        return external
    candidates = [by_kind.get(IdentityKind.EMAIL)]
    if IdentityKind.EMAIL not in by_kind:
        candidates.append(by_kind.get(IdentityKind.PHONE))
    for key in candidates:
        if key is None or key not in owners:
            continue
        if external and external_ids_of(owners[key], external.scope) - {external.value}:
            return None  # the tool knows that contact under another id: two people
        return key
    return None


def _succession(keys: list[IdentityKey], owners: Mapping[IdentityKey, int], contact_id: int,
                previous: IdentityKey) -> Resolution:
    resolution = Resolution(contact_id=contact_id, matched_by=previous)
    for key in keys:
        owner = owners.get(key)
        if owner is None:
            resolution.attach.append(key)
        elif owner != contact_id:
            resolution.clashes.append((key, owner))
    return resolution
