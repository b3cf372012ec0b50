"""Flags: what the hub found that a person should decide (duplicates, conflicts, rule breaks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FlagKind(StrEnum):
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    COMPLIANCE = "compliance"
    DATA_QUALITY = "data_quality"


@dataclass(frozen=True)
class NewFlag:
    kind: FlagKind
    contact_id: int  # may be a batch-local negative id until the contact is saved
    summary: str
    other_contact_id: int | None = None
    topic: str = ""  # what the flag is about, so the same finding is raised once
    details: dict[str, Any] = field(default_factory=dict)

    def dedupe_key(self, contact_id: int, other_id: int | None) -> str:
        pair = sorted(i for i in (contact_id, other_id) if i is not None)
        return ":".join([self.kind.value, *map(str, pair), self.topic])
