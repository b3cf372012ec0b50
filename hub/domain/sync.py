"""The nightly sync's rules, free of storage and HTTP: cursors, heal counting, push decisions.

- Cursors are inclusive (`>=`): a record that shares the bookmark's value is read again and
  skipped by its id, so records written in the same second as the last one read are never lost.
- A pulled record heals a contact when it created it or changed a value or an identity; a
  restatement of what the hub already knew (same values, newer provenance) is not a heal.
- A push is decided per contact and destination: erased or merged-away contacts never go out;
  an email marketing tool never gets a contact into its audience without granted consent; a
  withdrawal always goes out as an unsubscribe; an unchanged payload is not sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

WITHHELD = ("withdrawn", "denied")
# Destinations whose audience needs consent, and the channel that consent is for.
MARKETING_CHANNELS: dict[str, str] = {"email_marketing": "email", "sms_marketing": "sms"}
# What in a tool's payload puts a person into its marketing audience (subscribes them).
AUDIENCE_MARKERS: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "mailchimp": (("status", frozenset({"subscribed", "pending"})),
                  ("status_if_new", frozenset({"subscribed", "pending"}))),
    "activecampaign": (("contactList.status", frozenset({"1"})),),
}
MODIFIED_HINTS = ("upd", "modif", "changed", "modstamp", "udate")


# --- cursors -------------------------------------------------------------------------------

def cursor_order(value: Any) -> tuple[int, float, str]:
    """How replication values compare: numbers as numbers, times as instants, else as text."""
    if isinstance(value, bool) or value is None:
        return (3, 0.0, str(value))
    if isinstance(value, int | float):
        return (0, float(value), "")
    text = str(value).strip()
    try:
        return (0, float(text), "")
    except ValueError:
        pass
    when = parse_time(text)
    if when is not None:
        return (1, when.timestamp(), "")
    return (2, 0.0, text)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (Z, offsets, milliseconds, +0000) as aware UTC, or None."""
    cleaned = text.strip().replace("Z", "+00:00")
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-4:].isdigit() and \
            cleaned[-3] != ":":
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"  # +0000 -> +00:00 (Salesforce)
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class Boundary:
    """The highest replication value seen, and the ids of the records that carry it."""

    value: str | None = None
    ids: frozenset[str] = frozenset()

    def advance(self, records: Iterable[tuple[Any, str]]) -> Boundary:
        """The boundary after also seeing these (replication value, id) pairs."""
        value, ids = self.value, set(self.ids)
        best = cursor_order(value) if value is not None else None
        for raw, record_id in records:
            if raw is None or raw == "":
                continue
            order = cursor_order(raw)
            if best is None or order > best:
                value, ids, best = str(raw), {record_id}, order
            elif order == best:
                ids.add(record_id)
        return Boundary(value, frozenset(ids))


def already_read(start: Boundary, value: Any, record_id: str) -> bool:
    """A record at exactly the start bookmark that an earlier run already committed."""
    if start.value is None or value is None or record_id not in start.ids:
        return False
    return cursor_order(value) == cursor_order(start.value)


def observed_time(record: Mapping[str, Any], replication_key: str | None,
                  fetched_at: datetime) -> datetime:
    """When the pulled data was true: the record's own modification time when the stream's
    cursor is one, else the moment the page was read (an API returns the current state)."""
    if replication_key and any(h in replication_key.lower() for h in MODIFIED_HINTS):
        raw = record.get(replication_key)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            seconds = raw / 1000 if raw > 10**11 else raw
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(raw, str):
            parsed = parse_time(raw)
            if parsed is not None:
                return parsed
    return fetched_at


# --- healing -------------------------------------------------------------------------------

class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def change_of(is_new: bool, before: Mapping[str, Any] | None, after: Mapping[str, Any],
              new_identities: int) -> Change:
    """What a batch did to one contact, judged by values and identities, not provenance."""
    if is_new:
        return Change.CREATED
    if new_identities or before is None or dict(before) != dict(after):
        return Change.UPDATED
    return Change.UNCHANGED


# --- pushing -------------------------------------------------------------------------------

def payload_hash(payload: Mapping[str, Any], consent: str | None) -> str:
    """What was written, in a stable form: equal hashes mean nothing new to send."""
    text = json.dumps([payload, consent], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Verdict(StrEnum):
    SEND = "send"
    BLOCK = "block"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: str = ""
    reason: str = ""


SEND = Decision(Verdict.SEND)
RULE_NO_CONSENT = "no marketing push without consent"
RULE_WITHDRAWAL = "withdrawal wins"


def subscribes(connector: str, payload: Mapping[str, Any]) -> bool:
    """Whether this payload would put the person into the tool's marketing audience."""
    for path, values in AUDIENCE_MARKERS.get(connector, ()):
        node: Any = payload
        for key in path.split("."):
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None and str(node).lower() in values:
            return True
    return False


def decide_push(*, kind: str, connector: str, consent: str | None, payload: Mapping[str, Any],
                linked: bool) -> Decision:
    """The outbound consent guard for one contact and one destination."""
    channel = MARKETING_CHANNELS.get(kind)
    if channel is None:
        return SEND
    status = consent or "unknown"
    if status == "granted":
        return SEND
    if subscribes(connector, payload):
        rule = RULE_WITHDRAWAL if status in WITHHELD else RULE_NO_CONSENT
        return Decision(Verdict.BLOCK, rule, f"the {connector} payload would subscribe a "
                        f"contact whose consent.{channel} is {status}")
    if status not in WITHHELD and not linked:
        return Decision(Verdict.BLOCK, RULE_NO_CONSENT, f"the contact is not in {connector} and "
                        f"its consent.{channel} is {status}: it is not added to the audience")
    return SEND


def consent_channel(kind: str) -> str:
    return MARKETING_CHANNELS.get(kind, "email")


def withheld_contacts(contacts: Iterable[Any], before: Mapping[int, Mapping[str, Any]],
                      ids: Mapping[int, int]) -> list[int]:
    """Stored ids of the contacts whose consent a batch turned to withdrawn or denied: their
    unsubscribe goes to every email tool at once, not at the next nightly run."""
    found: list[int] = []
    for golden in contacts:
        previous = before.get(golden.id) or {}
        for name in golden.changed_fields:
            if name.startswith("consent.") and name.endswith(".status") and \
                    golden.values.get(name) in WITHHELD and previous.get(name) not in WITHHELD:
                found.append(ids.get(golden.id, golden.id))
                break
    return sorted(set(found))
