"""The service layer for stored projects: what the API and the web pages call. Holds no synthesis
logic (that is synth.pipeline and synth.review); it stores, snapshots, audits and enforces scope.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synth.config import SynthConfig
from synth.formats import LoadedInput
from synth.review import Edit, apply_edit
from synth.schema import Contribution, Excluded, Synthesis
from synth.store.models import ApiKey, AuditEvent, ContributionRow, Project, Result, Run

ROLES = ("admin", "facilitator", "reader", "platform")
GENESIS = "0" * 64


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


def new_id() -> str:
    return str(uuid.uuid4())


# --- keys -------------------------------------------------------------------------------------------


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(s: Session, role: str, project_id: str | None, name: str = "") -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role != "admin" and project_id is None:
        raise ValueError("only an admin key may be unbound to a project")
    plaintext = "sk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id(), prefix=plaintext[:10], key_hash=hash_key(plaintext), project_id=project_id, role=role, name=name
    )
    s.add(key)
    return key, plaintext


def authenticate(s: Session, plaintext: str) -> ApiKey | None:
    return s.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))


# --- audit ------------------------------------------------------------------------------------------


def _event_hash(e: AuditEvent) -> str:
    body = json.dumps(
        [e.project_id, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after, e.prev_hash],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def audit(s: Session, project_id: str, actor: str, action: str, target: str, before=None, after=None) -> AuditEvent:  # noqa: ANN001
    # Appends to one project's chain are serialised: PostgreSQL locks the project row (FOR NO KEY UPDATE, which
    # does not wait on the key-share locks that inserts referencing the project hold); SQLite has one writer
    # and every caller has already written in this transaction, so it holds the write lock.
    s.execute(select(Project.id).where(Project.id == project_id).with_for_update(key_share=True))
    last = s.scalar(select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq.desc()))
    e = AuditEvent(
        project_id=project_id,
        seq=(last.seq + 1) if last else 1,
        at=datetime.now(UTC).isoformat(timespec="microseconds"),
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        prev_hash=last.hash if last else GENESIS,
    )
    e.hash = _event_hash(e)
    s.add(e)
    s.flush()
    return e


def audit_events(s: Session, project_id: str) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq)))


def verify_chain(s: Session, project_id: str) -> tuple[bool, int | None]:
    """(intact, first broken seq): each event's hash must match its content and link to the one before."""
    prev = GENESIS
    for e in audit_events(s, project_id):
        if e.prev_hash != prev or _event_hash(e) != e.hash:
            return False, e.seq
        prev = e.hash
    return True, None


# --- projects and contributions --------------------------------------------------------------------


def create_project(s: Session, name: str, actor: str) -> Project:
    p = Project(id=new_id(), name=name)
    s.add(p)
    s.flush()
    audit(s, p.id, actor, "project.create", p.id, None, {"name": name})
    return p


def list_projects(s: Session, only: str | None) -> list[Project]:
    q = select(Project).order_by(Project.created_at, Project.id)
    if only is not None:
        q = q.where(Project.id == only)
    return list(s.scalars(q))


def get_project(s: Session, project_id: str) -> Project:
    p = s.get(Project, project_id)
    if p is None:
        raise NotFound(f"no project {project_id}")
    return p


def delete_project(s: Session, project_id: str) -> None:
    """Removes the project, its contributions, runs, results, keys and audit trail."""
    p = get_project(s, project_id)
    for model in (Result,):
        for row in s.scalars(select(model).join(Run).where(Run.project_id == project_id)):
            s.delete(row)
    for model in (Run, ContributionRow, ApiKey, AuditEvent):
        for row in s.scalars(select(model).where(model.project_id == project_id)):
            s.delete(row)
    s.delete(p)


def add_contributions(s: Session, project_id: str, loaded: LoadedInput, actor: str) -> dict:
    """Idempotent upsert by external id: the same upload twice changes nothing the second time."""
    get_project(s, project_id)
    excluded = {e.contribution_id: e.reason for e in loaded.excluded}
    existing = {
        r.external_id: r
        for r in s.scalars(
            select(ContributionRow).where(
                ContributionRow.project_id == project_id,
                ContributionRow.external_id.in_([c.id for c in loaded.contributions]),
            )
        )
    }
    created = updated = unchanged = 0
    for c in loaded.contributions:
        data = c.model_dump(mode="json")
        row = existing.get(c.id)
        if row is None:
            s.add(
                ContributionRow(project_id=project_id, external_id=c.id, data=data, excluded_reason=excluded.get(c.id))
            )
            created += 1
        elif row.data != data or row.excluded_reason != excluded.get(c.id):
            row.data, row.excluded_reason = data, excluded.get(c.id)
            updated += 1
        else:
            unchanged += 1
    report = {
        "received": len(loaded.contributions),
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "excluded": [{"id": k, "reason": v} for k, v in excluded.items()],
        "notes": loaded.notes,
    }
    audit(
        s,
        project_id,
        actor,
        "contributions.upload",
        loaded.source,
        None,
        {k: report[k] for k in ("received", "created", "updated", "unchanged")},
    )
    return report


