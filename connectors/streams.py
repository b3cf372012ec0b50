"""Pulling: a stream is data (path, where records sit, primary key, replication key, paginator).

The read loop is the same for every vendor. Paginators know how to ask for the next page and,
for the contract suite, how a vendor's page looks, so every connector's streams are tested for
reaching the end and for refusing a page token they have already seen (a loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from connectors.http import VendorHttp
from hub.domain.errors import ConfigurationError
from hub.domain.paths import parse_path, resolve


class PaginationLoopError(ConfigurationError):
    title = "Pagination loop"


@dataclass
class Page:
    records: list[dict[str, Any]]
    response: requests.Response


class Paginator:
    """Turns one page's response into the request parameters of the next (None: the end)."""

    def first(self) -> dict[str, Any]:
        return {}

    def next(self, page: Page) -> dict[str, Any] | None:
        raise NotImplementedError

    def token(self, params: dict[str, Any]) -> str:
        """What identifies a page request, to spot a vendor sending us round in a loop."""
        return repr(sorted(params.items()))

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        """A vendor-shaped page (body, headers) for page `page` of `pages`: contract tests."""
        raise NotImplementedError


def place(value: Any, records_path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put `value` at a dotted path inside `body` (a new dict if none), merging with what the
    path's parents already hold: a cursor and its has-more flag often share one parent."""
    body = {} if body is None else body
    node = body
    keys = records_path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return body


@dataclass
class CursorPaginator(Paginator):
    """The response names the next page's cursor (HubSpot paging.next.after, Calendly
    pagination.next_page_token, Eventbrite pagination.continuation)."""

    cursor_path: str
    param: str
    has_more_path: str | None = None

    def next(self, page: Page) -> dict[str, Any] | None:
        body = page.response.json()
        if self.has_more_path and not resolve(body, parse_path(self.has_more_path)):
            return None
        cursor = resolve(body, parse_path(self.cursor_path))
        return {self.param: cursor} if cursor else None

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        more = page < pages - 1
        if more:
            place(f"cursor-{page + 1}", self.cursor_path, body)
        if self.has_more_path:
            place(more, self.has_more_path, body)
        return body, {}


@dataclass
class StartingAfterPaginator(Paginator):
    """Stripe-style: `has_more`, then the next page starts after the last record's id."""

    param: str = "starting_after"
    has_more_path: str = "has_more"
    id_key: str = "id"

    def next(self, page: Page) -> dict[str, Any] | None:
        if not resolve(page.response.json(), parse_path(self.has_more_path)) or not page.records:
            return None
        return {self.param: page.records[-1][self.id_key]}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        body[self.has_more_path] = page < pages - 1
        return body, {}


@dataclass
class OffsetPaginator(Paginator):
    """limit/offset (ActiveCampaign, Mailchimp count/offset, Frappe limit_start); a short page
    is the last one."""

    limit_param: str
    offset_param: str
    page_size: int

    def first(self) -> dict[str, Any]:
        return {self.limit_param: self.page_size, self.offset_param: 0}

    def next(self, page: Page) -> dict[str, Any] | None:
        if len(page.records) < self.page_size:
            return None
        offset = int(parse_qs(urlsplit(page.response.url).query).get(self.offset_param,
                                                                       ["0"])[0])
        return {self.limit_param: self.page_size, self.offset_param: offset + self.page_size}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        return place(records, records_path), {}


@dataclass
class PageNumberPaginator(Paginator):
    """page=1,2,... until the vendor says there is no more (Zoho page_context.has_more_page)."""

    page_param: str = "page"
    size_param: str | None = None
    page_size: int = 200
    has_more_path: str | None = None

    def first(self) -> dict[str, Any]:
        params: dict[str, Any] = {self.page_param: 1}
        if self.size_param:
            params[self.size_param] = self.page_size
        return params

    def next(self, page: Page) -> dict[str, Any] | None:
        body = page.response.json()
        more = resolve(body, parse_path(self.has_more_path)) if self.has_more_path else \
            len(page.records) >= self.page_size
        if not more:
            return None
        current = int(parse_qs(urlsplit(page.response.url).query).get(self.page_param,
                                                                        ["1"])[0])
        return {**self.first(), self.page_param: current + 1}

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        if self.has_more_path:
            place(page < pages - 1, self.has_more_path, body)
        return body, {}


@dataclass
class NextUrlPaginator(Paginator):
    """The response carries the next page's URL (Salesforce nextRecordsUrl, Shopify's Link
    header rel="next" when `header` is true)."""

    next_path: str = "next"
    header: bool = False

    def next(self, page: Page) -> dict[str, Any] | None:
        if self.header:
            url = page.response.links.get("next", {}).get("url")
        else:
            url = resolve(page.response.json(), parse_path(self.next_path))
        return {"__url__": url} if url else None

    def fake_page(self, records: list[dict[str, Any]], records_path: str, page: int,
                  pages: int) -> tuple[dict[str, Any], dict[str, str]]:
        body = place(records, records_path)
        url = f"https://fake.invalid/next?page={page + 1}"
        if page < pages - 1:
            if self.header:
                return body, {"Link": f'<{url}>; rel="next"'}
            place(url, self.next_path, body)
        return body, {}


@dataclass
class Stream:
    """A pullable collection of one object type."""

    name: str
    object_type: str  # the mapping object: mappings/<connector>.<object_type>.yaml
    path: str
    records_path: str
    primary_key: str
    paginator: Paginator
    replication_key: str | None = None  # a field that only grows: the bookmark for increments
    since: Callable[[str], dict[str, Any]] | None = None  # bookmark -> request params
    params: dict[str, Any] = field(default_factory=dict)
    method: str = "GET"

    def read(self, http: VendorHttp, bookmark: str | None = None) -> Iterator[Page]:
        """Every page to the end, in order; raises PaginationLoopError on a repeated token."""
        base = dict(self.params)
        if bookmark and self.since:
            base.update(self.since(bookmark))
        params: dict[str, Any] | None = {**base, **self.paginator.first()}
        seen: set[str] = set()
        while params is not None:
            token = self.paginator.token(params)
            if token in seen:
                raise PaginationLoopError(f"{self.name}: the vendor sent the same page again "
                                          f"({token[:80]}); stopping instead of looping")
            seen.add(token)
            response = self._get(http, params)
            records = resolve(response.json(), parse_path(self.records_path)) or []
            page = Page(list(records), response)
            yield page
            following = self.paginator.next(page)
            params = None if following is None else (
                following if "__url__" in following else {**base, **following})

    def _get(self, http: VendorHttp, params: dict[str, Any]) -> requests.Response:
        if "__url__" in params:
            return http.request(self.method, params["__url__"])
        if self.method == "GET":
            return http.request("GET", self.path, params=params)
        return http.request(self.method, self.path, json=params)
