"""Probabilistic matching: record view, blocking, comparisons, the EM fit, explanations and
the rule that nothing is merged without a shared strong identifier."""

from __future__ import annotations

import numpy as np
import pytest

from hub.domain.matching import (
    COMPARISONS,
    INDEX,
    NULL,
    PASSES,
    Decision,
    MatchModel,
    PassSample,
    Thresholds,
    block_pair_count,
    block_pairs,
    blocking_keys,
    compare,
    compare_detailed,
    covered_earlier,
    decide,
    explain,
    fit_model,
    match_record,
    nicknames_match,
    strong_identifier,
)


def rec(contact_id: int = 1, identities: tuple[tuple[str, str, str], ...] = (), **values):
    names = {"postcode": "address.postal_code", "city": "address.city",
             "line1": "address.line1", "line2": "address.line2", "region": "address.region",
             "country": "address.country", "first": "first_name", "last": "last_name"}
    return match_record(contact_id, {names.get(k, k): v for k, v in values.items()}, identities)


def level(a, b, name: str) -> int:
    return compare(a, b)[INDEX[name]]


def keys_of(record, pass_name: str) -> tuple[str, ...]:
    return blocking_keys(record)[PASSES.index(pass_name)]


# --- the record view --------------------------------------------------------------------------


def test_record_view_is_normalised_and_takes_identities():
    r = rec(7, identities=(("email", "", "old@Example.com"), ("phone", "", "+14155550100"),
                           ("external", "shop", "42")),
            first="Zoë", last="O'Brien-Smith", email="Zoe@Example.com", phone="+1 212 555 0100",
            company="ACME, Inc.", postcode="sw1a 1aa", date_of_birth="1980-02-03T00:00:00Z")
    assert (r.first, r.last) == ("zoe", "obrien smith")
    assert r.emails == ("zoe@example.com", "old@example.com")
    assert (r.email_local, r.email_domain) == ("zoe", "example.com")
    assert r.phones == ("12125550100", "14155550100")
    assert r.external_ids == ("shop:42",)
    assert r.company == "acme"
    assert r.postcode == "sw1a1aa"
    assert r.dob == "19800203"


def test_a_full_name_alone_gives_first_and_last():
    r = rec(full_name="Mary Ann Jones")
    assert (r.first, r.last) == ("mary", "ann jones")


# --- blocking ---------------------------------------------------------------------------------


def test_name_key_tolerates_spelling_and_swapped_names():
    john, jon = rec(first="John", last="Smith"), rec(first="Jon", last="Smyth")
    swapped = rec(first="Smith", last="John")
    assert set(keys_of(john, "name")) & set(keys_of(jon, "name"))
    assert set(keys_of(john, "name")) & set(keys_of(swapped, "name"))
    assert not set(keys_of(john, "name")) & set(keys_of(rec(first="Mary", last="Jones"), "name"))


def test_email_key_is_the_local_part_without_dots_or_tags_and_skips_role_addresses():
    assert keys_of(rec(email="j.smith+crm@gmail.com"), "email") == ("jsmith",)
    assert keys_of(rec(email="jsmith@acme.com"), "email") == ("jsmith",)
    assert keys_of(rec(email="info@acme.com"), "email") == ()


def test_phone_postcode_company_and_dob_keys():
    r = rec(first="Ann", last="Lee", phone="+442079460123", postcode="EC1A 1BB",
            email="ann@acme.com", date_of_birth="1990-05-06")
    assert keys_of(r, "phone") == ("9460123",)
    assert keys_of(r, "postcode") == ("ec1a1bb|a", "ec1a1bb|l")
    assert keys_of(r, "company") == ("acme.com|l",)
    assert keys_of(r, "dob") == ("19900506",)
    free_mail = rec(last="Lee", email="ann@gmail.com", company="Lee & Co Ltd")
    assert keys_of(free_mail, "company") == ("lee|l",)  # the company name stands in


def test_small_blocks_give_every_pair_and_large_ones_a_sliding_window():
    records = [rec(i, first="Ann", last=f"Lee{i:03d}") for i in range(100)]
    small = list(block_pairs(list(range(5)), records, max_block=10, window=3))
    assert len(small) == 10 == block_pair_count(5, 10, 3)
    large = list(block_pairs(list(range(100)), records, max_block=10, window=3))
    assert len(large) == block_pair_count(100, 10, 3) == 3 * 99 - 3
    assert len(set(large)) == len(large)


