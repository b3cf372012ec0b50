"""Group commit: many threads accepting at once share transactions, and each still gets the
right answer (its own new id, or the stored id of a duplicate), with every row stored once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from hub.adapters.db.models import InboxEvent
from hub.web.group_commit import GroupCommitter


def row(connection_id: int, key: str) -> dict:
    return {"connection_id": connection_id, "delivery_key": key, "event_type": "customers/create",
            "headers": {}, "body": b"{}", "status": "accepted", "received_at": datetime.now(UTC)}


def test_concurrent_deliveries_are_stored_once_and_each_answered_rightly(runtime):
    committer = GroupCommitter(runtime.engine, max_batch=16)
    keys = [f"k{n % 150}" for n in range(400)]  # 150 distinct deliveries, most sent 2-3 times
    answers: dict[int, object] = {}
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            answers[n] = committer.accept(row(1, keys[n]))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with runtime.engine.connect() as conn:
        stored = dict(conn.execute(select(InboxEvent.delivery_key, InboxEvent.id)).all())
        count = conn.execute(select(func.count()).select_from(InboxEvent)).scalar()
    assert count == 150
    new_per_key: dict[str, int] = {}
    for n, answer in answers.items():
        assert answer.event_id == stored[keys[n]]
        new_per_key[keys[n]] = new_per_key.get(keys[n], 0) + (not answer.duplicate)
    assert set(new_per_key.values()) == {1}  # exactly one "accepted" per delivery
    committer.close()


def test_a_failing_batch_answers_every_waiting_request_with_the_error(runtime):
    committer = GroupCommitter(runtime.engine)
    bad = row(999_999, "orphan")  # no such connection: the foreign key refuses the insert
    try:
        committer.accept(bad)
    except Exception as exc:  # noqa: BLE001 - the type differs between backends
        assert "foreign" in str(exc).lower() or "constraint" in str(exc).lower()
    else:
        raise AssertionError("the insert should have been refused")
    assert committer.accept(row(1, "fine")).duplicate is False  # the committer recovered
    committer.close()


def test_a_writer_whose_connection_died_writes_on_a_new_one(runtime):
    from sqlalchemy import text

    from hub.adapters.db.inbox import InboxWriter

    writer = InboxWriter(runtime.engine)
    assert writer.accept_many([row(1, "before")])[0].duplicate is False
    held = writer._conn
    if runtime.engine.dialect.name == "postgresql":  # the server ends it, as a restart would
        with runtime.engine.connect() as other:
            pid = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    else:
        held.connection.dbapi_connection.close()
    [answer] = writer.accept_many([row(1, "after")])
    assert answer.duplicate is False
    assert writer._conn is not held
    with runtime.engine.connect() as conn:
        keys = set(conn.execute(select(InboxEvent.delivery_key)).scalars())
    assert keys == {"before", "after"}
    writer.close(invalidate=False)
