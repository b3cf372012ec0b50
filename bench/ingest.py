"""Webhook ingest benchmark: the hub's receiver against a bare Flask app, same gunicorn, same load.

    .venv/bin/python bench/ingest.py                       # SQLite, gthread 2x8, 3 rounds of 10 s
    .venv/bin/python bench/ingest.py --db postgres --configs all

What it does (bench/README.md has the figures and the reasoning):
1. A scratch var dir, database (SQLite file, or a fresh PostgreSQL database `hub_bench`), Redis
   db (flushed), `hub init` and one Shopify connection `shop`.
2. Rounds of saturation runs, interleaved so the machine's noise hits both alike: bare, hub,
   bare, hub ... Each run starts its server afresh (`bench/bare_app.py` or `hub serve`, both
   through hub/gunicorn_app.serve), waits until a signed POST answers 202, warms up with 2 s of
   wrk, then runs `wrk -t2 -c32 --latency -s bench/shopify.lua` for --duration seconds.
3. Open-loop latency at half the hub's saturating rate: a fixed send schedule at R = median hub
   rps / 2, latency counted from each request's scheduled send time (no coordinated omission).
4. After every hub run: rows added to inbox_events >= 202 answers (nothing accepted was lost).
5. Per run, who used the CPU (server, load generator, Redis, PostgreSQL, foreign load). The
   machine is shared: a bare/hub pair disturbed by foreign load is measured again.
6. A table on stdout; one JSON line per run and per config in bench/results/ingest-<ts>.jsonl.

`--snapshot HEAD` measures a `git archive` of a commit instead of the (shared, changing) working
tree. Loopback only (127.0.0.1); every run is bounded; servers are stopped by process group,
also on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import io
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LUA = BENCH / "shopify.lua"
BARE_APP = BENCH / "bare_app.py"
FIXTURE = ROOT / "tests" / "fixtures" / "shopify" / "customers_create.json"
HOST = "127.0.0.1"
CONNECTION = "shop"
SECRET = "bench-webhook-secret"  # noqa: S105 - a scratch connection on loopback
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TARGET_RATIO = 0.6
TARGET_P99_MS = 50.0
STATIC_HEADERS = {
    "Content-Type": "application/json",
    "X-Shopify-Topic": "customers/update",
    "X-Shopify-API-Version": "2024-10",
    "X-Shopify-Shop-Domain": "crm-hub-fixtures.myshopify.com",
    "X-Shopify-Triggered-At": "2026-11-02T15:15:01.703281Z",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the payload


@dataclass(frozen=True)
class Payload:
    body: bytes
    signature: str
    path: Path  # the body on disk, for wrk

    @classmethod
    def create(cls, directory: Path) -> Payload:
        body = json.dumps(json.loads(FIXTURE.read_text())["body"]).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        path = directory / "body.json"
        path.write_bytes(body)
        return cls(body, base64.b64encode(digest).decode(), path)

    def headers(self, event_id: str) -> dict[str, str]:
        return {
            **STATIC_HEADERS,
            "X-Shopify-Hmac-Sha256": self.signature,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Webhook-Id": event_id,
        }


# --------------------------------------------------------------------------- scratch stores


@dataclass
class Scratch:
    """Var dir, database, Redis db and the environment every hub process gets."""

    var_dir: Path
    db: str
    database_url: str
    redis_url: str
    env: dict[str, str] = field(default_factory=dict)
    code_root: Path = ROOT  # where the measured hub's code comes from
    snapshot: str = ""  # the commit it was exported from, if not the working tree

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "hub.db"

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()

    @contextlib.contextmanager
    def _sql(self) -> Iterator[Any]:
        if self.db == "sqlite":
            conn = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None)
        else:
            import psycopg

            conn = psycopg.connect(self.database_url, autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def count_inbox(self) -> int:
        with self._sql() as conn:
            return int(conn.execute("SELECT count(*) FROM inbox_events").fetchone()[0])

    def clear_inbox(self) -> None:
        with self._sql() as conn:
            conn.execute(
                "DELETE FROM inbox_events" if self.db == "sqlite" else "TRUNCATE inbox_events"
            )


def hub_command() -> list[str]:
    candidate = Path(sys.executable).parent / "hub"
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("hub")
    if not found:
        sys.exit(
            "cannot find the `hub` command: run this with the project's venv python "
            "(.venv/bin/python bench/ingest.py)"
        )
    return [found]


def recreate_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def export_snapshot(rev: str, into: Path) -> tuple[Path, str]:
    """`git archive` of one commit, so that edits to this shared working tree during a run
    cannot change the code being measured."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into, commit


