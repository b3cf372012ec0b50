"""Survivorship: which value a golden record keeps when sources speak about the same field.

The guarantees that matter to an admin, in order:
1. A value an admin set by hand is never overwritten by a tool.
2. An empty value never replaces a filled one.
3. Per field (or group), the admin's strategy decides: the most recent observation (default),
   a ranked list of sources, or the most complete value; ties go to the newer observation, and
   an older observation never beats a newer one from the same rank.
4. Grouped fields (an address, one channel's consent) move together, never half from each source.
Every value that survives carries its provenance: connection, event, observed time, mapping.
Two sources that disagree within a field's conflict window are reported, whatever wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from hub.domain.contact import (
    CANONICAL_FIELDS,
    CanonicalRecord,
    FieldSpec,
    MergeStrategy,
    Provenance,
    is_empty,
)

MANUAL_SOURCE = "admin"


class Strategy(StrEnum):
    MOST_RECENT = "most_recent"
    SOURCE_PRIORITY = "source_priority"
    MOST_COMPLETE = "most_complete"


@dataclass(frozen=True)
class FieldPolicy:
    strategy: Strategy = Strategy.MOST_RECENT
    sources: tuple[str, ...] = ()  # priority order; for conflicts, the trusted sources (all)
    conflict_window: timedelta | None = None  # disagreements closer than this are flagged

    def rank(self, connection: str) -> int:
        return self.sources.index(connection) if connection in self.sources else \
            len(self.sources)

    def trusts(self, connection: str) -> bool:
        return not self.sources or connection in self.sources


DEFAULT_CONFLICT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Policy:
    """Survivorship rules keyed by field name or group name ("address", "consent.email")."""

    rules: Mapping[str, FieldPolicy] = field(default_factory=dict)

    def for_field(self, name: str, spec: FieldSpec | None = None) -> FieldPolicy:
        if name in self.rules:
            return self.rules[name]
        if spec is not None and spec.group and spec.group in self.rules:
            return self.rules[spec.group]
        return DEFAULT_POLICY.rules.get(name, MOST_RECENT)


MOST_RECENT = FieldPolicy()
DEFAULT_POLICY = Policy({
    name: FieldPolicy(conflict_window=DEFAULT_CONFLICT_WINDOW)
    for name in ("email", "phone", "company")
})


@dataclass(frozen=True)
class Conflict:
    field: str
    current: Any
    current_provenance: Provenance
    incoming: Any
    incoming_provenance: Provenance


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any  # None means the field is cleared (only within a replaced group)
    provenance: Provenance


def plan_merge(
    values: dict[str, Any],
    provenance: dict[str, Provenance],
    record: CanonicalRecord,
    specs: dict[str, FieldSpec] | None = None,
    policy: Policy | None = None,
) -> list[FieldChange]:
    """The field changes that applying `record` to the current values would make."""
    specs = specs or CANONICAL_FIELDS
    policy = policy or DEFAULT_POLICY
    incoming = record.provenance()
    changes: list[FieldChange] = []
    groups: dict[str, list[str]] = {}
    for name, value in record.fields.items():
        spec = specs.get(name)
        if spec is None or is_empty(value):
            continue
        if spec.group:
            groups.setdefault(spec.group, []).append(name)
            continue
        current = values.get(name)
        changed = current != value or provenance.get(name) != incoming
        rule = policy.for_field(name, spec)
        if changed and _wins(spec, rule, value, current, provenance.get(name), incoming):
            changes.append(FieldChange(name, current, value, incoming))
    for group, names in groups.items():
        changes.extend(_replace_group(group, names, values, provenance, record, specs, policy))
    return changes


def find_conflicts(
    values: dict[str, Any],
    provenance: dict[str, Provenance],
    record: CanonicalRecord,
    policy: Policy | None = None,
    specs: dict[str, FieldSpec] | None = None,
) -> list[Conflict]:
    """Fields where two trusted sources disagree within the field's conflict window."""
    specs = specs or CANONICAL_FIELDS
    policy = policy or DEFAULT_POLICY
    incoming = record.provenance()
    found = []
    for name, value in record.fields.items():
        rule = policy.for_field(name, specs.get(name))
        current, current_prov = values.get(name), provenance.get(name)
        if rule.conflict_window is None or current_prov is None or is_empty(value) or \
                is_empty(current) or value == current:
            continue
        sources = {current_prov.connection, incoming.connection}
        if len(sources) < 2 or MANUAL_SOURCE in sources or not all(map(rule.trusts, sources)):
            continue
        if abs(incoming.observed_at - current_prov.observed_at) <= rule.conflict_window:
            found.append(Conflict(name, current, current_prov, value, incoming))
    return found