def list_contributions(s: Session, project_id: str, offset: int, limit: int) -> tuple[int, list[ContributionRow]]:
    get_project(s, project_id)
    where = ContributionRow.project_id == project_id
    total = s.scalar(select(func.count()).select_from(ContributionRow).where(where)) or 0
    rows = s.scalars(select(ContributionRow).where(where).order_by(ContributionRow.pk).offset(offset).limit(limit))
    return total, list(rows)


def get_contribution(s: Session, project_id: str, external_id: str) -> ContributionRow:
    row = s.scalar(
        select(ContributionRow).where(
            ContributionRow.project_id == project_id, ContributionRow.external_id == external_id
        )
    )
    if row is None:
        raise NotFound(f"no contribution {external_id}")
    return row


# --- runs and results -------------------------------------------------------------------------------


def start_run(s: Session, project_id: str, overrides: dict, actor: str) -> Run:
    """Queue a run on a snapshot of the contributions as they are now (later uploads do not change it)."""
    get_project(s, project_id)
    config = SynthConfig(**overrides)  # raises pydantic.ValidationError on a bad setting
    rows = list(
        s.scalars(select(ContributionRow).where(ContributionRow.project_id == project_id).order_by(ContributionRow.pk))
    )
    if not rows:
        raise Conflict("the project has no contributions to synthesise")
    snapshot = {
        "contributions": [r.data for r in rows],
        "excluded": [
            {"contribution_id": r.external_id, "reason": r.excluded_reason} for r in rows if r.excluded_reason
        ],
    }
    run = Run(id=new_id(), project_id=project_id, config=config.model_dump(mode="json"), snapshot=snapshot)
    s.add(run)
    s.flush()
    audit(s, project_id, actor, "run.start", run.id, None, {"contributions": len(rows), "overrides": overrides})
    return run


def snapshot_input(run: Run) -> LoadedInput:
    contributions = [Contribution(**c) for c in run.snapshot["contributions"]]
    excluded = [Excluded(**e) for e in run.snapshot["excluded"]]
    digest = hashlib.sha256(json.dumps(run.snapshot, sort_keys=True).encode()).hexdigest()
    return LoadedInput(contributions, excluded, f"run {run.id}", digest)


def get_run(s: Session, project_id: str, run_id: str) -> Run:
    run = s.get(Run, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(f"no run {run_id}")
    return run


def list_runs(s: Session, project_id: str) -> list[Run]:
    get_project(s, project_id)
    return list(s.scalars(select(Run).where(Run.project_id == project_id).order_by(Run.created_at, Run.id)))


def cancel_run(s: Session, project_id: str, run_id: str, actor: str) -> Run:
    run = get_run(s, project_id, run_id)
    if run.status in ("succeeded", "failed", "cancelled"):
        raise Conflict(f"run is already {run.status}")
    if run.status == "queued":
        run.status = "cancelled"
    else:
        run.cancel_requested = True
    audit(s, project_id, actor, "run.cancel", run_id)
    return run


def get_result(s: Session, project_id: str, run_id: str, revision: int | None = None) -> tuple[Result, Synthesis]:
    run = get_run(s, project_id, run_id)
    q = select(Result).where(Result.run_id == run.id)
    q = q.where(Result.revision == revision) if revision is not None else q.order_by(Result.revision.desc())
    row = s.scalars(q).first()
    if row is None:
        raise NotFound(f"run {run_id} has no result" + (f" revision {revision}" if revision is not None else ""))
    return row, Synthesis.model_validate_json(row.synthesis)


def revisions(s: Session, project_id: str, run_id: str) -> list[Result]:
    run = get_run(s, project_id, run_id)
    return list(s.scalars(select(Result).where(Result.run_id == run.id).order_by(Result.revision)))


def review(s: Session, project_id: str, run_id: str, edit: Edit, actor: str) -> tuple[int, Synthesis]:
    """Apply one edit to the newest revision; store the next revision; record who changed what."""
    row, current = get_result(s, project_id, run_id)
    updated = apply_edit(current, edit, SynthConfig(**s.get(Run, run_id).config))  # get_result checked the run
    s.add(Result(run_id=run_id, revision=row.revision + 1, synthesis=updated.model_dump_json(), timings={}))
    audit(
        s,
        project_id,
        actor,
        f"review.{edit.action}",
        f"run {run_id} revision {row.revision + 1}",
        _edit_before(current, edit),
        edit.model_dump(mode="json"),
    )
    return row.revision + 1, updated


def _edit_before(s: Synthesis, edit: Edit) -> dict:
    """What the edit changes, as it was: enough for a secretariat to see before and after."""
    themes = {t.id: t for sec in s.sections for t in sec.themes}
    data = edit.model_dump()
    before: dict = {"revision_labels": {}}
    for key in ("theme_id", "to_theme_id"):
        if data.get(key) in themes:
            t = themes[data[key]]
            before["revision_labels"][t.id] = t.label
            before.setdefault("members", {})[t.id] = t.contribution_ids[:200]
    for tid in data.get("theme_ids", []):
        if tid in themes:
            before["revision_labels"][tid] = themes[tid].label
    if data.get("action") == "review_sentence":
        summary = next((x for x in s.sections[edit.section].summaries if x.scope == edit.scope), None)
        if summary and edit.index < len(summary.sentences):
            sentence = summary.sentences[edit.index]
            before["sentence"] = {"text": sentence.text, "status": sentence.status}
    return before
