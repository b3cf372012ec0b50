"""A fake vendor API on loopback: Stripe customers, HubSpot contacts, Mailchimp members and
ActiveCampaign contacts, in the shapes the connectors call (and the vendors document):

- Stripe `GET /v1/customers` (limit, starting_after, created[gte]; newest first, has_more),
  `POST /v1/customers[/{id}]` form-encoded with bracketed keys; errors as {"error": {...}}.
- HubSpot `POST /crm/v3/objects/contacts/search` (filterGroups with lastmodifieddate GTE,
  ascending sort, `after`, at most 10,000 results per query, `total`), `GET .../{id}`,
  `POST .../batch/upsert` by email (207 with per-record `errors`), and the v4 unsubscribe-all.
- Mailchimp `GET/PUT /lists/{id}/members[/{hash}]` (count, offset, since_last_changed,
  total_items, status_if_new); ActiveCampaign `/contacts`, `/contact/sync`, `/contactLists`.

Faults on demand, per vendor: refused credentials (401), a 429 storm with Retry-After (and
HubSpot's rate headers), a request rate above which it answers 429, occasional 5xx. Every call
is recorded (method, path, query, body) unless recording is off (benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from connectors.base import form_fields
from tests.fakevendor.datasets import HubSpotContacts, SimpleList, StripeCustomers, iso

VENDORS = ("stripe", "hubspot", "mailchimp", "ac")
SEARCH_CAP = 10_000


@dataclass
class Faults:
    auth_refused: bool = False
    storm: int = 0  # the next N requests answer 429
    retry_after: float = 1.0
    rate: float | None = None  # requests per second above which it answers 429
    error_rate: float = 0.0  # share of requests answering 503
    _window: list[float] = field(default_factory=list)


@dataclass
class Call:
    vendor: str
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeVendors:
    """Every fake vendor's state; a test reads and steers it directly (same process) or over
    /_fake/... (another process)."""

    stripe: StripeCustomers = field(default_factory=StripeCustomers)
    hubspot: HubSpotContacts = field(default_factory=HubSpotContacts)
    mailchimp: SimpleList = field(default_factory=SimpleList)
    ac: SimpleList = field(default_factory=lambda: SimpleList(changed_key="udate"))
    ac_lists: dict[tuple[str, str], str] = field(default_factory=dict)  # (list, contact)
    hubspot_unsubscribed: set[str] = field(default_factory=set)
    stripe_refuses: set[str] = field(default_factory=set)  # emails answered 400
    keys: dict[str, str] = field(default_factory=lambda: {
        "stripe": "rk_test_fakevendor", "hubspot": "pat-na1-fakevendor",
        "mailchimp": "fakevendorkey-us1", "ac": "fakevendor-ac-key"})
    faults: dict[str, Faults] = field(default_factory=lambda: {v: Faults() for v in VENDORS})
    record: bool = True
    calls: list[Call] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seed: int = 7
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def writes(self, vendor: str) -> list[Call]:
        return [c for c in self.calls if c.vendor == vendor and c.method != "GET" and
                "/search" not in c.path]


def create_app(state: FakeVendors) -> Flask:
    app = Flask("fakevendor")

    @app.before_request
    def _gate() -> Response | None:
        vendor = request.path.strip("/").split("/")[0]
        if vendor not in VENDORS:
            return None
        state.count(f"{vendor}:requests")
        if state.record:
            body = request.get_json(silent=True) if request.is_json else \
                form_fields(request.get_data()) if request.method != "GET" else None
            state.calls.append(Call(vendor, request.method, request.path,
                                    dict(request.args), body))
        return _fault(state, vendor)

    _stripe_routes(app, state)
    _hubspot_routes(app, state)
    _mailchimp_routes(app, state)
    _ac_routes(app, state)
    _control_routes(app, state)
    return app


def _fault(state: FakeVendors, vendor: str) -> Response | None:
    faults = state.faults[vendor]
    if faults.auth_refused or not _authorised(state, vendor):
        state.count(f"{vendor}:401")
        return _answer({"error": {"type": "invalid_request_error",
                                  "message": "Invalid API Key provided: ****"},
                        "status": "error", "category": "INVALID_AUTHENTICATION",
                        "message": "Authentication credentials not found."}, 401)
    with state._lock:
        storm = faults.storm > 0
        if storm:
            faults.storm -= 1
        now = time.monotonic()
        if faults.rate:
            faults._window = [t for t in faults._window if t > now - 1.0]
            storm = storm or len(faults._window) >= faults.rate
            if not storm:
                faults._window.append(now)
        failing = faults.error_rate and state.random.random() < faults.error_rate
    if storm:
        state.count(f"{vendor}:429")
        response = _answer({"status": "error", "message": "You have reached your ten_secondly "
                            "limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY",
                            "error": {"type": "rate_limit", "message": "Too many requests"}},
                           429)
        response.headers["Retry-After"] = f"{faults.retry_after:g}"
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
        return response
    if failing:
        state.count(f"{vendor}:503")
        return _answer({"error": {"message": "upstream timeout"}}, 503)
    return None


def _authorised(state: FakeVendors, vendor: str) -> bool:
    header = request.headers.get("Authorization", "")
    key = state.keys[vendor]
    if vendor in ("stripe", "hubspot"):
        return header == f"Bearer {key}"
    if vendor == "mailchimp":
        import base64

        return header == "Basic " + base64.b64encode(f"hub:{key}".encode()).decode()
    return request.headers.get("Api-Token") == key


def _answer(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


# --- Stripe --------------------------------------------------------------------------------

def _stripe_routes(app: Flask, state: FakeVendors) -> None:
    @app.get("/stripe/v1/customers")
    def stripe_list() -> Response:
        limit = min(int(request.args.get("limit", 10)), 100)
        gte = request.args.get("created[gte]")
        data, more = state.stripe.page(limit, request.args.get("starting_after"),
                                       int(gte) if gte else None)
        return _answer({"object": "list", "url": "/v1/customers", "has_more": more,
                        "data": data})

    @app.post("/stripe/v1/customers")
    def stripe_create() -> Response:
        fields = form_fields(request.get_data())
        refused = _stripe_refusal(state, fields)
        if refused is not None:
            return refused
        return _answer(state.stripe.create(fields))

    @app.post("/stripe/v1/customers/<customer_id>")
    def stripe_update(customer_id: str) -> Response:
        current = state.stripe.get(customer_id)
        if current is None:
            return _answer({"error": {"type": "invalid_request_error", "code":
                                      "resource_missing", "message": "No such customer"}}, 404)
        fields = form_fields(request.get_data())
        refused = _stripe_refusal(state, fields)
        if refused is not None:
            return refused
        merged = {**current, **{k: v for k, v in fields.items() if not isinstance(v, dict)}}
        for key, value in fields.items():
            if isinstance(value, dict):
                merged[key] = {**(current.get(key) or {}), **value}
        return _answer(state.stripe.put(merged))


def _stripe_refusal(state: FakeVendors, fields: dict[str, Any]) -> Response | None:
    if str(fields.get("email") or "") in state.stripe_refuses:
        return _answer({"error": {"type": "invalid_request_error", "param": "email",
                                  "message": "Invalid email address"}}, 400)
    return None


# --- HubSpot -------------------------------------------------------------------------------

def _hubspot_routes(app: Flask, state: FakeVendors) -> None:
    contacts = "/hubspot/crm/v3/objects/contacts"

    @app.post(f"{contacts}/search")
    def hubspot_search() -> Response:
        body = request.get_json(force=True)
        after = int(body.get("after") or 0)
        if after >= SEARCH_CAP:
            return _answer({"status": "error", "category": "VALIDATION_ERROR",
                            "message": "Search results are limited to 10,000"}, 400)
        limit = min(int(body.get("limit") or 10), 200)
        gte = None
        for group in body.get("filterGroups") or []:
            for flt in group.get("filters") or []:
                if flt.get("propertyName") == "lastmodifieddate" and flt.get("operator") == "GTE":
                    gte = int(flt["value"])
        results, total = state.hubspot.search(after, limit, gte)
        answer: dict[str, Any] = {"total": total, "results": results}
        if after + len(results) < total:
            answer["paging"] = {"next": {"after": str(after + len(results))}}
        return _answer(answer)

    @app.get(f"{contacts}/<contact_id>")
    def hubspot_get(contact_id: str) -> Response:
        found = state.hubspot.get(contact_id)
        if found is None:
            return _answer({"status": "error", "category": "OBJECT_NOT_FOUND"}, 404)
        return _answer(found)

    @app.post(f"{contacts}/batch/upsert")
    def hubspot_upsert() -> Response:
        results, errors = [], []
        for item in request.get_json(force=True).get("inputs") or []:
            email = str(item.get("id") or "")
            if "@" not in email:
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": f"Property values were not valid: {email!r}",
                               "context": {"ids": [email]}})
                continue
            contact, new = state.hubspot.upsert(email, item.get("properties") or {})
            results.append({**contact, "new": new})
        status = 207 if errors else 200
        return _answer({"status": "COMPLETE", "results": results, "errors": errors,
                        "numErrors": len(errors)}, status)

    @app.post("/hubspot/communication-preferences/v4/statuses/<subscriber>/unsubscribe-all")
    def hubspot_unsubscribe_all(subscriber: str) -> Response:
        state.hubspot_unsubscribed.add(subscriber)
        stamp = iso(time.time())
        return _answer({"status": "COMPLETE", "startedAt": stamp, "completedAt": stamp,
                        "results": [{"subscriberIdString": subscriber, "channel": "EMAIL",
                                     "status": "UNSUBSCRIBED", "timestamp": stamp,
                                     "wideStatusType": "PORTAL_WIDE"}]})


# --- Mailchimp and ActiveCampaign ----------------------------------------------------------

def _mailchimp_routes(app: Flask, state: FakeVendors) -> None:
    @app.get("/mailchimp/3.0/lists/<list_id>/members")
    def mailchimp_members(list_id: str) -> Response:
        rows, total = state.mailchimp.page(int(request.args.get("offset", 0)),
                                           int(request.args.get("count", 10)),
                                           request.args.get("since_last_changed"))
        return _answer({"members": rows, "list_id": list_id, "total_items": total})

    @app.put("/mailchimp/3.0/lists/<list_id>/members/<member>")
    def mailchimp_put(list_id: str, member: str) -> Response:
        body = request.get_json(force=True)
        current = state.mailchimp.items.get(member)
        status = (body.get("status") or current["status"]) if current else \
            body.get("status_if_new") or "transactional"
        merged = {**(current or {}), "id": member, "list_id": list_id,
                  "email_address": body.get("email_address") or (current or {}).get(
                      "email_address"),
                  "merge_fields": {**((current or {}).get("merge_fields") or {}),
                                   **(body.get("merge_fields") or {})},
                  "status": status, "last_changed": iso(time.time())}
        return _answer(state.mailchimp.put(member, merged))


def _ac_routes(app: Flask, state: FakeVendors) -> None:
    @app.get("/ac/api/3/contacts")
    def ac_contacts() -> Response:
        rows, total = state.ac.page(int(request.args.get("offset", 0)),
                                    int(request.args.get("limit", 20)),
                                    request.args.get("filters[updated_after]"))
        return _answer({"contacts": rows, "meta": {"total": str(total)}})

    @app.post("/ac/api/3/contact/sync")
    def ac_sync() -> Response:
        given = request.get_json(force=True).get("contact") or {}
        email = str(given.get("email") or "").lower()
        found = next((c for c in state.ac.items.values() if c.get("email") == email), None)
        contact_id = found["id"] if found else str(len(state.ac.items) + 1)
        contact = {**(found or {}), **given, "id": contact_id, "email": email,
                   "udate": iso(time.time())}
        state.ac.put(contact_id, contact)
        return _answer({"contact": contact}, 200 if found else 201)

    @app.post("/ac/api/3/contactLists")
    def ac_list_status() -> Response:
        item = request.get_json(force=True).get("contactList") or {}
        state.ac_lists[(str(item.get("list")), str(item.get("contact")))] = str(item.get(
            "status"))
        return _answer({"contactList": {**item, "id": hashlib.md5(  # noqa: S324 - an id
            json.dumps(item, sort_keys=True).encode()).hexdigest()[:8]}}, 201)


# --- steering from another process ---------------------------------------------------------

def _control_routes(app: Flask, state: FakeVendors) -> None:
    @app.get("/_fake/stats")
    def stats() -> Response:
        return _answer({"counts": state.counts, "stripe_changed": len(state.stripe.changed),
                        "hubspot_changed": len(state.hubspot.changed),
                        "hubspot_unsubscribed": len(state.hubspot_unsubscribed)})

    @app.post("/_fake/faults/<vendor>")
    def set_faults(vendor: str) -> Response:
        faults = state.faults[vendor]
        for key, value in (request.get_json(force=True) or {}).items():
            setattr(faults, key, value)
        return _answer({"ok": True})
