"""contact merges, merged_into, survivorship rules; erasure, tombstones, consent history

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.adapters.db.models

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = hub.adapters.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into", ID, nullable=True))
        batch_op.add_column(sa.Column("erased_at", WHEN, nullable=True))
        batch_op.create_foreign_key(
            "fk_contacts_merged_into_contacts", "contacts", ["merged_into"], ["id"])
    op.create_table(
        "contact_merges",
        sa.Column("id", ID, nullable=False),
        sa.Column("winner_id", ID, nullable=False),
        sa.Column("loser_id", ID, nullable=False),
        sa.Column("snapshot", JSON, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("undone_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["winner_id"], ["contacts.id"],
                                name=op.f("fk_contact_merges_winner_id_contacts")),
        sa.ForeignKeyConstraint(["loser_id"], ["contacts.id"],
                                name=op.f("fk_contact_merges_loser_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    op.create_index(op.f("ix_contact_merges_winner_id"), "contact_merges", ["winner_id"])
    op.create_index(op.f("ix_contact_merges_loser_id"), "contact_merges", ["loser_id"])
    op.create_table(
        "survivorship_rules",
        sa.Column("field", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("sources", JSON, nullable=False),
        sa.Column("conflict_window_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("field", name=op.f("pk_survivorship_rules")),
    )
    _compliance_tables()


def _compliance_tables() -> None:
    op.create_table(
        "consent_history",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("lawful_basis", sa.String(length=32), nullable=True),
        sa.Column("double_opt_in", sa.Boolean(), nullable=True),
        sa.Column("consent_at", sa.String(length=40), nullable=True),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_consent_history_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_history")),
    )
    op.create_index(op.f("ix_consent_history_contact_id"), "consent_history", ["contact_id"])
    op.create_table(
        "erasures",
        sa.Column("id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("receipt", JSON, nullable=False),
        sa.Column("pending", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("requested_at", WHEN, nullable=False),
        sa.Column("completed_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_erasures_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_contact_id"), "erasures", ["contact_id"])
    op.create_table(
        "tombstones",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("erasure_id", ID, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["erasure_id"], ["erasures.id"],
                                name=op.f("fk_tombstones_erasure_id_erasures")),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_tombstones")),
    )
    op.create_table(
        "hub_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hub_state")),
    )


def downgrade() -> None:
    for table in ("hub_state", "tombstones", "erasures", "consent_history"):
        op.drop_table(table)
    op.drop_table("survivorship_rules")
    op.drop_index(op.f("ix_contact_merges_loser_id"), table_name="contact_merges")
    op.drop_index(op.f("ix_contact_merges_winner_id"), table_name="contact_merges")
    op.drop_table("contact_merges")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contacts_merged_into_contacts", type_="foreignkey")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("erased_at")
