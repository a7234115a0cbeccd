"""Projects and their contributions: create, list, delete (keeping the audit trail), upload within the
server's limits, and read back."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy.orm import Session

from synth.audit_key import head_mac
from synth.formats import LoadedInput
from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.errors import Invalid, TooLarge
from synth.store.models import ApiKey, ContributionRow, Project, ProjectDeletion, Run

# body_bytes applies to uploads; every other request body is held to small_body_bytes.
DEFAULT_LIMITS = {
    "body_bytes": 20_000_000,
    "small_body_bytes": 1_000_000,
    "contributions": 50_000,
    "text_chars": 20_000,
    "runs_per_project": 100,
    "queued_runs_per_project": 3,
}


@dataclass(frozen=True)
class Limits:
    """What one server accepts: DEFAULT_LIMITS, each overridden by SYNTH_MAX_<NAME>."""

    body_bytes: int
    small_body_bytes: int
    contributions: int
    text_chars: int
    runs_per_project: int
    queued_runs_per_project: int

    @classmethod
    def from_env(cls, overrides: dict[str, int] | None = None) -> Limits:
        values = {k: int(os.environ.get(f"SYNTH_MAX_{k.upper()}", v)) for k, v in DEFAULT_LIMITS.items()}
        return cls(**{**values, **(overrides or {})})


def create_project(s: Session, name: str, actor: str) -> Project:
    p = Project(id=repo.new_id(), name=name)
    s.add(p)
    s.flush()
    audit(s, p.id, actor, "project.create", p.id, None, {"name": name})
    return p


def delete_project(s: Session, project_id: str, actor: str) -> ProjectDeletion:
    """Removes the project's contributions, runs, results and keys. Its audit trail stays (it holds actions,
    labels and ids, never contribution text), closed by a project.delete event, and an append-only deletion
    record keeps the chain's MACed head, so the record of what was done survives the project."""
    p = repo.project(s, project_id)
    counts = {
        "contributions": repo.count_contributions(s, project_id),
        "runs": repo.count_runs(s, project_id),
    }
    last = audit(s, project_id, actor, "project.delete", project_id, {"name": p.name}, counts)
    for row in repo.results_of_project(s, project_id):
        s.delete(row)
    for model in (Run, ContributionRow, ApiKey):
        for row in repo.rows_of_project(s, model, project_id):
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
    repo.project(s, project_id)
    excluded = {e.contribution_id: e.reason for e in loaded.excluded}
    existing = repo.contributions_by_id(s, project_id, [c.id for c in loaded.contributions])
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
