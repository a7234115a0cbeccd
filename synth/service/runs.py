"""Runs: queued on a snapshot of the contributions, claimed by a worker (synth.jobs), cancelled or deleted."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import update
from sqlalchemy.orm import Session

from synth.config import SynthConfig
from synth.formats import LoadedInput
from synth.schema import Contribution, Excluded, Synthesis
from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.errors import Conflict, TooLarge
from synth.service.projects import Limits
from synth.service.results import get_result
from synth.service.webhooks import check_callback, on_run_end
from synth.store.models import Run, now


def start_run(
    s: Session,
    project_id: str,
    overrides: dict,
    actor: str,
    limits: Limits | None = None,
    from_run: tuple[str, int | None] | None = None,
    codebook: list[dict] | None = None,
    callback_url: str | None = None,
    name: str = "",
) -> Run:
    """Queue a run on a snapshot of the contributions as they are now (later uploads do not change it).
    `from_run` (run id, revision or None for the newest) makes it incremental: the revision is fixed now, so
    edits made to the earlier run while this one waits are not half taken.

    Each run stores a full snapshot, so a project may keep at most `runs_per_project` runs and have at most
    `queued_runs_per_project` waiting: one caller cannot fill the disk or the worker's queue."""
    repo.project(s, project_id)
    config = SynthConfig(**overrides)  # raises pydantic.ValidationError on a bad setting
    if limits is not None:
        runs = repo.count_runs(s, project_id)
        if runs >= limits.runs_per_project:
            raise TooLarge(f"the project has {runs} runs; the limit is {limits.runs_per_project}: delete old runs")
        waiting = repo.count_runs(s, project_id, ("queued", "running"))
        if waiting >= limits.queued_runs_per_project:
            raise Conflict(f"{waiting} runs of this project are already queued or running; wait for one to end")
    rows = repo.contributions(s, project_id)
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
    if callback_url is not None:
        check_callback(s, project_id, callback_url)
    run = Run(
        id=repo.new_id(),
        project_id=project_id,
        config=config.model_dump(mode="json"),
        snapshot=snapshot,
        callback_url=callback_url,
        name=name.strip() or f"Run {repo.count_runs(s, project_id) + 1}",
        sources=repo.upload_sources(s, project_id),
    )
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


def delete_run(s: Session, project_id: str, run_id: str, actor: str) -> None:
    """Frees a run's snapshot and results; a queued or running run must be cancelled first."""
    run = repo.run(s, project_id, run_id)
    if run.status in ("queued", "running"):
        raise Conflict(f"run is {run.status}; cancel it first")
    for row in repo.results(s, run_id):
        s.delete(row)
    s.delete(run)
    audit(s, project_id, actor, "run.delete", run_id)


def cancel_run(s: Session, project_id: str, run_id: str, actor: str) -> Run:
    run = repo.run(s, project_id, run_id)
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
    if run.status == "cancelled":
        on_run_end(s, run)
    return run
