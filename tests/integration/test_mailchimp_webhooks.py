"""Mailchimp end to end: the GET validation, form deliveries through the Flask app, a burst
worker, and the golden record the admin API shows (SQLite and PostgreSQL via `db_url`)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mailchimp"
SECRET = "mc-hub-token-5f0a9c"
LIST = "5e8a1c0b7d"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp.com"}
LENA_OLD = "e00364e5eee500ded960d1044690b288"


@pytest.fixture
def mailchimp(runtime):
    admin.add_connection(runtime.engine, name="mc", connector="mailchimp", secrets=[SECRET],
                         settings={"list_id": LIST, "default_region": "US"}, actor="test")
    return "mc"


def deliver(client, name: str, token: str | None = SECRET, **changes: str):
    body = {**json.loads((FIXTURES / f"{name}.json").read_text())["body"], **changes}
    query = f"?token={token}" if token is not None else ""
    return client.post(f"/webhooks/mc{query}", data=urlencode(body).encode(), headers=FORM)


def contacts(client, token) -> list[dict]:
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json["items"]


def test_mailchimp_validates_the_url_with_a_get_that_needs_the_token(client, mailchimp):
    assert client.get(f"/webhooks/mc?token={SECRET}").status_code == 200
    assert client.get("/webhooks/mc").status_code == 401
    assert client.get("/webhooks/mc?token=guess").status_code == 401


def test_a_subscriber_becomes_a_contact_with_granted_consent_and_follows_an_email_change(
    client, runtime, admin_token, mailchimp
):
    assert deliver(client, "subscribe").status_code == 202
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert (contact["email"], contact["first_name"], contact["last_name"]) == (
        "lena.fixture@example.com", "Lena", "Fixture")
    assert contact["consent"]["email"] == {"status": "granted", "lawful_basis": "consent",
                                           "at": "2026-11-02T14:05:09+00:00"}
    assert contact["external_ids"] == [{"connection": "mc", "external_id": LENA_OLD}]

    assert deliver(client, "upemail").status_code == 202
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert contact["email"] == "lena.okoro@example.net"
    assert set(contact["emails"]) == {"lena.okoro@example.net", "lena.fixture@example.com"}
    assert inbox.counts_by_status(runtime.engine) == {"processed": 2}


def test_a_cleaned_address_withdraws_consent(client, runtime, admin_token, mailchimp):
    assert deliver(client, "cleaned").status_code == 202
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert contact["email"] == "tomas.bounce@example.org"
    assert contact["consent"]["email"]["status"] == "withdrawn"


def test_a_retried_delivery_is_a_duplicate_and_a_campaign_event_is_ignored(
    client, runtime, mailchimp
):
    first = deliver(client, "profile")
    again = deliver(client, "profile")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["status"] == "duplicate"
    ignored = deliver(client, "campaign")
    assert (ignored.status_code, ignored.json["status"]) == (200, "ignored")


def test_a_delivery_without_the_token_or_for_another_audience_is_refused_and_not_stored(
    client, runtime, mailchimp
):
    assert deliver(client, "subscribe", token=None).status_code == 401
    assert deliver(client, "subscribe", **{"data[list_id]": "0000000000"}).status_code == 401
    assert inbox.counts_by_status(runtime.engine) == {}


def test_an_unsubscribe_after_an_email_change_withdraws_the_same_contact(
    client, runtime, admin_token, mailchimp
):
    for name in ("subscribe", "upemail", "unsubscribe"):
        assert deliver(client, name).status_code == 202
        run_worker(runtime, burst=True)
    everyone = contacts(client, admin_token)
    assert len(everyone) == 1  # the id succession keeps one contact
    assert everyone[0]["consent"]["email"]["status"] == "withdrawn"
