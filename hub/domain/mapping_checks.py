"""Validation a person can act on: every problem of a mapping document at once, each naming
the document, the rule and what to change.

`compile_mapping` stops at the first error because a running mapping must be all right; an
admin editing one wants the whole list. Errors block saving a version; warnings (a source path
no stored delivery contains) and notes are shown but do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.domain.contact import CANONICAL_FIELDS, FieldSpec, FieldType
from hub.domain.errors import ConfigurationError
from hub.domain.mapping import compile_rule, type_problem
from hub.domain.paths import Step, parse_path, resolve
from hub.domain.transforms import NAME_PARTS, TRANSFORMS

ERROR, WARNING, NOTE = "error", "warning", "note"
EMAIL_MARKETING = "email_marketing"


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | note
    document: str
    rule: int | None
    target: str | None
    problem: str  # a stable code: unknown_field, unknown_transform, wrong_argument, ...
    message: str

    def text(self) -> str:
        where = f"rule {self.rule} ({self.target})" if self.rule else "document"
        return f"{self.severity}: {self.document}, {where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "document": self.document, "rule": self.rule,
                "target": self.target, "problem": self.problem, "message": self.message,
                "text": self.text()}


class MappingInvalidError(ConfigurationError):
    """A document with errors; `findings` holds every problem, errors and warnings."""

    title = "Invalid mapping"

    def __init__(self, document: str, findings: list[Finding]) -> None:
        errors = [f for f in findings if f.severity == ERROR]
        super().__init__(f"{document}: {len(errors)} error(s): "
                         + "; ".join(f.text() for f in errors[:5]))
        self.findings = findings


def check_document(
    document: dict[str, Any],
    *,
    name: str,
    custom: dict[str, FieldSpec] | None = None,
    connector_kind: str | None = None,
    samples: list[dict[str, Any]] | None = None,
) -> list[Finding]:
    """Every finding for a schema-checked document. `samples` are payloads the connection
    really sent (None: not checked); `connector_kind` enables the consent rule for email tools.
    """
    custom = custom or {}
    outbound = document.get("direction") == "outbound"
    specs = {**CANONICAL_FIELDS, **custom}
    findings: list[Finding] = []
    for number, raw in enumerate(document["rules"], start=1):
        found = list(_rule_findings(raw, number, name, specs, outbound))
        if not found:
            found = _compile_findings(raw, number, name, custom, outbound)
        findings.extend(found)
    findings.extend(_duplicate_targets(document["rules"], name))
    if samples is not None and not outbound:
        findings.extend(_missing_paths(document["rules"], name, samples))
    if outbound and connector_kind == EMAIL_MARKETING:
        findings.extend(_consent_findings(document["rules"], name, specs))
    return findings


def errors_of(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def _finding(severity: str, name: str, number: int | None, raw: dict[str, Any] | None,
             problem: str, message: str) -> Finding:
    return Finding(severity, name, number, raw.get("target") if raw else None, problem, message)


def _rule_findings(raw: dict[str, Any], number: int, name: str, specs: dict[str, FieldSpec],
                   outbound: bool) -> Iterable[Finding]:
    target = raw["target"]
    if not outbound and target not in specs:
        hint = " (custom fields are named custom.<name>; add one first)" \
            if target.startswith("custom.") else ""
        yield _finding(ERROR, name, number, raw, "unknown_field",
                       f"unknown canonical field {target!r}{hint}")
    for step in raw.get("transforms", []):
        yield from _transform_findings(step, raw, number, name)
    if not outbound and target in specs:
        problem = _type_mismatch(raw, specs[target])
        if problem:
            yield _finding(ERROR, name, number, raw, "type_mismatch", problem)


def _compile_findings(raw: dict[str, Any], number: int, name: str,
                      custom: dict[str, FieldSpec], outbound: bool) -> list[Finding]:
    """What the compiler itself refuses (paths, conditions, argument names)."""
    where = f"mapping {name}, rule {number}"
    try:
        compile_rule(raw, where=where, outbound=outbound, custom=custom)
    except ConfigurationError as exc:
        message = exc.detail.removeprefix(f"{where}: ")
        code = "wrong_argument" if message.startswith("wrong arguments") else "invalid_rule"
        return [_finding(ERROR, name, number, raw, code, message)]
    return []


# --- transforms and their arguments ----------------------------------------------------------

_TEXT = frozenset({str})
# What each transform gives back, as Python types (value_map: whatever its table holds).
_GIVES: dict[str, frozenset[type]] = {
    **{n: _TEXT for n in ("trim", "lower", "upper", "title", "email", "phone_e164",
                          "split_name", "join", "country_iso2", "sha256")},
    "split": frozenset({list}),
    "datetime_utc": frozenset({datetime}),
    "epoch_utc": frozenset({datetime}),
    "number": frozenset({float}),
    "cents": frozenset({float}),
    "integer": frozenset({int}),
    "boolean": frozenset({bool}),
}
# Transforms that read text (or a number written as text): a list or a time breaks them.
_READS_TEXT = frozenset(TRANSFORMS) - {"split", "join", "boolean", "datetime_utc"}
_TYPE_NAMES = {str: "text", list: "a list", datetime: "a date-time", float: "a decimal number",
               int: "a whole number", bool: "true/false"}


def _literal(value: Any) -> bool:
    return not (isinstance(value, dict) and set(value) == {"path"})


def _argument_problem(transform: str, args: dict[str, Any]) -> str | None:
    """Argument values the transform would refuse on every record, told before it runs."""
    checks: dict[tuple[str, str], tuple[Any, str]] = {
        ("phone_e164", "region"): (lambda v: isinstance(v, str) and len(v) == 2,
                                   "a two-letter country code such as US or FR"),
        ("split_name", "part"): (lambda v: v in NAME_PARTS, "one of " + ", ".join(NAME_PARTS)),
        ("split", "separator"): (lambda v: isinstance(v, str) and v != "", "non-empty text"),
        ("join", "separator"): (lambda v: isinstance(v, str), "text"),
        ("datetime_utc", "assume"): (lambda v: v == "UTC", "UTC (the only zone assumed)"),
        ("epoch_utc", "unit"): (lambda v: v in ("s", "ms"), "s or ms"),
        ("number", "places"): (lambda v: isinstance(v, int) and not isinstance(v, bool)
                               and 0 <= v <= 10, "a whole number from 0 to 10"),
        ("value_map", "map"): (lambda v: isinstance(v, dict) and bool(v),
                               "a non-empty table of vendor value: canonical value"),
        ("sha256", "salt"): (lambda v: isinstance(v, str), "text"),
    }
    for arg, value in args.items():
        check = checks.get((transform, arg))
        if check and _literal(value) and not check[0](value):
            return f"argument {arg!r} of {transform!r} must be {check[1]}, not {value!r}"
    return None


def _transform_findings(step: Any, raw: dict[str, Any], number: int, name: str
                        ) -> Iterable[Finding]:
    transform, args = _split_step(step)
    if transform is None:
        return
    if transform not in TRANSFORMS:
        known = ", ".join(sorted(TRANSFORMS))
        yield _finding(ERROR, name, number, raw, "unknown_transform",
                       f"unknown transform {transform!r} (known: {known})")
        return
    problem = _argument_problem(transform, args) if isinstance(args, dict) else None
    if problem:
        yield _finding(ERROR, name, number, raw, "wrong_argument", problem)


def _split_step(step: Any) -> tuple[str | None, Any]:
    if isinstance(step, str):
        return step, {}
    if isinstance(step, dict) and len(step) == 1:
        transform, args = next(iter(step.items()))
        return transform, args or {}
    return None, None  # malformed: the compiler names it


def _gives(raw: dict[str, Any]) -> tuple[frozenset[type] | None, str | None]:
    """The types a rule's last step can produce (None: anything a JSON payload holds), and
    that step's name for messages; no name when a step is malformed (the compiler says so)."""
    types: frozenset[type] | None = None
    what = "the source value"
    if "value" in raw:
        types, what = frozenset({type(raw["value"])}), "the constant"
    for step in raw.get("transforms", []):
        transform, args = _split_step(step)
        if transform is None or transform not in TRANSFORMS:
            return None, None
        if transform in _READS_TEXT and types is not None and types <= {list, datetime}:
            raise _Unreadable(transform, types)
        if transform == "value_map" and isinstance(args, dict) and isinstance(
                args.get("map"), dict):
            outputs = list(args["map"].values()) + ([args["default"]] if "default" in args
                                                    else [])
            types = frozenset(type(v) for v in outputs if v is not None) or None
        else:
            types = _GIVES.get(transform)
        what = f"the transform {transform!r}"
    return types, what


