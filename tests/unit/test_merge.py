"""Survivorship: which value a golden record keeps, with explicit observation times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.contact import CanonicalRecord, Provenance
from hub.domain.golden import GoldenRecord
from hub.domain.merge import MANUAL_SOURCE, FieldChange, plan_merge

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

ADDRESS_A = {
    "address.line1": "41 Placeholder Lane",
    "address.line2": "Apt 4B",
    "address.city": "Brooklyn",
    "address.region": "NY",
    "address.postal_code": "11201",
    "address.country": "US",
}
ADDRESS_B = {
    "address.line1": "12 Fixture Court",
    "address.city": "Beaverton",
    "address.region": "OR",
    "address.postal_code": "97005",
    "address.country": "US",
}


def record(
    fields: dict, at: datetime, connection: str = "shop", event: str = "e"
) -> CanonicalRecord:
    return CanonicalRecord(
        connection=connection,
        object_type="customer",
        external_id="1",
        observed_at=at,
        event_id=event,
        fields=fields,
        mapping_version="v1",
    )


def merge(*records: CanonicalRecord, golden: GoldenRecord | None = None) -> GoldenRecord:
    """Apply records in the order given, as reconcile does."""
    golden = golden or GoldenRecord(id=1)
    for rec in records:
        golden.apply(plan_merge(golden.values, golden.provenance, rec))
    return golden


def manual(values: dict, at: datetime = T0) -> GoldenRecord:
    """A contact whose fields an admin set by hand."""
    prov = Provenance(MANUAL_SOURCE, None, at)
    return GoldenRecord(id=1, values=dict(values), provenance=dict.fromkeys(values, prov))


# --- the basics ------------------------------------------------------------------------------


def test_a_value_for_an_empty_field_is_taken_with_its_provenance():
    rec = record({"first_name": "Nora"}, T0, event="evt_1")
    assert plan_merge({}, {}, rec) == [
        FieldChange("first_name", None, "Nora", Provenance("shop", "evt_1", T0, "v1"))
    ]


def test_a_newer_value_from_another_source_replaces_the_current_one():
    golden = merge(
        record({"last_name": "Testwell"}, T0),
        record({"last_name": "Brightwater"}, T0 + HOUR, "pay"),
    )
    assert golden.values["last_name"] == "Brightwater"
    assert golden.provenance["last_name"].connection == "pay"


def test_fields_the_record_does_not_mention_are_left_alone():
    golden = merge(
        record({"first_name": "Nora", "company": "Testwell"}, T0),
        record({"first_name": "Nora B"}, T0 + HOUR),
    )
    assert golden.values == {"first_name": "Nora B", "company": "Testwell"}


def test_fields_outside_the_model_are_ignored():
    assert plan_merge({}, {}, record({"shoe_size": 38}, T0)) == []


def test_replaying_the_same_record_changes_nothing():
    rec = record({"first_name": "Nora", **ADDRESS_A}, T0)
    golden = merge(rec)
    assert plan_merge(golden.values, golden.provenance, rec) == []


def test_the_same_value_observed_later_refreshes_only_the_provenance():
    golden = merge(record({"first_name": "Nora"}, T0))
    later = record({"first_name": "Nora"}, T0 + HOUR, "pay")
    [change] = plan_merge(golden.values, golden.provenance, later)
    assert (change.old, change.new, change.provenance.connection) == ("Nora", "Nora", "pay")


# --- empty never overwrites filled -----------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", []])
def test_an_empty_value_never_replaces_a_filled_one_even_when_newer(empty):
    golden = merge(record({"company": "Testwell", "tags": ["vip"]}, T0))
    newer = record({"company": empty, "tags": empty}, T0 + HOUR)
    assert plan_merge(golden.values, golden.provenance, newer) == []


# --- older never overwrites newer ------------------------------------------------------------


def test_an_out_of_order_older_record_changes_nothing():
    golden = merge(record({"phone": "+16465550190", "last_name": "Brightwater"}, T0 + HOUR))
    older = record({"phone": "+17185550147", "last_name": "Testwell"}, T0, "pay")
    assert plan_merge(golden.values, golden.provenance, older) == []


def test_delivery_order_does_not_change_the_result():
    old = record({"phone": "+17185550147", "company": "Old Co"}, T0, "shop", "e1")
    new = record({"phone": "+16465550190"}, T0 + HOUR, "pay", "e2")
    in_order, reversed_order = merge(old, new), merge(new, old)
    assert (
        in_order.values == reversed_order.values == {"phone": "+16465550190", "company": "Old Co"}
    )
    assert in_order.provenance == reversed_order.provenance


def test_at_the_same_instant_another_source_does_not_win():
    golden = merge(record({"last_name": "Testwell"}, T0, "shop"))
    same_time = record({"last_name": "Other"}, T0, "pay")
    assert plan_merge(golden.values, golden.provenance, same_time) == []


def test_at_the_same_instant_the_same_source_may_restate_itself():
    golden = merge(
        record({"last_name": "Testwell"}, T0, "shop", "e1"),
        record({"last_name": "Brightwater"}, T0, "shop", "e2"),
    )
    assert golden.values["last_name"] == "Brightwater"
    assert golden.provenance["last_name"].event_id == "e2"


# --- manual edits ----------------------------------------------------------------------------


def test_a_manual_value_is_never_overwritten_by_a_tool():
    golden = manual({"company": "Set by admin"}, at=T0)
    newer = record({"company": "From the shop"}, T0 + 24 * HOUR)
    assert plan_merge(golden.values, golden.provenance, newer) == []


def test_a_manual_earliest_field_is_never_overwritten_even_by_an_earlier_value():
    golden = manual({"commerce.first_order_at": "2026-11-09T00:00:00+00:00"})
    earlier = record({"commerce.first_order_at": "2026-01-01T00:00:00+00:00"}, T0 + HOUR)
    assert plan_merge(golden.values, golden.provenance, earlier) == []


def test_a_manual_member_protects_its_whole_group():
    golden = manual({"address.city": "Set by admin"})
    newer = record(ADDRESS_A, T0 + HOUR)
    assert plan_merge(golden.values, golden.provenance, newer) == []


def test_a_manual_value_does_not_block_other_fields():
    golden = manual({"company": "Set by admin"})
    changes = plan_merge(
        golden.values, golden.provenance, record({"company": "X", "first_name": "Nora"}, T0 + HOUR)
    )
    assert [c.field for c in changes] == ["first_name"]


# --- groups move together --------------------------------------------------------------------


def test_a_newer_address_replaces_the_whole_group_and_clears_a_missing_line2():
    golden = merge(record(ADDRESS_A, T0), record(ADDRESS_B, T0 + HOUR, "pay"))
    assert {k: v for k, v in golden.values.items() if k.startswith("address.")} == ADDRESS_B
    assert "address.line2" not in golden.values


def test_clearing_a_group_member_is_a_change_to_none_with_provenance():
    golden = merge(record(ADDRESS_A, T0))
    changes = plan_merge(
        golden.values, golden.provenance, record(ADDRESS_B, T0 + HOUR, "pay", "e2")
    )
    [line2] = [c for c in changes if c.field == "address.line2"]
    assert (line2.old, line2.new) == ("Apt 4B", None)
    assert line2.provenance.event_id == "e2"


def test_an_older_address_changes_nothing_not_even_fields_the_current_address_lacks():
    current = {k: v for k, v in ADDRESS_B.items() if k != "address.postal_code"}
    golden = merge(record(current, T0 + HOUR))
    assert plan_merge(golden.values, golden.provenance, record(ADDRESS_A, T0, "pay")) == []


def test_an_address_at_the_same_instant_from_another_source_changes_nothing():
    golden = merge(record(ADDRESS_A, T0, "shop"))
    assert plan_merge(golden.values, golden.provenance, record(ADDRESS_B, T0, "pay")) == []


def test_a_record_without_address_fields_leaves_the_address_alone():
    golden = merge(record(ADDRESS_A, T0), record({"first_name": "Nora"}, T0 + HOUR))
    assert {k: v for k, v in golden.values.items() if k.startswith("address.")} == ADDRESS_A


def test_empty_address_fields_do_not_count_as_a_new_address():
    golden = merge(record(ADDRESS_A, T0))
    blank = record({"address.city": "", "address.line1": None}, T0 + HOUR)
    assert plan_merge(golden.values, golden.provenance, blank) == []


def test_a_consent_group_is_replaced_as_a_whole():
    granted = {
        "consent.email.status": "granted",
        "consent.email.lawful_basis": "consent",
        "consent.email.double_opt_in": True,
        "consent.email.at": "2026-11-01T12:00:00+00:00",
    }
    withdrawn = {
        "consent.email.status": "withdrawn",
        "consent.email.at": "2026-11-20T19:31:55+00:00",
    }
    golden = merge(record(granted, T0), record(withdrawn, T0 + HOUR))
    assert golden.values == withdrawn


def test_groups_of_different_channels_are_independent():
    email = {"consent.email.status": "granted"}
    sms = {"consent.sms.status": "denied"}
    golden = merge(record(email, T0), record(sms, T0 + HOUR))
    assert golden.values == {**email, **sms}


# --- earliest / greatest ---------------------------------------------------------------------


def test_first_order_at_keeps_the_earliest_date_whatever_the_observation_order():
    late_order = record({"commerce.first_order_at": "2026-11-10T00:42:17+00:00"}, T0)
    early_order_seen_later = record(
        {"commerce.first_order_at": "2026-10-01T09:00:00+00:00"}, T0 + HOUR
    )
    assert (
        merge(late_order, early_order_seen_later).values["commerce.first_order_at"]
        == "2026-10-01T09:00:00+00:00"
    )
    assert (
        merge(early_order_seen_later, late_order).values["commerce.first_order_at"]
        == "2026-10-01T09:00:00+00:00"
    )


def test_first_order_at_is_not_replaced_by_a_later_date_observed_later():
    golden = merge(record({"commerce.first_order_at": "2026-10-01T09:00:00+00:00"}, T0))
    newer = record({"commerce.first_order_at": "2026-11-10T00:42:17+00:00"}, T0 + HOUR)
    assert plan_merge(golden.values, golden.provenance, newer) == []


def test_last_order_at_keeps_the_greatest_date_whatever_the_observation_order():
    early = record({"commerce.last_order_at": "2026-10-01T09:00:00+00:00"}, T0 + HOUR)
    late = record({"commerce.last_order_at": "2026-11-10T00:42:17+00:00"}, T0)
    assert merge(early, late).values["commerce.last_order_at"] == "2026-11-10T00:42:17+00:00"
    assert merge(late, early).values["commerce.last_order_at"] == "2026-11-10T00:42:17+00:00"


def test_last_order_at_compares_fractional_seconds_correctly():
    whole = record({"commerce.last_order_at": "2026-11-10T00:42:17+00:00"}, T0)
    later_fraction = record({"commerce.last_order_at": "2026-11-10T00:42:17.500000+00:00"}, T0)
    assert (
        merge(whole, later_fraction).values["commerce.last_order_at"]
        == "2026-11-10T00:42:17.500000+00:00"
    )


# --- order independence ----------------------------------------------------------------------

FIELD_VALUES = {
    "first_name": st.sampled_from(["Nora", "Ana", ""]),
    "address.city": st.sampled_from(["Brooklyn", "Beaverton"]),
    "address.line2": st.sampled_from(["Apt 4B", "Unit 12"]),
    "commerce.first_order_at": st.sampled_from(
        ["2026-10-01T09:00:00+00:00", "2026-11-10T00:42:17+00:00"]
    ),
    "commerce.last_order_at": st.sampled_from(
        ["2026-10-01T09:00:00+00:00", "2026-11-10T00:42:17+00:00"]
    ),
    "consent.email.status": st.sampled_from(["granted", "withdrawn"]),
    "consent.email.at": st.sampled_from(["2026-10-01T09:00:00+00:00", "2026-11-10T00:42:17+00:00"]),
}
RECORD_FIELDS = st.fixed_dictionaries({}, optional=FIELD_VALUES)


@settings(database=None, deadline=None, max_examples=300)
@given(
    st.lists(st.tuples(RECORD_FIELDS, st.sampled_from(["shop", "pay"])), min_size=2, max_size=5),
    st.data(),
)
def test_with_distinct_observation_times_any_delivery_order_gives_the_same_values(specs, data):
    records = [
        record(fields, T0 + i * HOUR, connection, f"e{i}")
        for i, (fields, connection) in enumerate(specs)
    ]
    shuffled = data.draw(st.permutations(records))
    assert merge(*shuffled).values == merge(*records).values
