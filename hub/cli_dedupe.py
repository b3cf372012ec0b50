"""`hub dedupe`: find contacts that are probably one person (hub.services.dedupe_scan)."""

from __future__ import annotations

import sys
from typing import Any

import click

CHECKPOINT_FILE = "dedupe-scan.json"


class BarProgress:
    """The scan's phases as click progress bars on stderr (stdout keeps the summary)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def phase(self, name: str, total: int) -> None:
        self.close()
        self._bar = click.progressbar(length=max(total, 1), label=f"{name:<18}",
                                      file=sys.stderr, show_pos=True)
        self._bar.__enter__()

    def advance(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@click.group()
def dedupe() -> None:
    """Duplicate detection across all contacts."""


@dedupe.command("scan")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted scan from its checkpoint (same weights).")
@click.option("--limit-pairs", type=click.IntRange(min=1), default=None,
              help="Stop after about N comparisons; --resume continues.")
def scan(resume: bool, limit_pairs: int | None) -> None:
    """Compare all contacts; flag likely duplicates and report the pairs the rules would merge.

    Re-running adds no flag twice, and a pair an admin dismissed ("not a duplicate") is never
    flagged again.
    """
    from hub.adapters.db.dedupe_store import FileCheckpoint, SqlDedupeStore
    from hub.runtime import Runtime
    from hub.services.dedupe_scan import run_scan

    rt = Runtime.from_settings()
    progress = BarProgress()
    try:
        report = run_scan(SqlDedupeStore(rt.engine),
                          FileCheckpoint(rt.settings.var_dir / CHECKPOINT_FILE),
                          resume=resume, limit_pairs=limit_pairs, progress=progress)
    finally:
        progress.close()
        rt.close()
    state = "complete" if report.complete else "stopped early; run `hub dedupe scan --resume`"
    click.echo(
        f"scan {state}{' (resumed)' if report.resumed else ''}: {report.contacts} contacts, "
        f"{report.pairs_compared} pairs compared, {report.flagged} likely duplicates "
        f"({report.would_merge} the rules would merge), {report.new_flags} new flags, "
        f"{report.dismissed_skipped} dismissed pairs skipped; "
        f"{report.seconds:.1f} s, peak memory {report.peak_rss_mib:.0f} MiB"
    )
