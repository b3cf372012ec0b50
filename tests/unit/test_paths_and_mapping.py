"""Source paths, compiling mapping documents, and applying them to records."""

from __future__ import annotations

import pytest

from hub.domain.contact import FieldSpec, FieldType
from hub.domain.errors import ConfigurationError
from hub.domain.mapping import compile_mapping
from hub.domain.paths import parse_path, resolve
from hub.domain.transforms import TRANSFORMS

PAYLOAD = {
    "customer": {"email": "ana@example.com", "address": {"city": "Lyon"}},
    "phones": [
        {"type": "home", "number": "111"},
        {"type": "work", "number": "222"},
        {"type": "work"},
        {"type": "work", "number": "333"},
    ],
    "tags": ["a", "b"],
    "note": "free text",
}


def at(path: str, data: object = PAYLOAD) -> object:
    return resolve(data, parse_path(path))


# --- paths -----------------------------------------------------------------------------------


def test_path_follows_dotted_keys():
    assert at("customer.address.city") == "Lyon"


def test_path_indexes_lists_from_the_start():
    assert at("phones[0].number") == "111"


def test_path_indexes_lists_from_the_end():
    assert at("phones[-1].number") == "333"


def test_path_star_collects_every_present_value():
    assert at("phones[*].number") == ["111", "222", "333"]


def test_path_filter_keeps_matching_items():
    assert at("phones[type=work].number") == ["222", "333"]


def test_path_filter_without_a_rest_returns_the_items():
    assert at("phones[type=home]") == [{"type": "home", "number": "111"}]


def test_path_index_directly_after_a_key():
    assert at("tags[1]") == "b"


@pytest.mark.parametrize(
    "path",
    [
        "customer.phone",
        "customer.address.city.name",  # a key into text
        "nothing.at.all",
        "phones[9].number",
        "phones[-9].number",
        "customer[0]",  # an index into an object
        "note[*]",  # every item of text
        "phones.number",  # a key into a list
    ],
)
def test_missing_path_resolves_to_none(path):
    assert at(path) is None


def test_path_filter_on_a_missing_list_is_none():
    assert at("emails[type=work].address") is None


def test_path_filter_matches_json_booleans_as_written_in_json():
    data = {"addresses": [{"default": False, "city": "Paris"}, {"default": True, "city": "Lyon"}]}
    assert at("addresses[default=true].city", data) == ["Lyon"]


@pytest.mark.parametrize("path", ["a[", "a]", "a[1.5]", "a[b]", "a[-]"])
def test_malformed_path_is_a_configuration_error_with_the_position(path):
    with pytest.raises(ConfigurationError, match=r"cannot read path .* at position 1"):
        parse_path(path)


@pytest.mark.parametrize("path", ["", "."])
def test_empty_path_is_a_configuration_error(path):
    with pytest.raises(ConfigurationError, match="cannot be empty"):
        parse_path(path)


# --- compiling -------------------------------------------------------------------------------


def document(*rules: dict, version: str | None = None) -> dict:
    doc: dict = {"connector": "test", "object": "thing", "rules": list(rules)}
    if version is not None:
        doc["version"] = version
    return doc


def compiled(*rules: dict):
    return compile_mapping(document(*rules))


def test_unknown_target_is_refused_naming_mapping_rule_and_field():
    with pytest.raises(
        ConfigurationError,
        match=r"mapping test\.thing, rule 2: unknown canonical field 'shoe_size'",
    ):
        compiled({"target": "email", "source": "e"}, {"target": "shoe_size", "source": "s"})


def test_custom_field_is_a_known_target():
    custom = {"loyalty.tier": FieldSpec("loyalty.tier", FieldType.STRING)}
    mapping = compile_mapping(document({"target": "loyalty.tier", "source": "tier"}), custom)
    assert mapping.apply({"tier": "gold"}) == ({"loyalty.tier": "gold"}, [])


def test_unknown_transform_is_refused_listing_the_known_ones():
    with pytest.raises(ConfigurationError) as caught:
        compiled({"target": "email", "source": "e", "transforms": ["shout"]})
    message = str(caught.value)
    assert "rule 1: unknown transform 'shout'" in message
    assert f"(known: {', '.join(sorted(TRANSFORMS))})" in message


