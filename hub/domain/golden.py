"""The golden record being built: current values, their provenance and the identities linked.

A record starts from what storage holds (or empty, for a contact not yet saved) and collects
the changes a batch of source records makes, so storage writes only what really changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.domain.contact import Provenance
from hub.domain.identity import IdentityKey, IdentityKind
from hub.domain.merge import FieldChange


@dataclass
class GoldenRecord:
    id: int  # negative while the contact exists only in this batch
    values: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)
    identities: set[IdentityKey] = field(default_factory=set)
    changed_fields: set[str] = field(default_factory=set)
    new_identities: list[IdentityKey] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.id < 0

    @property
    def is_dirty(self) -> bool:
        return bool(self.changed_fields or self.new_identities or self.is_new)

    def apply(self, changes: list[FieldChange]) -> None:
        for change in changes:
            if change.new is None:
                self.values.pop(change.field, None)
            else:
                self.values[change.field] = change.new
            self.provenance[change.field] = change.provenance
            self.changed_fields.add(change.field)

    def link(self, key: IdentityKey) -> None:
        if key not in self.identities:
            self.identities.add(key)
            self.new_identities.append(key)

    def identities_of(self, kind: IdentityKind) -> list[str]:
        return sorted(k.value for k in self.identities if k.kind is kind)

    def search_text(self) -> str:
        """What the admin's free-text search (`q`) looks in: names, company, emails, phones."""
        parts = [self.values.get(f) for f in ("first_name", "last_name", "full_name", "company")]
        parts += self.identities_of(IdentityKind.EMAIL) + self.identities_of(IdentityKind.PHONE)
        return " ".join(str(p).lower() for p in parts if p)
