"""A batch of canonical records against the golden records they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.contact import CanonicalRecord, Provenance
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind
from hub.domain.reconcile import reconcile

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def record(
    connection: str, external_id: str | None, at: datetime, event: str = "e", **fields: object
) -> CanonicalRecord:
    return CanonicalRecord(connection, "customer", external_id, at, event, dict(fields))


def ext(connection: str, value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.EXTERNAL, connection, value)


def email(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.EMAIL, "", value)


def phone(value: str) -> IdentityKey:
    return IdentityKey(IdentityKind.PHONE, "", value)


class Store:
    """Stands in for storage: saved contacts by id, counting loads."""

    def __init__(self, *contacts: GoldenRecord) -> None:
        self.contacts = {c.id: c for c in contacts}
        self.loads: list[int] = []

    def owners(self) -> dict[IdentityKey, int]:
        return {key: c.id for c in self.contacts.values() for key in c.identities}

    def load(self, contact_id: int) -> GoldenRecord:
        self.loads.append(contact_id)
        saved = self.contacts[contact_id]
        return GoldenRecord(
            id=saved.id,
            values=dict(saved.values),
            provenance=dict(saved.provenance),
            identities=set(saved.identities),
        )


def saved_contact(
    contact_id: int, identities: set[IdentityKey], at: datetime = T0, **values: object
) -> GoldenRecord:
    prov = Provenance("shop", "old", at)
    return GoldenRecord(
        id=contact_id,
        values=dict(values),
        provenance=dict.fromkeys(values, prov),
        identities=identities,
    )


# --- new contacts within a batch -------------------------------------------------------------


def test_two_records_sharing_an_email_in_one_batch_make_one_contact():
    records = [
        record("shop", "42", T0, email="ana@example.com", first_name="Ana"),
        record("pay", "cus_1", T0 + HOUR, email="ana@example.com", last_name="Lima"),
    ]
    owners: dict[IdentityKey, int] = {}
    outcome = reconcile(records, owners, Store().load)
    assert outcome.contact_of_record == [-1, -1]
    [contact] = outcome.contacts.values()
    assert contact.values == {"email": "ana@example.com", "first_name": "Ana", "last_name": "Lima"}
    assert contact.identities == {ext("shop", "42"), ext("pay", "cus_1"), email("ana@example.com")}
    assert outcome.flags == []


def test_owners_learn_the_identities_a_batch_links():
    owners: dict[IdentityKey, int] = {}
    reconcile([record("shop", "42", T0, email="ana@example.com")], owners, Store().load)
    assert owners == {ext("shop", "42"): -1, email("ana@example.com"): -1}


def test_unrelated_records_get_distinct_new_ids():
    records = [
        record("shop", "1", T0, email="a@example.com"),
        record("shop", "2", T0, email="b@example.com"),
    ]
    outcome = reconcile(records, {}, Store().load)
    assert outcome.contact_of_record == [-1, -2]
    assert all(c.is_new and c.is_dirty for c in outcome.contacts.values())


def test_a_record_for_a_saved_contact_loads_it_once_per_batch():
    store = Store(saved_contact(7, {ext("shop", "42")}, first_name="Ana"))
    records = [
        record("shop", "42", T0 + HOUR, "e1", last_name="Lima"),
        record("shop", "42", T0 + 2 * HOUR, "e2", company="Lima & Co"),
    ]
    outcome = reconcile(records, store.owners(), store.load)
    assert outcome.contact_of_record == [7, 7]
    assert outcome.contacts[7].values == {
        "first_name": "Ana",
        "last_name": "Lima",
        "company": "Lima & Co",
    }
    assert outcome.contacts[7].changed_fields == {"last_name", "company"}
    assert store.loads == [7]


# --- identities over time --------------------------------------------------------------------


def test_an_email_change_follows_the_external_id_and_keeps_the_old_email():
    store = Store(
        saved_contact(7, {ext("shop", "42"), email("old@example.com")}, email="old@example.com")
    )
    owners = store.owners()
    outcome = reconcile(
        [record("shop", "42", T0 + HOUR, email="new@example.com")], owners, store.load
    )
    contact = outcome.contacts[7]
    assert outcome.contact_of_record == [7]
    assert contact.values["email"] == "new@example.com"
    assert contact.identities_of(IdentityKind.EMAIL) == ["new@example.com", "old@example.com"]
    assert contact.new_identities == [email("new@example.com")]
    assert owners[email("old@example.com")] == 7
    assert owners[email("new@example.com")] == 7
    assert outcome.flags == []


def test_a_second_tool_joins_a_saved_contact_by_email():
    store = Store(saved_contact(7, {ext("shop", "42"), email("ana@example.com")}))
    outcome = reconcile(
        [record("pay", "cus_1", T0 + HOUR, email="ana@example.com")], store.owners(), store.load
    )
    assert outcome.contact_of_record == [7]
    assert outcome.contacts[7].new_identities == [ext("pay", "cus_1")]


def test_another_customer_of_the_same_tool_with_the_same_email_is_a_new_contact_and_a_flag():
    store = Store(saved_contact(7, {ext("shop", "42"), email("ana@example.com")}))
    outcome = reconcile(
        [record("shop", "43", T0 + HOUR, email="ana@example.com")], store.owners(), store.load
    )
    assert outcome.contact_of_record == [-1]
    [flag] = outcome.flags
    assert (flag.kind, flag.contact_id, flag.other_contact_id) == (FlagKind.DUPLICATE, -1, 7)


# --- clashes ---------------------------------------------------------------------------------


@pytest.fixture
def clash():
    """Contact 7 is shop customer 42; contact 5 owns the email that customer 42 now uses."""
    store = Store(
        saved_contact(7, {ext("shop", "42"), email("nora@example.com")}),
        saved_contact(5, {email("ana@example.com")}),
    )
    owners = store.owners()
    outcome = reconcile(
        [record("shop", "42", T0 + HOUR, "evt_9", email="ana@example.com")], owners, store.load
    )
    return outcome, owners


def test_a_clash_raises_one_duplicate_flag_between_the_two_contacts(clash):
    outcome, _ = clash
    [flag] = outcome.flags
    assert (flag.kind, flag.contact_id, flag.other_contact_id, flag.topic) == (
        FlagKind.DUPLICATE,
        7,
        5,
        "",  # one flag per pair of contacts, whatever they share
    )


def test_a_clash_flag_has_a_readable_summary_and_details(clash):
    outcome, _ = clash
    [flag] = outcome.flags
    assert flag.summary == (
        "shop says email ana@example.com belongs to this contact, "
        "but another contact already has it"
    )
    assert flag.details == {
        "reasons": ["same email"],
        "identifiers": ["email ana@example.com"],
        "source": "shop",
        "event_id": "evt_9",
    }


def test_a_clashing_email_is_not_moved(clash):
    outcome, owners = clash
    assert owners[email("ana@example.com")] == 5
    assert email("ana@example.com") not in outcome.contacts[7].identities


def test_the_record_still_merges_into_the_contact_its_strongest_key_found(clash):
    outcome, _ = clash
    assert outcome.contact_of_record == [7]
    assert outcome.contacts[7].values == {"email": "ana@example.com"}
    assert 5 not in outcome.contacts


def test_a_shared_phone_with_a_different_email_is_a_new_contact_and_a_phone_flag():
    store = Store(saved_contact(3, {phone("+17185550147"), email("nora@example.com")}))
    outcome = reconcile(
        [record("pay", None, T0, email="theo@example.com", phone="+17185550147")],
        store.owners(),
        store.load,
    )
    assert outcome.contact_of_record == [-1]
    [flag] = outcome.flags
    assert (flag.contact_id, flag.other_contact_id, flag.details["reasons"]) == (
        -1, 3, ["same phone"])


# --- flags and golden records ----------------------------------------------------------------


def test_flag_dedupe_key_is_the_same_from_either_side():
    flag = NewFlag(FlagKind.DUPLICATE, contact_id=7, summary="s", other_contact_id=5, topic="email")
    assert flag.dedupe_key(7, 5) == flag.dedupe_key(5, 7) == "duplicate:5:7:email"


def test_flag_dedupe_key_without_another_contact():
    flag = NewFlag(FlagKind.COMPLIANCE, contact_id=7, summary="s", topic="consent")
    assert flag.dedupe_key(7, None) == "compliance:7:consent"


def test_golden_record_links_an_identity_once():
    golden = GoldenRecord(id=1)
    golden.link(email("a@example.com"))
    golden.link(email("a@example.com"))
    assert golden.new_identities == [email("a@example.com")]


def test_a_saved_golden_record_without_changes_is_not_dirty():
    assert not GoldenRecord(id=7, values={"first_name": "Ana"}).is_dirty


def test_search_text_holds_names_company_emails_and_phones_in_lower_case():
    golden = GoldenRecord(
        id=7,
        values={"first_name": "Ana", "last_name": "Lima", "company": "ACME", "job_title": "CTO"},
        identities={email("ana@example.com"), phone("+14155550134"), ext("shop", "42")},
    )
    assert golden.search_text() == "ana lima acme ana@example.com +14155550134"
