"""The service layer for stored projects: what the API and the web pages call. Holds no synthesis
logic (that is synth.pipeline and synth.review); it stores, snapshots, audits and enforces scope.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synth.audit_key import event_mac, head_mac, same
from synth.config import SynthConfig
from synth.formats import LoadedInput
from synth.review import Edit, EditError, RevertToRevision, apply_edit
from synth.schema import Contribution, Excluded, Synthesis
from synth.store.models import (
    ApiKey,
    AuditEvent,
    ContributionRow,
    Project,
    ProjectDeletion,
    Result,
    Run,
    WebSession,
    now,
)

ROLES = ("admin", "facilitator", "reader", "platform")
GENESIS = "0" * 64
SESSION_DAYS = 14


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


class TooLarge(ValueError):
    """An upload or a project over one of the server's limits (HTTP 413)."""


class Invalid(ValueError):
    """A request that is well-formed but not acceptable (HTTP 422); `location` points at the bad value."""

    def __init__(self, message: str, location: list | None = None):
        super().__init__(message)
        self.location = location or []


@dataclass(frozen=True)
class Limits:
    """What one server accepts; set with SYNTH_MAX_* (see synth.api.DEFAULT_LIMITS)."""

    body_bytes: int
    contributions: int
    text_chars: int
    runs_per_project: int
    queued_runs_per_project: int

    @classmethod
    def of(cls, values: dict[str, int]) -> Limits:
        """The limits among a server's settings (which also hold limits the service layer does not use)."""
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})


def new_id() -> str:
    return str(uuid.uuid4())


# --- keys -------------------------------------------------------------------------------------------


def hash_key(plaintext: str) -> str:
    """Keys are 256 random bits, so an unsalted SHA-256 is enough: there is no dictionary to try, and the
    lookup by hash needs the hash to be deterministic."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(
    s: Session, role: str, project_id: str | None, name: str = "", expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role != "admin" and project_id is None:
        raise ValueError("only an admin key may be unbound to a project")
    plaintext = "sk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id(),
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        project_id=project_id,
        role=role,
        name=name,
        expires_at=now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    s.add(key)
    s.flush()
    return key, plaintext


def key_is_live(key: ApiKey | None) -> bool:
    return key is not None and key.revoked_at is None and (key.expires_at is None or key.expires_at > now())


def authenticate(s: Session, plaintext: str) -> ApiKey | None:
    """The live key with this plaintext, or None (unknown, revoked or expired)."""
    digest = hash_key(plaintext)
    key = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not secrets.compare_digest(key.key_hash, digest) or not key_is_live(key):
        return None
    return key


def list_keys(s: Session, project_id: str) -> list[ApiKey]:
    get_project(s, project_id)
    return list(s.scalars(select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at)))


def get_key(s: Session, project_id: str, key_id: str) -> ApiKey:
    key = s.get(ApiKey, key_id)
    if key is None or key.project_id != project_id:
        raise NotFound(f"no key {key_id}")
    return key


def revoke_key(s: Session, project_id: str, key_id: str, actor: str) -> ApiKey:
    """Revoked at once: the API refuses it and every browser session signed in with it ends."""
    key = get_key(s, project_id, key_id)
    if key.revoked_at is None:
        key.revoked_at = now()
        audit(s, project_id, actor, "key.revoke", key.prefix, None, {"name": key.name, "role": key.role})
    return key


def rotate_key(s: Session, project_id: str, key_id: str, actor: str) -> tuple[ApiKey, str]:
    """A new key with the old one's role, name and remaining lifetime; the old one is revoked."""
    old = get_key(s, project_id, key_id)
    if not key_is_live(old):
        raise Conflict("the key is revoked or expired; create a new one instead")
    days = None
    if old.expires_at is not None:
        days = max(1, (old.expires_at - now()).days)
    new, plaintext = create_key(s, old.role, project_id, old.name, days)
    old.revoked_at = now()
    audit(s, project_id, actor, "key.rotate", old.prefix, None, {"new": new.prefix, "name": old.name})
    return new, plaintext


# --- browser sessions -------------------------------------------------------------------------------


