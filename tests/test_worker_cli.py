"""`synth worker` in its own process takes a queued run from the database and finishes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from synth.formats import load_contributions
from synth.service import add_contributions, create_project, start_run
from synth.store import Database, upgrade
from synth.store.models import Run
from tests.conftest import POLIS


def test_worker_process_runs_a_queued_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        p = create_project(s, "w", "test")
        add_contributions(s, p.id, load_contributions(POLIS), "test")
        run_id = start_run(s, p.id, {}, "test").id
    env = {**os.environ, "SYNTH_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "synth.cli", "worker"], env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with db.session() as s:
                status = s.get(Run, run_id).status
            if status not in ("queued", "running"):
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(10)
    assert status == "succeeded"
