"""Outbound HTTP to vendors: timeouts on every call, an error table, retries that listen.

Each connector gives its error table (status -> what to do) on top of the defaults below;
retries use tenacity with jittered exponential backoff, and a 429 waits at least as long as
the vendor asked (Retry-After, or the vendor's own rate headers through `retry_after`).
Every error message is redacted: vendors echo tokens and personal data back at us.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from hub.domain.errors import (
    AuthenticationError,
    HubError,
    RateLimitedError,
    RejectedRecordError,
    TransientError,
)
from hub.redaction import redact

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient: back off and try again
    RATE_LIMITED = "rate_limited"  # wait as long as the vendor says, then again
    AUTH = "auth"  # credentials refused: mark the connection as needing attention
    REJECT = "reject"  # this record is refused: dead-letter it, carry on with the others
    SKIP = "skip"  # nothing to do (a delete of something already gone)
    FAIL = "fail"  # a request we built wrong: stop and report


DEFAULT_TABLE: dict[int, Action] = {401: Action.AUTH, 403: Action.AUTH, 408: Action.RETRY,
                                    409: Action.RETRY, 429: Action.RATE_LIMITED}


def classify(status: int, table: Mapping[int, Action], *, write: bool) -> Action:
    if status in table:
        return table[status]
    if status < 400:
        return Action.OK
    if status >= 500:
        return Action.RETRY
    return Action.REJECT if write else Action.FAIL


class VendorRequestError(HubError):
    """A request the vendor refused for good (Action.FAIL)."""

    title = "Vendor refused the request"


class SkippedError(HubError):
    title = "Nothing to do"


def retry_after_header(response: requests.Response) -> float | None:
    """Retry-After as seconds (RFC 9110 allows seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class Authenticator:
    """Adds credentials to a request; OAuth2 authenticators may refresh once on a 401."""

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        raise NotImplementedError

    def refresh(self, session: requests.Session) -> bool:
        return False

    def secret_values(self) -> list[str]:
        """Every credential this authenticator sends, to blank out of echoed error bodies."""
        return [str(v) for k, v in vars(self).items()
                if isinstance(v, str) and v and k not in ("header", "username", "token_url",
                                                          "client_id")]


@dataclass
class BearerToken(Authenticator):
    token: str

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self.token}"


@dataclass
class HeaderKey(Authenticator):
    header: str
    value: str

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers[self.header] = self.value


@dataclass
class BasicAuth(Authenticator):
    username: str
    password: str

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        import base64

        raw = f"{self.username}:{self.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()


@dataclass
class OAuth2Refresh(Authenticator):
    """An access token renewed from a refresh token at `token_url` when the vendor says 401."""

    token_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str = ""
    on_refresh: Callable[[str, str], None] | None = None  # persist (access, refresh)

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"

    def refresh(self, session: requests.Session) -> bool:
        response = session.post(self.token_url, data={
            "grant_type": "refresh_token", "refresh_token": self.refresh_token,
            "client_id": self.client_id, "client_secret": self.client_secret,
        }, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        if response.status_code != 200:
            return False
        body = response.json()
        self.access_token = body["access_token"]
        self.refresh_token = body.get("refresh_token", self.refresh_token)
        if self.on_refresh:
            self.on_refresh(self.access_token, self.refresh_token)
        return True


@dataclass
class VendorHttp:
    base_url: str
    authenticator: Authenticator | None = None
    error_table: Mapping[int, Action] = field(default_factory=dict)
    retry_after: Callable[[requests.Response], float | None] = retry_after_header
    max_attempts: int = 5
    max_wait: float = 60.0
    throttle: Callable[[], None] | None = None  # a shared rate limiter, called before each try
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep

    def request(self, method: str, path: str, *, write: bool = False, **kwargs: Any
                ) -> requests.Response:
        """The response of a successful call, or a typed error after the table's retries."""
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(self._once, method, path, write, kwargs)

    def _wait(self, state: Any) -> float:
        backoff = wait_random_exponential(multiplier=0.5, max=self.max_wait)(state)
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None) or 0.0
        return float(max(backoff, min(asked, self.max_wait * 5)))

    def _once(self, method: str, path: str, write: bool, kwargs: dict[str, Any]
              ) -> requests.Response:
        if self.throttle:
            self.throttle()
        url = path if path.startswith("http") else self.base_url.rstrip("/") + path
        response = self._send(method, url, kwargs)
        if response.status_code == 401 and self.authenticator and \
                self.authenticator.refresh(self.session):
            response = self._send(method, url, kwargs)
        action = classify(response.status_code, {**DEFAULT_TABLE, **self.error_table},
                          write=write)
        return self._act(action, method, url, response)

    def _blank(self, text: str) -> str:
        for secret in self.authenticator.secret_values() if self.authenticator else []:
            if len(secret) >= 6:
                text = text.replace(secret, "[redacted]")
        return text

    def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        params = dict(kwargs.pop("params", None) or {})
        if self.authenticator:
            self.authenticator.apply(headers, params)
        try:
            return self.session.request(method, url, headers=headers, params=params,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{method} {redact(url)}: {type(exc).__name__}") from None
        finally:
            kwargs["headers"], kwargs["params"] = headers, params

    def _act(self, action: Action, method: str, url: str, response: requests.Response
             ) -> requests.Response:
        if action is Action.OK:
            return response
        where = self._blank(f"{method} {redact(url)} answered {response.status_code}")
        reason = self._blank(redact(response.text[:300])) if response.text else ""
        if action is Action.RETRY:
            raise TransientError(f"{where}: {reason}")
        if action is Action.RATE_LIMITED:
            wait = self.retry_after(response)
            raise RateLimitedError(f"{where} (rate limited)", retry_after=wait)
        if action is Action.AUTH:
            raise AuthenticationError(f"{where}: the vendor refused the credentials: {reason}")
        if action is Action.REJECT:
            raise RejectedRecordError(f"{where}: {reason}")
        if action is Action.SKIP:
            raise SkippedError(where)
        raise VendorRequestError(f"{where}: {reason}")
