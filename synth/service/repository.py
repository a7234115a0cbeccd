"""Every database query the service layer makes, in one place: lookups that raise NotFound for what is
absent (or belongs to another project), and keyset pages for every list. Nothing here decides anything."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synth.service.errors import NotFound
from synth.store.models import (
    ApiKey,
    AuditEvent,
    ContributionRow,
    IdempotentResponse,
    Project,
    ProjectDeletion,
    Result,
    Run,
    WebhookDelivery,
    WebSession,
    now,
)


def _after_row(s: Session, q, model: type, after: str | None):  # noqa: ANN001, ANN202 - a Select
    """Keyset paging on (created_at, id): the rows after the one whose id is `after`."""
    if after is None:
        return q
    last = s.get(model, after)
    if last is None:
        return q
    return q.where((model.created_at > last.created_at) | ((model.created_at == last.created_at) & (model.id > after)))


# --- projects and keys ------------------------------------------------------------------------------


def project(s: Session, project_id: str) -> Project:
    p = s.get(Project, project_id)
    if p is None:
        raise NotFound(f"no project {project_id}")
    return p


def projects(s: Session, only: str | None, after: str | None = None, limit: int | None = None) -> list[Project]:
    """Projects in the order they were created (ids break ties); `after` is the last id of the page before."""
    q = select(Project).order_by(Project.created_at, Project.id)
    if only is not None:
        q = q.where(Project.id == only)
    q = _after_row(s, q, Project, after)
    return list(s.scalars(q.limit(limit)))


def key_by_hash(s: Session, digest: str) -> ApiKey | None:
    return s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))


def key(s: Session, project_id: str, key_id: str) -> ApiKey:
    found = s.get(ApiKey, key_id)
    if found is None or found.project_id != project_id:
        raise NotFound(f"no key {key_id}")
    return found


def keys(s: Session, project_id: str, after: str | None = None, limit: int | None = None) -> list[ApiKey]:
    project(s, project_id)
    q = select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at, ApiKey.id)
    q = _after_row(s, q, ApiKey, after)
    return list(s.scalars(q.limit(limit)))


def all_keys(s: Session, project_id: str | None = None) -> list[ApiKey]:
    """Every key (or one project's), for the command line."""
    q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if project_id is not None:
        q = q.where(ApiKey.project_id == project_id)
    return list(s.scalars(q))


def web_session(s: Session, id_hash: str) -> WebSession | None:
    return s.get(WebSession, id_hash)


def deletions(s: Session, after: int | None = None, limit: int | None = None) -> list[ProjectDeletion]:
    q = select(ProjectDeletion).order_by(ProjectDeletion.pk)
    if after is not None:
        q = q.where(ProjectDeletion.pk > after)
    return list(s.scalars(q.limit(limit)))


def deletion_record(s: Session, project_id: str) -> ProjectDeletion | None:
    return s.scalar(select(ProjectDeletion).where(ProjectDeletion.project_id == project_id))


# --- contributions ----------------------------------------------------------------------------------


def count_contributions(s: Session, project_id: str) -> int:
    return s.scalar(select(func.count()).where(ContributionRow.project_id == project_id)) or 0


def contributions(
    s: Session, project_id: str, after: int | None = None, limit: int | None = None
) -> list[ContributionRow]:
    """In upload order (the row key); `after` is the last row key of the page before."""
    q = select(ContributionRow).where(ContributionRow.project_id == project_id).order_by(ContributionRow.pk)
    if after is not None:
        q = q.where(ContributionRow.pk > after)
    return list(s.scalars(q.limit(limit)))


def contributions_by_id(s: Session, project_id: str, external_ids: list[str]) -> dict[str, ContributionRow]:
    q = select(ContributionRow).where(
        ContributionRow.project_id == project_id, ContributionRow.external_id.in_(external_ids)
    )
    return {r.external_id: r for r in s.scalars(q)}


def contribution(s: Session, project_id: str, external_id: str) -> ContributionRow:
    row = contributions_by_id(s, project_id, [external_id]).get(external_id)
    if row is None:
        raise NotFound(f"no contribution {external_id}")
    return row


def contributions_of_participant(s: Session, project_id: str, participant_id: str) -> list[ContributionRow]:
    q = select(ContributionRow).where(
        ContributionRow.project_id == project_id,
        ContributionRow.data["participant_id"].as_string() == participant_id,
    )
    return list(s.scalars(q.order_by(ContributionRow.pk)))


# --- runs and results -------------------------------------------------------------------------------


def run(s: Session, project_id: str, run_id: str) -> Run:
    found = s.get(Run, run_id)
    if found is None or found.project_id != project_id:
        raise NotFound(f"no run {run_id}")
    return found


def runs(s: Session, project_id: str, after: str | None = None, limit: int | None = None) -> list[Run]:
    project(s, project_id)
    q = select(Run).where(Run.project_id == project_id).order_by(Run.created_at, Run.id)
    q = _after_row(s, q, Run, after)
    return list(s.scalars(q.limit(limit)))


def stale_runs(s: Session, cutoff: datetime) -> list[Run]:
    """Runs 'running' whose worker stopped heartbeating, locked (rows another worker holds are skipped)."""
    q = select(Run).where(Run.status == "running", Run.heartbeat_at < cutoff).with_for_update(skip_locked=True)
    return list(s.scalars(q))


def queued_run_ids(s: Session, limit: int) -> list[str]:
    return list(s.scalars(select(Run.id).where(Run.status == "queued").order_by(Run.created_at).limit(limit)))


def take_run(s: Session, run_id: str, worker_id: str) -> bool:
    """Claim a queued run for a worker; False if another worker took it first (a conditional update)."""
    taken = s.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "queued")
        .values(status="running", worker_id=worker_id, heartbeat_at=now(), attempts=Run.attempts + 1)
    ).rowcount
    return taken == 1


