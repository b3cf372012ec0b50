"""The nightly pull on real SQL and Redis against the fake vendors on loopback: records go
through the webhook path, bookmarks move with the records, the inclusive cursor, --full,
HubSpot's 10,000-result cap, resuming a run whose worker died, the healing count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from hub.adapters.db import sync_store
from hub.adapters.db.models import AuditEntry, Contact, ContactIdentity, FieldProvenance
from hub.services import sync_run
from hub.services.sync_common import holder_of
from tests.fakevendor.server import FakeVendorServer, seeded
from tests.integration.sync_helpers import connect, run_sync, sync_deps


@pytest.fixture
def vendors() -> Iterator[FakeVendorServer]:
    with FakeVendorServer(seeded(stripe=120, hubspot=80, overlap=0.5)) as server:
        yield server


def stripe(runtime, vendors, name: str = "stripe", **extra: str) -> str:
    connect(runtime, name, "stripe", api_key=vendors.state.keys["stripe"],
            api_base_url=vendors.base("stripe"), default_region="US", **extra)
    return name


def hubspot(runtime, vendors, name: str = "crm") -> str:
    connect(runtime, name, "hubspot", access_token=vendors.state.keys["hubspot"],
            api_base_url=vendors.base("hubspot"))
    return name


def run_of(runtime, run_id: int) -> dict:
    found = sync_store.run_detail(runtime.engine, run_id)
    assert found is not None
    return found


def count(runtime, model) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_first_pull_stores_every_record_through_the_webhook_path(runtime, vendors):
    deps, jobs = sync_deps(runtime, chunk_records=50)
    stripe(runtime, vendors)
    started = run_sync(deps, jobs, "stripe")
    run = run_of(runtime, started["stripe"])
    assert run["status"] == "succeeded"
    assert run["pull"] == {"records_read": 120, "records_done": 120, "created": 120,
                           "updated": 0, "unchanged": 0, "rejected": 0, "healed": 120}
    assert run["streams"][0]["pages"] == 2 and run["streams"][0]["chunks"] == 2  # 100 a page
    assert run["summary"] == "healed 120 contacts that webhooks missed"
    assert count(runtime, Contact) == 120
    with runtime.engine.connect() as conn:
        events = set(conn.execute(select(FieldProvenance.event_id)).scalars())
        audited = conn.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "contact.created")).scalar_one()
    assert events == {f"sync:{started['stripe']}"}  # provenance names the run
    assert audited == 120  # the webhook path's audit lines, written by the same function
    assert sync_store.bookmarks(runtime.engine, "stripe")["customers"]["value"] == \
        str(vendors.state.stripe.base + 119)


def test_records_sharing_the_bookmark_value_are_read_once_and_never_missed(runtime, vendors):
    deps, jobs = sync_deps(runtime)
    stripe(runtime, vendors)
    run_sync(deps, jobs, "stripe")
    last = vendors.state.stripe.base + 119  # the bookmark: the newest customer's second
    vendors.state.stripe.put({"id": "cus_samesecond", "object": "customer", "created": last,
                              "email": "same.second@example.com", "name": "Same Second"})
    vendors.state.stripe.put({"id": "cus_later", "object": "customer", "created": last + 5,
                              "email": "later@example.com", "name": "Later One"})
    started = run_sync(deps, jobs, "stripe")
    run = run_of(runtime, started["stripe"])
    assert run["pull"]["records_read"] == 3  # >= the bookmark: the two new, and the last one
    assert (run["pull"]["created"], run["pull"]["unchanged"]) == (2, 1)
    assert count(runtime, Contact) == 122


def test_full_reads_everything_again_and_heals_nothing_twice(runtime, vendors):
    deps, jobs = sync_deps(runtime)
    stripe(runtime, vendors)
    run_sync(deps, jobs, "stripe")
    started = run_sync(deps, jobs, "stripe", full=True)
    run = run_of(runtime, started["stripe"])
    assert run["full"] and run["pull"]["records_read"] == 120
    assert run["pull"]["healed"] == 0 and run["pull"]["unchanged"] == 120
    assert count(runtime, Contact) == 120


def test_a_pull_heals_only_what_the_hub_did_not_know(runtime, vendors):
    deps, jobs = sync_deps(runtime)
    stripe(runtime, vendors)
    hubspot(runtime, vendors)
    run_sync(deps, jobs, "stripe")
    started = run_sync(deps, jobs, "crm")
    run = run_of(runtime, started["crm"])
    # persons 60..139: 60..119 are Stripe customers the hub knows (linked, not changed), 80
    # contacts in all; the 20 new people are created, the 60 known ones gain a HubSpot id
    assert run["pull"]["created"] == 20 and run["pull"]["updated"] == 60
    assert count(runtime, Contact) == 140
    with runtime.engine.connect() as conn:
        linked = conn.execute(select(func.count()).select_from(ContactIdentity).where(
            ContactIdentity.scope == "crm")).scalar_one()
    assert linked == 80


def test_hubspot_past_its_search_cap_continues_in_a_new_pass(runtime, monkeypatch):
    import connectors.hubspot
    import tests.fakevendor.app

    monkeypatch.setattr(connectors.hubspot, "SEARCH_CAP", 100)  # 10,000 in real life
    monkeypatch.setattr(tests.fakevendor.app, "SEARCH_CAP", 100)
    with FakeVendorServer(seeded(hubspot=250)) as vendors:
        deps, jobs = sync_deps(runtime)
        hubspot(runtime, vendors)
        started = run_sync(deps, jobs, "crm")
    run = run_of(runtime, started["crm"])
    assert run["status"] == "succeeded"
    assert run["streams"][0]["passes"] == 3  # 100, then from the bookmark 100, then 52
    assert count(runtime, Contact) == 250  # every contact, each once
    assert run["pull"]["created"] == 250 and run["pull"]["unchanged"] == 2  # the boundaries


def test_a_run_whose_worker_died_is_resumed_from_its_last_committed_chunk(runtime):
    with FakeVendorServer(seeded(stripe=350)) as vendors:
        deps, jobs = sync_deps(runtime, job_seconds=0.001, chunk_records=100)  # page = chunk
        stripe(runtime, vendors)
        run_id = sync_run.start(deps, "stripe")["stripe"]
        jobs.step(deps)  # the reader commits its first chunk (a page) and hands over
        assert [q[0] for q in jobs.queue] == ["chunk", "read"]
        jobs.step(deps)  # that chunk's records are committed
        jobs.queue.clear()  # the worker dies: the reader's next job is lost with it
        lock = deps.lock_for("stripe")
        assert sync_run.watch(deps) == []  # its lock is still held: nobody resumes yet
        lock.release(holder_of(run_id))  # ... until it lapses
        assert sync_run.watch(deps) == [run_id]
        jobs.drain(deps)
        run = run_of(runtime, run_id)
        assert run["status"] == "succeeded"
        assert run["pull"]["records_read"] == 350  # no page read twice into a chunk
        assert run["pull"]["records_done"] == 350 and run["pull"]["created"] == 350
        assert count(runtime, Contact) == 350
        reads = [c for c in vendors.state.calls if c.vendor == "stripe"]
        assert len(reads) == 4  # each page asked for once


def test_a_chunk_whose_records_were_lost_is_read_again_from_its_saved_request(runtime,
                                                                               vendors):
    deps, jobs = sync_deps(runtime, chunk_records=40, backlog_chunks=100)
    stripe(runtime, vendors)
    run_id = sync_run.start(deps, "stripe")["stripe"]
    jobs.step(deps)
    runtime.redis.delete(*runtime.redis.keys("hub:sync:chunk:*"))  # Redis lost the stash
    jobs.drain(deps)
    assert run_of(runtime, run_id)["pull"]["created"] == 120
    assert count(runtime, Contact) == 120


def test_only_one_run_per_connection_at_a_time(runtime, vendors):
    deps, jobs = sync_deps(runtime)
    stripe(runtime, vendors)
    first = sync_run.start(deps, "stripe")["stripe"]
    assert sync_run.start(deps, "stripe") == {"stripe": None}
    jobs.drain(deps)
    assert run_of(runtime, first)["status"] == "succeeded"
    assert sync_run.start(deps, "stripe")["stripe"] is not None  # the lock was released
