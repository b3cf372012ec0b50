"""Every connector the hub ships, by key. Adding a tool means one line here."""

from __future__ import annotations

from connectors.base import Connector
from connectors.shopify import Shopify
from connectors.stripe import Stripe
from hub.domain.errors import ConfigurationError

SHIPPED: tuple[type[Connector], ...] = (
    Shopify,
    Stripe,
)
CONNECTORS: dict[str, type[Connector]] = {cls.key: cls for cls in SHIPPED}


def get_connector(key: str) -> Connector:
    try:
        return CONNECTORS[key]()
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise ConfigurationError(f"unknown connector {key!r} (known: {known})") from None
