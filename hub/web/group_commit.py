"""Group commit for the webhook receiver: concurrent deliveries in one process share one
database transaction.

Every accepted delivery must be committed before the vendor hears 202, and a commit costs an
fsync (and, on SQLite, the one write lock). Request threads hand their row to this process's
writer thread and wait; the writer commits everything queued in one multi-row INSERT, answers
each waiting request, then counts the batch and wakes a worker in one Redis round trip. At low
load a delivery is written at once, alone: there is no timer and no added latency. Nothing is
answered before its own row is committed, and a failed commit answers all of its batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from hub.adapters.db import inbox

MAX_BATCH = 64
WAIT_SECONDS = 30.0  # a request never waits longer than this for its commit
log = logging.getLogger(__name__)


@dataclass
class _Waiting:
    row: dict[str, Any]
    tag: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    result: inbox.Accepted | None = None
    error: BaseException | None = None


AfterCommit = Callable[[list[tuple[str, inbox.Accepted, dict[str, Any]]]], None]


class GroupCommitter:
    """`after_commit` gets (tag, result, row) for each committed batch, once per batch."""

    def __init__(self, engine: Engine, max_batch: int = MAX_BATCH,
                 after_commit: AfterCommit | None = None) -> None:
        self.engine = engine
        self.writer = inbox.InboxWriter(engine)
        self.max_batch = max_batch
        self.after_commit = after_commit
        self._queue: list[_Waiting] = []
        self._ready = threading.Condition()
        self._writer_pid: int | None = None
        self._signals: list[tuple[str, inbox.Accepted, dict[str, Any]]] = []
        self._signal_ready = threading.Condition()

    def close(self) -> None:
        """Give the writer's connection back (tests, shutdown)."""
        self.writer.close(invalidate=False)

    def accept(self, row: dict[str, Any], tag: str = "") -> inbox.Accepted:
        waiting = _Waiting(row, tag)
        with self._ready:
            self._ensure_writer()
            self._queue.append(waiting)
            self._ready.notify()
        if not waiting.done.wait(WAIT_SECONDS):
            raise TimeoutError("the inbox did not commit in time; nothing was accepted")
        if waiting.error is not None:
            raise waiting.error
        assert waiting.result is not None
        return waiting.result

    def _ensure_writer(self) -> None:
        """One writer thread per process, started on first use (after gunicorn's fork)."""
        if self._writer_pid != os.getpid():
            self._writer_pid = os.getpid()
            self.writer = inbox.InboxWriter(self.engine)  # never a connection from the parent
            threading.Thread(target=self._run, name="hub-inbox-writer", daemon=True).start()
            threading.Thread(target=self._signal_loop, name="hub-inbox-signal",
                             daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            self._write(batch)

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            results = self.writer.accept_many([w.row for w in batch])
        except BaseException as exc:  # noqa: BLE001 - each waiting request re-raises it
            for w in batch:
                w.error = exc
                w.done.set()
            return
        for w, result in zip(batch, results, strict=True):
            w.result = result
            w.done.set()  # answered first: the rows are committed
        if self.after_commit is not None:
            with self._signal_ready:
                self._signals.extend((w.tag, r, w.row) for w, r in zip(batch, results,
                                                                        strict=True))
                self._signal_ready.notify()

    def _signal_loop(self) -> None:
        """Counting and waking run beside the writer, so Redis never slows a commit; while
        one signal is on the wire the next batches' outcomes gather into one."""
        while True:
            with self._signal_ready:
                while not self._signals:
                    self._signal_ready.wait()
                pending, self._signals = self._signals, []
            if self.after_commit is None:
                continue
            try:
                self.after_commit(pending)
            except Exception:  # noqa: BLE001 - a signal must never stop the thread
                log.exception("signalling committed deliveries failed; the sweeper will wake "
                              "a worker")
