"""nightly sync: runs, their streams and chunks, stream bookmarks, push state

Revision ID: 0005
Revises: 0003

The history runs 0001, 0002, 0004, 0003 (see 0003): this revision follows 0003, the head,
so that the history stays a single line.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.adapters.db.models

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = hub.adapters.db.models.UTCDateTime(timezone=True)
COUNTERS = ("records_read", "records_done", "created", "updated", "unchanged", "rejected",
            "healed", "pushed", "push_unchanged", "push_rejected", "push_blocked", "withdrawals",
            "push_slices", "push_slices_done")


def upgrade() -> None:
    op.create_table(
        "sync_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
        sa.Column("push_complete", sa.Boolean(), nullable=False),
        sa.Column("errors", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    op.create_index("ix_sync_runs_connection_id", "sync_runs", ["connection", "id"])
    op.create_index("ix_sync_runs_status", "sync_runs", ["status"])
    op.create_table(
        "sync_run_streams",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_params", JSON, nullable=True),
        sa.Column("start_value", sa.String(length=255), nullable=True),
        sa.Column("start_ids", JSON, nullable=False),
        sa.Column("max_value", sa.String(length=255), nullable=True),
        sa.Column("max_ids", JSON, nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"],
                                name=op.f("fk_sync_run_streams_run_id_sync_runs")),
        sa.PrimaryKeyConstraint("run_id", "stream", name=op.f("pk_sync_run_streams")),
    )
    op.create_table(
        "sync_chunks",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("start_value", sa.String(length=255), nullable=True),
        sa.Column("start_ids", JSON, nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("fetched_at", WHEN, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"],
                                name=op.f("fk_sync_chunks_run_id_sync_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_chunks")),
        sa.UniqueConstraint("run_id", "stream", "seq", name="uq_sync_chunk"),
    )
    op.create_index("ix_sync_chunks_run_status", "sync_chunks", ["run_id", "status"])
    op.create_table(
        "sync_bookmarks",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("ids", JSON, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("connection", "stream", name=op.f("pk_sync_bookmarks")),
    )
    op.create_table(
        "sync_push_state",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=True),
        sa.Column("consent", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("pushed_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("connection", "contact_id", name=op.f("pk_sync_push_state")),
    )
    op.create_index("ix_sync_push_state_status", "sync_push_state", ["connection", "status"])


def downgrade() -> None:
    op.drop_index("ix_sync_push_state_status", table_name="sync_push_state")
    op.drop_table("sync_push_state")
    op.drop_table("sync_bookmarks")
    op.drop_index("ix_sync_chunks_run_status", table_name="sync_chunks")
    op.drop_table("sync_chunks")
    op.drop_table("sync_run_streams")
    op.drop_index("ix_sync_runs_status", table_name="sync_runs")
    op.drop_index("ix_sync_runs_connection_id", table_name="sync_runs")
    op.drop_table("sync_runs")