def test_unexpected_transform_argument_is_refused():
    with pytest.raises(ConfigurationError, match="wrong arguments for 'number'.*'digits'"):
        compiled(
            {"target": "finance.balance", "source": "b", "transforms": [{"number": {"digits": 2}}]}
        )


def test_missing_transform_argument_is_refused():
    with pytest.raises(ConfigurationError, match="wrong arguments for 'value_map'.*'map'"):
        compiled({"target": "email", "source": "e", "transforms": [{"value_map": {}}]})


def test_transform_arguments_must_be_a_mapping():
    with pytest.raises(ConfigurationError, match="arguments of 'number' must be a mapping"):
        compiled({"target": "finance.balance", "source": "b", "transforms": [{"number": [2]}]})


def test_transform_entry_with_two_names_is_refused():
    with pytest.raises(ConfigurationError, match=r"a transform is a name or \{name"):
        compiled({"target": "email", "source": "e", "transforms": [{"trim": {}, "lower": {}}]})


def test_transform_without_arguments_may_be_written_with_null():
    mapping = compiled({"target": "email", "source": "e", "transforms": [{"email": None}]})
    assert mapping.apply({"e": "A@Example.com"}) == ({"email": "a@example.com"}, [])


def test_transform_argument_of_the_wrong_type_never_crashes_apply():
    rule = {
        "target": "finance.balance",
        "source": "b",
        "transforms": [{"number": {"places": "two"}}],
    }
    try:
        mapping = compiled(rule)
    except ConfigurationError:
        return  # refused when saved: fine
    fields, problems = mapping.apply({"b": "1.5"})
    assert fields == {}
    assert problems


def test_two_unconditional_rules_for_one_target_are_refused():
    with pytest.raises(
        ConfigurationError, match="rules 1 and 3 both write 'email' unconditionally"
    ):
        compiled(
            {"target": "email", "source": "a"},
            {"target": "phone", "source": "p"},
            {"target": "email", "source": "b"},
        )


def test_two_rules_for_one_target_are_allowed_when_one_has_a_condition():
    mapping = compiled(
        {"target": "email", "source": "a", "when": {"path": "kind", "equals": "x"}},
        {"target": "email", "source": "b"},
    )
    assert len(mapping.rules) == 2


def test_condition_without_a_test_is_refused():
    with pytest.raises(ConfigurationError, match="rule 1: a condition needs equals, in, matches"):
        compiled({"target": "email", "source": "e", "when": {"path": "kind"}})


def test_condition_with_a_bad_pattern_is_refused():
    with pytest.raises(ConfigurationError, match="rule 1: bad pattern in 'matches'"):
        compiled({"target": "email", "source": "e", "when": {"path": "kind", "matches": "("}})


def test_rule_without_source_or_value_is_refused():
    with pytest.raises(ConfigurationError, match="rule 1: give a source path or a constant value"):
        compiled({"target": "email"})


def test_rule_with_a_malformed_source_path_is_refused():
    with pytest.raises(ConfigurationError, match="cannot read path 'a\\['"):
        compiled({"target": "email", "source": "a["})


def test_version_defaults_to_default():
    assert compiled({"target": "email", "source": "e"}).version == "default"
    assert compile_mapping(document({"target": "email", "source": "e"}, version="7")).version == "7"


# --- applying --------------------------------------------------------------------------------


def test_first_non_empty_source_wins():
    mapping = compiled({"target": "first_name", "source": ["a", "b", "c", "d"]})
    fields, _ = mapping.apply({"a": "", "b": None, "c": "Ana", "d": "Other"})
    assert fields == {"first_name": "Ana"}


def test_all_sources_empty_writes_nothing_and_is_no_problem():
    mapping = compiled({"target": "first_name", "source": ["a", "b"]})
    assert mapping.apply({"a": "", "b": []}) == ({}, [])


def test_transforms_run_in_order():
    mapping = compiled({"target": "last_name", "source": "n", "transforms": ["trim", "upper"]})
    assert mapping.apply({"n": "  lima "}) == ({"last_name": "LIMA"}, [])