def set_up(args: argparse.Namespace, work_dir: Path) -> Scratch:
    var_dir = work_dir / "var"
    if args.db == "postgres":
        recreate_pg_database(args.pg_database)
        database_url = f"{PG_SERVER}/{args.pg_database}"
    else:
        database_url = ""  # the hub's default: SQLite file var/hub.db
    scratch = Scratch(var_dir, args.db, database_url, f"redis://{HOST}:6379/{args.redis_db}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(var_dir),
        HUB_DATABASE_URL=database_url,
        HUB_REDIS_URL=scratch.redis_url,
        PYTHONDONTWRITEBYTECODE="1",
    )
    if args.snapshot:
        scratch.code_root, scratch.snapshot = export_snapshot(args.snapshot, work_dir / "code")
        # first on sys.path, ahead of the editable install: hub serve, hub init and the bare
        # app's gunicorn_app all import this copy
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(scratch.code_root), env.get("PYTHONPATH", "")])
        )
    if args.sqlite_synchronous:
        env["HUB_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
    scratch.env = env
    scratch.flush_redis()
    hub = hub_command()
    for cmd in (
        ["init"],
        ["connections", "add", CONNECTION, "--connector", "shopify", "--webhook-secret", SECRET],
    ):
        done = subprocess.run(
            [*hub, *cmd], env=env, cwd=work_dir, timeout=120, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"hub {' '.join(cmd[:2])} failed:\n{done.stdout}{done.stderr}")
    return scratch


# --------------------------------------------------------------------------- servers


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def post(port: int, payload: Payload, event_id: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", f"/webhooks/{CONNECTION}", payload.body, payload.headers(event_id))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """One gunicorn (bare or hub) in its own process group, so stopping it stops its workers."""

    def __init__(
        self, kind: str, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.kind, self.cmd, self.env, self.cwd, self.log_path = kind, cmd, env, cwd, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int, payload: Payload, timeout: float = 60) -> None:
        if port_open(port):
            raise RuntimeError(f"something already listens on {HOST}:{port}; pick --port")
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} server exited with {self.proc.returncode}\n{self.log_tail()}"
                )
            if port_open(port):
                # The master accepts before its workers boot: wait for a real 202.
                status, body = post(port, payload, f"probe-{uuid.uuid4().hex}", timeout=30)
                if status != 202:
                    raise RuntimeError(
                        f"{self.kind} probe answered {status}: {body[:300]!r}\n{self.log_tail()}"
                    )
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server did not answer within {timeout:.0f} s")

    @property
    def pgid(self) -> int:
        assert self.proc is not None, "the server is not started"
        return self.proc.pid  # start_new_session: the master leads its own group

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- last lines of {self.log_path}:\n" + "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)  # gunicorn: graceful, in-flight requests finish
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # stray workers of a dead master
            os.killpg(pgid, signal.SIGKILL)


@dataclass(frozen=True)
class Config:
    workers: int
    threads: int

    @property
    def name(self) -> str:
        if self.threads > 1:
            return f"gthread {self.workers}x{self.threads}"
        return f"sync x{self.workers}"

    def serve_args(self, port: int) -> list[str]:
        return [
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
        ]


def make_server(
    kind: str, config: Config, args: argparse.Namespace, scratch: Scratch, work_dir: Path
) -> Server:
    serve = config.serve_args(args.port)
    if kind == "bare":
        cmd = [sys.executable, str(BARE_APP), *serve]
    else:
        cmd = [*hub_command(), "serve", *serve]
    return Server(kind, cmd, scratch.env, work_dir, work_dir / f"{kind}.log")


# --------------------------------------------------------------------------- wrk (closed loop)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[str, int, float]]:
    """pid -> (name, process group, CPU seconds used so far) for every live process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process went away
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name == "postgres":  # the process title tells a backend's database
            with contextlib.suppress(OSError):
                name = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        fields = text[text.rfind(")") + 2 :].split()  # state ppid pgrp ... utime(11) stime(12)
        table[int(stat.parent.name)] = (
            name,
            int(fields[2]),
            (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        )
    return table


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS  # minus idle and iowait


def pressure(kind: str) -> float:
    """Total µs some task stalled on cpu or io (Linux PSI), 0 where PSI is missing."""
    try:
        first = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
    except OSError:
        return 0.0
    return float(first.rsplit("total=", 1)[1])


class CpuAccount:
    """Who used the CPU during one measured run, in cores (1.0 = one core busy throughout).

    server: the gunicorn process group; loadgen: this process and its finished children (wrk);
    redis / postgres: those servers' processes; other: the rest of the machine's busy time,
    i.e. kernel work not charged to a process and, mostly, other users of this shared machine
    (a high value marks a run taken under foreign load). machine near 2.0 on 2 cores means
    CPU-bound; well below means the run waited on locks or the disk. PSI stall shares are the
    share of the run during which some task waited for a CPU / for I/O.
    """

    def __init__(self, server: Server, pg_database: str) -> None:
        self.pgid = server.pgid
        self.pg_database = pg_database
        self.wall = time.perf_counter()
        self.machine = machine_cpu()
        self.procs = process_cpu()
        self.loadgen = self._own()
        self.psi = (pressure("cpu"), pressure("io"))

    @staticmethod
    def _own() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def _category(self, name: str, pgid: int) -> str | None:
        if pgid == self.pgid:
            return "server"
        if name == "redis-server":
            return "redis"
        if "postgres" in name:
            # client backends show "db host(port)": only those of the bench database count;
            # background processes (walwriter, checkpointer...) serve everyone, ours included
            is_client = "(" in name
            return "postgres" if not is_client or f" {self.pg_database} " in name else None
        return None

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        used = {"server": 0.0, "redis": 0.0, "postgres": 0.0}
        for pid, (name, pgid, cpu) in process_cpu().items():
            category = self._category(name, pgid)
            if category:
                before = self.procs.get(pid)
                used[category] += cpu - (before[2] if before and before[1] == pgid else 0.0)
        used["loadgen"] = self._own() - self.loadgen
        machine = machine_cpu() - self.machine
        cores = {f"cpu_{k}": round(v / wall, 2) for k, v in used.items()}
        cores["cpu_machine"] = round(machine / wall, 2)
        cores["cpu_other"] = round(max(0.0, machine - sum(used.values())) / wall, 2)
        psi_cpu, psi_io = pressure("cpu") - self.psi[0], pressure("io") - self.psi[1]
        return {
            **cores,
            "psi_cpu_some_pct": round(psi_cpu / wall / 1e4, 1),
            "psi_io_some_pct": round(psi_io / wall / 1e4, 1),
            "load_avg": round(os.getloadavg()[0], 2),
        }


def run_wrk(args: argparse.Namespace, payload: Payload, duration: float) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    cmd = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://{HOST}:{args.port}/webhooks/{CONNECTION}",
    ]
    env = dict(
        os.environ,
        BENCH_BODY_FILE=str(payload.path),
        BENCH_SIGNATURE=payload.signature,
        BENCH_RUN_TAG=tag,
    )
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out}")
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["errors"] = (
        result["status_2xx_other"]
        + result["status_other"]
        + result["err_connect"]
        + result["err_read"]
        + result["err_write"]
        + result["err_timeout"]
    )
    return result


# --------------------------------------------------------------------------- open loop


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, int(round(pct / 100 * len(sorted_values))) - 1))
    return sorted_values[rank]


