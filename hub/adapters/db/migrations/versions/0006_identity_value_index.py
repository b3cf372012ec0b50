"""an index on identity values: looking identities up by value must not scan them all

Revision ID: 0006
Revises: 0005

`find_owners` asks for the identities whose value is one of a batch's emails, phones and
external ids. The unique constraint leads with kind and scope, so PostgreSQL scanned the whole
table for every batch (found by bench/sync.py at 100 k contacts: 229 sequential scans of
contact_identities in one run).
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contact_identities_value", "contact_identities", ["value"])


def downgrade() -> None:
    op.drop_index("ix_contact_identities_value", table_name="contact_identities")
