"""Runs carry a name a person gave (or "Run N") and the uploads their snapshot came from.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("name", sa.String(length=200), nullable=False, server_default=""))
    op.add_column("runs", sa.Column("sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    for column in ("sources", "name"):
        op.execute(f"ALTER TABLE runs DROP COLUMN {column}")