def test_a_pair_is_compared_once_whatever_keys_it_shares():
    a, b = (("x",), ("k1", "k2")), (("x",), ("k1", "k2"))
    nothing = frozenset[str]()
    assert covered_earlier(a, b, 1, "k1", [nothing, nothing])  # pass 0 had it
    assert not covered_earlier(a, b, 0, "x", [nothing, nothing])
    c, d = ((), ("k1", "k2")), ((), ("k1", "k2"))
    assert not covered_earlier(c, d, 1, "k1", [nothing, nothing])
    assert covered_earlier(c, d, 1, "k2", [nothing, nothing])  # block k1 came first
    assert not covered_earlier(c, d, 1, "k2", [nothing, frozenset({"k1"})])  # k1 was windowed


# --- comparisons ------------------------------------------------------------------------------


def test_first_name_levels_exact_nickname_similar_initial_different():
    def first(x: str, y: str) -> str:
        return COMPARISONS[0].levels[level(rec(first=x), rec(first=y), "first_name")]

    assert first("Anna", "anna") == "exact"
    assert first("Bill", "William") == "nickname"
    assert first("Peggy", "Margaret") == "nickname"
    assert first("Kristina", "Kristine") == "jw>=0.92"
    assert first("J", "John") == "initial"
    assert first("Mary", "Steve") == "different"
    assert level(rec(first="Ann"), rec(), "first_name") == NULL


def test_nicknames_come_from_the_nicknames_package():
    assert nicknames_match("bob", "robert") and nicknames_match("bill", "will")
    assert not nicknames_match("john", "mary")


def test_swapped_first_and_last_names_are_recognised():
    levels, swapped = compare_detailed(rec(first="Smith", last="John"),
                                       rec(first="John", last="Smith"))
    assert swapped
    assert levels[INDEX["first_name"]][0] == 0 and levels[INDEX["last_name"]][0] == 0


def test_company_ignores_legal_forms_and_word_order():
    assert level(rec(company="ACME, Inc."), rec(company="Acme"), "company") == 0
    assert level(rec(company="Northwind Traders Ltd"), rec(company="Traders Northwind"),
                 "company") == 1
    assert level(rec(company="Contoso"), rec(company="Fabrikam"), "company") == 3


def test_street_types_are_abbreviated_and_a_different_house_number_is_another_address():
    assert level(rec(line1="12 High Street"), rec(line1="12 High St."), "street") == 0
    assert level(rec(line1="12 High Street"), rec(line1="12 Hihg Street"), "street") == 1
    assert level(rec(line1="12 High Street"), rec(line1="14 High Street"), "street") == 2


def test_place_is_one_comparison_of_postcode_city_and_region():
    a = rec(postcode="2000", city="Sydney", region="NSW")
    assert level(a, rec(postcode="2000", city="Sydney"), "place") == 0
    assert level(a, rec(postcode="2001", city="Sydney"), "place") == 1
    assert level(a, rec(postcode="2010", city="Surry Hills"), "place") == 4
    assert level(a, rec(postcode="3999", city="Melbourne", region="NSW"), "place") == 5
    assert level(a, rec(postcode="3999", city="Melbourne", region="VIC"), "place") == 6
    assert level(a, rec(), "place") == NULL


def test_email_phone_and_date_of_birth_levels():
    a = rec(email="jon.smith@gmail.com", phone="+12125550100", date_of_birth="1980-02-03")
    assert level(a, rec(email="jon.smith@gmail.com"), "email") == 0
    assert level(a, rec(email="jon.smith@acme.com"), "email") == 1
    assert level(a, rec(email="jon.smyth@yahoo.com"), "email") == 2
    assert level(a, rec(email="mary@example.org"), "email") == 4
    assert level(a, rec(phone="+12125550100"), "phone") == 0
    assert level(a, rec(phone="+44 20 555 0100"), "phone") == 1  # same last 7 digits
    assert level(a, rec(phone="+12125550199"), "phone") == 2
    assert level(a, rec(date_of_birth="1980-02-30"), "dob") == 1
    assert level(a, rec(date_of_birth="1975-11-20"), "dob") == 3


# --- the model --------------------------------------------------------------------------------


def _synthetic_levels(rng: np.random.Generator, n: int, share: float,
                      m: list[np.ndarray], u: list[np.ndarray]) -> np.ndarray:
    match = rng.random(n) < share
    columns = []
    for mc, uc in zip(m, u, strict=True):
        drawn_m = rng.choice(len(mc), size=n, p=mc)
        drawn_u = rng.choice(len(uc), size=n, p=uc)
        columns.append(np.where(match, drawn_m, drawn_u))
    return np.stack(columns, axis=1).astype(np.int8)