def open_loop(
    port: int, payload: Payload, rate: float, duration: float, connections: int
) -> dict[str, Any]:
    """Send request i at t0 + i/rate, whatever happened to earlier ones.

    `connections` threads, each with one keep-alive http.client connection, take the next slot
    of one shared schedule. Latency runs from the slot's scheduled time to the end of the
    response, so a stalled server is charged for the requests it kept waiting (no coordinated
    omission); `lag` is how late the generator actually sent, to show whether it kept up.
    """
    total = int(rate * duration)
    slots = itertools.count()  # next() on a count is atomic under the GIL
    tag = uuid.uuid4().hex[:12]
    t0 = time.perf_counter() + 0.2
    latencies: list[float] = []
    service: list[float] = []
    lags: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine: list[tuple[float, float, float, int]] = []
        while (i := next(slots)) < total:
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    f"/webhooks/{CONNECTION}",
                    payload.body,
                    payload.headers(f"open-{tag}-{i}"),
                )
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    failures.append(type(exc).__name__)
                continue
            done = time.perf_counter()
            mine.append((done - scheduled, done - sent, sent - scheduled, status))
        conn.close()
        with lock:
            for lat, svc, lag, status in mine:
                latencies.append(lat)
                service.append(svc)
                lags.append(lag)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration + 60)
    elapsed = time.perf_counter() - t0
    latencies.sort()
    service.sort()
    lags.sort()
    ms = 1000.0
    return {
        "rate_target": round(rate, 1),
        "requests_scheduled": total,
        "requests_done": len(latencies),
        "rate_achieved": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * ms, 2),
        "p90_ms": round(percentile(latencies, 90) * ms, 2),
        "p99_ms": round(percentile(latencies, 99) * ms, 2),
        "max_ms": round(latencies[-1] * ms, 2) if latencies else None,
        "service_p50_ms": round(percentile(service, 50) * ms, 2),
        "service_p99_ms": round(percentile(service, 99) * ms, 2),
        "send_lag_p99_ms": round(percentile(lags, 99) * ms, 2),
        "status_202": statuses.get(202, 0),
        "errors": sum(n for s, n in statuses.items() if s != 202) + len(failures),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "socket_errors": len(failures),
    }


