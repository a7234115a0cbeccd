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
import traceback
from datetime import timedelta

from synth.config import SynthConfig
from synth.incremental import extend
from synth.pipeline import RunResult
from synth.pipeline import run as run_pipeline
from synth.schema import Code
from synth.service import audit, earlier_result, snapshot_input
from synth.service import repository as repo
from synth.service.webhooks import deliver_due, on_run_end
from synth.store import Database
from synth.store.models import Result, Run, now

log = logging.getLogger("synth.worker")


class Cancelled(Exception):
    """Someone asked to cancel the run; raised at the next progress report or stage boundary."""


class Lost(Exception):
    """The run was requeued or given to another worker while this one worked on it."""


class Worker:
    def __init__(
        self,
        db: Database,
        worker_id: str | None = None,
        stale_after: float = 60.0,
        max_attempts: int = 3,
        beat: float | None = None,
    ):
        self.db = db
        self.id = (worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}")[:64]
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.beat = beat if beat is not None else min(10.0, stale_after / 6)

    def recover(self) -> int:
        """Requeue (or fail) runs left 'running' by a worker that stopped heartbeating."""
        cutoff = now() - timedelta(seconds=self.stale_after)
        n = 0
        with self.db.session() as s:
            for r in repo.stale_runs(s, cutoff):
                n += 1
                if r.cancel_requested:  # asked to stop, then its worker died: it stays stopped
                    r.status, r.finished_at = "cancelled", now()
                    audit(s, r.project_id, "worker", "run.cancelled", r.id, None, {"reason": "worker stopped"})
                    on_run_end(s, r)
                elif r.attempts >= self.max_attempts:
                    r.status, r.finished_at = "failed", now()
                    r.error = f"interrupted {r.attempts} times (worker stopped); not retried"
                    audit(s, r.project_id, "worker", "run.failed", r.id, None, {"error": r.error})
                    on_run_end(s, r)
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
            for run_id in repo.queued_run_ids(s, 5):
                if repo.take_run(s, run_id, self.id):
                    return run_id
        return None

    def _heartbeat(self, run_id: str, progress: dict[str, list[int]], state: dict, stop: threading.Event) -> None:
        """Beat every `beat` seconds whatever the pipeline is doing (a long UMAP call reports no progress), and
        bring back what the database says: a cancel request, or the run taken away from this worker."""
        while not stop.wait(self.beat):
            try:
                with self.db.session() as s:
                    r = s.get(Run, run_id)
                    if r is None or r.worker_id != self.id or r.status != "running":
                        state["lost"] = True
                        continue
                    if r.cancel_requested:
                        state["cancel"] = True
                    r.progress, r.heartbeat_at = dict(progress), now()
            except Exception:  # the database is away for a moment: beat again next time
                log.warning("heartbeat for run %s failed", run_id, exc_info=True)

    def execute(self, run_id: str) -> None:
        with self.db.session() as s:
            r = s.get(Run, run_id)
            loaded, config = snapshot_input(r), SynthConfig(**r.config)
            earlier = earlier_result(s, r)
            codebook = [Code(**c) for c in r.snapshot.get("codebook") or []] or None
        progress: dict[str, list[int]] = {}
        state: dict[str, bool] = {}

        def report(stage: str, done: int, total: int) -> None:
            """Called within and between stages: where a cancel request or a lost claim stops the run."""
            progress[stage] = [done, total]
            if state.get("cancel"):
                raise Cancelled()
            if state.get("lost"):
                raise Lost()

        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(run_id, progress, state, stop), daemon=True)
        beat.start()
        try:
            if earlier is None:
                result = run_pipeline(loaded, config, report, codebook=codebook)
            else:
                run_id_before, revision, previous = earlier
                result = extend(previous, loaded, config, report, run_id=run_id_before, revision=revision)
            report("done", 1, 1)
        except Lost:
            log.warning("run %s was taken from this worker; its work is dropped", run_id)
            return
        except Cancelled:
            self._finish(run_id, "cancelled", "run.cancelled")
            return
        except Exception as exc:  # the reason goes to the run, for the person who started it
            log.exception("run %s failed", run_id)
            error = f"{type(exc).__name__}: {exc}"[:4000]
            trace = traceback.format_exc(limit=3)[-2000:]
            self._finish(run_id, "failed", "run.failed", {"error": error, "trace": trace}, error=error)
            return
        finally:
            stop.set()
            beat.join()
        coverage = result.synthesis.coverage.model_dump()
        self._finish(run_id, "succeeded", "run.succeeded", coverage, result=result, progress=progress)

    def _finish(
        self,
        run_id: str,
        status: str,
        action: str,
        details: dict | None = None,
        error: str | None = None,
        result: RunResult | None = None,
        progress: dict[str, list[int]] | None = None,
    ) -> None:
        """Store the outcome only if the run is still this worker's and nobody asked to cancel it, in one
        transaction with the row locked: a cancel that arrives during the last stage wins over success."""
        with self.db.session() as s:
            r = repo.run_for_update(s, run_id)
            if r is None or r.worker_id != self.id or r.status != "running":
                log.warning("run %s is no longer this worker's; outcome %s dropped", run_id, status)
                return
            if status == "succeeded" and r.cancel_requested:
                status, action, details, result = "cancelled", "run.cancelled", None, None
            if result is not None:
                s.add(
                    Result(
                        run_id=run_id,
                        revision=0,
                        synthesis=result.synthesis.model_dump_json(),
                        timings=result.timings,
                    )
                )
                r.progress = {**(r.progress or {}), **(progress or {}), "done": [1, 1]}
            r.status, r.finished_at, r.heartbeat_at, r.error = status, now(), now(), error
            audit(s, r.project_id, "worker", action, run_id, None, details)
            on_run_end(s, r)

    def run_once(self) -> bool:
        """Recover, then take and execute one queued run; False when there was none."""
        self.recover()
        run_id = self.claim()
        if run_id is None:
            return False
        self.execute(run_id)
        return True

    def serve(self, stop: threading.Event, wake: threading.Event | None = None, idle: float = 1.0) -> None:
        """Work until `stop`. Supervised: any error (the database restarting, a constraint clash) is logged and
        the loop goes on after a short back-off, so the worker never dies silently while the API takes runs."""
        wake = wake or threading.Event()
        backoff = idle
        while not stop.is_set():
            try:
                worked = self.run_once()
                deliver_due(self.db)
                backoff = idle
            except Exception:
                log.exception("worker loop error; retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 4.0)
                continue
            if not worked:
                wake.wait(idle)
                wake.clear()
