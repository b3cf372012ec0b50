"""Survivorship: which value a golden record keeps when sources speak about the same field.

The guarantees that matter to an admin, in order:
1. A value an admin set by hand is never overwritten by a tool.
2. An empty value never replaces a filled one.
3. An older observation never replaces a newer one, whatever order deliveries arrive in.
4. Grouped fields (an address, one channel's consent) move together, never half from each source.
Every value that survives carries its provenance: connection, event, observed time, mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
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
) -> list[FieldChange]:
    """The field changes that applying `record` to the current values would make."""
    specs = specs or CANONICAL_FIELDS
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
        if changed and _wins(spec, value, current, provenance.get(name), incoming):
            changes.append(FieldChange(name, current, value, incoming))
    for group, names in groups.items():
        changes.extend(_replace_group(group, names, values, provenance, record, specs))
    return changes


def _wins(
    spec: FieldSpec, value: Any, current: Any, current_prov: Provenance | None, incoming: Provenance
) -> bool:
    if is_empty(current) or current_prov is None:
        return True
    if current_prov.connection == MANUAL_SOURCE:
        return False
    if spec.strategy is MergeStrategy.EARLIEST:
        return bool(value < current)
    if spec.strategy is MergeStrategy.GREATEST:
        return bool(value > current)
    return _is_newer(incoming, current_prov)


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
) -> list[FieldChange]:
    members = [n for n, s in specs.items() if s.group == group]
    current = [provenance[n] for n in members if n in provenance and not is_empty(values.get(n))]
    incoming = record.provenance()
    if any(p.connection == MANUAL_SOURCE for p in current):
        return []
    if current and not all(_is_newer(incoming, p) for p in current):
        return []
    changes = []
    for name in members:
        new = record.fields.get(name) if name in names else None
        old = values.get(name)
        if new is None and is_empty(old):
            continue
        if new != old or provenance.get(name) != incoming:
            changes.append(FieldChange(name, old, new, incoming))
    return changes