# --------------------------------------------------------------------------- runs


def wait_for_quiet(max_busy: float, timeout: float) -> float:
    """Wait (up to `timeout` s) until the machine, with none of our servers running, uses at
    most `max_busy` cores over one second; returns the last reading. The machine is shared:
    this keeps other people's test runs out of the figures where it can."""
    deadline = time.monotonic() + timeout
    while True:
        start, t0 = machine_cpu(), time.perf_counter()
        time.sleep(1.0)
        busy = (machine_cpu() - start) / (time.perf_counter() - t0)
        if busy <= max_busy or time.monotonic() >= deadline:
            return round(busy, 2)


class Recorder:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps({**self.meta, **record}) + "\n")


def check_inbox(scratch: Scratch, before: int, accepted: int) -> dict[str, int]:
    """Rows the run added against 202s wrk saw. Requests still in flight when wrk stopped are
    stored but never counted as answered, so rows may exceed 202s by up to --connections."""
    added = scratch.count_inbox() - before
    return {
        "inbox_added": added,
        "lost": max(0, accepted - added),
        "stored_unanswered": max(0, added - accepted),
    }


def saturation_run(kind: str, config: Config, round_no: int, ctx: Context) -> dict[str, Any]:
    args, scratch = ctx.args, ctx.scratch
    if kind == "hub":
        scratch.flush_redis()
        scratch.clear_inbox()
    server = make_server(kind, config, args, scratch, ctx.work_dir)
    try:
        server.start(args.port, ctx.payload)
        run_wrk(args, ctx.payload, args.warmup)
        time.sleep(1.0)  # let the warm-up's in-flight requests land before counting
        before = scratch.count_inbox() if kind == "hub" else 0
        cpu = CpuAccount(server, args.pg_database)
        result = run_wrk(args, ctx.payload, args.duration)
        result.update(cpu.result())
    finally:
        server.stop()  # graceful: requests in flight finish before the count below
    record = {
        "kind": "saturation",
        "server": kind,
        "config": config.name,
        "round": round_no,
        **result,
    }
    if kind == "hub":
        record.update(check_inbox(scratch, before, result["status_202"]))
    return record


