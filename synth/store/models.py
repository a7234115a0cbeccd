"""Database tables (SQLAlchemy 2). SQLite by default, PostgreSQL when SYNTH_DATABASE_URL says so.

Large documents (a run's snapshot, a Synthesis) are stored as JSON text: they are written once and read
whole; what is queried (status, ids, keys, events) has columns of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now)
    # The anchor of the audit chain: the newest event's seq and an HMAC (server secret) over (id, seq, hash).
    # Without it, deleting the newest events, or rewriting every hash, would leave a chain that checks out.
    audit_seq: Mapped[int] = mapped_column(default=0)
    audit_head_mac: Mapped[str | None] = mapped_column(String(64), default=None)
    webhook_hosts: Mapped[list | None] = mapped_column(JSON, default=None)  # host[:port] a callback may reach
    webhook_secret: Mapped[str | None] = mapped_column(String(80), default=None)  # signs deliveries (HMAC)


class ContributionRow(Base):
    __tablename__ = "contributions"
    __table_args__ = (UniqueConstraint("project_id", "external_id"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict] = mapped_column(JSON)  # the Contribution, as synth.schema dumps it
    excluded_reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_created", "status", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued running succeeded failed cancelled
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    snapshot: Mapped[dict] = mapped_column(JSON, deferred=True)  # contributions at the start; loaded on use
    progress: Mapped[dict] = mapped_column(JSON, default=dict)  # stage -> [done, total]
    attempts: Mapped[int] = mapped_column(default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    redacted_at: Mapped[datetime | None] = mapped_column(default=None)  # an erasure rewrote snapshot and results
    callback_url: Mapped[str | None] = mapped_column(String(2000), default=None)  # told when the run ends
    name: Mapped[str] = mapped_column(String(200), default="")  # given by a person, else "Run N"
    sources: Mapped[list | None] = mapped_column(JSON, default=None)  # the uploads its snapshot holds


class Result(Base):
    """Revision 0 is the machine's Synthesis; each review edit adds the next revision."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("run_id", "revision"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column()
    synthesis: Mapped[str] = mapped_column(Text)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=now)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), default=None)
    role: Mapped[str] = mapped_column(String(20))  # admin facilitator reader platform
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A signed-in browser. The cookie holds only the session's random id; this row is checked on every request,
    so signing out, or revoking the key, ends the session at once."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's session id
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class ProjectDeletion(Base):
    """Append-only record that a project existed and was deleted, by whom, and how its audit chain ended: the
    project's own audit events are kept (they hold no contribution text) and end with a project.delete event."""

    __tablename__ = "project_deletions"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime] = mapped_column(default=now)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    audit_seq: Mapped[int] = mapped_column()
    audit_head: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class IdempotentResponse(Base):
    """The first response to a POST sent with an Idempotency-Key, replayed when the same caller sends the same
    request with the same key again (a retry after a lost connection must not start a second run)."""

    __tablename__ = "idempotent_responses"
    __table_args__ = (UniqueConstraint("owner", "idem_key"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(64))  # sha256 of the caller's API key
    idem_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column()
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)


class AuditEvent(Base):
    """Tamper-evident: each event's hash covers its content and the previous event's hash."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("project_id", "seq"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(36), index=True)
    seq: Mapped[int] = mapped_column()
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict | None] = mapped_column(JSON, default=None)
    after: Mapped[dict | None] = mapped_column(JSON, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), default=None)  # HMAC of hash with the server's audit key
    # sha256 of (before, after); the hash covers this digest, so details can be redacted (erasure) and the chain
    # still verifies. None: an event from before migration 0004, hashed over its details directly.
    details_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    redacted: Mapped[bool] = mapped_column(default=False)  # details redacted by an erasure (listed in its event)


class WebhookDelivery(Base):
    """One event for one callback URL, with every attempt to deliver it (retried with back-off)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending delivered failed
    attempts: Mapped[list] = mapped_column(JSON, default=list)  # [{at, status_code, error}]
    next_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=now)
