"""The mapping engine: a declarative document turns one source record into canonical fields.

A document is plain data (loaded from YAML or sent through the API, validated by one schema
before it reaches here). Compiling it checks every name against the canonical model and the
transform whitelist, so a broken mapping is refused when it is saved, not when a webhook hits it.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.contact import CANONICAL_FIELDS, FieldSpec, FieldType, is_empty
from hub.domain.errors import ConfigurationError
from hub.domain.paths import Step, parse_path, resolve
from hub.domain.transforms import TRANSFORMS, TransformError

MISSING: Any = object()


@dataclass(frozen=True)
class Condition:
    path: tuple[Step, ...]
    equals: Any = MISSING
    one_of: tuple[Any, ...] | None = None
    matches: re.Pattern[str] | None = None
    present: bool | None = None

    def holds(self, record: dict[str, Any]) -> bool:
        value = resolve(record, self.path)
        if self.present is not None:
            return (not is_empty(value)) is self.present
        if self.equals is not MISSING:
            return bool(value == self.equals)
        if self.one_of is not None:
            return value in self.one_of
        if self.matches is not None:
            return isinstance(value, str) and self.matches.search(value) is not None
        return True


@dataclass(frozen=True)
class AllOf(Condition):
    """A list of conditions under `when`: all must hold (e.g. consent granted *and* a field
    present)."""

    path: tuple[Step, ...] = ()
    parts: tuple[Condition, ...] = ()

    def holds(self, record: dict[str, Any]) -> bool:
        return all(part.holds(record) for part in self.parts)


@dataclass(frozen=True)
class TransformCall:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    target: str
    sources: tuple[tuple[Step, ...], ...] = ()
    constant: Any = MISSING
    transforms: tuple[TransformCall, ...] = ()
    default: Any = MISSING
    when: Condition | None = None
    join: str | None = None  # combine every non-empty source with this separator

    def apply(self, record: dict[str, Any]) -> Any:
        """The rule's value for this record (None when it has nothing to say)."""
        if self.when is not None and not self.when.holds(record):
            return None
        value = self.constant if self.constant is not MISSING else self._first_source(record)
        for step in self.transforms:
            if is_empty(value):
                break
            args = {k: _resolve_arg(v, record) for k, v in step.args.items()}
            try:
                value = TRANSFORMS[step.name](value, **args)
            except TransformError:
                raise
            except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. an argument's type
                raise TransformError(f"{step.name} failed: {exc}") from None
        if is_empty(value) and self.default is not MISSING:
            return self.default
        return value

    def _first_source(self, record: dict[str, Any]) -> Any:
        if self.join is not None:
            parts = [resolve(record, path) for path in self.sources]
            text = self.join.join(str(p).strip() for p in parts if not is_empty(p))
            return text or None
        for path in self.sources:
            value = resolve(record, path)
            if not is_empty(value):
                return value
        return None