def start_session(s: Session, key: ApiKey) -> str:
    """A new browser session for a live key; returns the id the cookie carries (only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    s.add(WebSession(id_hash=hash_key(sid), key_id=key.id, expires_at=now() + timedelta(days=SESSION_DAYS)))
    return sid


def session_key(s: Session, sid: str) -> ApiKey | None:
    """The key behind a live session, checked on every request: None once signed out, expired or revoked."""
    row = s.get(WebSession, hash_key(sid))
    if row is None or row.ended_at is not None or row.expires_at <= now():
        return None
    key = s.get(ApiKey, row.key_id)
    return key if key_is_live(key) else None


def end_session(s: Session, sid: str) -> None:
    row = s.get(WebSession, hash_key(sid))
    if row is not None and row.ended_at is None:
        row.ended_at = now()


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
    e.mac = event_mac(e.hash)
    s.add(e)
    project = s.get(Project, project_id)
    if project is not None:
        project.audit_seq, project.audit_head_mac = e.seq, head_mac(project_id, e.seq, e.hash)
    s.flush()
    return e


def audit_events(s: Session, project_id: str) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq)))


def verify_chain(s: Session, project_id: str) -> tuple[bool, int | None]:
    """(intact, first broken seq). Each event's hash must match its content, link to the one before and carry
    the server's MAC (so recomputed hashes show); the newest event must be the one the project's MACed head
    names (so deleted newest events show). A deleted project's chain ends at its deletion record."""
    # The head is read first and only events up to it are checked: an append that commits while we read adds
    # events past the head, which is not tampering.
    project = s.get(Project, project_id)
    record = None
    if project is None:
        record = s.scalar(select(ProjectDeletion).where(ProjectDeletion.project_id == project_id))
    head_seq = project.audit_seq if project is not None else (record.audit_seq if record is not None else None)
    events = audit_events(s, project_id)
    if head_seq is not None:
        events = [e for e in events if e.seq <= head_seq]
    prev, last = GENESIS, None
    for e in events:
        if e.seq != (last.seq + 1 if last else 1) or e.prev_hash != prev or _event_hash(e) != e.hash:
            return False, e.seq
        if not same(e.mac, event_mac(e.hash)):
            return False, e.seq
        prev, last = e.hash, e
    if project is not None:
        head = project.audit_head_mac
    elif record is not None:
        head = record.mac
    else:
        return (last is None), (None if last is None else 1)
    seq, digest = (last.seq, last.hash) if last else (0, GENESIS)
    if seq != head_seq or (seq and not same(head, head_mac(project_id, seq, digest))):
        return False, min(seq, head_seq) + 1
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


def delete_project(s: Session, project_id: str, actor: str) -> ProjectDeletion:
    """Removes the project's contributions, runs, results and keys. Its audit trail stays (it holds actions,
    labels and ids, never contribution text), closed by a project.delete event, and an append-only deletion
    record keeps the chain's MACed head, so the record of what was done survives the project."""
    p = get_project(s, project_id)
    counts = {
        "contributions": s.scalar(select(func.count()).where(ContributionRow.project_id == project_id)) or 0,
        "runs": s.scalar(select(func.count()).where(Run.project_id == project_id)) or 0,
    }
    last = audit(s, project_id, actor, "project.delete", project_id, {"name": p.name}, counts)
    for row in s.scalars(select(Result).join(Run).where(Run.project_id == project_id)):
        s.delete(row)
    for model in (Run, ContributionRow, ApiKey):
        for row in s.scalars(select(model).where(model.project_id == project_id)):
            s.delete(row)
    record = ProjectDeletion(
        project_id=project_id,
        name=p.name,
        actor=actor,
        counts=counts,
        audit_seq=last.seq,
        audit_head=last.hash,
        mac=head_mac(project_id, last.seq, last.hash),
    )
    s.add(record)
    s.flush()
    s.delete(p)
    return record


def deletions(s: Session) -> list[ProjectDeletion]:
    return list(s.scalars(select(ProjectDeletion).order_by(ProjectDeletion.pk)))


def check_upload(loaded: LoadedInput, limits: Limits) -> None:
    """The server's limits on one upload, for every door (the API and the review pages alike)."""
    if len(loaded.contributions) > limits.contributions:
        raise TooLarge(f"{len(loaded.contributions)} contributions in one upload; the limit is {limits.contributions}")
    for i, c in enumerate(loaded.contributions):
        if len(c.text) > limits.text_chars:
            raise Invalid(
                f"contribution {c.id!r} (row {c.source_row or i + 1}) has {len(c.text)} characters; "
                f"the limit is {limits.text_chars}",
                ["contributions", i, "text"],
            )


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


