"""Webhook signature schemes shared by connectors; every comparison is constant-time.

Each helper accepts several secrets, because vendors let a rotated secret overlap with the
new one for a while (Stripe sends one v1 per active secret; Shopify switches within an hour).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable

from hub.domain.errors import SignatureError


def hmac_sha256(secret: str | bytes, message: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).digest()


def _require(header: str | None, name: str) -> str:
    if not header:
        raise SignatureError(f"the {name} header is missing")
    return header.strip()


def verify_base64_hmac(
    message: bytes, header: str | None, secrets: Iterable[str], header_name: str
) -> None:
    """base64(HMAC-SHA256(secret, message)) == header (Shopify, WooCommerce, QuickBooks...)."""
    given = _require(header, header_name).encode()
    for secret in secrets:
        expected = base64.b64encode(hmac_sha256(secret, message))
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError(f"the {header_name} header does not match the body")


def parse_timestamped_header(header: str, header_name: str) -> tuple[int, list[str]]:
    """`t=1700000000,v1=abc,v1=def` -> (1700000000, ["abc", "def"]); v0 and others ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"the {header_name} timestamp is not a number") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError(f"the {header_name} header has no t= timestamp or no v1 signature")
    return timestamp, signatures


def verify_timestamped_hex_hmac(
    body: bytes,
    header: str | None,
    secrets: Iterable[str],
    header_name: str,
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    """hex(HMAC-SHA256(secret, f"{t}." + body)) in one of the v1 values (Stripe, Calendly).

    The signature is checked first, so a forged header learns nothing from the time check;
    then a timestamp older than the tolerance is refused (replay protection).
    """
    timestamp, given = parse_timestamped_header(_require(header, header_name), header_name)
    message = str(timestamp).encode() + b"." + body
    expected = [hmac_sha256(s, message).hex().encode() for s in secrets]
    matched = False
    for candidate in given:
        for digest in expected:
            matched |= hmac.compare_digest(digest, candidate.encode())
    if not matched:
        raise SignatureError(f"no v1 signature in {header_name} matches the body")
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise SignatureError(
            f"the {header_name} timestamp is more than {tolerance_seconds} s old (replayed?)"
        )


def verify_standard_webhook(
    body: bytes,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    keys: Iterable[bytes],
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Standard Webhooks (https://www.standardwebhooks.com, spec v1): `webhook-signature` holds
    space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` entries (one per
    active key during a rotation); the timestamp must be within the tolerance both ways.

    `keys` are the HMAC keys as bytes: the base64-decoded part of a `whsec_...` secret for
    Standard Webhooks senders, or the raw client secret for BigCommerce (its docs base64-encode
    the secret before handing it to the standardwebhooks library, which decodes it again).
    """
    msg_id = _require(msg_id, "webhook-id")
    stamp = _require(timestamp, "webhook-timestamp")
    given = [part.partition(",")[2].encode() for part in _require(signature, "webhook-signature")
             .split() if part.startswith("v1,")]
    if not given:
        raise SignatureError("the webhook-signature header has no v1 signature")
    message = f"{msg_id}.{stamp}.".encode() + body
    matched = False
    for key in keys:
        expected = base64.b64encode(hmac_sha256(key, message))
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no v1 signature in webhook-signature matches the body")
    try:
        sent = int(stamp)
    except ValueError:
        raise SignatureError("the webhook-timestamp header is not a number") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        raise SignatureError(
            f"the webhook-timestamp is more than {tolerance_seconds} s away from now (replayed?)")
