"""Security: key expiry and revocation, server-side web sessions, audit anchors (HMAC per event and per head),
and an append-only record of deleted projects.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as b:
        b.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        b.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("projects") as b:
        b.add_column(sa.Column("audit_seq", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("audit_head_mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("audit_events") as b:
        b.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_sessions_key_id", "web_sessions", ["key_id"])
    op.create_table(
        "project_deletions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_head", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_project_deletions_project_id", "project_deletions", ["project_id"])
    _anchor_existing_chains()


def _anchor_existing_chains() -> None:
    """Events written before this migration get their MACs now: the chain is anchored as of the upgrade."""
    from synth.audit_key import event_mac, head_mac

    conn = op.get_bind()
    heads: dict[str, tuple[int, str]] = {}
    rows = conn.execute(sa.text("SELECT pk, project_id, seq, hash FROM audit_events ORDER BY project_id, seq"))
    for pk, project_id, seq, digest in list(rows):
        conn.execute(sa.text("UPDATE audit_events SET mac = :m WHERE pk = :pk"), {"m": event_mac(digest), "pk": pk})
        heads[project_id] = (seq, digest)
    for project_id, (seq, digest) in heads.items():
        conn.execute(
            sa.text("UPDATE projects SET audit_seq = :s, audit_head_mac = :m WHERE id = :p"),
            {"s": seq, "m": head_mac(project_id, seq, digest), "p": project_id},
        )


def downgrade() -> None:
    op.drop_table("project_deletions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("audit_events") as b:
        b.drop_column("mac")
    if op.get_bind().dialect.name != "sqlite":
        # on SQLite a batch drop rebuilds the table, and the old table's drop would cascade to every
        # contribution and run: the two columns stay there, unused
        with op.batch_alter_table("projects") as b:
            b.drop_column("audit_head_mac")
            b.drop_column("audit_seq")
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("revoked_at")
        b.drop_column("expires_at")
