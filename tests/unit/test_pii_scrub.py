"""What the inbox keeps of a body: free text redacted, everything else byte for byte."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from hub.services.pii_scrub import scrub_body

CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"


def test_a_body_without_card_numbers_in_free_text_is_stored_as_it_came() -> None:
    body = (b'{"id": 7312459886721, "gid": "gid://shopify/Customer/4111111111111111",\n'
            b' "note": "VIP"}')
    assert scrub_body(body) == (body, [])


def test_a_card_number_in_a_note_is_redacted_and_ids_are_left_alone() -> None:
    body = json.dumps({"id": 4111111111111111, "ref": "4111111111111111",
                       "note": f"charge {CARD} please"}).encode()
    stored, kinds = scrub_body(body)
    data = json.loads(stored)
    assert kinds == ["card_number"]
    assert CARD not in data["note"] and "[redacted card number]" in data["note"]
    assert data["id"] == 4111111111111111 and data["ref"] == "4111111111111111"


def test_free_text_inherits_down_nested_values_and_lists() -> None:
    body = json.dumps({"order": {"comments": [{"by": "ana", "said": f"my IBAN is {IBAN}"}]},
                       "line_items": [{"sku": "4111111111111111"}]}).encode()
    stored, kinds = scrub_body(body)
    data = json.loads(stored)
    assert kinds == ["iban"]
    assert IBAN not in stored.decode()
    assert data["line_items"][0]["sku"] == "4111111111111111"


def test_a_form_encoded_message_is_redacted() -> None:
    body = urlencode({"email": "ana@example.com", "message": f"card {CARD}"}).encode()
    stored, kinds = scrub_body(body)
    assert kinds == ["card_number"]
    assert dict(parse_qsl(stored.decode()))["email"] == "ana@example.com"
    assert CARD not in stored.decode()


def test_a_card_in_a_repeated_form_key_is_found_too() -> None:
    body = f"message={CARD}&message=thanks".encode()
    stored, kinds = scrub_body(body)
    assert kinds == ["card_number"]
    assert CARD not in stored.decode()


def test_a_long_number_that_fails_the_luhn_check_is_kept() -> None:
    body = json.dumps({"note": "order 1234 5678 9012 3456"}).encode()
    assert scrub_body(body) == (body, [])


def test_bodies_that_cannot_be_read_are_stored_as_they_came() -> None:
    for body in (b"\xff\xfe not utf-8", b'{"note": "4111 1111 1111 1111"', b"plain text"):
        assert scrub_body(body) == (body, [])