class _Unreadable(Exception):
    def __init__(self, transform: str, types: frozenset[type]) -> None:
        super().__init__(transform)
        self.transform, self.types = transform, types


_HINTS = {
    FieldType.DATETIME: "add datetime_utc (ISO-8601 text) or epoch_utc (Unix time)",
    FieldType.INTEGER: "add integer",
    FieldType.NUMBER: "add number (or cents for minor units)",
    FieldType.BOOLEAN: "add boolean",
    FieldType.STRING_LIST: "add split",
}


def _type_mismatch(raw: dict[str, Any], spec: FieldSpec) -> str | None:
    try:
        types, what = _gives(raw)
    except _Unreadable as exc:
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in exc.types)
        return (f"type mismatch: {exc.transform!r} reads text, but the step before it gives "
                f"{names}")
    if what is None:
        return None
    hint = _HINTS.get(spec.type, "change the transforms so the rule gives text")
    if types is None:
        if spec.type is FieldType.DATETIME and "value" not in raw:
            return (f"type mismatch: {spec.name} holds a date-time and a JSON payload never "
                    f"does; {hint}")
        return None
    if "value" in raw and not raw.get("transforms"):
        problem = type_problem(spec, raw["value"])
        return f"type mismatch: the constant {raw['value']!r}: {problem}" if problem else None
    fits = [t for t in types if not type_problem(spec, _probe(t, spec))]
    if fits:
        return _choices_problem(raw, spec)
    names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    return f"type mismatch: {what} gives {names}, but {spec.name} is {spec.type.value}; {hint}"


