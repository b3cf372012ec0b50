"""Webhook signature schemes, against hand-made signatures and the official stripe library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import stripe

from connectors.base import Headers, WebhookRequest
from connectors.signatures import (
    hmac_sha256,
    parse_timestamped_header,
    verify_base64_hmac,
    verify_timestamped_hex_hmac,
)
from connectors.stripe import TOLERANCE_SECONDS, Stripe
from hub.domain.errors import SignatureError

BODY = b'{"id":7312459886721,"email":"nora.testwell@example.com"}'
SECRET = "shpss_current"
OLD_SECRET = "shpss_previous"
T = 1794502302  # 2026-11-12T16:51:42Z


def base64_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def hex_signature(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_hmac_sha256_takes_text_or_bytes_secrets():
    assert (
        hmac_sha256("k", b"m") == hmac_sha256(b"k", b"m") == hmac.new(b"k", b"m", "sha256").digest()
    )


# --- base64 body HMAC (Shopify) --------------------------------------------------------------


def verify_b64(body: bytes, header: str | None, secrets: list[str]) -> None:
    verify_base64_hmac(body, header, secrets, "X-Shopify-Hmac-Sha256")


def test_base64_hmac_of_the_body_verifies():
    verify_b64(BODY, base64_signature(BODY, SECRET), [SECRET])


def test_base64_hmac_tolerates_surrounding_whitespace_in_the_header():
    verify_b64(BODY, f" {base64_signature(BODY, SECRET)}\n", [SECRET])


def test_base64_hmac_refuses_a_tampered_body():
    header = base64_signature(BODY, SECRET)
    with pytest.raises(
        SignatureError, match="X-Shopify-Hmac-Sha256 header does not match the body"
    ):
        verify_b64(BODY.replace(b"nora", b"eve"), header, [SECRET])


def test_base64_hmac_refuses_another_secret():
    with pytest.raises(SignatureError, match="does not match the body"):
        verify_b64(BODY, base64_signature(BODY, "someone_else"), [SECRET])


@pytest.mark.parametrize("header", [None, ""])
def test_base64_hmac_refuses_a_missing_header(header):
    with pytest.raises(SignatureError, match="the X-Shopify-Hmac-Sha256 header is missing"):
        verify_b64(BODY, header, [SECRET])


def test_base64_hmac_accepts_any_secret_of_a_rotation():
    verify_b64(BODY, base64_signature(BODY, OLD_SECRET), [SECRET, OLD_SECRET])


def test_base64_hmac_without_secrets_refuses_everything():
    with pytest.raises(SignatureError):
        verify_b64(BODY, base64_signature(BODY, SECRET), [])


def test_base64_hmac_refuses_a_hex_signature():
    hex_digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        verify_b64(BODY, hex_digest, [SECRET])


# --- timestamped hex HMAC (Stripe) -----------------------------------------------------------


def verify_ts(header: str | None, secrets: list[str], now: float = T, body: bytes = BODY) -> None:
    verify_timestamped_hex_hmac(body, header, secrets, "Stripe-Signature", 300, now=now)


def test_parse_timestamped_header_keeps_t_and_every_v1():
    header = "t=1700000000, v1=abc,v0=old,v1=def,x=1"
    assert parse_timestamped_header(header, "Stripe-Signature") == (1700000000, ["abc", "def"])


def test_timestamped_signature_verifies():
    verify_ts(f"t={T},v1={hex_signature(BODY, SECRET, T)}", [SECRET])


def test_timestamped_signature_accepts_any_matching_v1():
    header = f"t={T},v1={'0' * 64},v1={hex_signature(BODY, SECRET, T)}"
    verify_ts(header, [SECRET])


def test_timestamped_signature_accepts_any_secret_of_a_rotation():
    verify_ts(f"t={T},v1={hex_signature(BODY, OLD_SECRET, T)}", [SECRET, OLD_SECRET])


def test_timestamped_signature_ignores_v0():
    header = f"t={T},v0={hex_signature(BODY, SECRET, T)},v1={'0' * 64}"
    with pytest.raises(
        SignatureError, match="no v1 signature in Stripe-Signature matches the body"
    ):
        verify_ts(header, [SECRET])


def test_timestamped_signature_with_only_v0_is_refused():
    with pytest.raises(SignatureError, match="no t= timestamp or no v1 signature"):
        verify_ts(f"t={T},v0={hex_signature(BODY, SECRET, T)}", [SECRET])


def test_timestamped_signature_refuses_a_tampered_body():
    header = f"t={T},v1={hex_signature(BODY, SECRET, T)}"
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_ts(header, [SECRET], body=BODY + b" ")


def test_timestamped_signature_refuses_a_changed_timestamp():
    header = f"t={T + 1},v1={hex_signature(BODY, SECRET, T)}"
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_ts(header, [SECRET])


def test_timestamped_signature_at_the_edge_of_the_tolerance_verifies():
    verify_ts(f"t={T},v1={hex_signature(BODY, SECRET, T)}", [SECRET], now=T + 300)


def test_timestamped_signature_older_than_the_tolerance_is_refused():
    header = f"t={T},v1={hex_signature(BODY, SECRET, T)}"
    with pytest.raises(SignatureError, match="timestamp is more than 300 s old"):
        verify_ts(header, [SECRET], now=T + 301)


def test_forged_old_signature_is_refused_for_its_signature_not_its_age():
    header = f"t={T},v1={'0' * 64}"
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify_ts(header, [SECRET], now=T + 10_000)


@pytest.mark.parametrize("header", [f"v1={'0' * 64}", f"t=,v1={'0' * 64}"])
def test_timestamped_signature_without_t_is_refused(header):
    with pytest.raises(SignatureError):
        verify_ts(header, [SECRET])


def test_timestamped_signature_with_a_non_numeric_t_is_refused():
    with pytest.raises(SignatureError, match="Stripe-Signature timestamp is not a number"):
        verify_ts(f"t=yesterday,v1={hex_signature(BODY, SECRET, T)}", [SECRET])


@pytest.mark.parametrize("header", [None, ""])
def test_timestamped_signature_without_header_is_refused(header):
    with pytest.raises(SignatureError, match="the Stripe-Signature header is missing"):
        verify_ts(header, [SECRET])


# --- against the official stripe library -----------------------------------------------------

STRIPE_SECRET = "whsec_test_secret_for_the_hub"
PAYLOAD = json.dumps({"id": "evt_1", "object": "event", "type": "customer.created"})


def stripe_request(body: bytes, signature: str, received: float) -> WebhookRequest:
    headers = Headers({"Stripe-Signature": signature, "Content-Type": "application/json"})
    return WebhookRequest(
        "POST",
        "https://hub.example/webhooks/pay",
        headers,
        body,
        datetime.fromtimestamp(received, tz=UTC),
    )


def test_a_header_signed_by_the_stripe_library_verifies():
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD, STRIPE_SECRET, timestamp=T)
    Stripe().verify(stripe_request(PAYLOAD.encode(), header, received=T + 5), [STRIPE_SECRET])


def test_a_stripe_signature_verifies_with_the_rotated_secret_list():
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD, STRIPE_SECRET, timestamp=T)
    Stripe().verify(
        stripe_request(PAYLOAD.encode(), header, received=T), ["whsec_new", STRIPE_SECRET]
    )


def test_a_tampered_body_is_refused_by_both_stripe_and_us():
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(
        PAYLOAD, STRIPE_SECRET, timestamp=now
    )
    tampered = PAYLOAD.replace("customer.created", "customer.deleted")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(tampered, header, STRIPE_SECRET, TOLERANCE_SECONDS)
    with pytest.raises(SignatureError):
        Stripe().verify(stripe_request(tampered.encode(), header, received=now), [STRIPE_SECRET])


def test_an_expired_signature_is_refused_by_both_stripe_and_us():
    now = int(time.time())
    old = now - TOLERANCE_SECONDS - 60
    header = stripe.WebhookSignature.generate_signature_header(
        PAYLOAD, STRIPE_SECRET, timestamp=old
    )
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.WebhookSignature.verify_header(PAYLOAD, header, STRIPE_SECRET, TOLERANCE_SECONDS)
    with pytest.raises(SignatureError, match="old"):
        Stripe().verify(stripe_request(PAYLOAD.encode(), header, received=now), [STRIPE_SECRET])


def test_a_header_with_two_v1_from_a_secret_roll_verifies_like_stripe():
    now = int(time.time())
    new = stripe.WebhookSignature.generate_signature_header(PAYLOAD, "whsec_new", timestamp=now)
    old = stripe.WebhookSignature.generate_signature_header(PAYLOAD, STRIPE_SECRET, timestamp=now)
    header = f"{new},{old.split(',')[1]}"  # t=...,v1=<new>,v1=<old>
    assert stripe.WebhookSignature.verify_header(PAYLOAD, header, STRIPE_SECRET, TOLERANCE_SECONDS)
    Stripe().verify(stripe_request(PAYLOAD.encode(), header, received=now), [STRIPE_SECRET])


def test_the_stripe_connector_judges_age_by_the_receive_time():
    header = stripe.WebhookSignature.generate_signature_header(PAYLOAD, STRIPE_SECRET, timestamp=T)
    with pytest.raises(SignatureError, match="old"):
        Stripe().verify(
            stripe_request(PAYLOAD.encode(), header, received=T + TOLERANCE_SECONDS + 1),
            [STRIPE_SECRET],
        )
