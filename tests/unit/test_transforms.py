"""The whitelisted transforms: normal cases, the errors an admin sees, and properties."""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from hub.domain import transforms as t
from hub.domain.transforms import TRANSFORMS, TransformError

# No example database (nothing written next to the sources) and no deadline: the first call
# into phonenumbers or email_validator loads metadata and is slow.
PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# --- text ------------------------------------------------------------------------------------


def test_trim_strips_surrounding_whitespace():
    assert t.trim("  Ana \t\n") == "Ana"


def test_case_transforms_change_case():
    assert t.lower("ÉCOLE Lima") == "école lima"
    assert t.upper("usd") == "USD"
    assert t.title("ana de lima") == "Ana De Lima"


def test_numbers_are_accepted_as_text():
    assert t.trim(42) == "42"


@pytest.mark.parametrize("value", [{"a": 1}, ["a"], None, object()])
def test_text_transforms_refuse_non_text_with_the_type_name(value):
    with pytest.raises(TransformError, match="expected text, got"):
        t.trim(value)


# --- email -----------------------------------------------------------------------------------


def test_email_is_trimmed_and_lower_cased():
    assert t.email("Ana.Lima@Example.com ") == "ana.lima@example.com"


def test_email_keeps_international_characters():
    assert t.email("José@Exámple.com") == "josé@exámple.com"


@pytest.mark.parametrize(
    "value", ["not an email", "ana@", "@example.com", "ana@example", "a b@x.com"]
)
def test_email_refuses_invalid_addresses(value):
    with pytest.raises(TransformError, match="not a valid email address"):
        t.email(value)


# --- phone -----------------------------------------------------------------------------------


def test_phone_in_us_national_format_with_region():
    assert t.phone_e164("(415) 555-0134", "US") == "+14155550134"


def test_phone_in_french_national_format_with_region():
    assert t.phone_e164("06 12 34 56 78", "FR") == "+33612345678"


def test_phone_region_is_case_insensitive():
    assert t.phone_e164("06 12 34 56 78", "fr") == "+33612345678"


def test_phone_with_country_code_needs_no_region():
    assert t.phone_e164("+1 415-555-0134") == "+14155550134"


def test_phone_with_country_code_ignores_the_region():
    assert t.phone_e164("+33 6 12 34 56 78", "US") == "+33612345678"


def test_national_phone_without_region_is_refused():
    with pytest.raises(TransformError, match="not a phone number"):
        t.phone_e164("06 12 34 56 78")


def test_phone_with_an_unknown_region_is_refused():
    with pytest.raises(TransformError, match="not a phone number"):
        t.phone_e164("4155550134", "USA")


@pytest.mark.parametrize("value", ["123", "+1 555"])
def test_phone_too_short_for_its_country_is_refused(value):
    with pytest.raises(TransformError, match="not a possible phone number"):
        t.phone_e164(value, "US")


def test_phone_that_is_not_a_number_is_refused():
    with pytest.raises(TransformError, match="not a phone number"):
        t.phone_e164("call me maybe", "US")


@pytest.mark.parametrize("region", [1, {"code": "US"}])
def test_phone_with_a_region_that_is_not_text_is_a_transform_error(region):
    with pytest.raises(TransformError):
        t.phone_e164("4155550134", region)


# --- names -----------------------------------------------------------------------------------


def test_split_name_reads_last_comma_first():
    assert t.split_name("Lima, Ana", "first") == "Ana"
    assert t.split_name("Lima, Ana", "last") == "Lima"


def test_split_name_keeps_particles_with_the_last_name():
    assert t.split_name("Ludwig van Beethoven", "first") == "Ludwig"
    assert t.split_name("Ludwig van Beethoven", "last") == "van Beethoven"


def test_split_name_drops_titles_and_suffixes():
    name = "Dr. Juan Q. Xavier de la Vega III"
    assert t.split_name(name, "first") == "Juan"
    assert t.split_name(name, "middle") == "Q. Xavier"
    assert t.split_name(name, "last") == "de la Vega"


@pytest.mark.parametrize(("name", "given", "family"), [
    ("Mary Ann Kowalski", "Mary Ann", "Kowalski"),
    ("James Jones Jr.", "James", "Jones Jr."),
    ("Dr. Juan Q. Xavier de la Vega III", "Juan Q. Xavier", "de la Vega III"),
    ("Lima, Ana", "Ana", "Lima"),
    ("Ana Lima", "Ana", "Lima"),
    ("Cher", "Cher", None),
])
def test_given_and_family_names_join_back_to_the_name_without_its_title(name, given, family):
    assert t.split_name(name, "given") == given
    assert t.split_name(name, "family") == family


