"""What changes between two mappings: in their rules, and in what they make of real records.

`diff_rules` compares two documents rule by rule, for an admin reading a change before it goes
live. `compare_outputs` compares what two compiled mappings made of the same source records,
per contact: each contact's records are merged by the survivorship rules (oldest first, as the
worker would), once with each mapping's output, and the resulting fields are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.domain.contact import CanonicalRecord, FieldSpec
from hub.domain.golden import GoldenRecord
from hub.domain.merge import plan_merge

_RULE_KEYS = ("source", "value", "transforms", "default", "when", "join")


def _rule_key(rules: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[int, dict[str, Any]]]:
    """Rules keyed by target and which of that target's rules it is (first, second...)."""
    keyed: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for number, rule in enumerate(rules, start=1):
        target = rule["target"]
        counts[target] = counts.get(target, 0) + 1
        keyed[(target, counts[target])] = (number, rule)
    return keyed


def _normal(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: rule[k] for k in _RULE_KEYS if k in rule and rule[k] not in ([], None)}


def diff_rules(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Added, removed and changed rules (with each changed key's old and new value)."""
    before, after = _rule_key(old["rules"]), _rule_key(new["rules"])
    added = [{"target": key[0], "rule": after[key][0], "definition": _normal(after[key][1])}
             for key in after if key not in before]
    removed = [{"target": key[0], "rule": before[key][0], "definition": _normal(before[key][1])}
               for key in before if key not in after]
    changed: list[dict[str, Any]] = []
    unchanged = 0
    for key in before.keys() & after.keys():
        (old_number, old_rule), (new_number, new_rule) = before[key], after[key]
        a, b = _normal(old_rule), _normal(new_rule)
        if a == b:
            unchanged += 1
            continue
        changed.append({
            "target": key[0], "from_rule": old_number, "to_rule": new_number,
            "changes": {k: {"from": a.get(k), "to": b.get(k)} for k in _RULE_KEYS
                        if a.get(k) != b.get(k)},
        })
    changed.sort(key=lambda c: int(c["to_rule"]))
    return {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}


@dataclass
class RecordPair:
    """One source record as the active mapping and the draft made it (None: parse failed)."""

    contact: str  # a contact id, or a stand-in key for a contact not stored yet
    active: CanonicalRecord | None
    draft: CanonicalRecord | None
    error: str | None = None


@dataclass
class ContactComparison:
    contact: str
    records: int = 0
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.problems:
            return "failing"
        return "changed" if self.changes else "unchanged"


def _merged(records: list[CanonicalRecord], specs: dict[str, FieldSpec]) -> dict[str, Any]:
    golden = GoldenRecord(id=-1)
    for record in sorted(records, key=lambda r: r.observed_at):
        golden.apply(plan_merge(golden.values, golden.provenance, record, specs))
    return golden.values


def compare_outputs(pairs: list[RecordPair], specs: dict[str, FieldSpec]
                    ) -> list[ContactComparison]:
    """Per contact, in first-seen order: the fields whose merged value differs, and the draft's
    problems (a contact with any is `failing`, whatever else changed)."""
    grouped: dict[str, list[RecordPair]] = {}
    for pair in pairs:
        grouped.setdefault(pair.contact, []).append(pair)
    results = []
    for contact, group in grouped.items():
        result = ContactComparison(contact, records=len(group))
        for pair in group:
            if pair.error:
                result.problems.append(pair.error)
            elif pair.draft is not None:
                result.problems.extend(pair.draft.problems)
        active = _merged([p.active for p in group if p.active is not None], specs)
        draft = _merged([p.draft for p in group if p.draft is not None], specs)
        for name in sorted(active.keys() | draft.keys()):
            if active.get(name) != draft.get(name):
                result.changes[name] = {"active": active.get(name), "draft": draft.get(name)}
        results.append(result)
    return results


def count_statuses(results: list[ContactComparison]) -> dict[str, int]:
    counts = {"changed": 0, "unchanged": 0, "failing": 0}
    for result in results:
        counts[result.status] += 1
    return counts
