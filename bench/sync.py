"""Nightly sync throughput: fake vendors on loopback, real `hub worker` processes.

Seeds the fake Stripe and HubSpot with `--contacts` records between them (half each; half of
HubSpot's people are also Stripe customers, by email), starts the fake vendors as a process of
their own, N `hub worker` processes, and runs a first (full) sync of both connections, then a
second one (the nightly case: nothing changed since). Prints per phase records/s and the
workers' peak memory:

- read: records the readers fetched per second (pages from the fake vendors, to the end);
- map+resolve+merge: records committed per second through the webhook path (the pull phase,
  first record read to last record committed);
- push: contacts considered per second in the push phase (mapped, hashed, sent or skipped);
- end to end: records per second from the start to the last run's end.

    .venv/bin/python bench/sync.py --db postgres --contacts 100000 --workers 2
    .venv/bin/python bench/sync.py --db sqlite --contacts 10000 --workers 1
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.adapters.db import admin, migrate, sync_store  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.runtime import Runtime  # noqa: E402
from hub.services import sync_run  # noqa: E402
from hub.sync_jobs import deps_for  # noqa: E402
from tests.fakevendor.app import FakeVendors  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
KEYS = FakeVendors().keys


def database(kind: str, scratch: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{scratch / 'bench.db'}"
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS hub_bench_sync"))
        conn.execute(text("CREATE DATABASE hub_bench_sync"))
    engine.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/hub_bench_sync"


def start_vendors(contacts: int, port: int) -> subprocess.Popen[bytes]:
    half = contacts // 2
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakevendor", "--port", str(port), "--stripe", str(half),
         "--hubspot", str(contacts - half), "--overlap", "0.5"], cwd=ROOT,
        stdout=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/_fake/stats", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("the fake vendors did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every local postgres process (the server's backends and helpers)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
            except OSError:
                continue
    return found


def follow(rt: Runtime, ids: list[int]) -> dict[str, float]:
    """Poll the runs: when reading ended, when the pull ended, when the runs ended."""
    marks: dict[str, float] = {}
    while True:
        runs = [sync_store.run_detail(rt.engine, i) for i in ids]
        now = time.perf_counter()
        streams = [s for r in runs if r for s in r["streams"]]
        if "read" not in marks and all(s["status"] != "reading" for s in streams):
            marks["read"] = now
        if "pull" not in marks and all(r and r["phase"] != "pull" for r in runs):
            marks["pull"] = now
        if all(r and r["status"] != "running" for r in runs):
            marks["end"] = now
            marks.update(read=marks.get("read", now), pull=marks.get("pull", now))
            return marks
        time.sleep(0.2)


def one_run(rt: Runtime, label: str, workers: list[int]) -> dict[str, float]:
    """One run of both connections. Besides rates (which move with whatever else the machine
    runs), the CPU time spent per record by the workers and by PostgreSQL: steadier figures
    for comparing two versions on a shared host."""
    cpu_before, pg_before = sum(cpu_seconds(p) for p in workers), postgres_cpu()
    started = time.perf_counter()
    ids = [i for i in sync_run.start(deps_for(rt), trigger="bench").values() if i]
    marks = follow(rt, ids)
    runs = [sync_store.run_detail(rt.engine, i) for i in ids]
    read = sum(r["pull"]["records_read"] for r in runs if r)
    done = sum(r["pull"]["records_done"] for r in runs if r)
    considered = sum(r["push"]["pushed"] + r["push"]["unchanged"] + r["push"]["rejected"] +
                     r["push"]["blocked"] for r in runs if r)
    pushed = sum(r["push"]["pushed"] for r in runs if r)
    healed = sum(r["pull"]["healed"] for r in runs if r)
    statuses = sorted(r["status"] for r in runs if r)
    worker_cpu = sum(cpu_seconds(p) for p in workers) - cpu_before
    pg_after = postgres_cpu()
    pg_cpu = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
    figures = {
        "read_per_s": read / max(marks["read"] - started, 1e-6),
        "commit_per_s": done / max(marks["pull"] - started, 1e-6),
        "push_per_s": considered / max(marks["end"] - marks["pull"], 1e-6),
        "end_to_end_per_s": done / max(marks["end"] - started, 1e-6),
        "seconds": marks["end"] - started,
        "worker_cpu_ms": 1000 * worker_cpu / max(done, 1),
        "postgres_cpu_ms": 1000 * pg_cpu / max(done, 1),
    }
    print(f"  {label}: {statuses} read={read} committed={done} healed={healed} "
          f"push considered={considered} pushed={pushed} in {figures['seconds']:.1f} s | "
          f"read {figures['read_per_s']:,.0f}/s, map+resolve+merge "
          f"{figures['commit_per_s']:,.0f}/s, push {figures['push_per_s']:,.0f}/s, "
          f"end to end {figures['end_to_end_per_s']:,.0f} records/s | CPU per record: workers "
          f"{figures['worker_cpu_ms']:.2f} ms, database {figures['postgres_cpu_ms']:.2f} ms",
          flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--chunk", type=int, default=1000, help="records per chunk (job)")
    parser.add_argument("--once", action="store_true", help="skip the second (nightly) run")
    parser.add_argument("--nightly", type=int, default=1,
                        help="runs after the first (each should find next to nothing to do)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        url = database(args.db, scratch)
        env = {**os.environ, "HUB_VAR_DIR": str(scratch / "var"), "HUB_DATABASE_URL": url,
               "HUB_REDIS_URL": REDIS, "HUB_LOG_LEVEL": "WARNING",
               "HUB_SYNC_CHUNK_RECORDS": str(args.chunk), "HUB_SQLITE_SYNCHRONOUS": "NORMAL"}
        rt = Runtime.from_settings(load_settings(env=env))
        rt.redis.flushdb()
        migrate.upgrade(rt.engine)
        vendors = start_vendors(args.contacts, args.port)
        base = f"http://127.0.0.1:{args.port}"
        for name, connector, key, prefix in (("pay", "stripe", "api_key", "/stripe"),
                                             ("crm", "hubspot", "access_token", "/hubspot")):
            admin.add_connection(rt.engine, name=name, connector=connector, secrets=["s"],
                                 settings={key: KEYS[connector], "api_base_url": base + prefix,
                                           "rate_limit": "100000/1"}, actor="bench")
        workers = [subprocess.Popen([sys.executable, "-m", "hub.cli", "worker"], env=env,
                                    cwd=ROOT, start_new_session=True)
                   for _ in range(args.workers)]
        try:
            print(f"db={args.db} contacts={args.contacts} workers={args.workers} "
                  f"chunk={args.chunk}", flush=True)
            pids = [w.pid for w in workers]
            first = one_run(rt, "first sync (everything new)", pids)
            second = {"seconds": 0.0}
            for n in range(0 if args.once else args.nightly):
                second = one_run(rt, f"sync {n + 2} (nothing changed in the tools)", pids)
            peaks = [peak_rss_mb(w.pid) for w in workers]
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait()
            os.killpg(vendors.pid, signal.SIGTERM)
            vendors.wait()
            rt.redis.flushdb()
            rt.close()
        print(f"RESULT db={args.db} contacts={args.contacts} workers={args.workers} "
              f"first_end_to_end={first['end_to_end_per_s']:.0f}/s "
              f"commit={first['commit_per_s']:.0f}/s read={first['read_per_s']:.0f}/s "
              f"push={first['push_per_s']:.0f}/s seconds={first['seconds']:.1f} "
              f"second_seconds={second['seconds']:.1f} "
              f"worker_cpu_ms_per_record={first['worker_cpu_ms']:.2f} "
              f"db_cpu_ms_per_record={first['postgres_cpu_ms']:.2f} "
              f"peak_worker_rss_mb={max(peaks):.0f}", flush=True)


if __name__ == "__main__":
    main()