def test_split_name_defaults_to_the_first_name():
    assert t.split_name("Ana Lima") == "Ana"


def test_split_name_of_a_missing_part_is_none():
    assert t.split_name("Cher", "last") is None


def test_split_name_refuses_an_unknown_part():
    with pytest.raises(TransformError, match="one of given, family, first, middle, last"):
        t.split_name("Ana Lima", "full")


# --- join and split --------------------------------------------------------------------------


def test_join_skips_empty_items():
    assert t.join(["Apt 4B", None, "", " Floor 2 "]) == "Apt 4B Floor 2"


def test_join_uses_the_separator():
    assert t.join(["a", "b"], ", ") == "a, b"


def test_join_of_text_returns_the_text():
    assert t.join("already joined") == "already joined"


def test_split_cuts_text_and_drops_blank_parts():
    assert t.split("newsletter, pop-up-2026,, ") == ["newsletter", "pop-up-2026"]


def test_split_uses_the_separator():
    assert t.split("a|b", "|") == ["a", "b"]


def test_split_of_a_list_trims_and_drops_blank_items():
    assert t.split([" vip ", " ", "new"]) == ["vip", "new"]


def test_split_of_a_list_drops_null_items():
    assert t.split(["vip", None, "new"]) == ["vip", "new"]


def test_split_with_an_empty_separator_is_a_transform_error():
    with pytest.raises(TransformError):
        t.split("a,b", "")


# --- country ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("US", "US"),
        ("fr", "FR"),
        (" gb ", "GB"),
        ("USA", "US"),
        ("deu", "DE"),
        ("United States", "US"),
        ("Germany", "DE"),
        ("canada", "CA"),
    ],
)
def test_country_iso2_reads_codes_and_english_names(value, expected):
    assert t.country_iso2(value) == expected


@pytest.mark.parametrize("value", ["Narnia", "", "XX"])
def test_country_iso2_refuses_unknown_countries_naming_them(value):
    with pytest.raises(TransformError, match=re.escape(f"unknown country {value!r}")):
        t.country_iso2(value)


# --- times -----------------------------------------------------------------------------------


def test_datetime_utc_converts_an_offset_to_utc():
    assert t.datetime_utc("2026-11-02T10:15:00-05:00") == datetime(2026, 11, 2, 15, 15, tzinfo=UTC)


def test_datetime_utc_result_is_in_utc_not_just_the_same_instant():
    assert t.datetime_utc("2026-11-02T10:15:00+02:00").utcoffset() == timedelta(0)


def test_datetime_utc_reads_z():
    assert t.datetime_utc("2026-11-02T10:15:00Z") == datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def test_datetime_utc_takes_a_naive_time_as_utc():
    result = t.datetime_utc("2026-11-02T10:15:00")
    assert result == datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_datetime_utc_takes_a_date_as_midnight_utc():
    assert t.datetime_utc("2026-11-02") == datetime(2026, 11, 2, tzinfo=UTC)


def test_datetime_utc_truncates_nanoseconds_to_microseconds():
    # X-Shopify-Triggered-At carries nanoseconds.
    result = t.datetime_utc("2026-11-02T15:15:01.703281612Z")
    assert result == datetime(2026, 11, 2, 15, 15, 1, 703281, tzinfo=UTC)


def test_datetime_utc_converts_an_aware_datetime():
    paris = timezone(timedelta(hours=1))
    assert t.datetime_utc(datetime(2026, 11, 2, 12, 0, tzinfo=paris)) == datetime(
        2026, 11, 2, 11, 0, tzinfo=UTC
    )


def test_datetime_utc_refuses_a_naive_time_assumed_elsewhere():
    with pytest.raises(TransformError, match="naive times are only supported as UTC"):
        t.datetime_utc("2026-11-02T10:15:00", assume="Europe/Paris")


@pytest.mark.parametrize("value", ["yesterday", "02/11/2026", "2026-13-01"])
def test_datetime_utc_refuses_text_that_is_not_iso_8601(value):
    with pytest.raises(TransformError, match="not an ISO-8601 date or time"):
        t.datetime_utc(value)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_datetime_utc_out_of_range_after_conversion_is_a_transform_error(value):
    with pytest.raises(TransformError):
        t.datetime_utc(value)