def half_rate_run(kind: str, config: Config, rate: float, ctx: Context) -> dict[str, Any]:
    args, scratch = ctx.args, ctx.scratch
    if kind == "hub":
        scratch.flush_redis()
        scratch.clear_inbox()
    server = make_server(kind, config, args, scratch, ctx.work_dir)
    try:
        server.start(args.port, ctx.payload)
        open_loop(args.port, ctx.payload, rate, args.warmup, args.connections)  # warm-up
        time.sleep(1.0)
        before = scratch.count_inbox() if kind == "hub" else 0
        cpu = CpuAccount(server, args.pg_database)
        result = open_loop(args.port, ctx.payload, rate, args.half_rate_duration, args.connections)
        result.update(cpu.result())
    finally:
        server.stop()
    record = {"kind": "half_rate", "server": kind, "config": config.name, **result}
    if kind == "hub":
        record.update(check_inbox(scratch, before, result["status_202"]))
    return record


@dataclass
class Context:
    args: argparse.Namespace
    scratch: Scratch
    payload: Payload
    work_dir: Path
    recorder: Recorder


# --------------------------------------------------------------------------- summary


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summarise(
    config: Config, runs: list[dict[str, Any]], half: list[dict[str, Any]], db: str
) -> dict[str, Any]:
    def of(records: list[dict[str, Any]], server: str) -> list[dict[str, Any]]:
        return [r for r in records if r["config"] == config.name and r["server"] == server]

    bare, hub = of(runs, "bare"), of(runs, "hub")
    bare_half, hub_half = of(half, "bare"), of(half, "hub")
    mine = bare + hub + bare_half + hub_half
    bare_rps, hub_rps = [r["rps"] for r in bare], [r["rps"] for r in hub]
    per_round = [h["rps"] / b["rps"] for b, h in zip(bare, hub, strict=False) if b["rps"]]
    hub_half_p99 = [r["p99_ms"] for r in hub_half]

    def med(records: list[dict[str, Any]], key: str, scale: float = 1.0) -> float | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return round(median(values) / scale, 2) if values else None

    summary = {
        "kind": "summary",
        "db": db,
        "config": config.name,
        "rounds": len(hub),
        "bare_rps_median": med(bare, "rps"),
        "bare_rps_min": min(bare_rps, default=None),
        "bare_rps_max": max(bare_rps, default=None),
        "hub_rps_median": med(hub, "rps"),
        "hub_rps_min": min(hub_rps, default=None),
        "hub_rps_max": max(hub_rps, default=None),
        "ratio": round(median(hub_rps) / median(bare_rps), 3) if bare_rps and hub_rps else None,
        "ratio_per_round": [round(x, 3) for x in per_round],
        "bare_p50_ms": med(bare, "p50_us", 1000),
        "bare_p99_ms": med(bare, "p99_us", 1000),
        "hub_p50_ms": med(hub, "p50_us", 1000),
        "hub_p99_ms": med(hub, "p99_us", 1000),
        "bare_cpu_server": med(bare, "cpu_server"),
        "hub_cpu_server": med(hub, "cpu_server"),
        "bare_cpu_machine": med(bare, "cpu_machine"),
        "hub_cpu_machine": med(hub, "cpu_machine"),
        "cpu_other_max": max((r["cpu_other"] for r in mine), default=None),
        "cpu_other_median": med(mine, "cpu_other"),
        "half_rate": med(hub_half, "rate_target"),
        "hub_half_p50_ms": med(hub_half, "p50_ms"),
        "hub_half_p99_ms": med(hub_half, "p99_ms"),
        "hub_half_p99_min": min(hub_half_p99, default=None),
        "hub_half_p99_max": max(hub_half_p99, default=None),
        "bare_half_p99_ms": med(bare_half, "p99_ms"),
        "hub_errors": sum(r["errors"] for r in hub + hub_half),
        "bare_errors": sum(r["errors"] for r in bare + bare_half),
        "lost": sum(r.get("lost", 0) for r in hub + hub_half),
    }
    summary["meets_ratio"] = bool(summary["ratio"] and summary["ratio"] >= TARGET_RATIO)
    p99 = summary["hub_half_p99_ms"]
    summary["meets_p99"] = None if p99 is None else p99 < TARGET_P99_MS
    return summary


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def print_table(summaries: list[dict[str, Any]]) -> None:
    print()
    print(
        "| db | config | bare rps | hub rps | hub/bare | per-round ratios | hub p50 / p99 ms "
        "(saturated) | half rate rps | hub p50 / p99 ms at half rate (p99 range) | bare p99 ms "
        "at same rate | server CPU cores bare / hub | foreign CPU cores median (max) | "
        "errors hub / bare | lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        ratios = ", ".join(f"{x:.2f}" for x in s["ratio_per_round"])
        print(
            f"| {s['db']} | {s['config']} | {fmt(s['bare_rps_median'])} "
            f"({fmt(s['bare_rps_min'])}–{fmt(s['bare_rps_max'])}) | "
            f"{fmt(s['hub_rps_median'])} ({fmt(s['hub_rps_min'])}–{fmt(s['hub_rps_max'])}) | "
            f"**{fmt(s['ratio'], '.2f')}** | {ratios} | {fmt(s['hub_p50_ms'], '.1f')} / "
            f"{fmt(s['hub_p99_ms'], '.1f')} | {fmt(s['half_rate'])} | "
            f"{fmt(s['hub_half_p50_ms'], '.1f')} / **{fmt(s['hub_half_p99_ms'], '.1f')}** "
            f"({fmt(s['hub_half_p99_min'], '.1f')}–{fmt(s['hub_half_p99_max'], '.1f')}) | "
            f"{fmt(s['bare_half_p99_ms'], '.1f')} | {fmt(s['bare_cpu_server'], '.2f')} / "
            f"{fmt(s['hub_cpu_server'], '.2f')} | {fmt(s['cpu_other_median'], '.2f')} "
            f"({fmt(s['cpu_other_max'], '.2f')}) | {s['hub_errors']} / {s['bare_errors']} | "
            f"{s['lost']} |"
        )
    print()
    for s in summaries:
        verdict_ratio = "meets" if s["meets_ratio"] else "MISSES"
        verdict_p99 = {True: "meets", False: "MISSES", None: "not measured"}[s["meets_p99"]]
        print(
            f"{s['db']} {s['config']}: hub/bare {fmt(s['ratio'], '.2f')} {verdict_ratio} the "
            f">= {TARGET_RATIO} target; p99 at half rate {fmt(s['hub_half_p99_ms'], '.1f')} ms "
            f"{verdict_p99} the < {TARGET_P99_MS:.0f} ms target"
        )
        if (s["cpu_other_median"] or 0) > 0.35:
            print(
                f"  WARNING: other programs used {s['cpu_other_median']:.2f} cores (median) of "
                "this machine during these runs; the figures understate what it can do"
            )


# --------------------------------------------------------------------------- machine


def python_loop_ms() -> float:
    """A CPU-speed probe (3M-iteration loop), as in shared/research/perf-limits.md."""
    start = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return round((time.perf_counter() - start) * 1000, 1)


def code_state(scratch: Scratch) -> dict[str, Any]:
    """Which hub is measured: the commit, uncommitted files, and a digest of the code itself
    (this working tree is shared and may change while a run is in progress)."""
    root = scratch.code_root
    digest = hashlib.sha256()
    for path in sorted([*root.glob("hub/**/*.py"), *root.glob("connectors/**/*.py")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    if scratch.snapshot:
        return {
            "commit": scratch.snapshot,
            "snapshot": True,
            "code_digest": digest.hexdigest()[:12],
        }

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_files": len(git("status", "--porcelain").splitlines()),
        "code_digest": digest.hexdigest()[:12],
    }


def machine_info(scratch: Scratch) -> dict[str, Any]:
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version.split("[")[0].strip(),
        **code_state(scratch),
        **{pkg: version(pkg) for pkg in ("flask", "gunicorn", "sqlalchemy", "psycopg", "redis")},
    }
    if scratch.db == "postgres":
        import psycopg

        with psycopg.connect(scratch.database_url) as conn:
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    if scratch.db == "sqlite":
        info["sqlite_synchronous"] = scratch.env.get("HUB_SQLITE_SYNCHRONOUS", "FULL (default)")
    return info


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument(
        "--configs",
        choices=("default", "all"),
        default="default",
        help="default: --workers x --threads only; all: also sync x --workers",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=8, help="1 means gunicorn's sync worker")
    p.add_argument("--repeats", type=int, default=3, help="interleaved bare/hub rounds")
    p.add_argument("--duration", type=float, default=10, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per server start")
    p.add_argument("--half-rate-duration", type=float, default=10)
    p.add_argument("--skip-half-rate", action="store_true")
    p.add_argument("--connections", type=int, default=32, help="wrk -c and open-loop threads")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--redis-db", type=int, default=9, help="flushed at start and per hub run")
    p.add_argument(
        "--sqlite-synchronous",
        choices=("FULL", "NORMAL", "EXTRA"),
        help="HUB_SQLITE_SYNCHRONOUS (default: the hub's own default, FULL)",
    )
    p.add_argument(
        "--max-foreign",
        type=float,
        default=0.35,
        help="cores of foreign CPU load above which a bare/hub pair is measured again",
    )
    p.add_argument("--retries", type=int, default=2, help="re-measurements per pair")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="seconds to wait for the machine to go quiet before each pair",
    )
    p.add_argument(
        "--pg-database",
        default="hub_bench",
        help="scratch PostgreSQL database, dropped and recreated (one per concurrent run)",
    )
    p.add_argument(
        "--snapshot",
        metavar="REV",
        help="measure the hub exported from this commit (e.g. HEAD) instead of the working "
        "tree, which others may be editing during the run",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, database)")
    args = p.parse_args(argv)
    for name in ("duration", "warmup", "half_rate_duration"):
        if not 0 < getattr(args, name) <= 120:
            p.error(f"--{name.replace('_', '-')} must be within (0, 120] seconds")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.pg_database):
        p.error("--pg-database must be a plain lower-case identifier")
    if args.repeats < 1 or args.workers < 1 or args.threads < 1:
        p.error("--repeats, --workers and --threads must be at least 1")
    return args