def _probe(kind: type, spec: FieldSpec) -> Any:
    """A harmless value of a type, to ask type_problem whether the type fits the field."""
    samples: dict[type, Any] = {str: spec.choices[0] if spec.choices else "XX", list: [],
                                datetime: datetime(2000, 1, 1, tzinfo=UTC), float: 1.0,
                                int: 1, bool: True}
    if spec.type is FieldType.CURRENCY and kind is str:
        return "EUR"
    return samples.get(kind, object())


def _choices_problem(raw: dict[str, Any], spec: FieldSpec) -> str | None:
    """For an enum field: every value a value_map or constant can give must be a choice."""
    if spec.type is not FieldType.ENUM:
        return None
    given: list[Any] = [raw["value"]] if "value" in raw and not raw.get("transforms") else []
    steps = raw.get("transforms", [])
    if steps:
        transform, args = _split_step(steps[-1])
        if transform == "value_map" and isinstance(args, dict) and isinstance(
                args.get("map"), dict):
            given = list(args["map"].values()) + [args.get("default")]
    wrong = sorted({str(v) for v in given if v is not None and v not in spec.choices})
    if wrong:
        return (f"type mismatch: {', '.join(map(repr, wrong))} is not one of "
                f"{', '.join(spec.choices)} (the values of {spec.name})")
    return None


# --- the document as a whole -----------------------------------------------------------------


def _duplicate_targets(rules: list[dict[str, Any]], name: str) -> list[Finding]:
    seen: dict[str, int] = {}
    found = []
    for number, raw in enumerate(rules, start=1):
        target = raw["target"]
        first = seen.get(target)
        if first is not None and not raw.get("when") and not rules[first - 1].get("when"):
            found.append(_finding(
                ERROR, name, number, raw, "duplicate_target",
                f"rules {first} and {number} both write {target!r} unconditionally; give one a "
                "'when', or list both source paths as alternatives in one rule"))
        seen.setdefault(target, number)
    return found


def _missing_paths(rules: list[dict[str, Any]], name: str, samples: list[dict[str, Any]]
                   ) -> list[Finding]:
    """Rules none of whose source paths resolve in any sampled payload: usually a typo."""
    if not samples:
        return [Finding(NOTE, name, None, None, "no_samples",
                        "no stored deliveries of this object yet: source paths not checked "
                        "against real payloads")]
    found = []
    for number, raw in enumerate(rules, start=1):
        paths = raw.get("source")
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        if not paths or any(_resolves(p, samples) for p in paths):
            continue
        listed = ", ".join(repr(p) for p in paths)
        found.append(_finding(
            WARNING, name, number, raw, "unknown_path",
            f"source {listed} is in none of the last {len(samples)} stored payloads of this "
            "object; check the spelling against a payload (hub events show ID --body)"))
    return found


def _resolves(path: str, samples: list[dict[str, Any]]) -> bool:
    try:
        steps = parse_path(path)
    except ConfigurationError:
        return True  # a malformed path is an error reported elsewhere
    return any(_exists(sample, steps) for sample in samples)


def _exists(data: Any, steps: tuple[Step, ...]) -> bool:
    """Whether the payload has this path, even if its value is null today."""
    current = data
    for position, step in enumerate(steps):
        if step.key is not None:
            if not isinstance(current, dict) or step.key not in current:
                return False
            current = current[step.key]
        elif step.index is not None:
            if not (isinstance(current, list) and -len(current) <= step.index < len(current)):
                return False
            current = current[step.index]
        else:
            if not isinstance(current, list):
                return False
            # The path grammar's own filter decides which items a [key=value] step keeps.
            items = current if step.match is None else resolve(current, (step,))
            rest = steps[position + 1:]
            return any(_exists(item, rest) for item in items) if rest else bool(items)
    return True


# Fields that may go to an email tool without consent: the address that identifies the member
# (an unsubscribe must reach the tool) and the consent state itself.
_CONSENT_FREE = ("email", "id", "external_id")
_GRANTED = "granted"


def _consent_findings(rules: list[dict[str, Any]], name: str, specs: dict[str, FieldSpec]
                      ) -> list[Finding]:
    found = []
    for number, raw in enumerate(rules, start=1):
        sources = raw.get("source")
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        personal = [s for s in sources if _is_personal(s)]
        if not personal or _gated_by_consent(raw.get("when")):
            continue
        found.append(_finding(
            ERROR, name, number, raw, "consent",
            f"sends {', '.join(personal)} to an email marketing tool for every contact; add "
            "when: {path: consent.email.status, equals: granted} (or put it in the rule's list "
            "of conditions)"))
    return found


def _is_personal(path: str) -> bool:
    root = path.split("[", 1)[0]
    return not (root in _CONSENT_FREE or root.startswith("consent."))


def _gated_by_consent(when: Any) -> bool:
    conditions = when if isinstance(when, list) else [when] if when else []
    for condition in conditions:
        if not isinstance(condition, dict) or condition.get("path") != "consent.email.status":
            continue
        if condition.get("equals") == _GRANTED or condition.get("in") == [_GRANTED]:
            return True
    return False

