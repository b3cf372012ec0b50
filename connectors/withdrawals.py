"""Withdrawals a tool only takes through a call of its own, not through its outbound mapping.

Email marketing tools carry an unsubscribe in the record the sink writes (Mailchimp `status`,
ActiveCampaign's list status). Some tools keep consent apart from the contact and refuse it as
a property; for those the push adds the call below when a contact's consent is withdrawn or
denied, so an unsubscribe reaches every tool that could otherwise still email the person.

- HubSpot: `hs_email_optout` is read-only; "unsubscribe from all email" is the Subscriptions
  API v4, `POST /communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all`
  with `channel=EMAIL` (scope communication_preferences.write; the subscriber id is the email
  address; no undo from the API, which is what a withdrawal asks for):
  https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v4/guide
  and https://developers.hubspot.com/docs/guides/api/marketing/subscriptions-preferences
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

from connectors.http import VendorHttp


class Withdrawal(Protocol):
    def withdraw(self, http: VendorHttp, email: str) -> None:
        """Unsubscribe `email` from every marketing email of the tool; raise on refusal."""


class HubSpotUnsubscribeAll:
    def withdraw(self, http: VendorHttp, email: str) -> None:
        http.request("POST", "/communication-preferences/v4/statuses/"
                     f"{quote(email, safe='@')}/unsubscribe-all", params={"channel": "EMAIL"},
                     write=True)


WITHDRAWALS: dict[str, Withdrawal] = {"hubspot": HubSpotUnsubscribeAll()}
