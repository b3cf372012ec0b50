"""One exception tree, split by what the caller should do about it.

- ConfigurationError: stop and tell the admin (bad mapping, unknown connector, missing secret).
- TransientError: retry with backoff (a database or Redis hiccup, a vendor 5xx or 429).
- RejectedRecordError: this record cannot be processed; dead-letter it and carry on.
- WebhookError and subclasses: the edge of the system; each carries its HTTP status.
- NotFoundError: the thing asked for does not exist.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    title = "Hub error"

    def __init__(self, detail: str, *, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


class ConfigurationError(HubError):
    title = "Configuration error"


class TransientError(HubError):
    title = "Temporary failure"


class RateLimitedError(TransientError):
    """The vendor asked us to slow down; retry_after is how long it asked for (seconds)."""

    title = "Rate limited"

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AuthenticationError(ConfigurationError):
    """The vendor refused our credentials: the connection needs an admin's attention."""

    title = "Connection needs attention"


class RejectedRecordError(HubError):
    title = "Record rejected"


class NotFoundError(HubError):
    title = "Not Found"


class ConflictError(HubError):
    title = "Conflict"


class WebhookError(HubError):
    """A delivery refused at the edge; nothing of it was accepted."""

    status = 400
    title = "Bad delivery"


class SignatureError(WebhookError):
    status = 401
    title = "Signature verification failed"


class PayloadError(WebhookError):
    status = 400
    title = "Malformed payload"


class PayloadTooLargeError(WebhookError):
    status = 413
    title = "Payload too large"
