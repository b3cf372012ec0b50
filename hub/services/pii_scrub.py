"""Remove card numbers and IBANs from a delivery before it is stored.

The signature was checked on the raw bytes; what the inbox keeps afterwards is the body with
free-text fields redacted, so a card number typed into a note is never written anywhere. Only
bodies that look like they might hold one are parsed (a regex over the text first).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from hub.domain.quality import body_might_hold_pii, scrub

PII_HEADER = "X-Hub-Redacted"


def scrub_body(body: bytes) -> tuple[bytes, list[str]]:
    """(body to store, kinds redacted). Unparseable bodies are stored as they came."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body, []
    if not body_might_hold_pii(text):
        return body, []
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            cleaned, kinds = scrub(json.loads(text))
        except json.JSONDecodeError:
            return body, []
        return (json.dumps(cleaned).encode() if kinds else body), sorted(set(kinds))
    cleaned_pairs, found = [], []
    for key, value in parse_qsl(text, keep_blank_values=True):
        cleaned, kinds = scrub({key: value})
        cleaned_pairs.append((key, str(cleaned[key])))  # type: ignore[index]
        found += kinds
    if not found:
        return body, []
    return urlencode(cleaned_pairs).encode(), sorted(set(found))
