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
