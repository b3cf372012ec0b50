"""ActiveCampaign: contact webhooks in; contacts pulled and pushed through the v3 API.

Follows ActiveCampaign's documentation:
- Webhooks (form-encoded "post data" with bracketed keys; at-least-once delivery, never
  retried, deactivated by a 410 answer; initiation sources public/admin/api/system; no
  signature, so a secret goes in the URL): https://developers.activecampaign.com/page/webhooks
  and https://developers.activecampaign.com/reference/webhooks (event names: subscribe,
  unsubscribe, update, contact_tag_added, contact_tag_removed, ...)
- Base URL (take it from Settings > Developer; never build it from the account name) and the
  `Api-Token` header: https://developers.activecampaign.com/reference/url and
  https://developers.activecampaign.com/reference/authentication
- Contacts list (`limit` max 100 / `offset`, `meta.total`, `filters[updated_after]`):
  https://developers.activecampaign.com/reference/list-all-contacts and
  https://developers.activecampaign.com/reference/pagination
- Create or update a contact by email (`POST /api/3/contact/sync`):
  https://developers.activecampaign.com/reference/sync-a-contacts-data
- List status (`POST /api/3/contactLists`, status 1 active / 2 unsubscribed):
  https://developers.activecampaign.com/reference/update-list-status-for-contact
- Delete a contact (`DELETE /api/3/contacts/{id}`):
  https://developers.activecampaign.com/reference/delete-contact
- Rate limit (5 requests per second per account, shared by every key; 429 over it):
  https://developers.activecampaign.com/reference/rate-limits

Consent is per list in ActiveCampaign. A connection may name the list that stands for email
marketing (`list_id`); subscribe and unsubscribe events for that list (any list when none is
set) become the email consent signal, and the sink writes the golden consent to that list.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from connectors.base import (
    ConnectionContext,
    Connector,
    Delivery,
    RateLimit,
    Setting,
    SourceRecord,
    WebhookRequest,
    credential,
    meta,
)
from connectors.http import Action, HeaderKey, VendorHttp
from connectors.mailchimp import TotalOffsetPaginator, bounded_key, form_body, text_field, utc_time
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.streams import Stream
from hub.domain.errors import ConfigurationError, PayloadError

CONTACT_EVENTS = ("subscribe", "unsubscribe", "update", "contact_tag_added",
                  "contact_tag_removed")
NO_LIST = ("", "0")


def list_status(event_type: str, event_list: Any, consent_list: Any) -> str | None:
    """What a delivery says about the contact's status on the consent list, if anything.

    A subscribe counts when it is to a list (ActiveCampaign sends list "0" for a contact added
    to none) and to the consent list when one is set. An unsubscribe counts for the consent
    list, and for "no list" (unsubscribed from everything); withdrawing is never missed.
    """
    event_list = str(event_list or "")
    wanted = str(consent_list or "")
    if event_type == "subscribe" and event_list not in NO_LIST and wanted in ("", event_list):
        return "active"
    if event_type == "unsubscribe" and (wanted in ("", event_list) or event_list in NO_LIST):
        return "unsubscribed"
    return None


class ActiveCampaignContacts(Sink):
    """`contact/sync` creates or updates by email, one contact per request (there is no
    synchronous batch endpoint for contacts); the list status follows when the connection
    names its consent list and the outbound mapping gives one."""

    batch_size = 1
    can_delete = True

    def __init__(self, consent_list: str | None) -> None:
        self.consent_list = consent_list

    def upsert_batch(self, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
        results = []
        for record in records:
            contact = record.payload.get("contact")
            if not isinstance(contact, dict) or not contact.get("email"):
                results.append(PushResult(record.hub_id, Outcome.REJECTED, record.external_id,
                                          "no contact.email to sync the contact with"))
                continue
            response = http.request("POST", "/contact/sync", json={"contact": contact},
                                    write=True)
            contact_id = str(response.json()["contact"]["id"])
            status = (record.payload.get("contactList") or {}).get("status")
            if self.consent_list and status:
                http.request("POST", "/contactLists", json={"contactList": {
                    "list": self.consent_list, "contact": contact_id, "status": status}},
                    write=True)
            outcome = Outcome.CREATED if response.status_code == 201 else Outcome.UPDATED
            results.append(PushResult(record.hub_id, outcome, contact_id))
        return results

    def delete(self, http: VendorHttp, external_id: str) -> PushResult:
        gone_is_done = replace(http, error_table={**http.error_table, 404: Action.SKIP})
        gone_is_done.request("DELETE", f"/contacts/{external_id}", write=True)
        return PushResult(0, Outcome.DELETED, external_id)


class ActiveCampaign(Connector):
    key = "activecampaign"
    kind = "email_marketing"
    title = "ActiveCampaign"
    docs_url = "https://developers.activecampaign.com/page/webhooks"
    settings = (
        Setting("api_url", "Your account's API URL from Settings > Developer (for pulling "
                "and pushing contacts)", example="https://example.api-us1.com"),
        Setting("list_id", "The id of the list whose subscription stands for email marketing "
                "consent; empty: any list", example="3"),
        Setting("default_region", "Country (ISO 3166-1 alpha-2) for phone numbers written "
                "without a country code", example="US"),
        Setting("api_key", "An API key from Settings > Developer (keys have no scopes; the "
                "key acts as its user)", secret=True, example="0123456789abcdef" * 4),
    )
    events = dict.fromkeys(CONTACT_EVENTS, "contact")
    rate_limit = RateLimit(requests=5, seconds=1.0)  # per account, every key shares it

    def identify(self, request: WebhookRequest) -> Delivery:
        """No delivery id: `contact[id]` + `type` + `date_time`, plus the list or tag that
        tells apart two events of one contact in the same second."""
        form = form_body(request.body)
        event_type = form["type"].strip()
        date_time = text_field(form, "date_time")
        raw = form.get("contact")
        contact: dict[str, Any] = raw if isinstance(raw, dict) else {}
        contact_id = str(contact.get("id") or "").strip()
        if not contact_id:
            if event_type in self.events:
                raise PayloadError("the form has no contact[id]", pointer="contact[id]")
            contact_id = "body-" + hashlib.sha256(request.body).hexdigest()[:32]
        extra = [str(form[k]) for k in ("list", "tag") if isinstance(form.get(k), str)
                 and form[k] not in NO_LIST]
        return Delivery(key=bounded_key(event_type, contact_id, date_time, *extra),
                        event_type=event_type)

    def parse(
        self, delivery: Delivery, body: bytes, connection: ConnectionContext
    ) -> list[SourceRecord]:
        form = form_body(body)
        contact = form.get("contact")
        if not isinstance(contact, dict) or not str(contact.get("id") or "").strip():
            raise PayloadError("the form has no contact[id]", pointer="contact[id]")
        date_time = text_field(form, "date_time")
        context = meta(connection, event_type=delivery.event_type,
                       initiated_from=form.get("initiated_from"),
                       initiated_by=form.get("initiated_by"), list=form.get("list"),
                       list_status=list_status(delivery.event_type, form.get("list"),
                                               connection.settings.get("list_id")))
        return [SourceRecord("contact", str(contact["id"]).strip(),
                             utc_time(date_time, "date_time"), {**form, "_meta": context})]

    def client(self, connection: ConnectionContext) -> VendorHttp:
        api_url = str(connection.settings.get("api_url") or "").rstrip("/")
        if not api_url.startswith("https://"):
            raise ConfigurationError(
                f"ActiveCampaign connection {connection.name!r} needs api_url (https://..., "
                "from Settings > Developer) to reach the API")
        base = api_url if api_url.endswith("/api/3") else api_url + "/api/3"
        return VendorHttp(base, HeaderKey("Api-Token",
                                          credential(connection, "api_key", self.title)))

    def streams(self, connection: ConnectionContext) -> list[Stream]:
        return [Stream(
            name="contacts", object_type="contact", path="/contacts",
            records_path="contacts", primary_key="id", replication_key="udate",
            paginator=TotalOffsetPaginator("limit", "offset", 100, total_path="meta.total"),
            since=lambda bookmark: {"filters[updated_after]": bookmark},
        )]

    def sinks(self, connection: ConnectionContext) -> dict[str, Sink]:
        consent_list = connection.settings.get("list_id")
        return {"contact": ActiveCampaignContacts(str(consent_list) if consent_list else None)}
