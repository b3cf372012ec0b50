"""The sync's rules without storage: cursors and bookmarks, heal counting, the push guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.adapters.rate_limit import parse_rate
from hub.domain.errors import ConfigurationError
from hub.domain.golden import GoldenRecord
from hub.domain.sync import (
    RULE_NO_CONSENT,
    RULE_WITHDRAWAL,
    Boundary,
    Change,
    Verdict,
    already_read,
    change_of,
    cursor_order,
    decide_push,
    observed_time,
    payload_hash,
    subscribes,
    withheld_contacts,
)

FETCHED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_cursor_values_compare_as_numbers_times_or_text():
    assert cursor_order(9) < cursor_order("10")  # epochs as numbers, not as text
    assert cursor_order("2026-11-01T10:00:00-05:00") == cursor_order("2026-11-01T15:00:00Z")
    assert cursor_order("2026-11-10T14:22:05.000+0000") > cursor_order("2026-11-10T14:22:04Z")


def test_a_boundary_keeps_the_highest_value_and_every_id_at_it():
    boundary = Boundary().advance([(5, "a"), (7, "b"), (7, "c"), (6, "d")])
    assert boundary == Boundary("7", frozenset({"b", "c"}))
    assert boundary.advance([(7, "e"), (3, "f")]).ids == {"b", "c", "e"}
    assert boundary.advance([(8, "g")]) == Boundary("8", frozenset({"g"}))
    assert boundary.advance([(None, "h"), ("", "i")]) == boundary


def test_the_inclusive_cursor_skips_only_what_was_already_read_at_the_bookmark():
    start = Boundary("2026-11-01T10:00:00Z", frozenset({"1", "2"}))
    assert already_read(start, "2026-11-01T10:00:00.000Z", "1")
    assert not already_read(start, "2026-11-01T10:00:00Z", "3")  # same second, new record
    assert not already_read(start, "2026-11-01T10:00:01Z", "1")  # changed again since
    assert not already_read(Boundary(), "2026-11-01T10:00:00Z", "1")


def test_a_pulled_record_is_observed_at_its_modification_time_else_when_it_was_read():
    assert observed_time({"udate": "2026-11-01T10:00:00-05:00"}, "udate", FETCHED) == \
        datetime(2026, 11, 1, 15, tzinfo=UTC)
    assert observed_time({"updatedAt": 1_762_000_000_000}, "updatedAt", FETCHED) == \
        datetime.fromtimestamp(1_762_000_000, tz=UTC)
    assert observed_time({"created": 1_700_000_000}, "created", FETCHED) == FETCHED
    assert observed_time({"updatedAt": "not a time"}, "updatedAt", FETCHED) == FETCHED


def test_a_heal_is_a_new_contact_a_changed_value_or_a_new_identity_never_a_restatement():
    assert change_of(True, None, {"email": "a@x.io"}, 2) is Change.CREATED
    assert change_of(False, {"city": "Lyon"}, {"city": "Paris"}, 0) is Change.UPDATED
    assert change_of(False, {"city": "Lyon"}, {"city": "Lyon"}, 1) is Change.UPDATED
    assert change_of(False, {"city": "Lyon"}, {"city": "Lyon"}, 0) is Change.UNCHANGED


def test_a_contact_whose_consent_turns_to_withdrawn_is_named_once():
    withdrawn = GoldenRecord(id=-1, values={"consent.email.status": "withdrawn"},
                             changed_fields={"consent.email.status", "consent.email.at"})
    already = GoldenRecord(id=4, values={"consent.email.status": "withdrawn"},
                           changed_fields={"consent.email.at"})
    granted = GoldenRecord(id=5, values={"consent.sms.status": "granted"},
                           changed_fields={"consent.sms.status"})
    before = {4: {"consent.email.status": "withdrawn"}}
    assert withheld_contacts([withdrawn, already, granted], before, {-1: 9}) == [9]


def test_the_payload_hash_is_stable_and_sees_consent():
    one = payload_hash({"b": 1, "a": {"y": 2, "x": 1}}, "granted")
    assert one == payload_hash({"a": {"x": 1, "y": 2}, "b": 1}, "granted")
    assert one != payload_hash({"b": 1, "a": {"y": 2, "x": 1}}, "withdrawn")


@pytest.mark.parametrize(("payload", "expected"), [
    ({"status_if_new": "subscribed"}, True),
    ({"status": "pending"}, True),
    ({"status_if_new": "transactional", "status": "unsubscribed"}, False),
])
def test_what_puts_someone_into_a_mailchimp_audience(payload, expected):
    assert subscribes("mailchimp", payload) is expected


def test_the_guard_sends_granted_and_withdrawals_and_blocks_the_rest():
    def verdict(consent, payload, linked=True, kind="email_marketing"):
        return decide_push(kind=kind, connector="activecampaign", consent=consent,
                           payload=payload, linked=linked)

    subscribe = {"contact": {"email": "a@x.io"}, "contactList": {"status": "1"}}
    unsubscribe = {"contact": {"email": "a@x.io"}, "contactList": {"status": "2"}}
    profile = {"contact": {"email": "a@x.io"}}
    assert verdict("granted", subscribe).verdict is Verdict.SEND
    assert verdict("withdrawn", unsubscribe, linked=False).verdict is Verdict.SEND
    assert verdict("withdrawn", subscribe).rule == RULE_WITHDRAWAL
    assert verdict(None, subscribe).rule == RULE_NO_CONSENT
    assert verdict("unknown", profile, linked=False).rule == RULE_NO_CONSENT  # not added
    assert verdict("unknown", profile, linked=True).verdict is Verdict.SEND  # a profile edit
    assert verdict(None, subscribe, kind="crm").verdict is Verdict.SEND  # not a marketing tool


def test_a_rate_limit_setting_reads_requests_per_seconds():
    assert (parse_rate("100/10").requests, parse_rate("100/10").seconds) == (100, 10.0)
    assert parse_rate("25").seconds == 1.0
    for bad in ("fast", "0/1", "5/0"):
        with pytest.raises(ConfigurationError):
            parse_rate(bad)


def test_the_progress_bar_follows_the_pull_then_the_push():
    from hub.cli_sync import progress, progress_line

    def run(phase, done, read, expected=None, reading=True, slices=(0, 1)):
        return {"connection": "crm", "status": "running", "phase": phase,
                "pull": {"records_read": read, "records_done": done, "healed": 0},
                "push": {"pushed": 0, "slices": slices[1], "slices_done": slices[0]},
                "streams": [{"expected": expected, "status": "reading" if reading else "read"}]}

    assert progress(run("pull", 50, 100, expected=1000)) == pytest.approx(0.045)
    assert progress(run("pull", 100, 100)) == pytest.approx(0.45)  # end of stream unknown
    assert progress(run("pull", 100, 100, reading=False)) == pytest.approx(0.9)
    assert progress(run("push", 100, 100, reading=False, slices=(1, 2))) == pytest.approx(0.95)
    assert "[##########--------------]  45%" in progress_line(run("pull", 100, 100))


def test_statistics_are_refreshed_when_a_run_passes_each_doubling() -> None:
    from hub.services.sync_commit import crossed_doubling

    assert crossed_doubling(9_000, 10_000, 10_000)
    assert not crossed_doubling(10_000, 19_999, 10_000)
    assert crossed_doubling(19_500, 20_500, 10_000)
    assert crossed_doubling(0, 1_000_000, 10_000)
    assert not crossed_doubling(40_000, 79_999, 10_000)
    assert not crossed_doubling(0, 9_999, 10_000)
