"""What validation tells an admin: every problem at once, naming the document, the rule and
what to change; plus custom field declarations, rule diffs and per-contact comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.adapters.mapping_files import DEFAULT_DIR, FileMappingStore
from hub.adapters.mapping_schema import load_document
from hub.domain.contact import CANONICAL_FIELDS, CanonicalRecord, FieldSpec, FieldType
from hub.domain.custom_fields import define_custom_field
from hub.domain.errors import ConfigurationError
from hub.domain.mapping import compile_mapping
from hub.domain.mapping_checks import check_document, errors_of
from hub.domain.mapping_diff import RecordPair, compare_outputs, count_statuses, diff_rules

TIER = FieldSpec("custom.tier", FieldType.ENUM, choices=("bronze", "silver", "gold"))


def doc(*rules: dict, direction: str = "inbound") -> dict:
    return load_document({"connector": "acme", "object": "thing", "direction": direction,
                          "rules": list(rules)}, "acme.thing.yaml")


def findings(*rules: dict, **kwargs) -> list:
    return check_document(doc(*rules), name="acme.thing.yaml", **kwargs)


def texts(*rules: dict, **kwargs) -> list[str]:
    return [f.text() for f in findings(*rules, **kwargs)]


# --- each kind of error names document, rule and problem ------------------------------------


def test_unknown_canonical_field():
    assert texts({"target": "email", "source": "e"}, {"target": "shoe_size", "source": "s"}) == [
        "error: acme.thing.yaml, rule 2 (shoe_size): unknown canonical field 'shoe_size'"]


def test_unknown_custom_field_says_to_declare_it_first():
    [text] = texts({"target": "custom.tier", "source": "t"})
    assert "unknown canonical field 'custom.tier' (custom fields are named custom.<name>; " \
        "add one first)" in text


def test_a_declared_custom_field_is_a_known_target():
    assert findings({"target": "custom.tier", "source": "t"}, custom={"custom.tier": TIER}) == []


def test_unknown_transform_lists_the_known_ones():
    [finding] = findings({"target": "email", "source": "e", "transforms": ["shout"]})
    assert (finding.rule, finding.problem) == (1, "unknown_transform")
    assert "unknown transform 'shout' (known: boolean, cents," in finding.message


def test_an_argument_the_transform_does_not_take():
    [finding] = findings({"target": "finance.balance", "source": "b",
                          "transforms": [{"number": {"digits": 2}}]})
    assert finding.problem == "wrong_argument"
    assert "wrong arguments for 'number'" in finding.message and "digits" in finding.message


@pytest.mark.parametrize(("step", "expected"), [
    ({"split_name": {"part": "full"}}, "argument 'part' of 'split_name' must be one of given, "
                                       "family, first, middle, last, not 'full'"),
    ({"phone_e164": {"region": "USA"}}, "argument 'region' of 'phone_e164' must be a two-letter "
                                        "country code such as US or FR, not 'USA'"),
    ({"epoch_utc": {"unit": "us"}}, "argument 'unit' of 'epoch_utc' must be s or ms, not 'us'"),
    ({"value_map": {"map": {}}}, "argument 'map' of 'value_map' must be a non-empty table"),
])
def test_an_argument_value_the_transform_would_always_refuse(step, expected):
    target = "scheduling.last_booking_at" if "epoch_utc" in step else "first_name"
    [finding] = findings({"target": target, "source": "x", "transforms": [step]})
    assert finding.problem == "wrong_argument"
    assert expected in finding.message


def test_an_argument_read_from_the_record_is_not_judged_in_advance():
    assert findings({"target": "phone", "source": "p", "transforms": [
        {"phone_e164": {"region": {"path": "country"}}}]}) == []


@pytest.mark.parametrize(("rule", "expected"), [
    ({"target": "commerce.order_count", "source": "n", "transforms": [{"number": {}}]},
     "the transform 'number' gives a decimal number, but commerce.order_count is integer; "
     "add integer"),
    ({"target": "commerce.first_order_at", "source": "created"},
     "commerce.first_order_at holds a date-time and a JSON payload never does; add "
     "datetime_utc (ISO-8601 text) or epoch_utc (Unix time)"),
    ({"target": "commerce.last_order_at", "source": "t", "transforms": ["trim"]},
     "the transform 'trim' gives text, but commerce.last_order_at is datetime"),
    ({"target": "first_name", "source": "t", "transforms": ["datetime_utc"]},
     "the transform 'datetime_utc' gives a date-time, but first_name is string"),
    ({"target": "email", "source": "t", "transforms": ["split", "email"]},
     "'email' reads text, but the step before it gives a list"),
    ({"target": "tags", "source": "t", "transforms": ["trim"]},
     "the transform 'trim' gives text, but tags is string_list; add split"),
    ({"target": "consent.email.status", "source": "s",
      "transforms": [{"value_map": {"map": {"yes": "subscribed", "no": "denied"}}}]},
     "'subscribed' is not one of granted, denied, withdrawn, unknown"),
    ({"target": "consent.email.lawful_basis", "value": "because"},
     "the constant 'because': 'because' is not one of consent,"),
    ({"target": "commerce.total_spent", "value": "12.50"},
     "the constant '12.50': expected number, got str"),
])
def test_type_mismatches_that_can_be_seen_before_any_record_arrives(rule, expected):
    [finding] = findings(rule)
    assert finding.problem == "type_mismatch"
    assert expected in finding.message, finding.message


def test_a_value_map_into_a_custom_enum_is_checked_against_its_values():
    [finding] = findings({"target": "custom.tier", "source": "t", "transforms": [
        {"value_map": {"map": {"1": "bronze", "2": "platinum"}}}]}, custom={"custom.tier": TIER})
    assert "'platinum' is not one of bronze, silver, gold (the values of custom.tier)" in \
        finding.message


def test_two_rules_writing_one_target():
    found = findings({"target": "email", "source": "a"}, {"target": "phone", "source": "p"},
                     {"target": "email", "source": "b"})
    [finding] = errors_of(found)
    assert (finding.rule, finding.problem) == (3, "duplicate_target")
    assert "rules 1 and 3 both write 'email' unconditionally; give one a 'when'" in \
        finding.message


def test_every_problem_is_reported_at_once_in_rule_order():
    found = findings({"target": "shoe", "source": "a"},
                     {"target": "email", "source": "b", "transforms": ["shout"]},
                     {"target": "phone", "source": "bad[path"})
    assert [(f.rule, f.problem) for f in found] == [
        (1, "unknown_field"), (2, "unknown_transform"), (3, "invalid_rule")]
    assert "cannot read path 'bad[path'" in found[2].message


def test_every_shipped_inbound_mapping_passes_without_errors():
    store = FileMappingStore()
    for path in sorted(DEFAULT_DIR.glob("*.yaml")):
        document = store.read(path)
        if document["direction"] == "inbound":
            assert errors_of(check_document(document, name=path.name)) == [], path.name


# --- source paths against stored payloads (warnings) -----------------------------------------


def test_a_source_path_no_stored_payload_contains_is_a_warning():
    samples = [{"email": "a@example.com", "name": None}, {"email": "b@example.com"}]
    found = findings({"target": "email", "source": "emial"},
                     {"target": "full_name", "source": "name"},
                     {"target": "first_name", "source": ["first", "name"]}, samples=samples)
    [warning] = found
    assert (warning.severity, warning.rule, warning.problem) == ("warning", 1, "unknown_path")
    assert "source 'emial' is in none of the last 2 stored payloads" in warning.text()


def test_no_stored_payloads_is_a_note_not_a_warning():
    [note] = findings({"target": "email", "source": "e"}, samples=[])
    assert (note.severity, note.problem) == ("note", "no_samples")


# --- consent for email marketing tools (outbound) --------------------------------------------


def outbound(*rules: dict, kind: str = "email_marketing") -> list:
    return check_document(doc(*rules, direction="outbound"), name="acme.member.outbound.yaml",
                          connector_kind=kind)


GRANTED = {"path": "consent.email.status", "equals": "granted"}


def test_personal_data_to_an_email_tool_without_consent_is_an_error():
    [finding] = outbound({"target": "email_address", "source": "email"},
                         {"target": "merge_fields.FNAME", "source": "first_name"},
                         {"target": "status", "source": "consent.email.status"})
    assert (finding.severity, finding.rule, finding.problem) == ("error", 2, "consent")
    assert "sends first_name to an email marketing tool for every contact; add when: " \
        "{path: consent.email.status, equals: granted}" in finding.message


def test_a_consent_condition_alone_or_among_others_makes_it_fine():
    assert outbound({"target": "merge_fields.FNAME", "source": "first_name", "when": GRANTED},
                    {"target": "merge_fields.PHONE", "source": "phone",
                     "when": [{"path": "phone", "present": True}, GRANTED]}) == []


def test_a_condition_on_something_else_is_not_consent():
    found = outbound({"target": "merge_fields.PHONE", "source": "phone",
                      "when": {"path": "consent.email.status", "equals": "unknown"}})
    assert [f.problem for f in found] == ["consent"]


def test_other_kinds_of_tools_are_not_held_to_the_email_consent_rule():
    assert outbound({"target": "name", "source": "first_name"}, kind="crm") == []


# --- a list of conditions -------------------------------------------------------------------


def test_a_list_of_conditions_must_all_hold():
    mapping = compile_mapping(doc({"target": "first_name", "source": "n", "when": [
        {"path": "kind", "equals": "person"}, {"path": "n", "matches": "^[A-Z]"}]}))
    assert mapping.apply({"kind": "person", "n": "Ana"})[0] == {"first_name": "Ana"}
    assert mapping.apply({"kind": "company", "n": "Ana"})[0] == {}
    assert mapping.apply({"kind": "person", "n": "ana"})[0] == {}


def test_an_empty_list_of_conditions_is_refused_by_the_schema():
    with pytest.raises(ConfigurationError, match="rules.0.when: give at least one condition"):
        doc({"target": "email", "source": "e", "when": []})


# --- custom fields --------------------------------------------------------------------------


def test_a_custom_field_name_gets_its_prefix_and_a_label():
    tier = define_custom_field("loyalty_tier", "enum", None, ["bronze", "gold"])
    assert (tier.name, tier.label, tier.spec().type) == \
        ("custom.loyalty_tier", "loyalty tier", FieldType.ENUM)
    assert define_custom_field("custom.renewal", "date").spec().type is FieldType.DATETIME


@pytest.mark.parametrize(("args", "message"), [
    (("Loyalty Tier", "string"), "lower-case snake_case"),
    (("tier", "colour"), "type must be one of string, number, boolean, date, enum"),
    (("tier", "enum"), "an enum needs its values"),
    (("tier", "enum", None, ["a", "a"]), "enum values must be distinct"),
    (("tier", "string", None, ["a"]), "only an enum has values"),
])
def test_a_bad_custom_field_says_what_to_change(args, message):
    with pytest.raises(ConfigurationError, match=message):
        define_custom_field(*args)


def test_a_custom_value_that_does_not_fit_is_reported_not_stored():
    mapping = compile_mapping(doc({"target": "custom.tier", "source": "t"}),
                              {"custom.tier": TIER})
    assert mapping.apply({"t": "gold"}) == ({"custom.tier": "gold"}, [])
    fields, problems = mapping.apply({"t": "platinum"})
    assert fields == {}
    assert problems == ["rule 1 (custom.tier): 'platinum' is not one of bronze, silver, gold"]


# --- rule-level diff and per-contact comparison ----------------------------------------------


def test_the_rule_diff_shows_added_removed_and_changed_rules():
    old = doc({"target": "email", "source": "email"}, {"target": "phone", "source": "p"},
              {"target": "first_name", "source": "f"})
    new = doc({"target": "email", "source": "email", "transforms": ["email"]},
              {"target": "first_name", "source": "f"}, {"target": "custom.tier", "source": "t"})
    result = diff_rules(old, new)
    assert result["added"] == [{"target": "custom.tier", "rule": 3,
                                "definition": {"source": "t"}}]
    assert result["removed"] == [{"target": "phone", "rule": 2, "definition": {"source": "p"}}]
    assert result["changed"] == [{"target": "email", "from_rule": 1, "to_rule": 1, "changes": {
        "transforms": {"from": None, "to": ["email"]}}}]
    assert result["unchanged"] == 1


T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(at: datetime, **fields: object) -> CanonicalRecord:
    return CanonicalRecord("shop", "customer", "1", at, "e", dict(fields))


def test_contacts_are_compared_after_survivorship_and_counted():
    specs = {**CANONICAL_FIELDS, "custom.tier": TIER}
    later = T0 + timedelta(hours=1)
    pairs = [
        RecordPair("1", record(T0, first_name="Ana"), record(T0, first_name="Ana",
                                                             **{"custom.tier": "bronze"})),
        RecordPair("1", record(later, first_name="Ana"), record(later, first_name="Ana",
                                                                **{"custom.tier": "gold"})),
        RecordPair("2", record(T0, first_name="Ben"), record(T0, first_name="Ben")),
        RecordPair("3", None, None, error="PayloadError: the customer has no id"),
    ]
    results = compare_outputs(pairs, specs)
    assert [(r.contact, r.status) for r in results] == [
        ("1", "changed"), ("2", "unchanged"), ("3", "failing")]
    assert results[0].changes == {"custom.tier": {"active": None, "draft": "gold"}}
    assert count_statuses(results) == {"changed": 1, "unchanged": 1, "failing": 1}


# --- custom values through survivorship ------------------------------------------------------


def test_custom_values_merge_by_the_survivorship_rules_when_the_specs_are_given():
    from hub.domain.golden import GoldenRecord
    from hub.domain.reconcile import reconcile

    specs = {**CANONICAL_FIELDS, "custom.tier": TIER}
    newer, older = record(T0 + timedelta(days=1), **{"custom.tier": "gold"}), \
        record(T0, **{"custom.tier": "bronze"})
    outcome = reconcile([newer, older], {}, lambda cid: GoldenRecord(cid), specs=specs)
    [golden] = outcome.contacts.values()
    assert golden.values["custom.tier"] == "gold"  # the older record came last and lost
    assert golden.provenance["custom.tier"].observed_at == T0 + timedelta(days=1)


def test_merging_two_contacts_keeps_the_custom_values_of_the_one_absorbed():
    from hub.domain.contact import Provenance
    from hub.domain.golden import GoldenRecord
    from hub.domain.reconcile import absorb

    winner = GoldenRecord(1, {"email": "a@example.com"},
                          {"email": Provenance("shop", "1", T0)})
    loser = GoldenRecord(2, {"custom.tier": "gold"},
                         {"custom.tier": Provenance("shop", "2", T0, "shop/customer/v1")})
    absorb(winner, loser)
    assert winner.values == {"email": "a@example.com", "custom.tier": "gold"}
    assert winner.provenance["custom.tier"].mapping_version == "shop/customer/v1"


def test_a_malformed_transform_is_named_as_such_not_as_a_type_mismatch():
    [finding] = findings({"target": "consent.sms.at", "source": "t", "transforms": [
        "datetime_utc", {"target": "custom.x", "source": "y"}]})
    assert (finding.problem, finding.rule) == ("invalid_rule", 1)
    assert "a transform is a name or {name: {arguments}}" in finding.message