@dataclass(frozen=True)
class Mapping:
    """A compiled inbound mapping for one connector object."""

    connector: str
    object_type: str
    version: str
    rules: tuple[Rule, ...]
    custom_fields: dict[str, FieldSpec] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Canonical fields and the problems met; a failing rule never stops the others."""
        fields: dict[str, Any] = {}
        problems: list[str] = []
        for number, rule in enumerate(self.rules, start=1):
            if rule.target in fields:
                continue  # an earlier rule for the same target already gave a value
            try:
                value = rule.apply(record)
            except TransformError as exc:
                problems.append(f"rule {number} ({rule.target}): {exc}")
                continue
            if is_empty(value):
                continue
            spec = CANONICAL_FIELDS.get(rule.target) or self.custom_fields[rule.target]
            problem = type_problem(spec, value)
            if problem:
                problems.append(f"rule {number} ({rule.target}): {problem}")
                continue
            fields[rule.target] = stored_form(value)
        return fields, problems


def stored_form(value: Any) -> Any:
    """JSON-ready values: times as UTC ISO-8601 text, which also sorts in time order."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class OutboundMapping:
    """A compiled outbound mapping: the golden record (as the API shows it) -> a vendor payload.

    Sources are paths into the nested contact view ("email", "address.city",
    "consent.email.status", "external_id"); targets are paths in the vendor's payload.
    """

    connector: str
    object_type: str
    version: str
    rules: tuple[Rule, ...]

    def apply(self, contact: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        payload: dict[str, Any] = {}
        problems: list[str] = []
        written: set[str] = set()
        for number, rule in enumerate(self.rules, start=1):
            if rule.target in written:
                continue
            try:
                value = rule.apply(contact)
            except TransformError as exc:
                problems.append(f"rule {number} ({rule.target}): {exc}")
                continue
            if is_empty(value):
                continue
            set_path(payload, rule.target, stored_form(value))
            written.add(rule.target)
        return payload, problems


def set_path(payload: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = payload
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _resolve_arg(value: Any, record: dict[str, Any]) -> Any:
    """An argument written as {path: "a.b"} (or a list of paths, first non-empty wins) takes its
    value from the record itself."""
    if isinstance(value, dict) and set(value) == {"path"}:
        for path in _as_list(value["path"]):
            found = resolve(record, parse_path(path))
            if not is_empty(found):
                return found
        return None
    return value


_TYPE_CHECKS: dict[FieldType, tuple[type, ...]] = {
    FieldType.STRING: (str,),
    FieldType.EMAIL: (str,),
    FieldType.PHONE: (str,),
    FieldType.COUNTRY: (str,),
    FieldType.CURRENCY: (str,),
    FieldType.DATETIME: (datetime,),
    FieldType.NUMBER: (int, float),
    FieldType.INTEGER: (int,),
    FieldType.BOOLEAN: (bool,),
    FieldType.STRING_LIST: (list,),
    FieldType.ENUM: (str,),
}


def type_problem(spec: FieldSpec, value: Any) -> str | None:
    """Why a value does not fit its canonical field, or None when it does."""
    expected = _TYPE_CHECKS[spec.type]
    if isinstance(value, bool) and spec.type in (FieldType.NUMBER, FieldType.INTEGER):
        return f"expected {spec.type.value}, got a boolean"
    if not isinstance(value, expected):
        return f"expected {spec.type.value}, got {type(value).__name__}"
    if spec.type is FieldType.ENUM and value not in spec.choices:
        return f"{value!r} is not one of {', '.join(spec.choices)}"
    if spec.type is FieldType.COUNTRY and not re.fullmatch(r"[A-Z]{2}", str(value)):
        return f"{value!r} is not an ISO 3166-1 alpha-2 code (use the country_iso2 transform)"
    if spec.type is FieldType.CURRENCY and not re.fullmatch(r"[A-Z]{3}", str(value)):
        return f"{value!r} is not an ISO 4217 currency code"
    return None


def compile_outbound(document: dict[str, Any]) -> OutboundMapping:
    """An outbound document: any vendor path may be a target, written once."""
    rules = _compile_rules(document, outbound=True, custom={})
    return OutboundMapping(document["connector"], document["object"],
                           str(document.get("version", "default")), tuple(rules))


def compile_mapping(
    document: dict[str, Any], custom_fields: dict[str, FieldSpec] | None = None
) -> Mapping:
    """Check a validated document against the model and the whitelist; refuse what is wrong."""
    custom = custom_fields or {}
    rules = _compile_rules(document, outbound=False, custom=custom)
    return Mapping(
        connector=document["connector"],
        object_type=document["object"],
        version=str(document.get("version", "default")),
        rules=tuple(rules),
        custom_fields=custom,
    )


_VENDOR_PATH = re.compile(r"^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$")


def _compile_rules(
    document: dict[str, Any], *, outbound: bool, custom: dict[str, FieldSpec]
) -> list[Rule]:
    name = f"{document['connector']}.{document['object']}"
    rules = [
        compile_rule(raw, where=f"mapping {name}, rule {number}", outbound=outbound,
                     custom=custom)
        for number, raw in enumerate(document["rules"], start=1)
    ]
    _refuse_unconditional_duplicates(rules, name)
    return rules


def compile_rule(
    raw: dict[str, Any], *, where: str, outbound: bool, custom: dict[str, FieldSpec]
) -> Rule:
    """One rule of a document; errors start with `where` (the document and rule number)."""
    target = raw["target"]
    if outbound and not _VENDOR_PATH.match(target):
        raise ConfigurationError(f"{where}: target {target!r} must be a dotted vendor path")
    if not outbound and target not in CANONICAL_FIELDS and target not in custom:
        raise ConfigurationError(f"{where}: unknown canonical field {target!r}")
    try:
        sources = tuple(parse_path(p) for p in _as_list(raw.get("source")))
        when = _compile_condition(raw["when"], where) if raw.get("when") else None
    except ConfigurationError as exc:
        if exc.detail.startswith(where):
            raise
        raise ConfigurationError(f"{where}: {exc.detail}") from None
    rule = Rule(
        target=target,
        sources=sources,
        constant=raw.get("value", MISSING),
        transforms=tuple(_compile_transform(t, where) for t in raw.get("transforms", [])),
        default=raw.get("default", MISSING),
        when=when,
        join=raw.get("join"),
    )
    if not rule.sources and rule.constant is MISSING:
        raise ConfigurationError(f"{where}: give a source path or a constant value")
    return rule


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _compile_transform(raw: Any, where: str) -> TransformCall:
    args: Any
    if isinstance(raw, str):
        name, args = raw, {}
    elif isinstance(raw, dict) and len(raw) == 1:
        name, args = next(iter(raw.items()))
        args = args or {}
    else:
        raise ConfigurationError(f"{where}: a transform is a name or {{name: {{arguments}}}}")
    if name not in TRANSFORMS:
        known = ", ".join(sorted(TRANSFORMS))
        raise ConfigurationError(f"{where}: unknown transform {name!r} (known: {known})")
    if not isinstance(args, dict):
        raise ConfigurationError(f"{where}: arguments of {name!r} must be a mapping")
    try:
        inspect.signature(TRANSFORMS[name]).bind("value", **args)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: wrong arguments for {name!r}: {exc}") from None
    return TransformCall(name, dict(args))


def _compile_condition(raw: dict[str, Any] | list[Any], where: str) -> Condition:
    if isinstance(raw, list):  # several conditions: the rule applies when all of them hold
        return AllOf(parts=tuple(_compile_condition(part, where) for part in raw))
    path = parse_path(raw["path"])
    if "equals" in raw:
        return Condition(path, equals=raw["equals"])
    if "in" in raw:
        return Condition(path, one_of=tuple(raw["in"]))
    if "matches" in raw:
        try:
            return Condition(path, matches=re.compile(raw["matches"]))
        except re.error as exc:
            raise ConfigurationError(f"{where}: bad pattern in 'matches': {exc}") from None
    if "present" in raw:
        return Condition(path, present=bool(raw["present"]))
    raise ConfigurationError(f"{where}: a condition needs equals, in, matches or present")


def _refuse_unconditional_duplicates(rules: list[Rule], name: str) -> None:
    seen: dict[str, int] = {}
    for number, rule in enumerate(rules, start=1):
        if rule.target in seen and rule.when is None and rules[seen[rule.target] - 1].when is None:
            raise ConfigurationError(
                f"mapping {name}: rules {seen[rule.target]} and {number} both write "
                f"{rule.target!r} unconditionally; give one a 'when' or list both paths "
                "as alternatives in one rule's source"
            )
        seen.setdefault(rule.target, number)
