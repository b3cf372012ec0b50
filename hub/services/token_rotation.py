"""Refresh tokens that a vendor rotates are written back to their connection at once.

QuickBooks Online, Zoho and Salesforce (when its policy says so) answer a refresh with a new
refresh token and retire the old one within hours to days: a hub that kept using the token
it was configured with would lock itself out at the next run. The connector's authenticator
calls `on_refresh` with the pair it received; only a changed refresh token is stored.
"""

from __future__ import annotations

from sqlalchemy import Engine

from connectors.http import VendorHttp
from hub.adapters.db import admin


def keep_rotated_tokens(http: VendorHttp, engine: Engine, connection: str) -> VendorHttp:
    auth = http.authenticator
    if auth is None or not hasattr(auth, "on_refresh") or not hasattr(auth, "refresh_token"):
        return http
    known = auth.refresh_token

    def store(_access: str, refresh: str) -> None:
        nonlocal known
        if refresh and refresh != known:
            admin.store_refresh_token(engine, connection, refresh)
            known = refresh

    auth.on_refresh = store
    return http