def test_em_recovers_m_from_blocked_pairs_and_u_from_random_pairs():
    rng = np.random.default_rng(5)
    true_m = [np.array(x) for x in MatchModel.default().m]
    true_u = [np.array(x) for x in MatchModel.default().u]
    true_m[INDEX["email"]] = np.array([0.6, 0.15, 0.1, 0.05, 0.1])
    true_m[INDEX["street"]] = np.array([0.5, 0.2, 0.1, 0.2])
    random_levels = _synthetic_levels(rng, 200_000, 0.0, true_m, true_u)
    blocked = _synthetic_levels(rng, 40_000, 0.3, true_m, true_u)
    sample = PassSample("name", blocked, np.ones(len(blocked), dtype=bool), candidates=40_000)
    model = fit_model([sample], random_levels, total_pairs=4e8)
    for name in ("email", "street", "dob"):
        c = INDEX[name]
        assert np.allclose(model.m[c], true_m[c], atol=0.03), name
        assert np.allclose(model.u[c], true_u[c], atol=0.01), name
    assert model.prior == pytest.approx(0.3 * 40_000 / 4e8, rel=0.15)
    assert MatchModel.from_dict(model.to_dict()).weights == model.weights


# --- decisions and explanations ---------------------------------------------------------------

MODEL = MatchModel.default(prior=1e-3)


def test_an_explanation_reads_like_a_person_wrote_it():
    a = rec(1, first="Jon", last="Smith", postcode="SW1A 1AA", city="London",
            email="skater77@gmail.com")
    b = rec(2, first="Jonathan", last="Smith", postcode="SW1A1AA", city="London",
            email="skater77@acme.com")
    reasons = explain(a, b, MODEL)
    assert "surname equal" in reasons
    assert "first name Jon ~ Jonathan (nickname)" in reasons
    assert "same postcode and city" in reasons
    assert "same email local part skater77, email domains differ" in reasons
    typo = explain(rec(first="Kristina", last="Smyth"), rec(first="Kristine", last="Smith"),
                   MODEL)
    assert any(r.startswith("first name Kristina ~ Kristine 0.9") for r in typo)
    assert any(r.startswith("surname Smyth ~ Smith 0.") for r in typo)
    assert explain(rec(first="Smith", last="John"), rec(first="John", last="Smith"),
                   MODEL)[0] == "first and last names swapped"


PERSON = {"first": "Margaret", "last": "Wojciechowski", "line1": "7 Wallaby Place",
          "postcode": "2119", "city": "Cleveland", "date_of_birth": "1956-04-09"}


def test_a_name_and_address_match_alone_is_flagged_never_merged():
    a, b = rec(1, **PERSON), rec(2, **dict(PERSON, first="Peggy"))
    result = decide(a, b, compare(a, b), MODEL, Thresholds())
    assert result is not None and result.probability > 0.999
    assert strong_identifier(a, b) is None
    assert result.decision is Decision.FLAG


def test_a_shared_strong_identifier_with_agreeing_names_is_a_merge():
    a = rec(1, email="m.w@example.com", **PERSON)
    b = rec(2, identities=(("email", "", "m.w@example.com"),), **dict(PERSON, first="Peggy"))
    result = decide(a, b, compare(a, b), MODEL, Thresholds())
    assert result is not None
    assert result.decision is Decision.MERGE
    assert result.strong_identifier == "email m.w@example.com"
    assert result.details()["decision"] == "merge"


def test_a_household_sharing_email_and_phone_is_flagged_not_merged():
    shared = {"email": "family@example.com", "phone": "+12125550100"}
    a = rec(1, **PERSON, **shared)
    b = rec(2, **dict(PERSON, first="Gregory", date_of_birth="1984-10-30"), **shared)
    result = decide(a, b, compare(a, b), MODEL, Thresholds())
    assert result is not None and result.strong_identifier
    assert result.decision is Decision.FLAG
    assert "first names differ (Margaret / Gregory)" in result.reasons


def test_an_email_made_of_the_names_adds_nothing_to_the_names():
    a = rec(1, first="Jon", last="Smith", email="jon.smith@gmail.com")
    b = rec(2, first="Jon", last="Smith", email="jon.smith@yahoo.com")
    assert level(a, b, "email") == NULL  # namesakes would otherwise count their name twice
    assert level(a, rec(3, first="Ann", email="jon.smith@gmail.com"), "email") == 0


def test_below_the_review_threshold_nothing_is_raised():
    a, b = rec(1, first="Ann", last="Lee"), rec(2, first="Bob", last="Stone")
    assert decide(a, b, compare(a, b), MODEL, Thresholds()) is None