def test_constant_value_is_written_whatever_the_record():
    mapping = compiled({"target": "lifecycle.lead_source", "value": "shop"})
    assert mapping.apply({}) == ({"lifecycle.lead_source": "shop"}, [])


def test_default_is_written_when_the_source_is_missing():
    mapping = compiled({"target": "lifecycle.stage", "source": "stage", "default": "lead"})
    assert mapping.apply({}) == ({"lifecycle.stage": "lead"}, [])


def test_default_is_written_when_the_transforms_give_nothing():
    mapping = compiled(
        {
            "target": "lifecycle.stage",
            "source": "stage",
            "transforms": [{"value_map": {"map": {"c": "customer"}, "default": None}}],
            "default": "lead",
        }
    )
    assert mapping.apply({"stage": "x"}) == ({"lifecycle.stage": "lead"}, [])


def test_source_value_beats_the_default():
    mapping = compiled({"target": "lifecycle.stage", "source": "stage", "default": "lead"})
    assert mapping.apply({"stage": "customer"}) == ({"lifecycle.stage": "customer"}, [])


def _when(condition: dict):
    return compiled({"target": "lifecycle.stage", "value": "customer", "when": condition})


@pytest.mark.parametrize(
    ("condition", "record", "holds"),
    [
        ({"path": "status", "equals": "paid"}, {"status": "paid"}, True),
        ({"path": "status", "equals": "paid"}, {"status": "open"}, False),
        ({"path": "status", "equals": "paid"}, {}, False),
        ({"path": "accepts", "equals": True}, {"accepts": True}, True),
        ({"path": "accepts", "equals": True}, {"accepts": "true"}, False),
        ({"path": "status", "in": ["paid", "refunded"]}, {"status": "refunded"}, True),
        ({"path": "status", "in": ["paid", "refunded"]}, {"status": "open"}, False),
        ({"path": "email", "matches": r"@example\.com$"}, {"email": "a@example.com"}, True),
        ({"path": "email", "matches": r"@example\.com$"}, {"email": "a@example.org"}, False),
        ({"path": "count", "matches": "1"}, {"count": 1}, False),  # only text is matched
        ({"path": "consent", "present": True}, {"consent": "opt_in"}, True),
        ({"path": "consent", "present": True}, {"consent": ""}, False),
        ({"path": "consent", "present": False}, {}, True),
        ({"path": "consent", "present": False}, {"consent": "opt_in"}, False),
    ],
)
def test_when_condition_decides_whether_the_rule_writes(condition, record, holds):
    fields, problems = _when(condition).apply(record)
    assert fields == ({"lifecycle.stage": "customer"} if holds else {})
    assert problems == []


def test_rule_whose_condition_fails_writes_nothing_not_even_its_default():
    mapping = compiled(
        {
            "target": "lifecycle.stage",
            "source": "s",
            "default": "lead",
            "when": {"path": "kind", "equals": "person"},
        }
    )
    assert mapping.apply({"kind": "company"}) == ({}, [])


def test_conditional_rule_gives_way_to_a_later_rule_when_it_does_not_hold():
    mapping = compiled(
        {"target": "email", "source": "work_email", "when": {"path": "kind", "equals": "work"}},
        {"target": "email", "source": "email"},
    )
    record = {"work_email": "w@example.com", "email": "p@example.com"}
    assert mapping.apply({**record, "kind": "work"})[0] == {"email": "w@example.com"}
    assert mapping.apply({**record, "kind": "home"})[0] == {"email": "p@example.com"}


def test_a_failing_rule_is_reported_and_the_others_still_apply():
    mapping = compiled(
        {"target": "email", "source": "email", "transforms": ["email"]},
        {"target": "first_name", "source": "first"},
        {"target": "phone", "source": "phone", "transforms": [{"phone_e164": {"region": "US"}}]},
    )
    fields, problems = mapping.apply({"email": "not-an-email", "first": "Ana", "phone": "12"})
    assert fields == {"first_name": "Ana"}
    assert len(problems) == 2
    assert problems[0].startswith("rule 1 (email): not a valid email address")
    assert problems[1] == "rule 3 (phone): not a possible phone number for its country"


