"""The standard contract every registered connector passes, for free.

Settings specs validate their own examples; every event type has an inbound mapping that
compiles; every stream has a primary key and a records path, reads its pages to the end and
refuses a page it has already seen; the error table behaves (401 -> needs attention, 429 and
5xx retried, a refused write rejected); credentials never leak into errors or logs; a
canonical contact survives the trip out through a sink's mapping and back in.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import pytest
import responses

from connectors.base import KINDS, ConnectionContext, Connector
from connectors.registry import CONNECTORS
from connectors.streams import PaginationLoopError, Stream
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError

CONNECTOR_CLASSES = sorted(CONNECTORS.values(), key=lambda c: c.key)
MAPPINGS = FileMappingStore()
SAMPLE_CONTACT = {
    "id": 42, "email": "ana.lima@example.com", "emails": ["ana.lima@example.com"],
    "phone": "+14155550134", "phones": ["+14155550134"], "first_name": "Ana",
    "last_name": "Lima", "full_name": "Ana Lima", "company": "Lima Studio",
    "job_title": "Owner",
    "address": {"line1": "1 Example Street", "city": "San Francisco", "region": "CA",
                "postal_code": "94105", "country": "US"},
    "consent": {"email": {"status": "granted", "lawful_basis": "consent"},
                "sms": {"status": "unknown"}, "phone": {"status": "unknown"}},
    "external_ids": [], "tags": ["vip"],
}
ROUND_TRIP_FIELDS = ("email", "first_name", "last_name")


def ids(cls: type[Connector]) -> str:
    return cls.key


def context(cls: type[Connector]) -> ConnectionContext:
    settings = {s.name: s.example for s in cls.settings if not s.secret and s.example}
    credentials = {s.name: s.example or "secret-value" for s in cls.settings if s.secret}
    return ConnectionContext("contract", settings, credentials)


def streams_of() -> list[Any]:
    found = []
    for cls in CONNECTOR_CLASSES:
        for stream in cls().streams(context(cls)):
            found.append(pytest.param(cls, stream, id=f"{cls.key}.{stream.name}"))
    return found or [pytest.param(None, None, marks=pytest.mark.skip("no streams yet"))]


def sinks_of() -> list[Any]:
    found = []
    for cls in CONNECTOR_CLASSES:
        for object_type in cls().sinks(context(cls)):
            found.append(pytest.param(cls, object_type, id=f"{cls.key}.{object_type}"))
    return found or [pytest.param(None, None, marks=pytest.mark.skip("no sinks yet"))]


@pytest.mark.parametrize("cls", CONNECTOR_CLASSES, ids=ids)
def test_describes_itself(cls: type[Connector]) -> None:
    assert cls.kind in KINDS
    assert cls.title and cls.docs_url.startswith("https://")
    doc = sys.modules[cls.__module__].__doc__ or ""
    assert "https://" in doc, "the module docstring must cite the vendor documentation"
    assert all(s.description and s.example for s in cls.settings), \
        "every setting needs a description and an example"


@pytest.mark.parametrize("cls", CONNECTOR_CLASSES, ids=ids)
def test_settings_spec_accepts_its_examples_and_refuses_unknown_keys(cls: type[Connector]
                                                                     ) -> None:
    examples = {s.name: s.example for s in cls.settings}
    settings, credentials = cls.split_settings(examples)
    assert set(credentials) == {s.name for s in cls.settings if s.secret}
    assert not set(settings) & set(credentials)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        cls.split_settings({**examples, "no_such_setting": "x"})


@pytest.mark.parametrize("cls", CONNECTOR_CLASSES, ids=ids)
def test_every_event_type_has_an_inbound_mapping_that_compiles(cls: type[Connector]) -> None:
    for object_type in set(cls.events.values()):
        mapping = MAPPINGS.get(cls.key, object_type)
        assert mapping.rules


def _register_pages(rsps: responses.RequestsMock, http: Any, stream: Stream, pages: int,
                    size: int = 3) -> int:
    from connectors.streams import OffsetPaginator

    url = re.compile(re.escape(http.base_url.rstrip("/") + stream.path.split("?")[0]) + r".*")
    next_urls = re.compile(r"https://fake\.invalid/next.*")
    if isinstance(stream.paginator, OffsetPaginator):
        size = stream.paginator.page_size  # only a short page tells these vendors' lists end
    total = 0
    for page in range(pages):
        records = [{stream.primary_key: f"r{page}-{i}",
                    **({stream.replication_key: f"2026-11-0{1 + page}T00:00:00Z"}
                       if stream.replication_key else {})} for i in range(size)]
        if page == pages - 1:
            records = records[:1]  # a short last page ends offset paginators
        total += len(records)
        body, headers = stream.paginator.fake_page(records, stream.records_path, page, pages)
        target = next_urls if page > 0 and _uses_next_url(stream) else url
        rsps.add(stream.method, target, json=body, headers=headers)
    return total


def _uses_next_url(stream: Stream) -> bool:
    from connectors.streams import NextUrlPaginator

    return isinstance(stream.paginator, NextUrlPaginator)


@pytest.mark.parametrize(("cls", "stream"), streams_of())
def test_stream_declares_its_shape(cls: type[Connector], stream: Stream) -> None:
    assert stream.primary_key and stream.records_path and stream.path
    MAPPINGS.get(cls.key, stream.object_type)


@pytest.mark.parametrize(("cls", "stream"), streams_of())
def test_stream_reads_every_page_to_the_end(cls: type[Connector], stream: Stream) -> None:
    http = cls().client(context(cls))
    http.sleep = lambda _s: None
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        expected = _register_pages(rsps, http, stream, pages=3)
        records = [r for page in stream.read(http) for r in page.records]
    assert len(records) == expected


@pytest.mark.parametrize(("cls", "stream"), streams_of())
def test_stream_refuses_a_page_it_has_already_seen(cls: type[Connector], stream: Stream
                                                   ) -> None:
    from connectors.streams import OffsetPaginator, PageNumberPaginator

    if isinstance(stream.paginator, OffsetPaginator | PageNumberPaginator):
        pytest.skip("offsets and page numbers only grow; the vendor cannot send one twice")
    http = cls().client(context(cls))
    body, headers = stream.paginator.fake_page(
        [{stream.primary_key: "same"}] * 3, stream.records_path, 0, 3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(stream.method, re.compile(r"https://.*"), json=body, headers=headers)
        with pytest.raises(PaginationLoopError):
            for _ in stream.read(http):
                pass


@pytest.mark.parametrize(("cls", "stream"), streams_of())
def test_error_table_auth_rate_limit_and_server_errors(
    cls: type[Connector], stream: Stream, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context(cls)
    http = cls().client(ctx)
    waits: list[float] = []
    http.sleep = waits.append
    body, headers = stream.paginator.fake_page([{stream.primary_key: "1"}], stream.records_path,
                                               0, 1)
    secrets = [v for v in ctx.credentials.values() if v]
    echo = " ".join(secrets)
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        anywhere = re.compile(r"https://.*")
        rsps.add(stream.method, anywhere, status=429, headers={"Retry-After": "7"},
                 body=f"slow down {echo}")
        rsps.add(stream.method, anywhere, status=503, body=f"oops {echo}")
        rsps.add(stream.method, anywhere, json=body, headers=headers)
        pages = list(stream.read(http))
    assert len(pages) == 1
    assert waits[0] >= 7, "a 429 must wait at least as long as Retry-After says"
    with responses.RequestsMock() as rsps:
        rsps.add(stream.method, re.compile(r"https://.*"), status=401,
                 body=f"bad token {echo}")
        with pytest.raises(AuthenticationError) as refused:
            list(stream.read(cls().client(ctx)))
    for secret in secrets:
        assert secret not in str(refused.value)
        assert secret not in caplog.text


@pytest.mark.parametrize(("cls", "object_type"), sinks_of())
def test_a_contact_round_trips_through_the_sink_mapping(cls: type[Connector],
                                                       object_type: str) -> None:
    outbound = MAPPINGS.get_outbound(cls.key, object_type)
    payload, problems = outbound.apply(SAMPLE_CONTACT)
    assert problems == []
    inbound = MAPPINGS.get(cls.key, object_type)
    fields, _ = inbound.apply({**payload, "_meta": {"default_region": "US"}})
    for name in ROUND_TRIP_FIELDS:
        assert fields.get(name) == SAMPLE_CONTACT[name], name


@pytest.mark.parametrize(("cls", "object_type"), sinks_of())
def test_a_refused_record_in_a_batch_is_rejected_alone(cls: type[Connector],
                                                      object_type: str) -> None:
    from connectors.sinks import OutboundRecord, Outcome

    sink = cls().sinks(context(cls))[object_type]
    http = cls().client(context(cls))
    http.sleep = lambda _s: None
    records = [OutboundRecord(i, f"ext-{i}", {"email": f"p{i}@example.com"}) for i in (1, 2)]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, re.compile(r"https://.*"), status=400,
                 json={"error": {"message": "invalid email"}})
        rsps.add(responses.PUT, re.compile(r"https://.*"), status=400,
                 json={"error": {"message": "invalid email"}})
        rsps.add(responses.PATCH, re.compile(r"https://.*"), status=400,
                 json={"error": {"message": "invalid email"}})
        results = sink.push(http, records)
    assert [r.outcome for r in results] == [Outcome.REJECTED, Outcome.REJECTED]
    assert all(r.reason for r in results)


def test_the_registry_rejects_an_unknown_connector() -> None:
    from connectors.registry import get_connector

    with pytest.raises(ConfigurationError, match="unknown connector"):
        get_connector("fax-machine")


