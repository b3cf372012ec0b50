"""`hub demo`: the whole path on embedded defaults, as a person would see it.

Starts the web app and a worker as separate processes (SQLite and an embedded redis-server in
var/demo, shared by all of them), posts realistic signed Shopify and Stripe deliveries over
HTTP, waits for the worker, and prints the golden records. The data stays in var/demo for a
look around afterwards; the next demo starts it afresh.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from hub.adapters.db import admin, migrate
from hub.config import load_settings
from hub.demo.data import SECRETS, demo_deliveries
from hub.runtime import Runtime

DEMO_DIR = Path("var/demo")
CONNECTIONS = (("shop", "shopify"), ("payments", "stripe"))
WAIT_SECONDS = 60


def run_demo() -> int:
    logging.getLogger().setLevel(logging.WARNING)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_VAR_DIR=str(DEMO_DIR), HUB_LOG_LEVEL="WARNING", HUB_SWEEP_SECONDS="1")
    rt = Runtime.from_settings(load_settings(env=env))
    migrate.upgrade(rt.engine)
    for name, connector in CONNECTIONS:
        admin.add_connection(rt.engine, name=name, connector=connector,
                             secrets=[SECRETS[connector]], settings={"default_region": "US"},
                             actor="demo")
    token = admin.create_token(rt.engine, name="demo", role="admin", actor="demo")
    rt.redis.ping()  # starts the embedded redis-server the other processes will share
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    processes = [
        _start([sys.executable, "-m", "hub.cli", "serve", "--port", str(port), "--workers",
                "1", "--threads", "4"], env),
        _start([sys.executable, "-m", "hub.cli", "worker"], env),
    ]
    try:
        _wait_ready(base, processes)
        _post(base)
        _wait_processed(base, token)
        _print_report(base, token)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(processes)
        rt.close()
    print(f"\nThe data is kept in {DEMO_DIR}/. To look further, serve it again:\n"
          f"  HUB_VAR_DIR={DEMO_DIR} .venv/bin/hub serve --port 8000\n"
          f"  curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/api/v1/contacts\n"
          f"  (also /api/v1/contacts/ID for provenance, /api/v1/events, /api/v1/flags,"
          f" /metrics)")
    return 0


class DemoError(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603


def _wait_ready(base: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise DemoError("the web app or the worker exited during start-up")
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise DemoError("the web app did not become ready")


def _post(base: str) -> None:
    print(f"Posting {len(demo_deliveries())} signed deliveries to {base}/webhooks/...")
    for connection, (body, headers) in demo_deliveries():
        response = requests.post(f"{base}/webhooks/{connection}", data=body, headers=headers,
                                 timeout=10)
        topic = headers.get("X-Shopify-Topic") or headers.get("X-Demo-Type", "")
        print(f"  {connection:<9} {topic or _stripe_type(body):<28} -> "
              f"{response.status_code} {response.json().get('status')}")


def _stripe_type(body: bytes) -> str:
    import json

    return str(json.loads(body).get("type", ""))


def _wait_processed(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        pending = sum(len(_get(base, f"/api/v1/events?status={s}", headers)["items"])
                      for s in ("accepted", "processing"))
        if pending == 0:
            return
        time.sleep(0.3)
    raise DemoError("the worker did not process the deliveries in time")


def _get(base: str, path: str, headers: dict[str, str]) -> Any:
    response = requests.get(f"{base}{path}", headers=headers, timeout=10)
    response.raise_for_status()
    return response.json()


def _print_report(base: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    contacts = _get(base, "/api/v1/contacts?limit=200", headers)["items"]
    events = _get(base, "/api/v1/events?limit=200", headers)["items"]
    flags = _get(base, "/api/v1/flags?status=open", headers)["items"]
    by_status: dict[str, int] = {}
    for event in events:
        by_status[event["status"]] = by_status.get(event["status"], 0) + 1
    print(f"\nInbox: {len(events)} events " +
          ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    print(f"\nGolden records ({len(contacts)}):")
    rows = [("ID", "NAME", "EMAILS", "PHONES", "SOURCES (external ids)", "EMAIL CONSENT")]
    for c in contacts:
        detail = _get(base, f"/api/v1/contacts/{c['id']}", headers)
        name = " ".join(x for x in (c["first_name"], c["last_name"]) if x)
        sources = ", ".join(f"{x['connection']}:{x['external_id']}" for x in c["external_ids"])
        fed_by = ", ".join(detail.get("sources", []))
        rows.append((str(c["id"]), name, ", ".join(c["emails"]), ", ".join(c["phones"]),
                     f"{sources or '-'} (fields from {fed_by})", c["consent"]["email"]["status"]))
    _table(rows)
    print(f"\nOpen flags: {len(flags)}")
    for flag in flags:
        print(f"  #{flag['id']} {flag['kind']}: contact {flag['contact_id']} - {flag['summary']}")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
