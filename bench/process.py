"""Processing throughput: stored deliveries -> golden records, with N real worker processes.

Seeds the inbox with signed-and-accepted Shopify deliveries (each person created, then
updated), wakes the queue once, starts N `hub worker --burst` processes and times until every
event is processed. Prints deliveries/s and the workers' peak memory.

    .venv/bin/python bench/process.py --db postgres --events 20000 --workers 2
    .venv/bin/python bench/process.py --db sqlite --events 20000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.adapters.db import admin, migrate  # noqa: E402
from hub.adapters.db.models import InboxEvent  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.runtime import Runtime  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")


def database(kind: str, scratch: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{scratch / 'bench.db'}"
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS hub_bench_process"))
        conn.execute(text("CREATE DATABASE hub_bench_process"))
    engine.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/hub_bench_process"


def seed(rt: Runtime, events: int) -> None:
    template = json.loads((ROOT / "tests/fixtures/shopify/customers_create.json").read_text())
    admin.add_connection(rt.engine, name="shop", connector="shopify", secrets=["s"],
                         settings={}, actor="bench")
    now = datetime.now(UTC)
    rows = []
    for i in range(events):
        person, step = divmod(i, 2)
        address = dict(template["body"]["default_address"], phone=f"+1212{person:07d}")
        body = dict(template["body"], id=10_000_000 + person, email=f"p{person}@example.com",
                    last_name=f"Person{person}-{step}", default_address=address,
                    addresses=[address], phone=None,
                    updated_at=f"2026-11-0{1 + step}T10:00:00-05:00")
        rows.append({"connection_id": 1, "delivery_key": f"e{i}",
                     "event_type": "customers/update" if step else "customers/create",
                     "headers": {"X-Shopify-API-Version": "2024-10"},
                     "body": json.dumps(body).encode(), "status": "accepted",
                     "received_at": now, "available_at": now, "attempts": 0})
    with rt.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(InboxEvent), rows[start:start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        url = database(args.db, scratch)
        env = {**os.environ, "HUB_VAR_DIR": str(scratch / "var"), "HUB_DATABASE_URL": url,
               "HUB_REDIS_URL": REDIS, "HUB_BATCH_SIZE": str(args.batch_size),
               "HUB_LOG_LEVEL": "WARNING"}
        rt = Runtime.from_settings(load_settings(env=env))
        rt.redis.flushdb()
        migrate.upgrade(rt.engine)
        seed(rt, args.events)
        rt.dispatcher.enqueue_drain()
        started = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--burst"],
                                    env=env, cwd=ROOT) for _ in range(args.workers)]
        for worker in workers:
            worker.wait()
        elapsed = time.perf_counter() - started
        with rt.engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(InboxEvent).where(
                InboxEvent.status == "processed")).scalar()
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rt.close()
    print(f"db={args.db} workers={args.workers} batch={args.batch_size} events={args.events} "
          f"processed={done} seconds={elapsed:.1f} deliveries/s={done / elapsed:.0f} "
          f"peak_worker_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
