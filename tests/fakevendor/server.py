"""Serve the fake vendors on 127.0.0.1: in a thread of the test process (tests read its state
directly), or as a process of its own (`python -m tests.fakevendor`, for benchmarks)."""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from tests.fakevendor.app import FakeVendors, create_app
from tests.fakevendor.datasets import HubSpotContacts, StripeCustomers

PREFIXES = {"stripe": "/stripe", "hubspot": "/hubspot", "mailchimp": "/mailchimp/3.0",
            "activecampaign": "/ac/api/3"}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeVendorServer:
    def __init__(self, state: FakeVendors | None = None, port: int = 0) -> None:
        self.state = state or FakeVendors()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = make_server("127.0.0.1", port, create_app(self.state), threaded=True,
                                  request_handler=_Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="fakevendor")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def base(self, connector: str) -> str:
        """The `api_base_url` setting that points a connection of `connector` here."""
        return self.url + PREFIXES[connector]

    def __enter__(self) -> FakeVendorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def seeded(stripe: int = 0, hubspot: int = 0, overlap: float = 0.5, **kwargs: Any
           ) -> FakeVendors:
    """Stripe persons 0..stripe-1, HubSpot persons from stripe*(1-overlap): `overlap` of the
    Stripe customers are also HubSpot contacts (the same email)."""
    first = int(stripe * (1 - overlap))
    return FakeVendors(stripe=StripeCustomers(seeded=stripe),
                       hubspot=HubSpotContacts(seeded=hubspot, first_person=first), **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description="fake vendor APIs on loopback")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--stripe", type=int, default=0, help="seeded Stripe customers")
    parser.add_argument("--hubspot", type=int, default=0, help="seeded HubSpot contacts")
    parser.add_argument("--overlap", type=float, default=0.5)
    args = parser.parse_args()
    state = seeded(args.stripe, args.hubspot, args.overlap, record=False)
    server = FakeVendorServer(state, args.port)
    print(f"fake vendors on {server.url}", flush=True)
    server.server.serve_forever()
