"""Mappings an admin changes safely, end to end on SQLite and PostgreSQL: add a custom field, map
a vendor field to it, preview on the last 100 deliveries, save, activate, reapply to last week,
roll back. Once through the API, once through the CLI, each step asserted."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from hub.adapters.db.models import AuditEntry, FieldProvenance, InboxEvent
from hub.worker_process import run_worker
from tests.support import load_fixture, shopify_delivery, shopify_signature

STATES = ["enabled", "disabled", "invited"]
STATE_FIELD = {"name": "account_state", "type": "enum", "label": "Shop account state",
               "values": ["enabled", "disabled", "invited", "declined"]}
STATE_RULE = {"target": "custom.account_state", "source": "state"}
DEFAULT_VERSION = "file:shopify.customer.yaml"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def customer_delivery(number: int, state: str) -> tuple[bytes, dict[str, str]]:
    """A distinct Shopify customer (no phone, so no shared-phone flags)."""
    fixture = load_fixture("shopify", "customers_create")
    body = copy.deepcopy(fixture["body"])
    body.update(id=8000000000000 + number, email=f"person{number}@example.com", state=state,
                phone=None, addresses=[], first_name=f"Person{number}",
                updated_at=f"2026-11-02T10:{number:02d}:00-05:00")
    body["default_address"]["phone"] = None
    raw = json.dumps(body).encode()
    headers = {**fixture["headers"], "X-Shopify-Event-Id": str(uuid.uuid4()),
               "X-Shopify-Webhook-Id": str(uuid.uuid4()),
               "X-Shopify-Hmac-Sha256": shopify_signature(raw)}
    return raw, headers


def post(client, delivery) -> None:
    body, headers = delivery
    response = client.post("/webhooks/shop", data=body, headers=headers)
    assert response.status_code in (200, 202), response.json


def seed(client, runtime) -> dict[str, int]:
    """30 customers (one with a state the enum refuses), Nora created then updated; the
    first five customers arrived ten days ago."""
    for number in range(30):
        post(client, customer_delivery(number, "weird" if number == 29 else
                                       STATES[number % 3]))
    post(client, shopify_delivery("customers_create"))
    post(client, shopify_delivery("customers_update"))
    run_worker(runtime, burst=True)
    old = datetime.now(UTC) - timedelta(days=10)
    with runtime.engine.begin() as conn:
        conn.execute(update(InboxEvent.__table__).where(InboxEvent.__table__.c.id <= 5)
                     .values(received_at=old))
    return {"deliveries": 32}


def contact_by_email(client, token, email) -> dict:
    [found] = client.get("/api/v1/contacts", query_string={"email": email},
                         headers=auth(token)).json["items"]
    return client.get(f"/api/v1/contacts/{found['id']}", headers=auth(token)).json


def draft_from_default(client, token) -> dict:
    shown = client.get("/api/v1/connections/shop/mappings/default?object=customer",
                       headers=auth(token))
    assert shown.status_code == 200
    assert shown.json["label"] == DEFAULT_VERSION and shown.json["active"] is True
    document = shown.json["document"]
    document["rules"].append(dict(STATE_RULE))
    return document


def audit_actions(runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(AuditEntry.__table__.c.action)
                                 .order_by(AuditEntry.__table__.c.id)).scalars())


def provenance_versions(runtime, field: str) -> set[str]:
    with runtime.engine.connect() as conn:
        table = FieldProvenance.__table__
        return set(conn.execute(select(table.c.mapping_version).where(table.c.field == field))
                   .scalars())


def test_custom_field_mapping_preview_activate_reapply_and_rollback_through_the_api(
    client, runtime, admin_token, viewer_token
):
    seed(client, runtime)
    admin_h, viewer_h = auth(admin_token), auth(viewer_token)

    # 1. Add a custom field (admins only; names checked; listed for everyone).
    assert client.post("/api/v1/custom-fields", json=STATE_FIELD, headers=viewer_h
                       ).status_code == 403
    bad = client.post("/api/v1/custom-fields", json={**STATE_FIELD, "name": "Account State"},
                      headers=admin_h)
    assert bad.status_code == 422 and "snake_case" in bad.json["detail"]
    added = client.post("/api/v1/custom-fields", json=STATE_FIELD, headers=admin_h)
    assert added.status_code == 201
    assert added.json["name"] == "custom.account_state"
    assert client.post("/api/v1/custom-fields", json=STATE_FIELD, headers=admin_h
                       ).status_code == 409
    listed = client.get("/api/v1/custom-fields", headers=viewer_h).json["items"]
    assert [(f["name"], f["values"]) for f in listed] == \
        [("custom.account_state", STATE_FIELD["values"])]

    # 2. Map the vendor's `state` to it; validation checks paths against stored deliveries.
    draft = draft_from_default(client, admin_token)
    checked = client.post("/api/v1/connections/shop/mappings/validate",
                          json={"document": draft}, headers=viewer_h).json
    assert checked["valid"] is True and checked["errors"] == 0
    assert not [f for f in checked["findings"] if f["target"] == "custom.account_state"]
    typo = copy.deepcopy(draft)
    typo["rules"][-1]["source"] = "stat"
    warned = client.post("/api/v1/connections/shop/mappings/validate",
                         json={"document": typo}, headers=viewer_h).json
    assert warned["valid"] is True
    [warning] = [f for f in warned["findings"] if f["problem"] == "unknown_path"]
    assert warning["rule"] == len(typo["rules"]) and "'stat'" in warning["message"]

    # 3. Preview on the last 100 deliveries: per contact diff and counts; nothing written.
    preview = client.post("/api/v1/connections/shop/mappings/preview", headers=admin_h,
                          json={"object": "customer", "document": draft, "replay_last": 100})
    assert preview.status_code == 200, preview.json
    result = preview.json
    assert result["active_version"] == DEFAULT_VERSION
    assert result["counts"] == {"contacts": 31, "changed": 30, "unchanged": 0, "failing": 1,
                                "records": 32, "skipped": 0}
    by_contact = {c["contact"]: c for c in result["contacts"]}
    person0 = contact_by_email(client, admin_token, "person0@example.com")
    assert by_contact[str(person0["id"])]["changes"] == {
        "custom.account_state": {"active": None, "draft": "enabled", "current": None}}
    [failing] = [c for c in result["contacts"] if c["status"] == "failing"]
    assert "'weird' is not one of enabled, disabled, invited, declined" in failing["problems"][0]
    assert "custom" not in person0  # the preview wrote nothing
    assert client.post("/api/v1/connections/shop/mappings/preview", headers=viewer_h,
                       json={"object": "customer", "document": draft, "replay_last": 5}
                       ).status_code == 403

    # 4. Save it as version 1 (a reason is required), then read the rule-level diff.
    no_reason = client.post("/api/v1/connections/shop/mappings", headers=admin_h,
                            json={"document": draft})
    assert no_reason.status_code == 422
    saved = client.post("/api/v1/connections/shop/mappings", headers=admin_h,
                        json={"document": draft, "reason": "track the shop account state"})
    assert saved.status_code == 201, saved.json
    assert (saved.json["version"], saved.json["label"], saved.json["active"]) == \
        (1, "shop/customer/v1", False)
    assert saved.json["author"] == "token:test-admin"
    stored = client.post("/api/v1/connections/shop/mappings/preview", headers=admin_h,
                         json={"object": "customer", "version": 1, "replay_last": 100}).json
    assert stored["counts"] == result["counts"]
    diff = client.get("/api/v1/connections/shop/mappings/diff?object=customer&from=default&to=1",
                      headers=viewer_h).json
    assert [(r["target"], r["definition"]) for r in diff["added"]] == \
        [("custom.account_state", {"source": "state"})]
    assert diff["removed"] == [] and diff["changed"] == []

    # 5. Activate: new events go through v1 and provenance names it.
    activated = client.post("/api/v1/connections/shop/mappings/1/activate", headers=admin_h,
                            json={"object": "customer", "reason": "go live"})
    assert activated.status_code == 200
    assert activated.json["active"]["label"] == "shop/customer/v1"
    post(client, customer_delivery(40, "invited"))
    run_worker(runtime, burst=True)
    fresh = contact_by_email(client, admin_token, "person40@example.com")
    assert fresh["custom"] == {"account_state": "invited"}
    assert fresh["provenance"]["custom.account_state"]["mapping_version"] == "shop/customer/v1"
    assert fresh["provenance"]["email"]["mapping_version"] == "shop/customer/v1"
    assert "custom" not in contact_by_email(client, admin_token, "person6@example.com")

    # 6. Reapply to last week (through the workers): only deliveries since then, and an older
    #    delivery never overwrites a newer value.
    queued = client.post("/api/v1/connections/shop/mappings/reapply", headers=admin_h,
                         json={"since": "7d"})
    assert queued.status_code == 202 and queued.json["queued"] == 28  # 33 minus 5 old
    with runtime.engine.begin() as conn:  # no need to wait out the cache delay in a test
        conn.execute(update(InboxEvent.__table__).values(available_at=datetime.now(UTC)))
    run_worker(runtime, burst=True)
    assert contact_by_email(client, admin_token, "person6@example.com")["custom"] == \
        {"account_state": "enabled"}
    assert "custom" not in contact_by_email(client, admin_token, "person1@example.com")
    assert "custom" not in contact_by_email(client, admin_token, "person29@example.com")
    nora = contact_by_email(client, admin_token, "nora.testwell@example.com")
    assert nora["last_name"] == "Brightwater"  # the update, not the older create
    assert nora["provenance"]["last_name"]["mapping_version"] == "shop/customer/v1"

    # 7. Roll back: the shipped default is live again for new events.
    rolled = client.post("/api/v1/connections/shop/mappings/rollback", headers=admin_h,
                         json={"object": "customer", "reason": "not needed after all"})
    assert rolled.status_code == 200
    assert rolled.json["active"]["label"] == DEFAULT_VERSION
    post(client, customer_delivery(41, "enabled"))
    run_worker(runtime, burst=True)
    later = contact_by_email(client, admin_token, "person41@example.com")
    assert "custom" not in later
    assert later["provenance"]["email"]["mapping_version"] == DEFAULT_VERSION
    history = client.get("/api/v1/connections/shop/mappings/1?object=customer",
                         headers=viewer_h).json
    assert history["active"] is False
    assert [a["version"] for a in history["activations"]] == [1, None]
    listing = client.get("/api/v1/connections/shop/mappings", headers=viewer_h).json
    assert [(v["label"], v["active"]) for v in listing["items"]] == [("shop/customer/v1", False)]
    assert {"object": "customer", "direction": "inbound", "version": "default"} in \
        listing["active"]

    actions = audit_actions(runtime)
    for action in ("custom_field.created", "mapping.version_created", "mapping.activated",
                   "mapping.reapply_queued", "mapping.rolled_back"):
        assert action in actions


def test_an_invalid_draft_is_refused_with_every_problem_named(client, admin_token):
    draft = {"object": "customer", "rules": [
        {"target": "shoe_size", "source": "x"},
        {"target": "email", "source": "email", "transforms": ["shout"]},
        {"target": "commerce.order_count", "source": "orders_count",
         "transforms": [{"number": {"places": 0}}]},
        {"target": "email", "source": "contact_email"},
    ]}
    response = client.post("/api/v1/connections/shop/mappings", headers=auth(admin_token),
                           json={"document": draft, "reason": "try"})
    assert response.status_code == 422
    problems = [(f["rule"], f["problem"]) for f in response.json["findings"]
                if f["severity"] == "error"]
    assert problems == [(1, "unknown_field"), (2, "unknown_transform"), (3, "type_mismatch"),
                        (4, "duplicate_target")]
    assert "shop draft, rule 1 (shoe_size): unknown canonical field 'shoe_size'" in \
        response.json["findings"][0]["text"]
    listed = client.get("/api/v1/connections/shop/mappings", headers=auth(admin_token)).json
    assert listed["items"] == []


def test_a_preview_of_a_sample_payload_shows_the_canonical_result(client, admin_token):
    sample = load_fixture("shopify", "customers_create")["body"]
    draft = {"object": "customer", "rules": [
        {"target": "email", "source": "email", "transforms": ["email"]},
        {"target": "last_name", "source": "last_name", "transforms": ["upper"]},
    ]}
    response = client.post("/api/v1/connections/shop/mappings/preview",
                           headers=auth(admin_token),
                           json={"object": "customer", "document": draft, "sample": sample,
                                 "event_type": "customers/create"})
    assert response.status_code == 200, response.json
    [record] = response.json["records"]
    assert record["fields"] == {"email": "nora.testwell@example.com", "last_name": "TESTWELL"}
    assert record["diff"]["last_name"] == {"active": "Testwell", "draft": "TESTWELL"}
    assert record["diff"]["first_name"] == {"active": "Nora", "draft": None}
    assert response.json["counts"]["changed"] == 1


@pytest.fixture
def hub_cli(runtime, monkeypatch):
    """Runs `hub ...` against the test database (the CLI's runtime is the test's)."""
    import hub.cli_mappings
    from hub.cli import cli

    monkeypatch.setattr(hub.cli_mappings, "_runtime", lambda: runtime)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["mappings", *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_the_same_story_through_the_cli(client, runtime, admin_token, hub_cli, tmp_path):
    import yaml

    seed(client, runtime)
    # 1. Custom field.
    out = hub_cli("custom-fields", "add", "account_state", "--type", "enum", "--values",
                  "enabled,disabled,invited,declined", "--label", "Shop account state")
    assert "custom field custom.account_state (enum) added" in out
    assert "custom.account_state" in hub_cli("custom-fields", "list")
    # 2. Map it, validate the file against the connection's stored deliveries.
    document = yaml.safe_load(hub_cli("show", "default", "--connection", "shop", "--object",
                                      "customer").split("\n", 1)[1])
    document["rules"].append(dict(STATE_RULE))
    draft = tmp_path / "shop.customer.yaml"
    draft.write_text(yaml.safe_dump(document))
    assert "shop.customer.yaml: valid" in hub_cli("validate", str(draft), "--connection", "shop")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({**document, "rules": [{"target": "shoe", "source": "x"}]}))
    out = hub_cli("validate", str(broken), "--connection", "shop", code=1)
    assert "error: broken.yaml, rule 1 (shoe): unknown canonical field 'shoe'" in out
    # 3. Preview on the last 100 deliveries.
    out = hub_cli("preview", str(draft), "--connection", "shop", "--last", "100")
    assert f"draft vs {DEFAULT_VERSION} on 32 customer record(s)" in out
    assert "contacts: 31  changed: 30  unchanged: 0  failing: 1" in out
    assert "custom.account_state: None -> 'enabled'" in out
    # 4. Save, diff, activate.
    out = hub_cli("create", str(draft), "--connection", "shop", "--reason", "account state")
    assert "saved shop/customer/v1 (not live yet)" in out
    out = hub_cli("diff", "--connection", "shop", "--object", "customer", "--from", "default",
                  "--to", "1")
    assert "1 added, 0 removed, 0 changed" in out and "+ rule" in out
    out = hub_cli("activate", "1", "--connection", "shop", "--object", "customer")
    assert "shop/customer/v1 is live" in out
    assert "* shop/customer/v1" in hub_cli("list", "--connection", "shop")
    assert "shop/customer/v1: valid" in hub_cli("validate", "--connection", "shop")
    # 5. Reapply to last week, in process, twice (idempotent).
    out = hub_cli("reapply", "--connection", "shop", "--since", "7d")
    assert "reprocessed 27 deliveries" in out  # 32 minus the 5 from ten days ago
    first = contact_by_email(client, admin_token, "person6@example.com")
    assert first["custom"] == {"account_state": "enabled"}
    assert first["provenance"]["custom.account_state"]["mapping_version"] == "shop/customer/v1"
    assert "custom" not in contact_by_email(client, admin_token, "person2@example.com")
    assert contact_by_email(client, admin_token, "nora.testwell@example.com")["last_name"] == \
        "Brightwater"
    hub_cli("reapply", "--connection", "shop", "--since", "7d")
    again = contact_by_email(client, admin_token, "person6@example.com")
    assert {k: v for k, v in again.items() if k != "updated_at"} == \
        {k: v for k, v in first.items() if k != "updated_at"}
    assert provenance_versions(runtime, "custom.account_state") == {"shop/customer/v1"}
    # 6. Roll back to the shipped default, then forward again with --to.
    out = hub_cli("rollback", "--connection", "shop", "--object", "customer")
    assert f"{DEFAULT_VERSION} is live" in out
    out = hub_cli("rollback", "--connection", "shop", "--object", "customer", "--to", "1")
    assert "shop/customer/v1 is live" in out
    out = hub_cli("rollback", "--connection", "shop", "--object", "customer", "--to", "1")
    assert "was already live" in out


def test_another_process_sees_an_activation_within_its_cache_age(runtime):
    """Each process checks one cheap fingerprint at most every max_age seconds."""
    from hub.adapters.db import mapping_store
    from hub.adapters.db.mapping_store import DbMappingStore
    from hub.adapters.mapping_files import FileMappingStore
    from hub.services import mapping_admin

    now = [0.0]
    other = DbMappingStore(runtime.engine, FileMappingStore(), max_age=2.0,
                           clock=lambda: now[0])
    assert other.get_for("shop", "shopify", "customer").version == DEFAULT_VERSION
    document = FileMappingStore().document("shopify", "customer")
    document["rules"].append({"target": "job_title", "source": "note"})
    version, _ = mapping_admin.create_version(runtime.engine, runtime.mappings, "shop",
                                              document, reason="r", author="test")
    mapping_store.activate(runtime.engine, connection="shop", object_type="customer",
                           direction="inbound", number=version.number, actor="test")
    now[0] = 1.0
    assert other.get_for("shop", "shopify", "customer").version == DEFAULT_VERSION
    now[0] = 2.5
    assert other.get_for("shop", "shopify", "customer").version == "shop/customer/v1"
    assert other.get_for("pay", "stripe", "customer").version == "file:stripe.customer.yaml"
    assert other.get("shopify", "customer").version == DEFAULT_VERSION  # by connector only


def test_outbound_versions_are_per_connection_too(runtime, client, admin_token):
    from hub.adapters.mapping_files import FileMappingStore

    document = FileMappingStore().document("stripe", "customer", "outbound")
    document["rules"] = [r for r in document["rules"] if r["target"] != "phone"]
    saved = client.post("/api/v1/connections/pay/mappings", headers=auth(admin_token),
                        json={"document": document, "reason": "no phones to Stripe"})
    assert saved.status_code == 201, saved.json
    assert saved.json["label"] == "pay/customer/outbound/v1"
    assert client.post("/api/v1/connections/pay/mappings/1/activate", headers=auth(admin_token),
                       json={"object": "customer", "direction": "outbound"}).status_code == 200
    mapping = runtime.mappings.get_outbound_for("pay", "stripe", "customer")
    payload, _ = mapping.apply({"email": "a@example.com", "phone": "+14155550134", "id": 7})
    assert payload == {"email": "a@example.com", "metadata": {"hub_id": 7}}
    assert runtime.mappings.get_for("pay", "stripe", "customer").version == \
        "file:stripe.customer.yaml"  # the inbound mapping is untouched


def test_a_copy_of_a_shipped_file_diffs_as_unchanged(runtime, client, admin_token):
    """YAML's `{true: granted}` is stored as JSON ("true"): the same rule, not a change."""
    shown = client.get("/api/v1/connections/shop/mappings/default?object=order",
                       headers=auth(admin_token)).json
    saved = client.post("/api/v1/connections/shop/mappings", headers=auth(admin_token),
                        json={"document": shown["document"], "reason": "copy"})
    assert saved.status_code == 201, saved.json
    diff = client.get("/api/v1/connections/shop/mappings/diff?object=order&from=default&to=1",
                      headers=auth(admin_token)).json
    assert (diff["added"], diff["removed"], diff["changed"]) == ([], [], [])
    assert diff["unchanged"] == len(shown["document"]["rules"])
