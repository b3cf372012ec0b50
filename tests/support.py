"""Helpers for tests: fixtures as vendors send them, signed the vendor's way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
SHOPIFY_SECRET = "shpss_test_secret_for_the_hub"
STRIPE_SECRET = "whsec_test_secret_for_the_hub"


def load_fixture(tool: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / tool / f"{name}.json").read_text())
    return data


def shopify_signature(body: bytes, secret: str = SHOPIFY_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_delivery(name: str, **header_overrides: str) -> tuple[bytes, dict[str, str]]:
    """A fixture as Shopify would send it: exact bytes and a valid HMAC header."""
    fixture = load_fixture("shopify", name)
    body = json.dumps(fixture["body"]).encode()
    headers = {**fixture["headers"], "X-Shopify-Hmac-Sha256": shopify_signature(body),
               **header_overrides}
    return body, headers


def stripe_delivery(name: str, secret: str = STRIPE_SECRET, timestamp: int | None = None
                    ) -> tuple[bytes, dict[str, str]]:
    """A fixture signed by the official stripe library's own helper."""
    import stripe

    fixture = load_fixture("stripe", name)
    payload = json.dumps(fixture["body"])
    signature = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp)
    return payload.encode(), {**fixture["headers"], "Stripe-Signature": signature}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, and what it started; SIGKILL after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
