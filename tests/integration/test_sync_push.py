"""Pushing golden records out, with the vendors' HTTP recorded by `responses`: an unsubscribe
from Mailchimp reaches ActiveCampaign and HubSpot as an unsubscribe at once; a mapping that
would subscribe someone without consent is blocked and flagged; a refused record waits with
the vendor's reason and goes through on the next run; erased contacts are never pushed; a push
coming back in the next pull is not pushed again."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
import responses
from responses import matchers
from sqlalchemy import select, update

from hub.adapters.db import mapping_store, sync_store
from hub.adapters.db.models import Contact
from hub.adapters.mapping_files import FileMappingStore
from hub.services import sync_push
from hub.services.sync_common import target
from hub.worker_process import run_worker
from tests.fakevendor.server import FakeVendorServer, seeded
from tests.integration.sync_helpers import connect, run_sync, sync_deps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mailchimp"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp.com"}
MC_KEY = "0123456789abcdef0123456789abcdef-us21"
AC = "https://example.api-us1.com/api/3"
HUBSPOT = "https://api.hubapi.com"
LENA = "lena.fixture@example.com"


@pytest.fixture
def tools(runtime):
    connect(runtime, "news", "mailchimp", list_id="5e8a1c0b7d", api_key=MC_KEY)
    connect(runtime, "ac", "activecampaign", api_url="https://example.api-us1.com",
            list_id="3", api_key="f" * 64)
    connect(runtime, "crm", "hubspot", access_token="pat-na1-11111111-2222")
    return runtime


def mailchimp(client, name: str, **changes: str) -> None:
    body = {**json.loads((FIXTURES / f"{name}.json").read_text())["body"], **changes}
    response = client.post("/webhooks/news?token=news-webhook-secret",
                           data=urlencode(body).encode(), headers=FORM)
    assert response.status_code == 202


def lena_id(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(Contact.id).where(Contact.email == LENA)).scalar_one()


def link(runtime, connection: str, contact_id: int, external_id: str) -> None:
    with runtime.engine.begin() as conn:
        sync_store.link_external(conn, connection, {contact_id: external_id},
                                 datetime.now(UTC))


def test_an_unsubscribe_from_mailchimp_reaches_activecampaign_and_hubspot_at_once(
    client, tools, admin_token
):
    runtime = tools
    mailchimp(client, "subscribe")
    run_worker(runtime, burst=True)
    link(runtime, "crm", lena_id(runtime), "901")  # HubSpot holds Lena too
    mailchimp(client, "unsubscribe", **{"data[email]": LENA, "data[merges][EMAIL]": LENA,
                                        "data[merges][LNAME]": "Fixture"})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as vendors:
        sync = vendors.post(f"{AC}/contact/sync", status=201, json={"contact": {"id": "77"}})
        status = vendors.post(f"{AC}/contactLists", status=201, json={"contactList": {}})
        upsert = vendors.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert", json={
            "status": "COMPLETE", "results": [{"id": "901", "properties": {"email": LENA}}]})
        unsubscribe = vendors.post(
            re.compile(rf"{HUBSPOT}/communication-preferences/v4/statuses/.+/unsubscribe-all"),
            match=[matchers.query_param_matcher({"channel": "EMAIL"})],
            json={"status": "COMPLETE", "results": []})
        run_worker(runtime, burst=True)  # the drain, then the withdrawal job it enqueued
    contact = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {admin_token}"}
                         ).json["items"][0]
    assert contact["consent"]["email"]["status"] == "withdrawn"
    assert json.loads(sync.calls[0].request.body)["contact"]["email"] == LENA
    assert json.loads(status.calls[0].request.body)["contactList"] == {
        "list": "3", "contact": "77", "status": 2}  # 2: unsubscribed from the consent list
    assert unsubscribe.calls[0].request.url.split("/statuses/")[1].startswith(
        "lena.fixture@example.com/unsubscribe-all")
    assert upsert.call_count == 1
    # Mailchimp itself is not called: the unsubscribe came from it (no echo back)
    with runtime.engine.connect() as conn:
        states = sync_store.push_states(conn, "ac", [lena_id(runtime)])
    assert states[lena_id(runtime)].consent == "withdrawn"


def test_a_mapping_that_would_subscribe_without_consent_is_blocked_and_flagged(
    client, tools, admin_token
):
    runtime = tools
    document = FileMappingStore().document("activecampaign", "contact", "outbound")
    document["rules"] = [r for r in document["rules"] if r["target"] != "contactList.status"]
    document["rules"].append({"target": "contactList.status", "value": 1})  # always subscribe
    version = mapping_store.create_version(runtime.engine, connection="ac", document=document,
                                           reason="a careless edit", author="test")
    mapping_store.activate(runtime.engine, connection="ac", object_type="contact",
                           direction="outbound", number=version.number, actor="test")
    runtime.mappings.refresh()
    mailchimp(client, "subscribe")
    mailchimp(client, "unsubscribe", **{"data[email]": LENA, "data[merges][EMAIL]": LENA})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as vendors:
        vendors.post(re.compile(f"{HUBSPOT}/.*"), json={"results": []})
        run_worker(runtime, burst=True)
        assert not [c for c in vendors.calls if "api-us1" in c.request.url]
    deps, _jobs = sync_deps(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as vendors:
        counts = sync_push.push_contacts(deps, target(runtime.engine, "ac"),
                                         [lena_id(runtime)], run_id=None, only_linked=False)
        assert [c.request.url for c in vendors.calls] == []  # never sent, not even once
    assert counts["push_blocked"] == 0  # blocked once, remembered: not flagged twice
    flags = client.get("/api/v1/flags?kind=compliance",
                       headers={"Authorization": f"Bearer {admin_token}"}).json["items"]
    assert [f["summary"] for f in flags] == ["push to ac blocked by the rule 'withdrawal wins'"]


def test_a_refused_record_waits_with_the_vendors_reason_and_goes_through_next_run(
    client, tools
):
    runtime = tools
    connect(runtime, "shopper", "stripe", api_key="rk_test_123456789")
    mailchimp(client, "subscribe")
    run_worker(runtime, burst=True)
    contact_id = lena_id(runtime)
    link(runtime, "shopper", contact_id, "cus_lena")
    deps, _jobs = sync_deps(runtime)
    stripe = target(runtime.engine, "shopper")
    with responses.RequestsMock() as vendors:
        vendors.post("https://api.stripe.com/v1/customers/cus_lena", status=400, json={
            "error": {"type": "invalid_request_error", "message": "Invalid phone number"}})
        counts = sync_push.push_contacts(deps, stripe, [contact_id], run_id=None,
                                         only_linked=True)
    assert counts["push_rejected"] == 1
    [dead] = sync_store.dead_letter_list(runtime.engine, "shopper")
    assert dead["status"] == "rejected" and "Invalid phone number" in dead["reason"]
    with runtime.engine.connect() as conn:
        assert sync_store.dead_letters(conn, "shopper", 10) == [contact_id]
    with responses.RequestsMock() as vendors:
        vendors.post("https://api.stripe.com/v1/customers/cus_lena",
                     json={"id": "cus_lena", "object": "customer"})
        counts = sync_push.push_contacts(deps, stripe, [contact_id], run_id=None,
                                         only_linked=True)
    assert counts["pushed"] == 1 and sync_store.dead_letter_list(runtime.engine, "shopper") == []


def test_an_erased_contact_is_never_pushed(client, tools):
    runtime = tools
    mailchimp(client, "subscribe")
    run_worker(runtime, burst=True)
    contact_id = lena_id(runtime)
    link(runtime, "crm", contact_id, "901")
    with runtime.engine.begin() as conn:
        conn.execute(update(Contact).where(Contact.id == contact_id).values(
            erased_at=datetime.now(UTC)))
    deps, _jobs = sync_deps(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as vendors:
        counts = sync_push.push_contacts(deps, target(runtime.engine, "crm"), [contact_id],
                                         run_id=None, only_linked=True)
        assert len(vendors.calls) == 0
    assert sum(counts.values()) == 0


def test_a_push_that_comes_back_in_the_next_pull_is_not_pushed_again(runtime):
    with FakeVendorServer(seeded(stripe=60, hubspot=40, overlap=0.5)) as fake:
        connect(runtime, "stripe", "stripe", api_key=fake.state.keys["stripe"],
                api_base_url=fake.base("stripe"))
        connect(runtime, "crm", "hubspot", access_token=fake.state.keys["hubspot"],
                api_base_url=fake.base("hubspot"))
        deps, jobs = sync_deps(runtime)
        run_sync(deps, jobs, "stripe")
        first = run_sync(deps, jobs, "crm")["crm"]
        assert sync_store.run_detail(runtime.engine, first)["push"]["pushed"] == 30  # overlap
        again = [run_sync(deps, jobs, name) for name in ("stripe", "crm", "stripe", "crm")]
        writes = len(fake.state.writes("hubspot")) + len(fake.state.writes("stripe"))
    for started in again:
        run = sync_store.run_detail(runtime.engine, next(iter(started.values())))
        assert (run["pull"]["healed"], run["push"]["pushed"]) == (0, 0), run
    assert writes == 1  # the one batch upsert of the first run; nothing bounced back
