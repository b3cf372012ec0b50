"""Remove card numbers and IBANs from a delivery before it is stored.

The signature was checked on the raw bytes; what the inbox keeps afterwards is the body with
free-text fields redacted, so a card number typed into a note is never written anywhere. The
body is parsed and its free-text values given a cheap test; only a body where one passes is
redacted and written anew, every other body is stored byte for byte as it came.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from hub.domain.quality import holds_pii_candidate, scrub

PII_HEADER = "X-Hub-Redacted"


def scrub_body(body: bytes) -> tuple[bytes, list[str]]:
    """(body to store, kinds redacted). Unparseable bodies are stored as they came."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body, []
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return body, []
        if not holds_pii_candidate(parsed):
            return body, []
        cleaned, kinds = scrub(parsed)
        return (json.dumps(cleaned).encode() if kinds else body), sorted(set(kinds))
    pairs = parse_qsl(text, keep_blank_values=True)
    if not holds_pii_candidate([{key: value} for key, value in pairs]):  # keys may repeat
        return body, []
    cleaned_pairs, found = [], []
    for key, value in pairs:
        cleaned, kinds = scrub({key: value})
        cleaned_pairs.append((key, str(cleaned[key])))  # type: ignore[index]
        found += kinds
    if not found:
        return body, []
    return urlencode(cleaned_pairs).encode(), sorted(set(found))