def run_for_update(s: Session, run_id: str) -> Run | None:
    return s.scalar(select(Run).where(Run.id == run_id).with_for_update())


def upload_sources(s: Session, project_id: str) -> list[str]:
    """The names of the project's uploads, oldest first (from the audit trail, which records each)."""
    q = select(AuditEvent.target).where(
        AuditEvent.project_id == project_id, AuditEvent.action == "contributions.upload"
    )
    # an upload from the command line names a path on the server: only the file's name is shown
    names = (re.sub(r"(?:[A-Za-z]:)?[/\\](?:[^/\\\s]+[/\\])*", "", x) for x in s.scalars(q.order_by(AuditEvent.seq)))
    return list(dict.fromkeys(names))


def count_runs(s: Session, project_id: str, statuses: tuple[str, ...] | None = None) -> int:
    q = select(func.count()).where(Run.project_id == project_id)
    if statuses is not None:
        q = q.where(Run.status.in_(statuses))
    return s.scalar(q) or 0


def result_key(s: Session, run_id: str, revision: int | None) -> tuple[int, int] | None:
    """(revision, row key) of a revision, or of the newest when `revision` is None; None if there is none."""
    q = select(Result.revision, Result.pk).where(Result.run_id == run_id)
    q = q.where(Result.revision == revision) if revision is not None else q.order_by(Result.revision.desc())
    found = s.execute(q.limit(1)).first()
    return (found.revision, found.pk) if found is not None else None


def result_row(s: Session, pk: int) -> Result:
    return s.get_one(Result, pk)


def results(s: Session, run_id: str, after: int | None = None, limit: int | None = None) -> list[Result]:
    q = select(Result).where(Result.run_id == run_id).order_by(Result.revision)
    if after is not None:
        q = q.where(Result.revision > after)
    return list(s.scalars(q.limit(limit)))


def results_of_project(s: Session, project_id: str) -> list[Result]:
    return list(s.scalars(select(Result).join(Run).where(Run.project_id == project_id)))


def result_made_at(s: Session, run_id: str, revision: int):  # noqa: ANN201 - datetime | None
    return s.scalar(select(Result.created_at).where(Result.run_id == run_id, Result.revision == revision))


def rows_of_project(s: Session, model: type, project_id: str) -> list:
    return list(s.scalars(select(model).where(model.project_id == project_id)))


# --- audit ------------------------------------------------------------------------------------------


def lock_project_chain(s: Session, project_id: str) -> None:
    """Serialise appends to one project's audit chain. PostgreSQL locks the project row (FOR NO KEY UPDATE,
    which does not wait on the key-share locks that inserts referencing the project hold); SQLite has one
    writer and every caller has already written in this transaction, so it holds the write lock."""
    s.execute(select(Project.id).where(Project.id == project_id).with_for_update(key_share=True))


def last_event(s: Session, project_id: str) -> AuditEvent | None:
    return s.scalar(select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq.desc()))


def events(s: Session, project_id: str, after: int | None = None, limit: int | None = None) -> list[AuditEvent]:
    q = select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq)
    if after is not None:
        q = q.where(AuditEvent.seq > after)
    return list(s.scalars(q.limit(limit)))


def count_events(s: Session, project_id: str) -> int:
    return s.scalar(select(func.count()).where(AuditEvent.project_id == project_id)) or 0


def new_id() -> str:
    """A fresh id for a stored row (random, so ids of other tenants cannot be guessed)."""
    return str(uuid.uuid4())


def idempotent_responses(s: Session) -> list[IdempotentResponse]:
    return list(s.scalars(select(IdempotentResponse)))


# --- webhooks ---------------------------------------------------------------------------------------


def due_deliveries(s: Session, at: datetime, limit: int) -> list[WebhookDelivery]:
    q = select(WebhookDelivery).where(WebhookDelivery.status == "pending", WebhookDelivery.next_at <= at)
    return list(s.scalars(q.order_by(WebhookDelivery.next_at).limit(limit)))


def deliveries(s: Session, run_id: str, after: str | None = None, limit: int | None = None) -> list[WebhookDelivery]:
    q = select(WebhookDelivery).where(WebhookDelivery.run_id == run_id)
    q = q.order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    q = _after_row(s, q, WebhookDelivery, after)
    return list(s.scalars(q.limit(limit)))


def secret_of_run(s: Session, run_id: str) -> str | None:
    return s.scalar(select(Project.webhook_secret).join(Run, Run.project_id == Project.id).where(Run.id == run_id))
