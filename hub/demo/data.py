"""The bundled demo deliveries, signed the vendors' way for the demo's own connections."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

DELIVERIES = Path(__file__).with_name("deliveries.json")
SECRETS = {"shopify": "shpss_demo_signing_secret", "stripe": "whsec_demo_signing_secret"}
Delivery = tuple[str, tuple[bytes, dict[str, str]]]


def sign(connector: str, body: bytes, secret: str) -> dict[str, str]:
    """The signature header exactly as Shopify (base64 body HMAC) or Stripe (t=,v1=) sends it."""
    if connector == "shopify":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    timestamp = int(time.time())
    signed = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={timestamp},v1={signed.hexdigest()}"}


def demo_deliveries(
    connections: dict[str, str] | None = None, secrets: dict[str, str] | None = None
) -> list[Delivery]:
    """(connection name, (body, headers)) in story order.

    `connections` renames the demo's connections ("shop", "payments"); `secrets` gives the
    signing secret per connector key (default: the demo's own).
    """
    names = connections or {}
    keys = {**SECRETS, **(secrets or {})}
    result = []
    for item in json.loads(DELIVERIES.read_text(encoding="utf-8")):
        body = json.dumps(item["body"]).encode()
        headers = {**item["headers"], **sign(item["connector"], body, keys[item["connector"]])}
        result.append((names.get(item["connection"], item["connection"]), (body, headers)))
    return result
