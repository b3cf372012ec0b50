"""The one schema that checks a mapping document's shape, whether it comes from a YAML file
in mappings/ or from an admin through the API. Semantic checks (known fields and transforms)
follow in hub.domain.mapping.compile_mapping."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.domain.errors import ConfigurationError


class PathOrPaths(fields.Field):  # type: ignore[type-arg]
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
            return value
        raise ValidationError("must be a path or a non-empty list of paths")


class ConditionSchema(Schema):
    path = fields.String(required=True)
    equals = fields.Raw(allow_none=True)
    in_ = fields.List(fields.Raw(), data_key="in")
    matches = fields.String(validate=validate.Length(max=200))
    present = fields.Boolean()

    @validates_schema
    def one_test(self, data: dict[str, Any], **kwargs: Any) -> None:
        tests = [k for k in ("equals", "in_", "matches", "present") if k in data]
        if len(tests) != 1:
            raise ValidationError("a condition needs exactly one of equals, in, matches, present")


class Conditions(fields.Field):  # type: ignore[type-arg]
    """`when`: one condition, or a list of conditions that must all hold."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        many = isinstance(value, list)
        if many and not value:
            raise ValidationError("give at least one condition")
        if not many and not isinstance(value, dict):
            raise ValidationError("must be a condition or a list of conditions")
        loaded = ConditionSchema(many=many).load(value)
        for condition in loaded if many else [loaded]:
            if "in_" in condition:
                condition["in"] = condition.pop("in_")
        return loaded


class RuleSchema(Schema):
    target = fields.String(required=True, validate=validate.Length(min=1, max=128))
    source = PathOrPaths()
    value = fields.Raw(allow_none=True)
    transforms = fields.List(fields.Raw(), load_default=list)
    default = fields.Raw(allow_none=True)
    when = Conditions()
    join = fields.String(validate=validate.Length(max=10))

    @validates_schema
    def source_or_value(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("source" in data) == ("value" in data):
            raise ValidationError("give exactly one of source or value")


class MappingDocumentSchema(Schema):
    connector = fields.String(required=True)
    object = fields.String(required=True)
    direction = fields.String(load_default="inbound",
                              validate=validate.OneOf(["inbound", "outbound"]))
    version = fields.String(load_default="default")
    rules = fields.List(fields.Nested(RuleSchema), required=True, validate=validate.Length(min=1))


def load_document(raw: Any, where: str) -> dict[str, Any]:
    """A checked document in the shape compile_mapping expects, or a ConfigurationError that
    names the document and each problem's place."""
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: a mapping document must be a mapping")
    try:
        document: dict[str, Any] = MappingDocumentSchema().load(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"{where}: {_flatten(exc.messages)}") from None
    return document


def _flatten(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        parts = [_flatten(v, f"{prefix}{k}." if prefix or k != "_schema" else "") for k, v in
                 messages.items()]
        return "; ".join(parts)
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return f"{prefix.rstrip('.') or 'document'}: {' '.join(messages)}"
    return f"{prefix.rstrip('.')}: {messages}"


class CustomFieldSchema(Schema):
    """A custom field as an admin declares it (API body, CLI options); the domain checks the
    name and the values (hub.domain.custom_fields)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=70))
    type = fields.String(required=True, validate=validate.OneOf(
        ["string", "number", "boolean", "date", "enum"]))
    label = fields.String(validate=validate.Length(max=200))
    values = fields.List(fields.String(), load_default=list)
