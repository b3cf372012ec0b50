"""Fixtures shared by every test layer.

Real servers: Redis from HUB_TEST_REDIS_URL (a db of its own, flushed around each test) and
PostgreSQL from HUB_TEST_PG_URL (each test gets its own schema, dropped afterwards); `make
test` provides both. Storage tests run once on SQLite and once on PostgreSQL through the
`db_url` fixture. Outbound HTTP is closed: a test that forgets to fake a vendor fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.adapters.db import admin, migrate
from hub.config import Settings, load_settings
from hub.runtime import Runtime
from tests.support import SHOPIFY_SECRET, STRIPE_SECRET

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/hub_test")


def _test_redis_url() -> str:
    """The test Redis, on a db chosen by process id: two test runs on one machine (two
    developers, or a developer and CI) then rarely share queues that each flushes."""
    url = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))  # parse, then set the db
    return f"redis://{url.host or '127.0.0.1'}:{url.port or 6379}/{1 + os.getpid() % 15}"


@pytest.fixture(autouse=True)
def _no_outbound_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """Vendor APIs are faked with `responses`; a real outbound call is a test bug. Only the
    hub's own servers on loopback (end-to-end tests) may be reached."""
    import requests.adapters

    real_send = requests.adapters.HTTPAdapter.send

    def loopback_only(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if urlsplit(request.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("a test tried to reach the network; fake it with `responses`")
        return real_send(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", loopback_only)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = _test_redis_url()
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def _pg_available() -> bool:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - reported as a skip reason below
        return False


def _pg_schema_url(schema: str) -> str:
    url = make_url(PG_URL)
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _pg_available: bool) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    if not _pg_available:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {make_url(PG_URL).host}")
        pytest.skip("PostgreSQL not reachable; `make test` starts one")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield _pg_schema_url(schema)
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin_engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str) -> Settings:
    return load_settings(
        env={},
        var_dir=tmp_path / "var",
        database_url=db_url,
        redis_url=redis_url,
        sweep_seconds=0.2,
        retry_base_seconds=0.01,
        max_attempts=3,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings)
    migrate.upgrade(rt.engine)
    admin.add_connection(rt.engine, name="shop", connector="shopify",
                         secrets=[SHOPIFY_SECRET], settings={}, actor="test")
    admin.add_connection(rt.engine, name="pay", connector="stripe",
                         secrets=[STRIPE_SECRET], settings={"default_region": "US"},
                         actor="test")
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Any:
    from hub import create_app

    flask_app = create_app(runtime=runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def admin_token(runtime: Runtime) -> str:
    return admin.create_token(runtime.engine, name="test-admin", role="admin", actor="test")


@pytest.fixture
def viewer_token(runtime: Runtime) -> str:
    return admin.create_token(runtime.engine, name="test-viewer", role="viewer", actor="test")
