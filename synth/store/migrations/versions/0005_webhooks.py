"""Webhooks: a project's allow-listed callback hosts and signing secret, a run's callback URL, and every
delivery attempt.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Columns are added and dropped in place, never by a batch rebuild (which would cascade-delete, see 0004).


def upgrade() -> None:
    op.add_column("projects", sa.Column("webhook_hosts", sa.JSON(), nullable=True))
    op.add_column("projects", sa.Column("webhook_secret", sa.String(length=80), nullable=True))
    op.add_column("runs", sa.Column("callback_url", sa.String(length=2000), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_deliveries_run_id", "webhook_deliveries", ["run_id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_at"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    for table, column in (("runs", "callback_url"), ("projects", "webhook_secret"), ("projects", "webhook_hosts")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
