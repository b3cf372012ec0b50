"""Custom canonical fields: what an admin adds to the contact model, with a type.

A custom field is named `custom.<snake_case>` so it can never collide with a built-in field,
a later built-in field, or another tool's vocabulary. Its type decides what a mapping may write
into it; a value that does not fit is reported by the mapping, never stored. Custom fields are
only ever added: a stored mapping version that targets one must stay compilable for rollback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.domain.contact import CANONICAL_FIELDS, FieldSpec, FieldType
from hub.domain.errors import ConfigurationError

PREFIX = "custom."
NAME_PATTERN = re.compile(r"^custom\.[a-z][a-z0-9_]{0,62}$")
# The admin's vocabulary -> the canonical type that checks values. A `date` holds a UTC
# date-time (ISO-8601 text once stored), like every other time in the hub.
CUSTOM_TYPES: dict[str, FieldType] = {
    "string": FieldType.STRING,
    "number": FieldType.NUMBER,
    "boolean": FieldType.BOOLEAN,
    "date": FieldType.DATETIME,
    "enum": FieldType.ENUM,
}
MAX_VALUES = 100


@dataclass(frozen=True)
class CustomField:
    name: str
    type: str
    label: str
    values: tuple[str, ...] = ()

    def spec(self) -> FieldSpec:
        return FieldSpec(self.name, CUSTOM_TYPES[self.type], choices=self.values)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "label": self.label,
                "values": list(self.values)}


def custom_name(name: str) -> str:
    """`loyalty_tier` and `custom.loyalty_tier` both name the field `custom.loyalty_tier`."""
    name = name.strip()
    return name if name.startswith(PREFIX) else PREFIX + name


def define_custom_field(name: str, type_: str, label: str | None = None,
                        values: list[str] | tuple[str, ...] | None = None) -> CustomField:
    """A checked custom field, or a ConfigurationError saying what to change."""
    full = custom_name(name)
    if not NAME_PATTERN.match(full):
        raise ConfigurationError(
            f"custom field {name!r}: a name is lower-case snake_case (letters, digits, _), "
            "starts with a letter, at most 63 characters, e.g. loyalty_tier")
    if full in CANONICAL_FIELDS:
        raise ConfigurationError(f"custom field {full!r} is a built-in field")
    if type_ not in CUSTOM_TYPES:
        raise ConfigurationError(
            f"custom field {full!r}: type must be one of {', '.join(CUSTOM_TYPES)}, "
            f"not {type_!r}")
    choices = tuple(values or ())
    if type_ == "enum":
        if not choices:
            raise ConfigurationError(f"custom field {full!r}: an enum needs its values")
        if len(set(choices)) != len(choices) or len(choices) > MAX_VALUES or \
                not all(isinstance(v, str) and v.strip() for v in choices):
            raise ConfigurationError(
                f"custom field {full!r}: enum values must be distinct, non-empty text "
                f"(at most {MAX_VALUES})")
    elif choices:
        raise ConfigurationError(f"custom field {full!r}: only an enum has values")
    return CustomField(full, type_, (label or full[len(PREFIX):].replace("_", " ")).strip(),
                       choices)


def specs_of(fields: list[CustomField]) -> dict[str, FieldSpec]:
    return {f.name: f.spec() for f in fields}
