"""The batch write helpers give the same rows on both databases, whatever path they take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import StatementError

from hub.adapters.db.admin import AUD
from hub.adapters.db.contacts import C, P
from hub.adapters.db.dialect import insert_many, upsert_many
from hub.runtime import Runtime

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _contacts(runtime: Runtime, n: int) -> list[int]:
    rows = [{"email": f"p{i}@example.com", "data": {}, "search_text": "", "created_at": T0,
             "updated_at": T0} for i in range(n)]
    with runtime.engine.begin() as conn:
        return list(conn.execute(insert(C).returning(C.c.id, sort_by_parameter_order=True),
                                 rows).scalars())


def _row(contact_id: int, field: str, connection: str, minutes: int) -> dict[str, object]:
    return {"contact_id": contact_id, "field": field, "connection": connection,
            "event_id": f"e{minutes}", "observed_at": T0 + timedelta(minutes=minutes),
            "mapping_version": None}


def _provenance(runtime: Runtime) -> dict[tuple[int, str], tuple[str, datetime]]:
    with runtime.engine.connect() as conn:
        return {(r.contact_id, r.field): (r.connection, r.observed_at)
                for r in conn.execute(select(P))}


def test_upsert_many_inserts_updates_and_keeps_the_last_of_a_repeated_key(runtime: Runtime
                                                                          ) -> None:
    a, b = _contacts(runtime, 2)
    with runtime.engine.begin() as conn:
        upsert_many(conn, P, [_row(a, "email", "shop", 1), _row(a, "phone", "shop", 1)],
                    key=["contact_id", "field"], update=["connection", "observed_at"])
    with runtime.engine.begin() as conn:
        upsert_many(conn, P, [_row(a, "email", "crm", 2), _row(b, "email", "crm", 3),
                              _row(b, "email", "mail", 4)],
                    key=["contact_id", "field"], update=["connection", "observed_at"])
    assert _provenance(runtime) == {
        (a, "email"): ("crm", T0 + timedelta(minutes=2)),
        (a, "phone"): ("shop", T0 + timedelta(minutes=1)),
        (b, "email"): ("mail", T0 + timedelta(minutes=4)),
    }


def test_upsert_many_without_update_leaves_existing_rows_alone(runtime: Runtime) -> None:
    (a,) = _contacts(runtime, 1)
    with runtime.engine.begin() as conn:
        upsert_many(conn, P, [_row(a, "email", "shop", 1)], key=["contact_id", "field"])
        upsert_many(conn, P, [_row(a, "email", "crm", 2), _row(a, "city", "crm", 2)],
                    key=["contact_id", "field"])
        upsert_many(conn, P, [], key=["contact_id", "field"])
    assert _provenance(runtime) == {(a, "email"): ("shop", T0 + timedelta(minutes=1)),
                                    (a, "city"): ("crm", T0 + timedelta(minutes=2))}


def test_ordered_returning_pairs_each_new_contact_with_its_row(runtime: Runtime) -> None:
    ids = _contacts(runtime, 1500)
    with runtime.engine.connect() as conn:
        emails = dict(conn.execute(select(C.c.id, C.c.email)).all())
    assert [emails[i] for i in ids] == [f"p{i}@example.com" for i in range(1500)]


def test_insert_many_takes_columns_by_name_with_json_and_times(runtime: Runtime) -> None:
    rows = [{"details": {"fields": ["email", "phone"], "n": i}, "entity_id": str(i),
             "at": T0 + timedelta(seconds=i), "actor": "worker", "action": "contact.updated",
             "entity_type": "contact"} for i in range(3)]
    with runtime.engine.begin() as conn:
        insert_many(conn, AUD, rows)
        insert_many(conn, AUD, [])
    with runtime.engine.connect() as conn:
        stored = conn.execute(select(AUD.c.entity_id, AUD.c.at, AUD.c.details)
                              .where(AUD.c.actor == "worker").order_by(AUD.c.entity_id)).all()
    assert [tuple(r) for r in stored] == [
        (str(i), T0 + timedelta(seconds=i), {"fields": ["email", "phone"], "n": i})
        for i in range(3)]


def test_a_naive_time_is_refused_before_anything_is_written(runtime: Runtime) -> None:
    (a,) = _contacts(runtime, 1)
    row = {**_row(a, "email", "shop", 1), "observed_at": datetime(2026, 1, 1)}  # noqa: DTZ001
    with pytest.raises((ValueError, StatementError), match="naive datetime"), \
            runtime.engine.begin() as conn:
        upsert_many(conn, P, [_row(a, "city", "shop", 1), row], key=["contact_id", "field"],
                    update=["connection"])
    assert _provenance(runtime) == {}


def test_refreshed_statistics_reach_the_planner(runtime: Runtime) -> None:
    from sqlalchemy import text

    from hub.adapters.db.sync_store import refresh_statistics

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("a no-op on SQLite, which plans from its indexes")
    _contacts(runtime, 50)
    refresh_statistics(runtime.engine)
    with runtime.engine.connect() as conn:
        tuples = conn.execute(text("SELECT reltuples FROM pg_class "
                                   "WHERE oid = 'contacts'::regclass")).scalar_one()
    assert tuples == 50  # -1 until a table is first analysed
