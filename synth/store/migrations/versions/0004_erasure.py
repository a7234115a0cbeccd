"""Erasure: audit events hash a digest of their details (so details can be redacted and the chain still
verifies), mark redacted events, and runs record when their snapshot and results were redacted.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


# Columns are added and dropped in place (SQLite >= 3.35 drops columns natively): a batch rebuild would drop
# and recreate the table, and with foreign keys on, that deletes every row that references it.


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("details_sha256", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("redacted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    for table, column in (("runs", "redacted_at"), ("audit_events", "redacted"), ("audit_events", "details_sha256")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