def test_epoch_utc_reads_seconds():
    assert t.epoch_utc(1794502110) == datetime(2026, 11, 12, 16, 48, 30, tzinfo=UTC)


def test_epoch_utc_reads_seconds_as_text():
    assert t.epoch_utc("1794502110") == datetime(2026, 11, 12, 16, 48, 30, tzinfo=UTC)


def test_epoch_utc_reads_milliseconds():
    assert t.epoch_utc(1794502110123, unit="ms") == datetime(
        2026, 11, 12, 16, 48, 30, 123000, tzinfo=UTC
    )


def test_epoch_utc_refuses_an_unknown_unit():
    with pytest.raises(TransformError, match="epoch unit must be s or ms"):
        t.epoch_utc(1794502110, unit="us")


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "1e30", True])
def test_epoch_utc_refuses_values_that_are_not_epoch_times(value):
    with pytest.raises(TransformError, match="not an epoch time"):
        t.epoch_utc(value)


# --- numbers ---------------------------------------------------------------------------------


def test_number_reads_decimal_text():
    assert t.number("86.39") == 86.39


def test_number_ignores_thousands_separators():
    assert t.number("1,234.5") == 1234.5


def test_number_rounds_to_places():
    assert t.number("1,234.567", places=2) == 1234.57


def test_number_rounds_a_half_cent_up_when_the_digit_before_is_odd():
    # 2.675 is not exactly representable as a float; Decimal rounding must still give 2.68.
    assert t.number("2.675", places=2) == 2.68


def test_number_accepts_numbers():
    assert t.number(5) == 5.0


@pytest.mark.parametrize("value", ["inf", "-Infinity", "NaN"])
def test_number_refuses_non_finite_values(value):
    with pytest.raises(TransformError, match="not a finite number"):
        t.number(value)


def test_number_refuses_booleans():
    with pytest.raises(TransformError, match="got a boolean"):
        t.number(True)


def test_number_refuses_words():
    with pytest.raises(TransformError, match="not a number"):
        t.number("twelve")


@pytest.mark.parametrize("places", [None, 2])
def test_number_too_large_for_a_float_is_a_transform_error(places):
    with pytest.raises(TransformError):
        t.number("1e400", places=places)


def test_integer_reads_whole_numbers():
    assert t.integer("3") == 3
    assert t.integer("3.0") == 3


def test_integer_refuses_fractions():
    with pytest.raises(TransformError, match="not a whole number"):
        t.integer("3.5")


def test_integer_too_large_for_a_float_is_a_transform_error():
    with pytest.raises(TransformError):
        t.integer("1e400")


def test_integer_keeps_large_whole_numbers_exact():
    assert t.integer("12345678901234567891") == 12345678901234567891


def test_cents_turns_minor_units_into_an_amount():
    assert t.cents(1999) == 19.99
    assert t.cents("4800") == 48.0
    assert t.cents(-250) == -2.5


def test_cents_refuses_fractional_minor_units():
    with pytest.raises(TransformError, match="not a whole number"):
        t.cents(19.5)


# --- booleans and lookups --------------------------------------------------------------------


@pytest.mark.parametrize("word", ["1", "true", "T", "Yes", "y", "on", "subscribed", "opted_in"])
def test_boolean_true_words(word):
    assert t.boolean(word) is True


@pytest.mark.parametrize("word", ["0", "false", "F", "No", "n", " off ", "unsubscribed", "opt_out"])
def test_boolean_false_words(word):
    assert t.boolean(word) is False


def test_boolean_keeps_booleans_and_reads_one_and_zero():
    assert t.boolean(False) is False
    assert t.boolean(1) is True
    assert t.boolean(0) is False


def test_boolean_refuses_other_words():
    with pytest.raises(TransformError, match="cannot read 'maybe' as yes or no"):
        t.boolean("maybe")


def test_value_map_looks_up_the_value():
    assert t.value_map("subscribed", {"subscribed": "granted"}) == "granted"


def test_value_map_folds_case():
    assert t.value_map(" Subscribed ", {"subscribed": "granted"}) == "granted"
    assert t.value_map("pending", {"PENDING": "unknown"}) == "unknown"


