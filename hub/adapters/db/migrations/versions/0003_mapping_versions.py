"""mapping versions, activations, custom fields; longer provenance mapping_version

Revision ID: 0003
Revises: 0004

0004 (merges and survivorship) was committed on top of 0002 before this revision existed, so
this one follows 0004 to keep a single, linear history: a database already at 0004 upgrades to
this one, and a fresh one runs 0001, 0002, 0004, 0003.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.adapters.db.models

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = hub.adapters.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mapping_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"],
                                name=op.f("fk_mapping_versions_connection_id_connections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mapping_versions")),
        sa.UniqueConstraint("connection_id", "object_type", "direction", "number",
                            name="uq_mapping_version"),
    )
    op.create_table(
        "mapping_activations",
        sa.Column("id", ID, nullable=False),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("version_id", ID, nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("activated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"],
                                name=op.f("fk_mapping_activations_connection_id_connections")),
        sa.ForeignKeyConstraint(["version_id"], ["mapping_versions.id"],
                                name=op.f("fk_mapping_activations_version_id_mapping_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mapping_activations")),
    )
    op.create_index("ix_mapping_activation_key", "mapping_activations",
                    ["connection_id", "object_type", "direction"])
    op.create_table(
        "custom_fields",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=70), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("choices", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint("name", name=op.f("uq_custom_fields_name")),
    )
    # "shop/customer/outbound/v12" names a stored version; 64 characters could cut it.
    with op.batch_alter_table("field_provenance", schema=None) as batch_op:
        batch_op.alter_column("mapping_version", existing_type=sa.String(length=64),
                              type_=sa.String(length=200), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("field_provenance", schema=None) as batch_op:
        batch_op.alter_column("mapping_version", existing_type=sa.String(length=200),
                              type_=sa.String(length=64), existing_nullable=True)
    op.drop_table("custom_fields")
    op.drop_index("ix_mapping_activation_key", table_name="mapping_activations")
    op.drop_table("mapping_activations")
    op.drop_table("mapping_versions")
