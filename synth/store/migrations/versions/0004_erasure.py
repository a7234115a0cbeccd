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


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("details_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("redacted_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("redacted_at")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("redacted")
        batch.drop_column("details_sha256")
