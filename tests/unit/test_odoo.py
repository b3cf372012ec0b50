"""Odoo: the URL token, automation-rule webhooks, and res.partner over JSON-RPC (search_read,
create, write, unlink), against `responses` shaped like Odoo's /jsonrpc answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.base import ConnectionContext, Headers, WebhookRequest
from connectors.odoo import Odoo, cleaned
from connectors.sinks import OutboundRecord, Outcome
from hub.adapters.mapping_files import FileMappingStore
from hub.domain.errors import AuthenticationError, ConfigurationError, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo"
TOKEN = "odoo-url-token-for-tests"
RPC = "https://mycompany.odoo.com/jsonrpc"
SETTINGS = {"url": "https://mycompany.odoo.com", "database": "mycompany",
            "username": "api@mycompany.example", "user_id": "2", "default_region": "US"}
CONTEXT = ConnectionContext("odoo", SETTINGS, {"api_key": "odoo-api-key"})
ODOO = Odoo()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body_of(name: str) -> bytes:
    return json.dumps(load(name)["body"]).encode()


def request(body: bytes, query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example/webhooks/odoo",
                          Headers({"Content-Type": "application/json"}), body,
                          datetime(2026, 11, 21, 8, 14, 53, tzinfo=UTC),
                          {"token": TOKEN} if query is None else query)


def client():
    http = ODOO.client(CONTEXT)
    http.sleep = lambda _seconds: None
    return http


def rpc(result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "result": result}


def rpc_error(name: str, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "arguments": [message], "context": {}}}}


def calls(rsps: responses.RequestsMock) -> list[dict[str, Any]]:
    return [json.loads(c.request.body)["params"] for c in rsps.calls]


# --- the URL token and identify --------------------------------------------------------------


def test_the_url_token_is_checked_and_rotation_works():
    ODOO.verify(request(body_of("partner_person")), ["next-token", TOKEN])
    for query in ({}, {"token": "wrong"}):
        with pytest.raises(SignatureError):
            ODOO.verify(request(body_of("partner_person"), query), [TOKEN])


def test_a_webhook_is_keyed_on_model_id_and_write_date():
    delivery = ODOO.identify(request(body_of("partner_person")))
    assert (delivery.key, delivery.event_type) == ("res.partner:87:2026-11-21 08:14:52",
                                                   "res.partner")
    assert ODOO.understands("res.partner")
    assert not ODOO.understands(ODOO.identify(request(body_of("crm_lead"))).event_type)


@pytest.mark.parametrize(("drop", "message"), [
    ("write_date", "add Last Updated on"), ("_model", "no _model"), ("_id", "no integer _id")])
def test_a_webhook_without_its_keys_is_refused_with_what_to_fix(drop, message):
    body = load("partner_person")["body"]
    del body[drop]
    with pytest.raises(PayloadError, match=message):
        ODOO.identify(request(json.dumps(body).encode()))


def test_parse_turns_odoos_false_for_empty_into_null_but_keeps_real_booleans():
    delivery = ODOO.identify(request(body_of("partner_person")))
    [record] = ODOO.parse(delivery, body_of("partner_person"), CONTEXT)
    assert record.payload["phone"] is None and record.payload["street2"] is None
    assert record.payload["is_company"] is False
    assert record.payload["_meta"]["action"] == "Notify CRM hub(#412)"
    assert cleaned({"email": False, "active": False}) == {"email": None, "active": False}


UNDERSTOOD = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


@pytest.mark.parametrize("name", UNDERSTOOD)
def test_golden_file(name):
    body = body_of(name)
    [record] = ODOO.parse(ODOO.identify(request(body)), body, CONTEXT)
    fields, problems = FileMappingStore().get("odoo", "partner").apply(record.payload)
    assert {"object_type": record.object_type, "external_id": record.external_id,
            "observed_at": record.observed_at.isoformat(), "fields": fields,
            "problems": problems} == json.loads((FIXTURES / f"{name}.expected.json").read_text())


def test_only_the_ignored_model_lacks_an_expected_file():
    names = sorted(p.stem for p in FIXTURES.glob("*.json") if ".expected" not in p.name)
    assert sorted(set(names) - set(UNDERSTOOD)) == ["crm_lead"]


# --- stream ----------------------------------------------------------------------------------


def partners(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "name": f"P{n}", "email": False, "write_date": "2026-11-21 08:00:00"}
            for n in range(count)]


def test_the_stream_reads_every_page_through_execute_kw():
    [stream] = ODOO.streams(CONTEXT)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc(partners(200)))
        rsps.add(responses.POST, RPC, json=rpc(partners(5)))
        pages = list(stream.read(client(), "2026-11-20 00:00:00"))
        sent = calls(rsps)
    assert sum(len(p.records) for p in pages) == 205
    assert pages[0].records[0]["email"] is None  # false for empty, cleaned
    database, uid, key, model, method, [domain], kwargs = sent[0]["args"]
    assert (sent[0]["service"], sent[0]["method"]) == ("object", "execute_kw")
    assert (database, uid, key, model, method) == ("mycompany", 2, "odoo-api-key",
                                                   "res.partner", "search_read")
    assert ["write_date", ">=", "2026-11-20 00:00:00"] in domain
    assert ["active", "in", [True, False]] in domain
    assert (kwargs["offset"], kwargs["limit"]) == (0, 200)
    assert kwargs["order"] == "write_date asc, id asc"
    assert sent[1]["args"][6]["offset"] == 200
    assert "credit" in kwargs["fields"]


def test_the_user_id_is_looked_up_once_when_the_settings_do_not_give_it():
    context = ConnectionContext("odoo", {**SETTINGS, "user_id": "",
                                         "partner_fields": "id, name ,write_date"},
                                CONTEXT.credentials)
    [stream] = ODOO.streams(context)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc(7))
        rsps.add(responses.POST, RPC, json=rpc([]))
        list(stream.read(client()))
        login, read = calls(rsps)
    assert (login["service"], login["method"]) == ("common", "authenticate")
    assert login["args"] == ["mycompany", "api@mycompany.example", "odoo-api-key", {}]
    assert read["args"][1] == 7
    assert read["args"][6]["fields"] == ["id", "name", "write_date"]


def test_a_login_odoo_refuses_needs_the_admins_attention():
    context = ConnectionContext("odoo", {**SETTINGS, "user_id": ""}, CONTEXT.credentials)
    [stream] = ODOO.streams(context)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc(False))
        with pytest.raises(AuthenticationError, match="no user id"):
            list(stream.read(client()))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc_error("odoo.exceptions.AccessDenied",
                                                     "Access Denied"))
        with pytest.raises(AuthenticationError, match="Access Denied"):
            list(ODOO.streams(CONTEXT)[0].read(client()))


def test_a_field_this_database_lacks_tells_the_admin_which_setting_to_change():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc_error(
            "builtins.ValueError", "Invalid field 'mobile' on model 'res.partner'"))
        with pytest.raises(ConfigurationError, match="partner_fields"):
            list(ODOO.streams(CONTEXT)[0].read(client()))


def test_rate_limits_and_server_errors_are_retried():
    http = ODOO.client(CONTEXT)
    waits: list[float] = []
    http.sleep = waits.append
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, status=429, headers={"Retry-After": "12"}, body="slow")
        rsps.add(responses.POST, RPC, status=504, body="gateway timeout")
        rsps.add(responses.POST, RPC, json=rpc(partners(1)))
        pages = list(ODOO.streams(CONTEXT)[0].read(http))
    assert len(pages[0].records) == 1
    assert waits[0] >= 12


def test_the_url_must_be_https():
    with pytest.raises(ConfigurationError, match="https"):
        ODOO.client(ConnectionContext("odoo", {**SETTINGS, "url": "http://odoo.local"}))


# --- sink ------------------------------------------------------------------------------------


def test_creates_go_in_one_call_updates_one_by_one_and_a_refused_update_is_rejected_alone():
    sink = ODOO.sinks(CONTEXT)["partner"]
    records = [OutboundRecord(1, None, {"name": "Ana Lima", "country_code": "US"}),
               OutboundRecord(2, "87", {"email": "chloe@example.net"}),
               OutboundRecord(3, None, {"name": "Ben Okafor", "country_code": "US"}),
               OutboundRecord(4, "88", {"email": "not-an-email"})]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc([{"id": 233}]))
        rsps.add(responses.POST, RPC, json=rpc([120, 121]))
        rsps.add(responses.POST, RPC, json=rpc(True))
        rsps.add(responses.POST, RPC, json=rpc_error("odoo.exceptions.ValidationError",
                                                     "Invalid email address"))
        results = sink.push(client(), records)
        country, create, write, _ = calls(rsps)
    assert [(r.outcome, r.external_id) for r in results] == [
        (Outcome.CREATED, "120"), (Outcome.UPDATED, "87"), (Outcome.CREATED, "121"),
        (Outcome.REJECTED, "88")]
    assert "Invalid email address" in results[3].reason
    assert country["args"][3:6] == ["res.country", "search_read", [[["code", "=", "US"]]]]
    assert create["args"][4:6] == ["create", [[{"name": "Ana Lima", "country_id": 233},
                                              {"name": "Ben Okafor", "country_id": 233}]]]
    assert write["args"][4:6] == ["write", [[87], {"email": "chloe@example.net"}]]


def test_a_refused_batch_of_creates_falls_back_to_one_by_one():
    sink = ODOO.sinks(CONTEXT)["partner"]
    records = [OutboundRecord(1, None, {"name": "Ana Lima"}),
               OutboundRecord(2, None, {"name": "", "email": "x"})]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc_error("odoo.exceptions.ValidationError",
                                                     "Contacts require a name"))
        rsps.add(responses.POST, RPC, json=rpc([130]))
        rsps.add(responses.POST, RPC, json=rpc_error("odoo.exceptions.ValidationError",
                                                     "Contacts require a name"))
        results = sink.push(client(), records)
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REJECTED]
    assert results[0].external_id == "130"


def test_delete_unlinks_archives_a_partner_in_use_and_treats_a_missing_one_as_gone():
    sink = ODOO.sinks(CONTEXT)["partner"]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc(True))
        assert sink.remove(client(), 1, "87").outcome is Outcome.DELETED
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc_error(
            "odoo.exceptions.UserError", "You cannot delete a partner with invoices"))
        rsps.add(responses.POST, RPC, json=rpc(True))
        archived = sink.remove(client(), 1, "86")
        archive = calls(rsps)[1]
    assert archived.reason.startswith("archived:")
    assert archive["args"][4:6] == ["write", [[86], {"active": False}]]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, RPC, json=rpc_error(
            "odoo.exceptions.MissingError", "Record does not exist or has been deleted."))
        gone = sink.remove(client(), 1, "85")
    assert (gone.outcome, gone.reason) == (Outcome.DELETED, "already gone")
