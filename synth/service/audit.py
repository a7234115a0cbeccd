"""The audit trail: one hash chain of events per project, each hash MACed with the server's audit key,
and the check that finds a changed, removed or reordered event."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from synth.audit_key import event_mac, head_mac, same
from synth.service import repository as repo
from synth.store.models import AuditEvent, Project

GENESIS = "0" * 64


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def details_digest(before: object, after: object) -> str:
    return _digest([before, after])


def _event_hash(e: AuditEvent) -> str:
    """The hash covers the event's fields and a digest of its details, not the details themselves, so an
    erasure can redact quoted text in the details without breaking the chain. Events written before
    migration 0004 (no digest) are hashed over their details, as they were."""
    if e.details_sha256 is None:
        return _digest([e.project_id, e.seq, e.at, e.actor, e.action, e.target, e.before, e.after, e.prev_hash])
    return _digest([e.project_id, e.seq, e.at, e.actor, e.action, e.target, e.details_sha256, e.prev_hash])


def audit(s: Session, project_id: str, actor: str, action: str, target: str, before=None, after=None) -> AuditEvent:  # noqa: ANN001
    """Append an event to the project's chain. `before` and `after` hold what changed, never more."""
    repo.lock_project_chain(s, project_id)
    last = repo.last_event(s, project_id)
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
        details_sha256=details_digest(before, after),
        redacted=False,
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
    return repo.events(s, project_id)


def verify_chain(s: Session, project_id: str) -> tuple[bool, int | None]:
    """(intact, first broken seq). Each event's hash must match its content, link to the one before and carry
    the server's MAC (so recomputed hashes show); its details must match their digest unless an erasure event
    later in the chain lists it as redacted; the newest event must be the one the project's MACed head names
    (so deleted newest events show). A deleted project's chain ends at its deletion record."""
    # The head is read first and only events up to it are checked: an append that commits while we read adds
    # events past the head, which is not tampering.
    project = s.get(Project, project_id)
    record = None
    if project is None:
        record = repo.deletion_record(s, project_id)
    head_seq = project.audit_seq if project is not None else (record.audit_seq if record is not None else None)
    events = audit_events(s, project_id)
    if head_seq is not None:
        events = [e for e in events if e.seq <= head_seq]
    redacted = {
        seq for e in events if e.action == "contributions.erase" for seq in (e.after or {}).get("redacted_events", [])
    }
    prev, last = GENESIS, None
    for e in events:
        if e.seq != (last.seq + 1 if last else 1) or e.prev_hash != prev or _event_hash(e) != e.hash:
            return False, e.seq
        if not same(e.mac, event_mac(e.hash)):
            return False, e.seq
        changed = e.details_sha256 is not None and details_digest(e.before, e.after) != e.details_sha256
        if changed and not (e.redacted and e.seq in redacted):
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


def _quoted(labels: dict, theme_id: str | None) -> str:
    if theme_id is None:
        return "the unassigned list"
    return f"'{labels[theme_id]}'" if theme_id in labels else f"theme {theme_id}"


def sentence(e: AuditEvent) -> str:
    """One event as a person would say it: "Fran (facilitator key sk_NC…) merged 'Night buses' into 'Public
    transport' at 14:02 on 27 Nov 2026 (UTC)". The before/after details stay available beside it."""
    before, after = e.before or {}, e.after or {}
    labels = before.get("revision_labels", {})
    many = lambda n: f"{n} contribution{'s' if n != 1 else ''}"  # noqa: E731
    what = {
        "project.create": f"created the project '{after.get('name', '')}'",
        "project.delete": f"deleted the project '{before.get('name', '')}'",
        "key.create": f"created a {after.get('role', '')} key named '{after.get('name') or e.target}'",
        "key.revoke": f"revoked the key '{after.get('name') or e.target}'",
        "key.rotate": f"replaced the key '{after.get('name') or e.target}' with a new one",
        "contributions.upload": f"uploaded {after.get('received', 0)} contributions from {e.target} "
        f"({after.get('created', 0)} new, {after.get('updated', 0)} changed)",
        "contributions.erase": f"erased {many(after.get('contributions', 0))} ({after.get('reason', '')})",
        "run.start": f"started a run on {many(after.get('contributions', 0))}",
        "run.succeeded": "finished a run",
        "run.failed": f"recorded a failed run ({after.get('error', '')[:120]})",
        "run.cancelled": "stopped a run",
        "run.cancel": "cancelled a run",
        "run.requeued": "put an interrupted run back in the queue",
        "run.delete": "deleted a run",
        "webhooks.set": f"set the webhook hosts to {', '.join(after.get('hosts', [])) or 'none'}",
    }.get(e.action)
    if what is None and e.action.startswith("review."):
        action = e.action.removeprefix("review.")
        ids = after.get("contribution_ids") or []
        if action == "rename_theme":
            what = f"renamed {_quoted(labels, after.get('theme_id'))} to '{after.get('label', '')}'"
        elif action == "merge_themes":
            tids = after.get("theme_ids") or [None]
            what = f"merged {', '.join(_quoted(labels, t) for t in tids[1:])} into {_quoted(labels, tids[0])}"
        elif action == "split_theme":
            what = f"split {many(len(ids))} off {_quoted(labels, after.get('theme_id'))} as '{after.get('label', '')}'"
        elif action == "move_contributions":
            what = f"moved {many(len(ids))} to {_quoted(labels, after.get('to_theme_id'))}"
        elif action == "mark_minority":
            what = f"marked {many(len(ids))} as a minority view"
        elif action == "unmark_minority":
            what = f"removed minority view {after.get('view_id', '')}"
        elif action == "review_sentence":
            status = {"draft": "reset to draft"}.get(after.get("status"), after.get("status"))
            what = "reworded a summary sentence" if after.get("text") else f"{status} a summary sentence"
        elif action == "code_contributions":
            what = f"coded {many(len(ids))} as {after.get('code_id') or 'fitting no code'}"
        elif action == "revert_to_revision":
            what = f"returned the run to revision {after.get('revision')}"
    what = what or f"{e.action} {e.target}"
    when = datetime.fromisoformat(e.at)
    return f"{e.actor} {what} at {when:%H:%M} on {when.day} {when:%b %Y} (UTC)."


def mentions(e: AuditEvent, theme_id: str) -> bool:
    """Whether an event concerns a theme (named in its details)."""
    return theme_id in json.dumps([e.before, e.after])
