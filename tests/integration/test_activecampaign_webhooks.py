"""ActiveCampaign end to end: form deliveries through the Flask app, a burst worker, and the
golden record the admin API shows (SQLite and PostgreSQL via `db_url`)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hub.adapters.db import admin, inbox
from hub.worker_process import run_worker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "activecampaign"
SECRET = "ac-hub-token-91e2b7"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def activecampaign(runtime):
    admin.add_connection(runtime.engine, name="ac", connector="activecampaign",
                         secrets=[SECRET], settings={"list_id": "3", "default_region": "US"},
                         actor="test")
    return "ac"


def deliver(client, name: str, token: str | None = SECRET):
    body = json.loads((FIXTURES / f"{name}.json").read_text())["body"]
    query = f"?token={token}" if token is not None else ""
    return client.post(f"/webhooks/ac{query}", data=urlencode(body).encode(), headers=FORM)


def contacts(client, token) -> list[dict]:
    response = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return response.json["items"]


def test_a_form_subscriber_becomes_a_contact_and_an_unsubscribe_withdraws_consent(
    client, runtime, admin_token, activecampaign
):
    assert deliver(client, "subscribe").status_code == 202
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert (contact["email"], contact["first_name"], contact["last_name"]) == (
        "rosa.ejemplo@example.com", "Rosa", "Ejemplo")
    assert (contact["phone"], contact["company"]) == ("+13125550148", "Ejemplo Bakery")
    assert contact["consent"]["email"] == {"status": "granted", "lawful_basis": "consent",
                                           "at": "2026-11-03T15:12:44+00:00"}
    assert contact["external_ids"] == [{"connection": "ac", "external_id": "4182"}]

    for name in ("update", "unsubscribe"):
        assert deliver(client, name).status_code == 202
    run_worker(runtime, burst=True)
    [contact] = contacts(client, admin_token)
    assert contact["last_name"] == "Ejemplo Díaz"
    assert contact["tags"] == ["newsletter", "vip"]
    assert contact["consent"]["email"]["status"] == "withdrawn"
    assert inbox.counts_by_status(runtime.engine) == {"processed": 3}


def test_a_redelivery_is_a_duplicate(client, runtime, activecampaign):
    assert deliver(client, "contact_tag_added").status_code == 202
    again = deliver(client, "contact_tag_added")
    assert (again.status_code, again.json["status"]) == (200, "duplicate")


def test_a_delivery_without_the_token_is_refused_and_not_stored(client, runtime, activecampaign):
    assert deliver(client, "subscribe", token=None).status_code == 401
    assert deliver(client, "subscribe", token="not-it").status_code == 401
    assert inbox.counts_by_status(runtime.engine) == {}


def test_an_event_the_hub_does_not_handle_is_stored_as_ignored(client, runtime, activecampaign):
    body = urlencode({"type": "deal_add", "date_time": "2026-11-06T15:20:05-06:00",
                      "initiated_from": "admin", "initiated_by": "admin", "deal[id]": "88"})
    response = client.post(f"/webhooks/ac?token={SECRET}", data=body.encode(), headers=FORM)
    assert (response.status_code, response.json["status"]) == (200, "ignored")
    assert inbox.counts_by_status(runtime.engine) == {"ignored": 1}
