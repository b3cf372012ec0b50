"""`hub sync` and `hub scheduler`: run a sync now, follow it, read the history; the schedule."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

BAR_WIDTH = 24
REFRESH_SECONDS = 0.5


@contextmanager
def _runtime() -> Iterator[Any]:
    from hub.runtime import Runtime

    rt = Runtime.from_settings()
    try:
        yield rt
    finally:
        rt.close()


@click.group()
def sync() -> None:
    """The nightly sync: pull every tool, heal what webhooks missed, push golden records."""


@sync.command("run")
@click.option("--connection", default=None, help="One connection (default: every one).")
@click.option("--full", is_flag=True, help="Read everything again, not just what changed.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Follow the run with a progress bar until it ends (workers do the work).")
def sync_run(connection: str | None, full: bool, wait: bool) -> None:
    """Start a sync now; its pages and pushes are shared by every running `hub worker`."""
    from hub.services import sync_run as service
    from hub.sync_jobs import deps_for

    with _runtime() as rt:
        started = service.start(deps_for(rt), connection, full=full, trigger="cli")
        ids = []
        for name, run_id in sorted(started.items()):
            if run_id is None:
                click.echo(f"{name}: a sync is already running (see `hub sync status`)")
            else:
                click.echo(f"{name}: sync run {run_id} started{' (full)' if full else ''}")
                ids.append(run_id)
        if not wait or not ids:
            return
        runs = _follow(rt, ids, live=sys.stdout.isatty())
    for run in runs:
        click.echo(_summary(run))
    if any(r["status"] in ("failed", "needs_attention") for r in runs):
        sys.exit(1)


@sync.command("status")
@click.option("--connection", default=None)
@click.option("--limit", default=20, show_default=True)
@click.option("--watch/--no-watch", default=None,
              help="Live progress of running syncs (default: when the output is a terminal).")
def sync_status(connection: str | None, limit: int, watch: bool | None) -> None:
    """Recent runs; running ones with a live progress bar."""
    from hub.adapters.db import sync_store

    with _runtime() as rt:
        runs, _ = sync_store.list_runs(rt.engine, connection=connection, status=None,
                                       before=None, limit=limit)
        _status_table(runs)
        running = [r["id"] for r in runs if r["status"] == "running"]
        live = sys.stdout.isatty() if watch is None else watch
        if running and live:
            click.echo("")
            _follow(rt, running, live=True)


def _status_table(runs: list[dict[str, Any]]) -> None:
    click.echo(f"{'RUN':>5} {'CONNECTION':<14} {'STATUS':<15} {'STARTED':<19} {'READ':>8} "
               f"{'CREATED':>7} {'UPDATED':>7} {'SAME':>7} {'REJECT':>6} {'HEALED':>6} "
               f"{'PUSHED':>6} {'BLOCK':>5}")
    for run in runs:
        pull, push = run["pull"], run["push"]
        click.echo(f"{run['id']:>5} {run['connection']:<14} {run['status']:<15} "
                   f"{run['started_at'][:19]:<19} {pull['records_read']:>8} {pull['created']:>7} "
                   f"{pull['updated']:>7} {pull['unchanged']:>7} {pull['rejected']:>6} "
                   f"{pull['healed']:>6} {push['pushed']:>6} {push['blocked']:>5}")
        for error in run["errors"][-3:]:
            click.echo(f"      ! {error.get('where')}: {error.get('error')}")


@sync.command("show")
@click.argument("run_id", type=int)
def sync_show(run_id: int) -> None:
    """One run whole: per stream pages and records, counts, errors."""
    from hub.adapters.db import sync_store
    from hub.domain.errors import NotFoundError

    with _runtime() as rt:
        run = sync_store.run_detail(rt.engine, run_id)
    if run is None:
        raise NotFoundError(f"no sync run {run_id}")
    click.echo(json.dumps(run, indent=2))


def _follow(rt: Any, run_ids: list[int], *, live: bool) -> list[dict[str, Any]]:
    """Redraw one progress line per run until every run has ended."""
    from hub.adapters.db import sync_store

    drawn = 0
    while True:
        runs = [sync_store.run_detail(rt.engine, run_id) for run_id in run_ids]
        found = [r for r in runs if r is not None]
        if live:
            if drawn:
                click.echo(f"\x1b[{drawn}F", nl=False)
            for run in found:
                click.echo("\x1b[2K" + progress_line(run))
            drawn = len(found)
        if all(r["status"] != "running" for r in found):
            return found
        time.sleep(REFRESH_SECONDS)


def progress(run: dict[str, Any]) -> float:
    """How far a run is, 0..1: pull (committed of read, or of the vendor's total), then push."""
    if run["status"] != "running":
        return 1.0
    pull = run["pull"]
    expected = [s["expected"] for s in run["streams"]]
    reading = any(s["status"] == "reading" for s in run["streams"])
    total = sum(expected) if expected and all(e is not None for e in expected) else None
    denominator = max(total or 0, pull["records_read"], 1)
    fraction = pull["records_done"] / denominator
    if reading and total is None:
        fraction = min(fraction, 0.5)  # the end of the stream is not known yet
    if run["phase"] == "push":
        push = run["push"]
        return 0.9 + 0.1 * min(push["slices_done"] / max(push["slices"], 1), 1.0)
    return 0.9 * min(fraction, 1.0)


def progress_line(run: dict[str, Any]) -> str:
    share = progress(run)
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    pull, push = run["pull"], run["push"]
    return (f"{run['connection']:<14} [{bar}] {share * 100:3.0f}%  {run['status']:<9} "
            f"{run['phase']:<5} read {pull['records_read']} committed {pull['records_done']} "
            f"healed {pull['healed']} pushed {push['pushed']}")


def _summary(run: dict[str, Any]) -> str:
    pull, push = run["pull"], run["push"]
    text = (f"{run['connection']}: run {run['id']} {run['status']}; read {pull['records_read']} "
            f"(created {pull['created']}, updated {pull['updated']}, unchanged "
            f"{pull['unchanged']}, rejected {pull['rejected']}); {run['summary']}; pushed "
            f"{push['pushed']}, unchanged {push['unchanged']}, rejected {push['rejected']}, "
            f"blocked {push['blocked']}")
    if run["errors"]:
        text += f"; {len(run['errors'])} error(s), last: {run['errors'][-1].get('error')}"
    return text


@click.command()
def scheduler() -> None:
    """Run the schedule (rq's cron): each connection's sync, and the stalled-run watchdog.
    Run exactly one; restart it after adding a connection or changing a sync_cron."""
    from hub.cron import run_scheduler

    with _runtime() as rt:
        run_scheduler(rt)
