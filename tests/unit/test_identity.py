"""Identity resolution: external id, then email, then phone (only without an email); weaker
keys that belong to someone else never move, they clash."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.domain.contact import CanonicalRecord
from hub.domain.identity import (
    IdentityKey,
    IdentityKind,
    Resolution,
    identity_keys,
    resolve_identity,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

EXT = IdentityKey(IdentityKind.EXTERNAL, "shop", "7312459886721")
EMAIL = IdentityKey(IdentityKind.EMAIL, "", "nora@example.com")
PHONE = IdentityKey(IdentityKind.PHONE, "", "+17185550147")


def record(
    external_id: str | None = None, connection: str = "shop", **fields: str
) -> CanonicalRecord:
    return CanonicalRecord(connection, "customer", external_id, T0, "e", fields)


# --- keys a record carries -------------------------------------------------------------------


def test_keys_are_listed_strongest_first():
    rec = record("7312459886721", phone="+17185550147", email="nora@example.com")
    assert identity_keys(rec) == [EXT, EMAIL, PHONE]


def test_external_id_is_scoped_to_the_connection():
    assert identity_keys(record("42", connection="pay")) == [
        IdentityKey(IdentityKind.EXTERNAL, "pay", "42")
    ]


def test_a_record_without_external_id_has_only_email_and_phone():
    assert identity_keys(record(None, email="nora@example.com", phone="+17185550147")) == [
        EMAIL,
        PHONE,
    ]


def test_empty_identifiers_are_not_keys():
    assert identity_keys(record("", email="", phone="")) == []


def test_keys_describe_themselves_for_people():
    assert EXT.describe() == "shop id 7312459886721"
    assert EMAIL.describe() == "email nora@example.com"
    assert PHONE.describe() == "phone +17185550147"


# --- resolution ------------------------------------------------------------------------------


def test_unknown_keys_mean_a_new_contact_with_every_key_attached():
    assert resolve_identity([EXT, EMAIL, PHONE], {}) == Resolution(
        contact_id=None, matched_by=None, attach=[EXT, EMAIL, PHONE], clashes=[]
    )


def test_external_id_is_the_strongest_evidence():
    resolution = resolve_identity([EXT, EMAIL], {EXT: 1, EMAIL: 2})
    assert (resolution.contact_id, resolution.matched_by) == (1, EXT)


def test_email_decides_when_the_external_id_is_unknown():
    resolution = resolve_identity([EXT, EMAIL, PHONE], {EMAIL: 2, PHONE: 3})
    assert (resolution.contact_id, resolution.matched_by) == (2, EMAIL)


def test_phone_decides_for_a_record_without_email():
    resolution = resolve_identity([EXT, PHONE], {PHONE: 3})
    assert (resolution.contact_id, resolution.matched_by) == (3, PHONE)


def test_email_beats_phone_and_the_phone_of_another_contact_clashes():
    resolution = resolve_identity([EMAIL, PHONE], {EMAIL: 2, PHONE: 3})
    assert (resolution.contact_id, resolution.matched_by) == (2, EMAIL)
    assert resolution.clashes == [(PHONE, 3)]


def test_same_phone_with_a_new_email_is_a_new_contact_with_a_phone_clash():
    resolution = resolve_identity([EMAIL, PHONE], {PHONE: 3})
    assert resolution == Resolution(
        contact_id=None, matched_by=None, attach=[EMAIL], clashes=[(PHONE, 3)]
    )


def test_a_contact_the_tool_knows_under_another_id_is_not_matched_by_email():
    def external_ids_of(contact: int, scope: str) -> set[str]:
        return {"999"} if (contact, scope) == (2, "shop") else set()

    resolution = resolve_identity([EXT, EMAIL], {EMAIL: 2}, external_ids_of)
    assert resolution == Resolution(
        contact_id=None, matched_by=None, attach=[EXT], clashes=[(EMAIL, 2)]
    )


def test_an_id_from_another_tool_does_not_stop_an_email_match():
    def external_ids_of(contact: int, scope: str) -> set[str]:
        return {"cus_1"} if scope == "pay" else set()

    resolution = resolve_identity([EXT, EMAIL], {EMAIL: 2}, external_ids_of)
    assert (resolution.contact_id, resolution.attach) == (2, [EXT])


def test_evidence_order_does_not_depend_on_the_order_keys_are_given():
    resolution = resolve_identity([PHONE, EMAIL, EXT], {PHONE: 3, EMAIL: 2, EXT: 1})
    assert resolution.matched_by == EXT


def test_unowned_keys_are_attached_to_the_matched_contact():
    resolution = resolve_identity([EXT, EMAIL, PHONE], {EMAIL: 2})
    assert resolution.attach == [EXT, PHONE]
    assert resolution.clashes == []


def test_keys_the_contact_already_owns_are_neither_attached_nor_clashes():
    resolution = resolve_identity([EXT, EMAIL], {EXT: 1, EMAIL: 1})
    assert (resolution.attach, resolution.clashes) == ([], [])


def test_a_weaker_key_owned_by_another_contact_clashes_and_is_not_moved():
    resolution = resolve_identity([EXT, EMAIL, PHONE], {EXT: 1, EMAIL: 2})
    assert resolution.contact_id == 1
    assert resolution.clashes == [(EMAIL, 2)]
    assert EMAIL not in resolution.attach
    assert resolution.attach == [PHONE]


def test_every_clashing_key_is_reported_with_its_owner():
    resolution = resolve_identity([EXT, EMAIL, PHONE], {EXT: 1, EMAIL: 2, PHONE: 3})
    assert resolution.clashes == [(EMAIL, 2), (PHONE, 3)]


def test_the_same_external_id_from_another_connection_is_another_identity():
    other_tool = IdentityKey(IdentityKind.EXTERNAL, "pay", EXT.value)
    resolution = resolve_identity([other_tool], {EXT: 1})
    assert resolution.contact_id is None
    assert resolution.attach == [other_tool]