def configs_for(args: argparse.Namespace) -> list[Config]:
    configs = [Config(args.workers, args.threads)]
    if args.configs == "all" and args.threads > 1:
        configs.append(Config(args.workers, 1))
    return configs


def db_label(args: argparse.Namespace) -> str:
    if args.db == "postgres":
        return "postgres"
    return f"sqlite {args.sqlite_synchronous or 'FULL'}"


def describe_run(record: dict[str, Any]) -> str:
    cpu = (
        f"cpu server {record['cpu_server']:.2f} machine {record['cpu_machine']:.2f} "
        f"other {record['cpu_other']:.2f}"
    )
    extra = f"  inbox +{record['inbox_added']} lost {record['lost']}" if "lost" in record else ""
    if record["kind"] == "saturation":
        return (
            f"{record['rps']:8,.0f} rps  p50 {record['p50_us'] / 1000:6.1f} ms  "
            f"p99 {record['p99_us'] / 1000:6.1f} ms  {cpu}  errors {record['errors']}{extra}"
        )
    return (
        f"{record['rate_target']:,.0f} rps target, {record['rate_achieved']:,.0f} done  "
        f"p50 {record['p50_ms']:.1f} ms  p99 {record['p99_ms']:.1f} ms  "
        f"send lag p99 {record['send_lag_p99_ms']:.1f} ms  {cpu}  errors {record['errors']}{extra}"
    )


