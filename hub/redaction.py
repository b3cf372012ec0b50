"""One redaction helper for every message that may hold a URL, a header or a body.

Vendor errors echo what we sent: tokens in query strings, bearer headers, emails, phone
numbers. Anything that goes to a log, an event's last_error or a flag passes through here.
"""

from __future__ import annotations

import re

_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:api[_-]?key|apikey|access_token|refresh_token|token|secret|signature|sig|"
    r"password|client_secret|key|auth)=)[^&#\s]*"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=:-]{8,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")
_LONG_SECRET = re.compile(r"\b(?:sk|rk|whsec|shpss|shpat|pat|xox[abp])_[A-Za-z0-9_]{8,}\b")
MAX_LENGTH = 500


def redact(text: object, max_length: int = MAX_LENGTH) -> str:
    """The text with secrets and personal data masked, cut to a readable length."""
    result = str(text)
    result = _SECRET_PARAMS.sub(r"\1[redacted]", result)
    result = _BEARER.sub(r"\1 [redacted]", result)
    result = _LONG_SECRET.sub("[redacted]", result)
    result = _EMAIL.sub("[email]", result)
    result = _PHONE.sub("[phone]", result)
    if len(result) > max_length:
        result = result[: max_length - 1] + "…"
    return result