def test_value_map_reads_yaml_boolean_keys():
    # YAML turns `{true: granted}` into {True: "granted"}; the payload's true must find it.
    assert t.value_map(True, {True: "granted"}) == "granted"


def test_value_map_uses_the_default_for_unknown_values():
    assert t.value_map("other", {"a": 1}, default="x") == "x"


def test_value_map_default_may_be_none():
    assert t.value_map("other", {"a": 1}, default=None) is None


def test_value_map_refuses_unknown_values_without_default():
    with pytest.raises(TransformError, match="'other' is not in the value map"):
        t.value_map("other", {"a": 1})


# --- hashing ---------------------------------------------------------------------------------


def test_sha256_is_the_hex_digest():
    assert t.sha256("a") == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"


def test_sha256_prefixes_the_salt():
    assert (
        t.sha256("ana@example.com", salt="tenant-1")
        == hashlib.sha256(b"tenant-1ana@example.com").hexdigest()
    )
    assert t.sha256("ana@example.com", salt="tenant-1") != t.sha256("ana@example.com")


def test_sha256_of_text_with_a_lone_surrogate_does_not_crash():
    try:
        result = t.sha256("ana\ud800")
    except TransformError:
        return
    assert re.fullmatch(r"[0-9a-f]{64}", result)


# --- properties ------------------------------------------------------------------------------


def _case_and_space_variants(address: str) -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from(["", " ", "\t"]), st.booleans(), st.sampled_from(["", " "])
    ).map(lambda parts: parts[0] + (address.upper() if parts[1] else address) + parts[2])


@PROPERTY
@given(st.emails().flatmap(_case_and_space_variants))
def test_email_is_idempotent_on_its_own_output(raw):
    try:
        once = t.email(raw)
    except TransformError:
        reject()
    assert t.email(once) == once
    assert once == once.strip().lower()


REGIONS = ["US", "CA", "FR", "GB", "DE", "ES", "BR", "IN", "JP", "AU"]
NATIONAL_DIGITS = st.text(alphabet="0123456789", min_size=4, max_size=15)


def _is_valid_number(digits: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(digits, region))
    except phonenumbers.NumberParseException:
        return False


@PROPERTY
@given(st.sampled_from(REGIONS), NATIONAL_DIGITS)
def test_phone_e164_output_of_a_valid_number_reparses_to_itself(region, digits):
    if not _is_valid_number(digits, region):
        reject()
    e164 = t.phone_e164(digits, region)
    assert re.fullmatch(r"\+[1-9]\d+", e164)
    assert t.phone_e164(e164) == e164
    assert t.phone_e164(e164, "JP" if region != "JP" else "US") == e164


@PROPERTY
@given(st.sampled_from(REGIONS), NATIONAL_DIGITS)
@example(region="DE", digits="000000")
@example(region="AU", digits="006474139")
def test_phone_e164_output_of_any_accepted_input_reparses_to_itself(region, digits):
    try:
        e164 = t.phone_e164(digits, region)
    except TransformError:
        reject()
    assert t.phone_e164(e164) == e164


OFFSETS = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(lambda d: timezone(timedelta(minutes=int(d.total_seconds() // 60))))
# Naive bounds (hypothesis wants them naive); a day inside datetime's range for any offset.
TIMES = st.datetimes(
    min_value=datetime(1900, 1, 2),  # noqa: DTZ001
    max_value=datetime(2200, 12, 30),  # noqa: DTZ001
)


@PROPERTY
@given(TIMES, OFFSETS)
def test_datetime_utc_returns_utc_for_any_offset(naive, offset):
    aware = naive.replace(tzinfo=offset)
    result = t.datetime_utc(aware.isoformat())
    assert result.tzinfo is UTC
    assert result == aware


@PROPERTY
@given(TIMES)
def test_datetime_utc_returns_utc_for_naive_times(naive):
    result = t.datetime_utc(naive.isoformat())
    assert result.tzinfo is UTC
    assert result.replace(tzinfo=None) == naive


SIMPLEST_ARGS: dict[str, dict[str, object]] = {"value_map": {"map": {}}}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_no_transform_raises_anything_but_transform_error_on_arbitrary_text(name):
    transform = TRANSFORMS[name]
    args = SIMPLEST_ARGS.get(name, {})

    @PROPERTY
    @given(st.text())
    def check(text):
        with contextlib.suppress(TransformError):
            transform(text, **args)

    check()
