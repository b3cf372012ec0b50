"""Every connector the hub ships, by key. Adding a tool means one line here."""

from __future__ import annotations

from connectors.activecampaign import ActiveCampaign
from connectors.base import Connector
from connectors.bigcommerce import BigCommerce
from connectors.calendly import Calendly
from connectors.erpnext import Erpnext
from connectors.eventbrite import Eventbrite
from connectors.hubspot import HubSpot
from connectors.mailchimp import Mailchimp
from connectors.mindbody import Mindbody
from connectors.odoo import Odoo
from connectors.quickbooks import QuickBooks
from connectors.salesforce import Salesforce
from connectors.shopify import Shopify
from connectors.stripe import Stripe
from connectors.woocommerce import WooCommerce
from connectors.zoho import Zoho
from hub.domain.errors import ConfigurationError

SHIPPED: tuple[type[Connector], ...] = (
    Shopify,
    Stripe,
    HubSpot,
    Salesforce,
    Mailchimp,
    ActiveCampaign,
    BigCommerce,
    WooCommerce,
    QuickBooks,
    Zoho,
    Odoo,
    Erpnext,
    Calendly,
    Eventbrite,
    Mindbody,
)
CONNECTORS: dict[str, type[Connector]] = {cls.key: cls for cls in SHIPPED}


def get_connector(key: str) -> Connector:
    try:
        return CONNECTORS[key]()
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise ConfigurationError(f"unknown connector {key!r} (known: {known})") from None