def run_pair(
    ctx: Context, label: str, measure: Callable[[str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """bare then hub, back to back. If foreign load showed up in either run (more than
    --max-foreign cores), the pair is measured again, up to --retries times, and the attempt
    with the least foreign load is kept; the others are written to the JSONL marked discarded."""
    args = ctx.args
    attempts: list[list[dict[str, Any]]] = []
    for attempt in range(args.retries + 1):
        idle = wait_for_quiet(args.max_foreign, args.quiet_wait)
        pair = []
        for kind in ("bare", "hub"):
            record = {**measure(kind), "attempt": attempt, "idle_before": idle}
            pair.append(record)
            log(f"{label} {kind:<4} " + describe_run(record))
        attempts.append(pair)
        foreign = max(r["cpu_other"] for r in pair)
        if foreign <= args.max_foreign:
            break
        if attempt < args.retries:
            log(
                f"{label}: {foreign:.2f} cores of foreign load (> --max-foreign "
                f"{args.max_foreign}); measuring the pair again"
            )
    kept = min(attempts, key=lambda p: max(r["cpu_other"] for r in p))
    for pair in attempts:
        for record in pair:
            ctx.recorder.write({**record, "discarded": pair is not kept})
    if len(attempts) > 1:
        log(f"{label}: kept attempt {kept[0]['attempt'] + 1} of {len(attempts)}")
    return kept


def run(ctx: Context, configs: list[Config]) -> list[dict[str, Any]]:
    args = ctx.args
    runs: list[dict[str, Any]] = []
    for round_no in range(args.repeats):
        for config in configs:
            runs += run_pair(
                ctx,
                f"round {round_no + 1}/{args.repeats} {config.name:<12}",
                lambda kind, c=config, n=round_no: saturation_run(kind, c, n, ctx),
            )
    half: list[dict[str, Any]] = []
    rates = {
        c.name: median([r["rps"] for r in runs if r["config"] == c.name and r["server"] == "hub"])
        / 2
        for c in configs
    }
    for round_no in range(0 if args.skip_half_rate else args.repeats):
        for config in configs:  # bare at the same rate shows what the machine alone adds
            half += run_pair(
                ctx,
                f"half rate {round_no + 1}/{args.repeats} {config.name:<12}",
                lambda kind, c=config, n=round_no: {
                    **half_rate_run(kind, c, rates[c.name], ctx),
                    "round": n,
                },
            )
    summaries = []
    for config in configs:
        summary = summarise(config, runs, half, db_label(args))
        ctx.recorder.write(summary)
        summaries.append(summary)
    return summaries


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every `finally`: servers stop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM, and SIGINT even when a background shell started us with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. Install it with:\n    apt-get install -y wrk\n"
            "(Debian/Ubuntu; run `apt-get update` first if the package is not found)",
            file=sys.stderr,
        )
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    failed = True
    try:
        payload = Payload.create(work_dir)
        scratch = set_up(args, work_dir)
        info = machine_info(scratch)
        meta = {"bench": "ingest", "started": stamp, "db": args.db}
        recorder = Recorder(BENCH / "results" / f"ingest-{stamp}.jsonl", meta)
        probe = {"load_avg": os.getloadavg()[0], "python_loop_ms": python_loop_ms()}
        recorder.write({"kind": "machine", **info, "args": vars(args), "noise_before": probe})
        where = (
            f"a snapshot of {info['commit']} in {scratch.code_root}"
            if scratch.snapshot
            else f"the working tree at {info['commit']} "
            f"(+{info['uncommitted_files']} uncommitted files)"
        )
        log(f"measuring the hub from {where}; code digest {info['code_digest']}")
        log(
            f"{info['cpu']}, {info['cores']} cores; db {args.db}; body {len(payload.body)} B; "
            f"load {probe['load_avg']:.2f}; python loop {probe['python_loop_ms']} ms; "
            f"scratch {work_dir}"
        )
        ctx = Context(args, scratch, payload, work_dir, recorder)
        summaries = run(ctx, configs_for(args))
        after = {"load_avg": os.getloadavg()[0], "python_loop_ms": python_loop_ms()}
        code = code_state(scratch)
        recorder.write({"kind": "noise_after", **after, **code})
        if code["code_digest"] != info["code_digest"]:
            log(
                f"WARNING: hub/ or connectors/ changed during the run (digest "
                f"{info['code_digest']} -> {code['code_digest']}): the servers started after "
                "the change ran other code"
            )
        log(
            f"done; load {after['load_avg']:.2f}; python loop {after['python_loop_ms']} ms; "
            f"results in {recorder.path.relative_to(ROOT)}"
        )
        print_table(summaries)
        failed = False
        return 0
    finally:
        if args.keep or failed:
            log(f"scratch kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
