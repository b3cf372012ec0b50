"""Admin-configured survivorship: source priority, most complete, conflicts, merging contacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain.contact import CanonicalRecord, Provenance
from hub.domain.flags import FlagKind
from hub.domain.golden import GoldenRecord
from hub.domain.identity import IdentityKey, IdentityKind
from hub.domain.merge import (
    MANUAL_SOURCE,
    FieldPolicy,
    Policy,
    Strategy,
    find_conflicts,
    plan_merge,
)
from hub.domain.reconcile import absorb, reconcile

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def record(connection: str, at: datetime, **fields: object) -> CanonicalRecord:
    return CanonicalRecord(connection, "contact", None, at, "e1", dict(fields))


def current(connection: str, at: datetime, **values: object
            ) -> tuple[dict[str, object], dict[str, Provenance]]:
    prov = Provenance(connection, "e0", at)
    return dict(values), {name: prov for name in values}


def test_source_priority_lets_the_erp_win_over_a_newer_shop_value():
    policy = Policy({"company": FieldPolicy(Strategy.SOURCE_PRIORITY, ("erp", "shop"))})
    values, prov = current("erp", T0, company="Lima Studio SARL")
    changes = plan_merge(values, prov, record("shop", T0 + timedelta(days=3),
                                              company="Lima Studio"), policy=policy)
    assert changes == []


def test_source_priority_lets_a_higher_source_replace_a_lower_one_even_if_older():
    policy = Policy({"company": FieldPolicy(Strategy.SOURCE_PRIORITY, ("erp", "shop"))})
    values, prov = current("shop", T0, company="Lima Studio")
    changes = plan_merge(values, prov, record("erp", T0 - timedelta(days=3),
                                              company="Lima Studio SARL"), policy=policy)
    assert [c.new for c in changes] == ["Lima Studio SARL"]


def test_most_complete_keeps_the_longer_address_group():
    policy = Policy({"address": FieldPolicy(Strategy.MOST_COMPLETE)})
    values, prov = current("erp", T0, **{"address.line1": "1 Rue X", "address.city": "Paris",
                                         "address.postal_code": "75001"})
    thin = record("shop", T0 + timedelta(days=1), **{"address.city": "Paris"})
    assert plan_merge(values, prov, thin, policy=policy) == []


def test_a_manual_value_is_kept_and_a_newer_manual_value_replaces_it():
    values, prov = current(MANUAL_SOURCE, T0, last_name="Lima-Souza")
    assert plan_merge(values, prov, record("shop", T0 + timedelta(days=9),
                                           last_name="Lima")) == []
    again = plan_merge(values, prov, record(MANUAL_SOURCE, T0 + timedelta(days=1),
                                            last_name="Souza"))
    assert [c.new for c in again] == ["Souza"]


def test_two_sources_disagreeing_within_the_window_is_a_conflict():
    values, prov = current("erp", T0, email="billing@lima.example")
    conflicts = find_conflicts(values, prov, record("shop", T0 + timedelta(hours=2),
                                                    email="ana@lima.example"))
    assert [(c.field, c.current, c.incoming) for c in conflicts] == [
        ("email", "billing@lima.example", "ana@lima.example")]


def test_no_conflict_outside_the_window_or_from_the_same_source_or_untrusted():
    values, prov = current("erp", T0, email="billing@lima.example")
    late = record("shop", T0 + timedelta(days=3), email="ana@lima.example")
    same = record("erp", T0 + timedelta(hours=1), email="ana@lima.example")
    assert find_conflicts(values, prov, late) == []
    assert find_conflicts(values, prov, same) == []
    trusted_only = Policy({"email": FieldPolicy(sources=("erp", "crm"),
                                                conflict_window=timedelta(days=1))})
    shop = record("shop", T0 + timedelta(hours=1), email="ana@lima.example")
    assert find_conflicts(values, prov, shop, trusted_only) == []


def test_reconcile_raises_a_conflict_flag_naming_both_values_and_sources():
    existing = GoldenRecord(id=7, values={"email": "billing@lima.example"},
                            provenance={"email": Provenance("erp", "e0", T0)},
                            identities={IdentityKey(IdentityKind.EXTERNAL, "shop", "42")})
    incoming = CanonicalRecord("shop", "customer", "42", T0 + timedelta(hours=1), "e9",
                               {"email": "ana@lima.example"})
    owners = {IdentityKey(IdentityKind.EXTERNAL, "shop", "42"): 7}
    outcome = reconcile([incoming], owners, lambda cid: existing)
    [flag] = [f for f in outcome.flags if f.kind is FlagKind.CONFLICT]
    assert "erp says 'billing@lima.example'" in flag.summary
    assert "shop says 'ana@lima.example'" in flag.summary
    assert {v["connection"] for v in flag.details["values"]} == {"erp", "shop"}
    assert "@" not in flag.dedupe_key(7, None)


def test_absorbing_a_contact_keeps_the_newer_value_of_each_field_and_all_identities():
    winner = GoldenRecord(id=1, values={"first_name": "Ana", "company": "Old Co"},
                          provenance={"first_name": Provenance("shop", "1", T0),
                                      "company": Provenance("shop", "1", T0)},
                          identities={IdentityKey(IdentityKind.EMAIL, "", "ana@x.example")})
    loser = GoldenRecord(id=2, values={"company": "New Co", "last_name": "Lima"},
                         provenance={"company": Provenance("erp", "5", T0 + timedelta(days=1)),
                                     "last_name": Provenance("erp", "5", T0)},
                         identities={IdentityKey(IdentityKind.EXTERNAL, "erp", "C-9")})
    absorb(winner, loser)
    assert winner.values == {"first_name": "Ana", "company": "New Co", "last_name": "Lima"}
    assert winner.provenance["company"].connection == "erp"
    assert IdentityKey(IdentityKind.EXTERNAL, "erp", "C-9") in winner.identities


def consent(status: str, at: datetime | None) -> dict[str, object]:
    fields: dict[str, object] = {"consent.email.status": status}
    if at is not None:
        fields["consent.email.at"] = at.isoformat()
    return fields


def consent_now(connection: str, status: str, at: datetime
                ) -> tuple[dict[str, object], dict[str, Provenance]]:
    return current(connection, at, **consent(status, at))


def test_an_old_subscribed_replayed_after_an_unsubscribe_changes_nothing():
    values, prov = consent_now("mailchimp", "withdrawn", T0)
    replay = record("shop", T0 + timedelta(days=5), **consent("granted", T0 - timedelta(days=30)))
    assert plan_merge(values, prov, replay) == []


def test_a_granted_without_its_own_consent_time_never_lifts_a_withdrawal():
    values, prov = consent_now("mailchimp", "withdrawn", T0)
    vague = record("shop", T0 + timedelta(days=5), **consent("granted", None))
    assert plan_merge(values, prov, vague) == []


def test_pending_or_unknown_never_lifts_a_withdrawal_however_new():
    values, prov = consent_now("mailchimp", "withdrawn", T0)
    pending = record("shop", T0 + timedelta(days=5), **consent("unknown", T0 + timedelta(days=5)))
    assert plan_merge(values, prov, pending) == []


def test_an_explicit_newer_opt_in_lifts_a_withdrawal():
    values, prov = consent_now("mailchimp", "withdrawn", T0)
    opt_in = record("forms", T0 + timedelta(days=1), **consent("granted", T0 + timedelta(days=1)))
    changes = plan_merge(values, prov, opt_in)
    assert {c.field: c.new for c in changes}["consent.email.status"] == "granted"


def test_a_withdrawal_wins_a_tie_and_beats_an_older_grant():
    values, prov = consent_now("shop", "granted", T0)
    tie = record("mailchimp", T0, **consent("withdrawn", T0))
    assert {c.field: c.new for c in plan_merge(values, prov, tie)}[
        "consent.email.status"] == "withdrawn"
    late_old = record("mailchimp", T0 + timedelta(days=9),
                      **consent("withdrawn", T0 - timedelta(days=1)))
    assert plan_merge(values, prov, late_old) == []  # the opt-in is newer than that withdrawal