def start_run(
    s: Session,
    project_id: str,
    overrides: dict,
    actor: str,
    limits: Limits | None = None,
    from_run: tuple[str, int | None] | None = None,
    codebook: list[dict] | None = None,
) -> Run:
    """Queue a run on a snapshot of the contributions as they are now (later uploads do not change it).
    `from_run` (run id, revision or None for the newest) makes it incremental: the revision is fixed now, so
    edits made to the earlier run while this one waits are not half taken.

    Each run stores a full snapshot, so a project may keep at most `runs_per_project` runs and have at most
    `queued_runs_per_project` waiting: one caller cannot fill the disk or the worker's queue."""
    get_project(s, project_id)
    config = SynthConfig(**overrides)  # raises pydantic.ValidationError on a bad setting
    if limits is not None:
        runs = s.scalar(select(func.count()).where(Run.project_id == project_id)) or 0
        if runs >= limits.runs_per_project:
            raise TooLarge(f"the project has {runs} runs; the limit is {limits.runs_per_project}: delete old runs")
        waiting = s.scalar(
            select(func.count()).where(Run.project_id == project_id, Run.status.in_(("queued", "running")))
        )
        if (waiting or 0) >= limits.queued_runs_per_project:
            raise Conflict(f"{waiting} runs of this project are already queued or running; wait for one to end")
    rows = list(
        s.scalars(select(ContributionRow).where(ContributionRow.project_id == project_id).order_by(ContributionRow.pk))
    )
    if not rows:
        raise Conflict("the project has no contributions to synthesise")
    snapshot: dict = {
        "contributions": [r.data for r in rows],
        "excluded": [
            {"contribution_id": r.external_id, "reason": r.excluded_reason} for r in rows if r.excluded_reason
        ],
    }
    if codebook:
        snapshot["codebook"] = codebook
    if from_run is not None:
        row, _ = get_result(s, project_id, *from_run)  # NotFound when the run or revision has no result
        snapshot["extends"] = {"run_id": from_run[0], "revision": row.revision}
    run = Run(id=new_id(), project_id=project_id, config=config.model_dump(mode="json"), snapshot=snapshot)
    s.add(run)
    s.flush()
    details = {"contributions": len(rows), "overrides": overrides}
    if from_run is not None:
        details["extends"] = snapshot["extends"]
    audit(s, project_id, actor, "run.start", run.id, None, details)
    return run


def earlier_result(s: Session, run: Run) -> tuple[str, int, Synthesis] | None:
    """For an incremental run: the earlier run's id, revision and synthesis it starts from."""
    extends = run.snapshot.get("extends")
    if not extends:
        return None
    _, synthesis = get_result(s, run.project_id, extends["run_id"], extends["revision"])
    return extends["run_id"], extends["revision"], synthesis


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


def delete_run(s: Session, project_id: str, run_id: str, actor: str) -> None:
    """Frees a run's snapshot and results; a queued or running run must be cancelled first."""
    run = get_run(s, project_id, run_id)
    if run.status in ("queued", "running"):
        raise Conflict(f"run is {run.status}; cancel it first")
    for row in s.scalars(select(Result).where(Result.run_id == run_id)):
        s.delete(row)
    s.delete(run)
    audit(s, project_id, actor, "run.delete", run_id)


def cancel_run(s: Session, project_id: str, run_id: str, actor: str) -> Run:
    run = get_run(s, project_id, run_id)
    if run.status in ("succeeded", "failed", "cancelled"):
        raise Conflict(f"run is already {run.status}")
    # conditional: a worker may be claiming the run at this moment; then it is asked to stop instead
    taken = s.execute(
        update(Run).where(Run.id == run_id, Run.status == "queued").values(status="cancelled", finished_at=now())
    ).rowcount
    if not taken:
        s.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
    s.refresh(run)
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


def report_title(s: Session, project_id: str, run_id: str, revision: int) -> str:
    """What a report is called: the project's name, the revision and the day it was made, never an internal id."""
    project = get_project(s, project_id)
    made = s.scalar(select(Result.created_at).where(Result.run_id == run_id, Result.revision == revision))
    day = f", {made:%d %B %Y}" if made else ""
    edited = f", after {revision} review edit{'s' if revision != 1 else ''}" if revision else ""
    return f"{project.name}: synthesis{edited}{day}"


def revisions(s: Session, project_id: str, run_id: str) -> list[Result]:
    run = get_run(s, project_id, run_id)
    return list(s.scalars(select(Result).where(Result.run_id == run.id).order_by(Result.revision)))


def review(s: Session, project_id: str, run_id: str, edit: Edit, actor: str) -> tuple[int, Synthesis]:
    """Apply one edit to the newest revision; store the next revision; record who changed what."""
    row, current = get_result(s, project_id, run_id)
    if isinstance(edit, RevertToRevision):  # undo: an earlier revision again, as a new revision; nothing is lost
        target = row.revision - 1 if edit.revision is None else edit.revision
        if not 0 <= target < row.revision:
            raise EditError(f"revision {target} is not an earlier revision of this run (newest: {row.revision})")
        updated = get_result(s, project_id, run_id, target)[1]
        edit = edit.model_copy(update={"revision": target})
    else:
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
    if data.get("action") == "revert_to_revision":
        before["revision"] = "the newest"
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
    if data.get("action") == "code_contributions":
        wanted = set(edit.contribution_ids)
        owner = {x.id: x.contribution_id for x in s.segments}
        codes: dict[str, list[str]] = {}
        for sec in s.sections:
            for a in sec.coding.assignments if sec.coding else []:
                if owner.get(a.segment_id) in wanted:
                    codes.setdefault(owner[a.segment_id], []).append(a.code_id)
        before["codes"] = {cid: sorted(set(v)) for cid, v in codes.items()}
    return before