def _wins(
    spec: FieldSpec,
    rule: FieldPolicy,
    value: Any,
    current: Any,
    current_prov: Provenance | None,
    incoming: Provenance,
) -> bool:
    if is_empty(current) or current_prov is None or incoming.connection == MANUAL_SOURCE:
        return True
    if current_prov.connection == MANUAL_SOURCE:
        return False
    if spec.strategy is MergeStrategy.EARLIEST:
        return bool(value < current)
    if spec.strategy is MergeStrategy.GREATEST:
        return bool(value > current)
    return _beats(rule, incoming, current_prov, _completeness(value), _completeness(current))


def _beats(rule: FieldPolicy, incoming: Provenance, current: Provenance, incoming_size: int,
           current_size: int) -> bool:
    """Whether an incoming observation beats the current one under the field's strategy."""
    if rule.strategy is Strategy.SOURCE_PRIORITY:
        ranks = rule.rank(incoming.connection), rule.rank(current.connection)
        if ranks[0] != ranks[1]:
            return ranks[0] < ranks[1]
    elif rule.strategy is Strategy.MOST_COMPLETE and incoming_size != current_size:
        return incoming_size > current_size
    return _is_newer(incoming, current)


def _completeness(value: Any) -> int:
    if isinstance(value, list | dict):
        return len(value)
    return len(str(value).strip())


def _is_newer(incoming: Provenance, current: Provenance) -> bool:
    """Newer observations win; at the same instant only the same source may restate itself."""
    if incoming.observed_at != current.observed_at:
        return incoming.observed_at > current.observed_at
    return incoming.connection == current.connection



def _replace_group(
    group: str,
    names: list[str],
    values: dict[str, Any],
    provenance: dict[str, Provenance],
    record: CanonicalRecord,
    specs: dict[str, FieldSpec],
    policy: Policy,
) -> list[FieldChange]:
    members = [n for n, s in specs.items() if s.group == group]
    current = [provenance[n] for n in members if n in provenance and not is_empty(values.get(n))]
    incoming = record.provenance()
    if any(p.connection == MANUAL_SOURCE for p in current):
        return []
    if group.startswith("consent.") and current:
        if not consent_may_change(group, values, current, record):
            return []
        return _group_changes(members, names, values, provenance, record, incoming)
    rule = policy.for_field(group)
    incoming_size = sum(1 for n in names if not is_empty(record.fields.get(n)))
    current_size = sum(1 for n in members if not is_empty(values.get(n)))
    if current and not all(_beats(rule, incoming, p, incoming_size, current_size)
                           for p in current):
        return []
    return _group_changes(members, names, values, provenance, record, incoming)


WITHHELD = ("withdrawn", "denied")


def consent_may_change(group: str, values: dict[str, Any], current: list[Provenance],
                       record: CanonicalRecord) -> bool:
    """Withdrawal wins. Each consent observation gets a rank, and the higher rank stays:
    a withdrawal or refusal ranks at its consent time (or, without one, its observation time);
    a "granted" ranks at its own consent time only when the tool gave one, and otherwise below
    every dated observation; "unknown" or "pending" ranks below everything. A withdrawal wins a
    tie. So no replay, backfill or sync of an older "subscribed" can re-subscribe anyone, only
    an explicit opt-in newer than the withdrawal can, and the order deliveries arrive in never
    changes the outcome."""
    observed = max(p.observed_at for p in current)
    mine = _consent_rank(values.get(f"{group}.status"), values.get(f"{group}.at"), observed)
    theirs = _consent_rank(record.fields.get(f"{group}.status"),
                           record.fields.get(f"{group}.at"), record.observed_at)
    if theirs == mine:
        return record.connection in {p.connection for p in current}
    return theirs > mine


def _consent_rank(status: Any, at: Any, observed: datetime) -> tuple[int, str, int, str]:
    when = str(at) if at else observed.isoformat()
    if status in WITHHELD:
        return (2, _utc(when), 1, observed.isoformat())
    if status == "granted":
        return (2, _utc(when), 0, observed.isoformat()) if at else \
            (1, observed.isoformat(), 0, observed.isoformat())
    return (0, _utc(when), 0, observed.isoformat())


def _utc(text: str) -> str:
    """ISO times in one form so that they sort as times."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


def _group_changes(members: list[str], names: list[str], values: dict[str, Any],
                   provenance: dict[str, Provenance], record: CanonicalRecord,
                   incoming: Provenance) -> list[FieldChange]:
    changes = []
    for name in members:
        new = record.fields.get(name) if name in names else None
        old = values.get(name)
        if new is None and is_empty(old):
            continue
        if new != old or provenance.get(name) != incoming:
            changes.append(FieldChange(name, old, new, incoming))
    return changes
