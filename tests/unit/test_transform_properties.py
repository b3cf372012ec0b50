"""Properties of the transforms and the mapping engine that tests/unit/test_transforms.py does
not already state: normalisations are idempotent, times always come out in UTC whatever the
input, and nothing a vendor can send (any JSON value, in a value or in an argument read from
the record) makes a transform or a mapping raise: it gives a value or a reported problem."""

from __future__ import annotations

import contextlib
from datetime import UTC

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters.mapping_files import DEFAULT_DIR, FileMappingStore
from hub.domain import transforms as t
from hub.domain.contact import CANONICAL_FIELDS
from hub.domain.mapping import compile_mapping, type_problem
from hub.domain.paths import parse_path
from hub.domain.transforms import TRANSFORMS, TransformError

PROPERTY = settings(database=None, deadline=None, max_examples=80,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Any value a JSON payload (or a form body read as text) can hold.
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _fixed_point(transform, value):
    try:
        once = transform(value)
    except TransformError:
        return None
    return once, transform(once)


@pytest.mark.parametrize("name", ["trim", "lower", "upper", "country_iso2", "boolean",
                                  "integer", "number", "split"])
def test_normalising_transforms_are_idempotent(name):
    transform = TRANSFORMS[name]

    @PROPERTY
    @given(st.text(max_size=30) | st.integers() | st.booleans())
    def check(value):
        result = _fixed_point(transform, value)
        if result is not None:
            assert result[0] == result[1]

    check()


@PROPERTY
@given(st.sampled_from(["US", "FR", "GB", "DE", "BR", "IN", "JP"]),
       st.text(alphabet="0123456789 -()+.", min_size=4, max_size=20))
def test_phone_e164_is_idempotent_whatever_the_punctuation(region, raw):
    try:
        once = t.phone_e164(raw, region)
    except TransformError:
        return
    assert t.phone_e164(once, region) == once
    assert t.phone_e164(once) == once


@PROPERTY
@given(st.text(max_size=40))
def test_datetime_utc_of_any_text_is_utc_or_a_reported_error(text):
    try:
        result = t.datetime_utc(text)
    except TransformError:
        return
    assert result.tzinfo is UTC


@PROPERTY
@given(st.integers(min_value=-(10**14), max_value=10**14) | st.floats() | st.text(max_size=20),
       st.sampled_from(["s", "ms"]))
def test_epoch_utc_is_utc_or_a_reported_error(value, unit):
    try:
        result = t.epoch_utc(value, unit=unit)
    except TransformError:
        return
    assert result.tzinfo is UTC


SIMPLEST_ARGS: dict[str, dict[str, object]] = {"value_map": {"map": {"a": "b"}}}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_no_transform_raises_anything_but_transform_error_on_any_json_value(name):
    transform = TRANSFORMS[name]

    @PROPERTY
    @given(JSON)
    def check(value):
        with contextlib.suppress(TransformError):
            transform(value, **SIMPLEST_ARGS.get(name, {}))

    check()


# Every argument a transform takes, read from the record ({path: ...}) so that the vendor's
# data, not the admin, decides its value and type.
ARGUMENT_PATHS: dict[str, dict[str, object]] = {
    "phone_e164": {"region": {"path": "arg"}},
    "split_name": {"part": {"path": "arg"}},
    "join": {"separator": {"path": "arg"}},
    "split": {"separator": {"path": "arg"}},
    "datetime_utc": {"assume": {"path": "arg"}},
    "epoch_utc": {"unit": {"path": "arg"}},
    "number": {"places": {"path": "arg"}},
    "value_map": {"map": {"path": "arg"}, "default": {"path": "other"}},
    "sha256": {"salt": {"path": "arg"}},
}


@pytest.mark.parametrize("name", sorted(ARGUMENT_PATHS))
def test_a_mapping_never_raises_whatever_an_argument_read_from_the_record_holds(name):
    mapping = compile_mapping({"connector": "test", "object": "thing", "rules": [
        {"target": "full_name", "source": "value", "transforms": [{name: ARGUMENT_PATHS[name]}]},
    ]})

    @PROPERTY
    @given(JSON, JSON, JSON)
    def check(value, arg, other):
        fields, problems = mapping.apply({"value": value, "arg": arg, "other": other})
        assert isinstance(problems, list)
        for target, stored in fields.items():
            assert type_problem(CANONICAL_FIELDS[target], stored) is None or \
                isinstance(stored, str)  # datetimes are stored as ISO text

    check()


SHIPPED = sorted(p.name for p in DEFAULT_DIR.glob("*.yaml") if p.name.count(".") == 2)


def _key_paths(document: dict) -> list[tuple[str, ...]]:
    """Source paths made only of keys, which a generated record can fill in."""
    paths = []
    for rule in document["rules"]:
        sources = rule.get("source") or []
        for source in [sources] if isinstance(sources, str) else sources:
            steps = parse_path(source)
            if all(s.key is not None for s in steps):
                paths.append(tuple(s.key for s in steps))
    return paths


def _record(paths: list[tuple[str, ...]], values: list) -> dict:
    record: dict = {}
    for keys, value in zip(paths, values, strict=False):
        node = record
        for key in keys[:-1]:
            child = node.get(key)
            node = node.setdefault(key, {}) if isinstance(child, dict) or child is None else {}
        node[keys[-1]] = value
    return record


SMALL_JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2), max_leaves=3)


@pytest.mark.parametrize("file_name", SHIPPED)
def test_shipped_mappings_never_raise_and_store_only_values_of_the_right_type(file_name):
    store = FileMappingStore()
    document = store.read(DEFAULT_DIR / file_name)
    mapping = store.get(document["connector"], document["object"])
    paths = _key_paths(document)

    @settings(PROPERTY, max_examples=30)
    @given(st.lists(SMALL_JSON, min_size=len(paths), max_size=len(paths)))
    def check(values):
        fields, problems = mapping.apply(_record(paths, values))
        assert all(isinstance(p, str) for p in problems)
        for target, stored in fields.items():
            spec = CANONICAL_FIELDS[target]
            if spec.type.value != "datetime":
                assert type_problem(spec, stored) is None, (target, stored)

    check()