def test_country_that_is_not_alpha_2_is_a_type_problem():
    mapping = compiled({"target": "address.country", "source": "country"})
    fields, problems = mapping.apply({"country": "United States"})
    assert fields == {}
    assert problems == [
        "rule 1 (address.country): 'United States' is not an ISO 3166-1 alpha-2 code "
        "(use the country_iso2 transform)"
    ]


def test_country_through_country_iso2_is_stored():
    mapping = compiled({"target": "address.country", "source": "c", "transforms": ["country_iso2"]})
    assert mapping.apply({"c": "United States"}) == ({"address.country": "US"}, [])


@pytest.mark.parametrize(
    ("target", "value", "problem"),
    [
        ("commerce.order_count", "3", "expected integer, got str"),
        ("commerce.order_count", True, "expected integer, got a boolean"),
        ("commerce.total_spent", "86.39", "expected number, got str"),
        ("commerce.currency", "usd", "'usd' is not an ISO 4217 currency code"),
        ("consent.email.status", "yes", "'yes' is not one of granted, denied, withdrawn, unknown"),
        ("consent.email.double_opt_in", "true", "expected boolean, got str"),
        ("tags", "a,b", "expected string_list, got str"),
        ("first_name", 42, "expected string, got int"),
        ("scheduling.last_booking_at", "2026-11-02T10:00:00Z", "expected datetime, got str"),
    ],
)
def test_value_of_the_wrong_type_is_a_problem(target, value, problem):
    fields, problems = compiled({"target": target, "source": "v"}).apply({"v": value})
    assert fields == {}
    assert problems == [f"rule 1 ({target}): {problem}"]


def test_integer_is_a_valid_number():
    assert compiled({"target": "finance.balance", "source": "v"}).apply({"v": 3}) == (
        {"finance.balance": 3},
        [],
    )


def test_times_are_stored_as_utc_iso_text():
    mapping = compiled(
        {"target": "scheduling.last_booking_at", "source": "at", "transforms": ["datetime_utc"]}
    )
    fields, _ = mapping.apply({"at": "2026-11-02T10:15:00-05:00"})
    assert fields == {"scheduling.last_booking_at": "2026-11-02T15:15:00+00:00"}


PHONE_BY_REGION = {
    "target": "phone",
    "source": "phone",
    "transforms": [
        {"phone_e164": {"region": {"path": ["address.country", "_meta.default_region"]}}}
    ],
}


def test_argument_is_read_from_the_first_path_that_has_a_value():
    fields, _ = compiled(PHONE_BY_REGION).apply(
        {"phone": "06 12 34 56 78", "address": {"country": "FR"}, "_meta": {"default_region": "US"}}
    )
    assert fields == {"phone": "+33612345678"}


def test_argument_falls_back_to_a_later_path():
    fields, _ = compiled(PHONE_BY_REGION).apply(
        {"phone": "(415) 555-0134", "address": {"country": ""}, "_meta": {"default_region": "US"}}
    )
    assert fields == {"phone": "+14155550134"}


def test_argument_whose_paths_are_all_missing_is_none():
    fields, problems = compiled(PHONE_BY_REGION).apply({"phone": "(415) 555-0134"})
    assert fields == {}
    assert problems == [
        "rule 1 (phone): not a phone number: (0) Missing or invalid default region."
    ]


def test_argument_may_be_a_single_path():
    rule = {
        "target": "phone",
        "source": "phone",
        "transforms": [{"phone_e164": {"region": {"path": "cc"}}}],
    }
    assert compiled(rule).apply({"phone": "(415) 555-0134", "cc": "US"})[0] == {
        "phone": "+14155550134"
    }


def test_argument_of_the_wrong_type_from_the_record_is_reported_as_a_problem():
    mapping = compiled(PHONE_BY_REGION, {"target": "first_name", "source": "first"})
    fields, problems = mapping.apply(
        {"phone": "(415) 555-0134", "address": {"country": 840}, "first": "Ana"}
    )
    assert fields == {"first_name": "Ana"}
    assert len(problems) == 1 and problems[0].startswith("rule 1 (phone)")
