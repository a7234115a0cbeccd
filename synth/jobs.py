"""The run worker: takes queued runs from the database, runs the pipeline, stores the result.

All state is in the database, so a restart loses nothing: a run whose worker stopped heartbeating is
queued again (the pipeline is deterministic, so starting over gives the same result) or, after
`max_attempts`, marked failed with the reason. Claiming is a conditional UPDATE, so two workers never
take the same run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from datetime import timedelta

from sqlalchemy import select, update

from synth.config import SynthConfig
from synth.pipeline import run as run_pipeline
from synth.projects import audit, snapshot_input
from synth.store import Database
from synth.store.models import Result, Run, now

log = logging.getLogger("synth.worker")


class Cancelled(Exception):
    pass


class Worker:
    def __init__(self, db: Database, worker_id: str | None = None, stale_after: float = 60.0, max_attempts: int = 3):
        self.db = db
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.stale_after = stale_after
        self.max_attempts = max_attempts

    def recover(self) -> int:
        """Requeue (or fail) runs left 'running' by a worker that stopped heartbeating."""
        cutoff = now() - timedelta(seconds=self.stale_after)
        n = 0
        with self.db.session() as s:
            for r in s.scalars(select(Run).where(Run.status == "running", Run.heartbeat_at < cutoff)):
                n += 1
                if r.attempts >= self.max_attempts:
                    r.status, r.finished_at = "failed", now()
                    r.error = f"interrupted {r.attempts} times (worker stopped); not retried"
                    audit(s, r.project_id, "worker", "run.failed", r.id, None, {"error": r.error})
                else:
                    r.status, r.worker_id = "queued", None
                    audit(
                        s,
                        r.project_id,
                        "worker",
                        "run.requeued",
                        r.id,
                        None,
                        {"reason": "worker stopped mid-run", "attempts": r.attempts},
                    )
        return n

    def claim(self) -> str | None:
        with self.db.session() as s:
            candidates = s.scalars(select(Run.id).where(Run.status == "queued").order_by(Run.created_at).limit(5))
            for run_id in list(candidates):
                taken = s.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status == "queued")
                    .values(status="running", worker_id=self.id, heartbeat_at=now(), attempts=Run.attempts + 1)
                ).rowcount
                if taken == 1:
                    return run_id
        return None

    def execute(self, run_id: str) -> None:
        with self.db.session() as s:
            r = s.get(Run, run_id)
            loaded, config = snapshot_input(r), SynthConfig(**r.config)
        last = [0.0]
        progress: dict[str, list[int]] = {}

        def report(stage: str, done: int, total: int) -> None:
            progress[stage] = [done, total]
            if time.monotonic() - last[0] < 0.5 and done < total:
                return
            last[0] = time.monotonic()
            with self.db.session() as s:
                r = s.get(Run, run_id)
                if r.cancel_requested:
                    raise Cancelled()
                r.progress, r.heartbeat_at = dict(progress), now()

        try:
            result = run_pipeline(loaded, config, report)
        except Cancelled:
            with self.db.session() as s:
                r = s.get(Run, run_id)
                r.status, r.finished_at = "cancelled", now()
                audit(s, r.project_id, "worker", "run.cancelled", run_id)
            return
        except Exception as exc:  # the reason goes to the run, for the person who started it
            log.exception("run %s failed", run_id)
            with self.db.session() as s:
                r = s.get(Run, run_id)
                r.status, r.finished_at = "failed", now()
                r.error = f"{type(exc).__name__}: {exc}"[:4000]
                audit(
                    s,
                    r.project_id,
                    "worker",
                    "run.failed",
                    run_id,
                    None,
                    {"error": r.error, "trace": traceback.format_exc(limit=3)[-2000:]},
                )
            return
        with self.db.session() as s:
            r = s.get(Run, run_id)
            s.add(
                Result(run_id=run_id, revision=0, synthesis=result.synthesis.model_dump_json(), timings=result.timings)
            )
            progress["done"] = [1, 1]
            r.status, r.finished_at, r.progress, r.heartbeat_at = "succeeded", now(), dict(progress), now()
            cov = result.synthesis.coverage
            audit(s, r.project_id, "worker", "run.succeeded", run_id, None, cov.model_dump())

    def run_once(self) -> bool:
        """Recover, then take and execute one queued run; False when there was none."""
        self.recover()
        run_id = self.claim()
        if run_id is None:
            return False
        self.execute(run_id)
        return True

    def serve(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Heartbeat-free idle loop; the heartbeat comes from the pipeline's progress while a run works."""
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(idle)
            except Exception:  # keep serving: one bad run must not stop the worker
                log.exception("worker loop error")
                stop.wait(idle)
