"""Flags: what the hub found that a person should decide (duplicates, conflicts, rule breaks)."""

from __future__ import annotations

import hashlib
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
    contact_id: int | None  # batch-local negative until saved; None: about no stored contact
    summary: str
    other_contact_id: int | None = None
    topic: str = ""  # what the flag is about, so the same finding is raised once
    details: dict[str, Any] = field(default_factory=dict)

    def dedupe_key(self, contact_id: int | None, other_id: int | None) -> str:
        """Kind, contacts and topic: the same finding twice is one flag. Long topics (they may
        hold values) are hashed, which also keeps personal data out of the key."""
        pair = sorted(i for i in (contact_id, other_id) if i is not None)
        topic = self.topic
        if len(topic) > 40 or "@" in topic:
            topic = hashlib.sha256(topic.encode()).hexdigest()[:24]
        return ":".join([self.kind.value, *map(str, pair), topic])
